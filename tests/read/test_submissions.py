"""Files through the intake steps (receive → parse → check → record), as partners send them:
read exactly as written in the partner's locale and encoding, or rejected with a report that
names what is wrong — never a traceback, never a guess."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from babel.numbers import format_decimal
from sqlalchemy import Engine

from ci_pipeline import read, store
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings
from ci_pipeline.model.initiative import Initiative, Unit
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive import intake
from ci_pipeline.validate import template
from tests.helpers import ingest

FUND, QUARTER = "galilee-foundation", "2025-Q1"
PARTNERS = sorted(load_initiative(DEFAULT_INITIATIVE).partners)
HEADER = "measure_id,geo_code,period,value"


def submit(
    path: Path,
    partner: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    encoding: str | None = None,
    locale: str | None = None,
) -> intake.Receipt:
    """One file received with this submission's encoding and locale, then through the intake
    steps."""
    return ingest(
        path,
        partner,
        period,
        initiative=initiative,
        settings=settings,
        engine=engine,
        options={"encoding": encoding, "locale": locale},
    )


def report_of(receipt: intake.Receipt) -> dict[str, object]:
    assert receipt.report_path is not None
    report: dict[str, object] = json.loads(Path(receipt.report_path).read_text(encoding="utf-8"))
    return report


# --- numbers in the partner's locale, overridable per submission --------------------------------


def test_numbers_are_read_in_the_partners_locale_unless_the_submission_gives_another(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    """The fund's locale is the initiative's, he_IL: '1.234,5' does not fit it and is rejected
    naming row, column, value and rule; sent again declaring de_DE it is 1234.5."""
    path = tmp_path / "fund.csv"
    path.write_text(f'{HEADER}\nnew-resources-nis,beit-hakerem,2025-Q1,"1.234,5"\n')
    assert initiative.partner_locale(FUND) == "he_IL"

    rejected = submit(path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert rejected.status == "rejected"
    ((issue),) = rejected.first_issues
    assert (issue["row"], issue["column"], issue["value"], issue["rule"]) == (
        2,
        "value",
        "1.234,5",
        "value_number_format",
    )
    assert "he_IL (Hebrew (Israel)) writes numbers like 1,234.5" in issue["message"]
    assert "--locale" not in issue["message"]  # an inbox or API partner never saw that option

    accepted = submit(
        path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db, locale="de_DE"
    )
    assert accepted.status == "accepted"
    stored = store.current_observations(engine=db, partner_id=FUND)
    assert stored["value"].to_list() == [1234.5]  # 1.234,5 in de_DE: 1234 and 5 tenths


def test_an_unknown_locale_given_with_a_file_refuses_it(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    path = tmp_path / "fund.csv"
    path.write_text(f"{HEADER}\nnew-resources-nis,beit-hakerem,2025-Q1,5\n")
    receipt = submit(
        path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db, locale="xx_YY"
    )
    assert receipt.status == "rejected"
    assert receipt.first_issues[0]["rule"] == "file_refused"
    assert receipt.first_issues[0]["message"].startswith("unknown locale 'xx_YY'")


# --- a declared encoding is a default, not a trap -----------------------------------------------


def test_utf8_from_a_windows_1256_partner_is_read_with_a_warning_on_the_receipt(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    """Kurkum's settings say windows-1256; its office saved this file as UTF-8 (no BOM)."""
    assert initiative.partner("kurkum").encoding == "windows-1256"
    path = tmp_path / "kurkum.csv"
    path.write_text(f"{HEADER}\nkurkum-women-employed,مجد الكروم,2025-09,14\n", encoding="utf-8")
    receipt = submit(path, "kurkum", "2025-09", initiative=initiative, settings=settings, engine=db)
    assert receipt.status == "accepted"
    warning = "the file is UTF-8 text although windows-1256 was expected; it was read as UTF-8"
    assert receipt.warnings == [warning]
    assert report_of(receipt)["warnings"] == [warning]
    assert store.current_observations(engine=db, partner_id="kurkum")["geo_code"].to_list() == [
        "majd-al-krum"  # the Arabic name as written, not mojibake
    ]


# --- never a traceback ----------------------------------------------------------------------------


def _truncated_workbook(path: Path) -> bytes:
    workbook = xlsxwriter.Workbook(str(path))
    workbook.add_worksheet().write_row(0, 0, HEADER.split(","))
    workbook.close()
    return path.read_bytes()[:300]


def _zip_without_a_workbook(path: Path) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hello")
    return path.read_bytes()


UNREADABLE: dict[str, tuple[str, bytes | Callable[[Path], bytes], str]] = {
    "garbage named .xlsx": ("f.xlsx", bytes(range(256)) * 4, "f.xlsx is not an XLSX workbook"),
    "a truncated zip": ("f.xlsx", _truncated_workbook, "f.xlsx is not an XLSX workbook"),
    "a zip holding no workbook": (
        "f.xlsx",
        _zip_without_a_workbook,
        "f.xlsx could not be read as a workbook",
    ),
    "not Parquet": ("f.parquet", b"PAR1 this is not parquet PAR1", "f.parquet could not be read"),
    "binary in .csv": ("f.csv", bytes(range(128, 256)) * 8, "line 1 (byte 0) is not valid"),
    "an empty file": ("f.csv", b"", "f.csv is empty"),
    "NUL bytes": ("f.csv", f"{HEADER}\nm,\0,x,1\n".encode(), "f.csv holds NUL bytes"),
    "no delimiter": ("f.csv", b"measure_id|geo_code|period|value\nm|g|p|1\n", "f.csv: its first"),
    "a line with fewer cells": (
        "f.csv",
        f"{HEADER}\nnew-resources-nis,beit-hakerem,2025-Q1\n".encode(),
        "f.csv: line 2 has 3 cells but the header has 4",
    ),
    "an unknown type": ("f.ods", b"PK\3\4", "f.ods: unsupported file type '.ods'"),
}


@pytest.mark.parametrize("case", list(UNREADABLE), ids=list(UNREADABLE))
def test_a_file_the_readers_cannot_read_is_a_file_refused_rejection_with_a_report(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine, case: str
) -> None:
    name, content, reason = UNREADABLE[case]
    path = tmp_path / name
    path.write_bytes(content(tmp_path / f"scratch-{name}") if callable(content) else content)
    receipt = submit(path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert receipt.status == "rejected"
    ((issue),) = receipt.first_issues
    assert issue["rule"] == "file_refused"
    assert issue["message"].startswith(reason), issue["message"]
    assert report_of(receipt)["issues"][0]["rule"] == "file_refused"  # type: ignore[index]


def test_a_header_only_file_is_a_rejection_with_a_report(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    """Readable, but with nothing to store: rejected as no_rows, with a report."""
    path = tmp_path / "f.csv"
    path.write_text(f"{HEADER}\n")
    receipt = submit(path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert receipt.status == "rejected"
    assert [i["rule"] for i in receipt.first_issues] == ["no_rows"]
    assert Path(str(receipt.report_path)).is_file()


# --- echoed values are cut ------------------------------------------------------------------------


def test_a_megabyte_cell_is_echoed_cut_and_the_reports_stay_small(
    tmp_path: Path, initiative: Initiative, settings: Settings, db: Engine
) -> None:
    """A 1 MB measure id fails measure_reported, whose value and sentence both echo it: each
    echo keeps its first 200 characters and says how long it was."""
    huge = "x" * 1_048_576
    path = tmp_path / "fund.csv"
    path.write_text(f"{HEADER}\n{huge},beit-hakerem,2025-Q1,5\n")
    receipt = submit(path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert receipt.status == "rejected"
    cut = "x" * 200 + "…[cut: 1,048,576 characters in all]"
    ((issue),) = receipt.first_issues
    assert (issue["rule"], issue["value"]) == ("measure_reported", cut)
    assert issue["message"] == f"measure '{cut}' is not a shared measure of this initiative"
    folder = Path(str(receipt.report_path)).parent
    for name in ("errors.csv", "report.json"):
        assert (folder / name).stat().st_size < 5_000, name  # the cell is 1,048,576 bytes
    assert len(json.dumps(receipt.to_dict())) < 5_000


# --- every partner's own template, filled and saved as it came, is accepted --------------------


def _filled(initiative: Initiative, partner: str, period: str) -> pl.DataFrame:
    """The partner's template with every number a valid one, by the measure's unit: counts 12;
    amounts 1234.5; shares 1040 of 4000; scores 3.5 from 1200 answers."""
    frame = template.template_frame(initiative, partner, parse_period(period))
    assert frame.height, f"{partner} owes nothing for {period}"
    unit = pl.col("measure_id").replace_strict(
        {m.id: str(m.unit) for m in initiative.measures.values()}
    )

    def by_unit(values: dict[Unit, float]) -> pl.Expr:
        expr = pl.lit(None, pl.Float64)
        for u, v in values.items():
            expr = pl.when(unit == str(u)).then(pl.lit(v)).otherwise(expr)
        return expr

    return frame.with_columns(
        by_unit({Unit.proportion: 1040.0}).alias("numerator"),
        by_unit({Unit.proportion: 4000.0, Unit.score: 1200.0}).alias("denominator"),
        by_unit({Unit.count: 12.0, Unit.amount: 1234.5, Unit.score: 3.5}).alias("value"),
    )


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("partner", PARTNERS)
def test_every_partners_template_filled_as_it_came_is_accepted(
    tmp_path: Path,
    initiative: Initiative,
    settings: Settings,
    db: Engine,
    partner: str,
    fmt: str,
) -> None:
    """A bundled partner's yearly template (every unit appears in some partner's), written as
    ``ci-pipeline template`` writes it, filled and saved in the same format — a CSV in UTF-8
    with the byte-order mark, numbers as the partner's locale writes them (1,040 in he_IL,
    1 040 in ru); a workbook with number cells — is accepted whatever the partner's declared
    encoding."""
    period = "2025"
    locale = initiative.partner_locale(partner)
    filled = _filled(initiative, partner, period)
    path = tmp_path / f"template.{fmt}"
    template.write_table(template.template_frame(initiative, partner, parse_period(period)), path)
    if fmt == "csv":
        assert path.read_bytes().startswith(read.UTF8_BOM)  # how the template comes
        as_written = filled.with_columns(
            pl.col(c).map_elements(lambda x: format_decimal(x, locale=locale), pl.Utf8)
            for c in read.NUMBER_COLUMNS
        )
        template.write_table(as_written, path)  # saved as it came: UTF-8 with the mark
        if locale == "ru":
            assert "1\u00a0040" in path.read_text(encoding="utf-8-sig")
    else:
        template.write_table(filled, path)  # number cells, as Excel saves typed numbers
    receipt = submit(path, partner, period, initiative=initiative, settings=settings, engine=db)
    assert (receipt.status, receipt.first_issues) == ("accepted", [])
    assert receipt.rows_accepted == filled.height
