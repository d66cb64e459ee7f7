"""Templates: the cells a partner owes, written as a form that validates once filled in."""

from __future__ import annotations

from pathlib import Path

import fastexcel
import polars as pl
import pytest

from ci_pipeline import read, validate
from ci_pipeline.model.initiative import TOTAL, Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.validate import template

ARAB_LOCALITIES = ["majd-al-krum", "biina", "deir-al-asad", "nahf", "rameh"]
ALL_LOCALITIES = ["karmiel", "misgav", *ARAB_LOCALITIES]


def test_expected_rows_for_a_quarterly_partner(initiative: Initiative) -> None:
    rows = template.expected_rows(initiative, "employment-service", parse_period("2025-Q3"))
    assert rows.columns == ["measure_id", "geo_code", "period", "age_band", "sex"]
    expected = [
        ("arab-women-lfp", geo, "2025-Q3", band, TOTAL)
        for geo in ARAB_LOCALITIES
        for band in ["25-44", "45-64"]
    ] + [
        ("part-time-share", geo, "2025-Q3", TOTAL, sex)
        for geo in ARAB_LOCALITIES
        for sex in ["female", "male"]
    ]
    assert rows.rows() == expected  # no total row where a breakdown exists, no yearly fsg-*


def test_monthly_measure_over_a_quarter(initiative: Initiative) -> None:
    rows = template.expected_rows(initiative, "braude-college", parse_period("2025-Q3"))
    students = rows.filter(pl.col("measure_id") == "starter-students-trained")
    assert students["period"].unique(maintain_order=True).to_list() == [
        "2025-07",
        "2025-08",
        "2025-09",
    ]
    assert students.height == 3 * len(ALL_LOCALITIES) * 2
    assert set(students["sex"]) == {"female", "male"}
    assert set(students["geo_code"]) == set(ALL_LOCALITIES)
    assert set(rows["measure_id"]) == {"starter-students-trained", "starter-businesses-served"}
    assert rows.filter(pl.col("measure_id") == "starter-businesses-served").height == 3 * 7


@pytest.mark.parametrize(
    ("period", "fsg_rows", "resources_periods"),
    [
        ("2025", 27, ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]),
        ("2025-Q3", 0, ["2025-Q3"]),
        ("2025-09", 0, []),
    ],
)
def test_cluster_level_yearly_measures_only_in_a_yearly_template(
    initiative: Initiative, period: str, fsg_rows: int, resources_periods: list[str]
) -> None:
    rows = template.expected_rows(initiative, "galilee-foundation", parse_period(period))
    fsg = rows.filter(pl.col("measure_id").str.starts_with("fsg-"))
    assert fsg.height == fsg_rows
    assert fsg_rows == 0 or fsg_rows == sum(m.startswith("fsg-") for m in initiative.measures)
    assert set(fsg["geo_code"]) <= {"beit-hakerem"}
    assert set(fsg["period"]) <= {"2025"}
    resources = rows.filter(pl.col("measure_id") == "new-resources-nis")
    assert resources["period"].to_list() == resources_periods
    assert set(resources["geo_code"]) <= {"beit-hakerem"}  # a cluster measure, not per locality


def test_template_frame_columns(initiative: Initiative) -> None:
    frame = template.template_frame(initiative, "kurkum", parse_period("2025-Q3"))
    assert frame.columns == [
        "measure_id",
        "measure_title",
        "geo_code",
        "geo_name",
        "period",
        "age_band",
        "sex",
        "unit",
        "numerator",
        "denominator",
        "value",
    ]
    assert frame.row(0) == (
        "kurkum-women-employed",
        "Women employed by Kurkum catering",
        "majd-al-krum",
        "מג'ד אל-כרום",
        "2025-07",
        TOTAL,
        TOTAL,
        "count (women)",
        None,
        None,
        None,
    )
    assert frame.height == 3
    assert frame.select(pl.col("numerator", "denominator", "value").null_count()).row(0) == (
        3,
        3,
        3,
    )


def test_write_table_csv_has_a_byte_order_mark(tmp_path: Path, initiative: Initiative) -> None:
    frame = template.template_frame(initiative, "kurkum", parse_period("2025-Q3"))
    path = template.write_table(frame, tmp_path / "out" / "template.csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert "מג'ד אל-כרום" in data.decode("utf-8-sig")
    back = pl.read_csv(data[3:], infer_schema=False)
    assert back.columns == frame.columns
    assert back.select("measure_id", "geo_code", "period").equals(
        frame.select("measure_id", "geo_code", "period")
    )


def test_write_table_xlsx(tmp_path: Path, initiative: Initiative) -> None:
    frame = template.template_frame(initiative, "kurkum", parse_period("2025-Q3"))
    path = template.write_table(frame, tmp_path / "template.xlsx")
    back = fastexcel.read_excel(path).load_sheet(0, dtypes="string").to_polars()
    assert back.columns == frame.columns
    assert back["period"].to_list() == ["2025-07", "2025-08", "2025-09"]
    assert back["geo_name"].to_list() == ["מג'ד אל-כרום"] * 3


def fill(frame: pl.DataFrame) -> pl.DataFrame:
    """What a partner types: shares as counts, scores with respondents, counts and amounts."""
    unit = pl.col("unit").str.extract(r"^(\w+)")
    return frame.with_columns(
        numerator=pl.when(unit == "proportion").then(pl.lit("12")),
        denominator=pl.when(unit == "proportion")
        .then(pl.lit("40"))
        .when(unit == "score")
        .then(pl.lit("9")),
        value=pl.when(unit == "score")
        .then(pl.lit("3.8"))
        .when(unit == "count")
        .then(pl.lit("7"))
        .when(unit == "amount")
        .then(pl.lit("125000")),
    )


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
@pytest.mark.parametrize(
    ("partner", "period"),
    [
        ("employment-service", "2025-Q3"),
        ("employment-service", "2025"),
        ("braude-college", "2025-Q3"),
        ("galilee-foundation", "2025"),
        ("kurkum", "2025"),
    ],
)
def test_filled_template_validates(
    tmp_path: Path, initiative: Initiative, partner: str, period: str, suffix: str
) -> None:
    span = parse_period(period)
    filled = fill(template.template_frame(initiative, partner, span))
    path = template.write_table(filled, tmp_path / f"{partner}.{suffix}")
    raw = read.read_submission(path, max_bytes=10**8, max_expanded_bytes=10**8)
    result = validate.validate(read.to_long_frame(raw, initiative), raw, initiative, partner, span)
    assert result.issues.is_empty(), result.issues
    assert result.warnings == []
    assert result.observations is not None
    assert result.observations.height == filled.height
    observed = validate.to_observations(result.observations, initiative)
    shares = observed.filter(pl.col("measure_id").is_in(["arab-women-lfp", "part-time-share"]))
    assert shares["value"].to_list() == [pytest.approx(0.3)] * shares.height
