"""The command line: help for every command, JSON for scripts, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from rich.console import Console
from typer.testing import Result

from ci_pipeline import cli, demo
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.validate.template import template_frame
from tests import helpers
from tests.helpers import as_json, flat, invoke, runs_named

FUND, QUARTER = "galilee-foundation", "2025-Q1"
GOOD = "measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q1,250000\n"
BAD = "measure_id,geo_code,period,value\nnew-resources-nis,Haifa,2025-Q1,lots\n"


@pytest.fixture(autouse=True)
def quiet_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app sets this for its own process; keep it from leaking into other tests."""
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


# --- help ----------------------------------------------------------------------------------------

#: Every command and subcommand, and where its help text comes from.
HELP = {
    "": lambda: cli.app.info.help,
    "init": lambda: cli.definitions.init.__doc__,
    "partners": lambda: cli.definitions.partners.__doc__,
    "measures": lambda: cli.definitions.measures_app.info.help,
    "measures check": lambda: cli.definitions.measures_check.__doc__,
    "measures schema": lambda: cli.definitions.measures_schema.__doc__,
    "template": lambda: cli.definitions.template.__doc__,
    "submit": lambda: cli.intake.submit.__doc__,
    "submissions": lambda: cli.intake.submissions.__doc__,
    "observations": lambda: cli.intake.observations.__doc__,
    "demo": lambda: cli.sample.demo.__doc__,
}


@pytest.mark.parametrize("command", HELP, ids=lambda c: c or "app")
def test_help_of_every_command(command: str) -> None:
    doc = HELP[command]()
    assert isinstance(doc, str) and len(doc) > 20
    first_line = flat(doc.strip().splitlines()[0])

    result = invoke(*command.split(), "--help")

    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert f"Usage: ci-pipeline {command} [OPTIONS]".replace("  ", " ") in text
    assert first_line in text


def test_no_command_shows_the_commands() -> None:
    result = invoke()

    text = flat(result.output)
    assert "Usage: ci-pipeline" in text
    for command in ("init", "partners", "measures", "template", "submit", "demo"):
        assert f" {command} " in text


# --- definitions ---------------------------------------------------------------------------------


def test_init_json(home: Path, initiative: Initiative) -> None:
    result = invoke("init", "--json")

    assert result.exit_code == 0, result.output
    data = as_json(result)
    assert data["database"] == f"sqlite:///{home / 'ci_pipeline.db'}"
    assert data["initiative"] == "beit-hakerem"
    assert data["changes"][0] == "initiative beit-hakerem loaded"
    assert len(data["changes"]) == 1 + len(initiative.measures)
    assert (home / "ci_pipeline.db").is_file()

    again = invoke("init", "--json")
    assert again.exit_code == 0
    assert as_json(again)["changes"] == []
    assert "nothing changed" in invoke("init").stdout


def test_partners_json(home: Path) -> None:
    result = invoke("partners", "--json")

    assert result.exit_code == 0, result.output
    partners = as_json(result)
    assert len(partners) == 13
    by_id = {p["id"]: p for p in partners}
    assert by_id["employment-service"]["encoding"] == "windows-1255"
    assert by_id["employment-service"]["locale"] == "ru"  # its own; the others the initiative's
    assert by_id[FUND]["locale"] == "he_IL"
    assert by_id[FUND]["submits_every"] == "quarter"
    assert "new-resources-nis" in by_id[FUND]["measures"]
    assert by_id["kurkum"]["localities"] == ["majd-al-krum"]
    assert "fsg-*" not in by_id["kurkum"]["measures"]  # patterns are expanded


def test_partners_table(home: Path) -> None:
    result = invoke("partners")

    assert result.exit_code == 0
    assert "Partners" in result.stdout
    assert "kurkum" in result.stdout


def test_measures_json(home: Path) -> None:
    result = invoke("measures", "--json")

    assert result.exit_code == 0, result.output
    measures = {m["id"]: m for m in as_json(result)}
    assert len(measures) == 38
    assert measures["arab-women-lfp"]["unit"] == "proportion"
    assert measures["arab-women-lfp"]["combine"] == "ratio_of_sums"
    assert measures["new-resources-nis"]["valid_range"] == {"min": 0.0, "max": 50000000.0}
    assert measures["starter-students-trained"]["dimensions"] == {
        "sex": ["total", "female", "male"]
    }
    assert "Shared measures" in invoke("measures").stdout


def test_measures_check_the_bundled_folder(home: Path) -> None:
    result = invoke("measures", "check")

    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "38 measures, 13 partners, 8 geographies" in flat(result.stdout)
    data = as_json(invoke("measures", "check", str(DEFAULT_INITIATIVE), "--json"))
    assert data == {
        "ok": True,
        "initiative": "beit-hakerem",
        "measures": 38,
        "partners": 13,
        "geographies": 8,
    }


def broken_copy(tmp_path: Path) -> Path:
    """The bundled folder with four mistakes in three files."""
    folder = tmp_path / "broken"
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    measure = folder / "measures" / "arab-women-lfp.yaml"
    data = yaml.safe_load(measure.read_text(encoding="utf-8"))
    data["unit"] = "percent"
    data["valid_range"] = {"min": 2, "max": 1}
    measure.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    partners = folder / "partners.yaml"
    partners.write_text(
        partners.read_text(encoding="utf-8")
        .replace("- new-resources-nis", "- new-resources-usd")
        .replace("encoding: windows-1256", "encoding: klingon-8"),
        encoding="utf-8",
    )
    return folder


EXPECTED_PROBLEMS = [
    "measures/arab-women-lfp.yaml: unit:",
    "measures/arab-women-lfp.yaml: valid_range: Value error, min (2.0) is greater than max (1.0)",
    "partners.yaml[galilee-foundation]: measures: unknown measure 'new-resources-usd'",
    "partners.yaml[kurkum]: encoding: unknown encoding 'klingon-8'",
]


def test_measures_check_reports_every_problem(tmp_path: Path, home: Path) -> None:
    folder = broken_copy(tmp_path)

    result = invoke("measures", "check", str(folder))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    text = flat(result.stderr)
    header = re.search(r"(\d+) problem\(s\)", text)
    assert header is not None and int(header[1]) == text.count("•") >= len(EXPECTED_PROBLEMS)
    for expected in EXPECTED_PROBLEMS:
        assert f"• {expected}" in text, (expected, text)

    as_data = invoke("measures", "check", str(folder), "--json")
    assert as_data.exit_code == 1
    data = as_json(as_data)
    assert data["ok"] is False
    assert len(data["problems"]) == text.count("•")
    for expected in EXPECTED_PROBLEMS:
        assert any(p.startswith(expected) for p in data["problems"])


def test_measures_check_of_a_missing_folder(tmp_path: Path, home: Path) -> None:
    result = invoke("measures", "check", str(tmp_path / "nowhere"))

    assert result.exit_code == 1
    assert "no such initiative folder" in flat(result.stderr)


def test_measures_schema(tmp_path: Path, home: Path) -> None:
    result = invoke("measures", "schema")

    assert result.exit_code == 0
    schema = as_json(result)
    assert schema["title"] == "Shared measure"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"id", "version", "unit", "periodicity"} <= set(schema["required"])

    target = tmp_path / "measure.schema.json"
    assert invoke("measures", "schema", "-o", str(target)).exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8")) == schema


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_template_writes_a_form(
    fmt: str, tmp_path: Path, home: Path, initiative: Initiative
) -> None:
    target = tmp_path / f"form.{fmt}"
    expected = template_frame(initiative, FUND, parse_period("2025"))

    result = invoke("template", "-p", FUND, "--period", "2025", "-o", str(target))

    assert result.exit_code == 0, result.output
    assert f"Wrote {expected.height} rows" in result.stdout
    if fmt == "csv":
        assert target.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
        written = pl.read_csv(target, infer_schema_length=0)
    else:
        written = pl.read_excel(target, infer_schema_length=0)
    assert written.columns == expected.columns
    assert written["measure_id"].to_list() == expected["measure_id"].to_list()
    assert written["period"].to_list() == expected["period"].to_list()
    assert written.filter(pl.col("measure_id") == "new-resources-nis")["period"].to_list() == [
        "2025-Q1",
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
    ]


def test_template_format_option_sets_the_suffix(tmp_path: Path, home: Path) -> None:
    result = invoke(
        "template",
        "-p",
        FUND,
        "--period",
        QUARTER,
        "-o",
        str(tmp_path / "form"),
        "--format",
        "xlsx",
    )

    assert result.exit_code == 0, result.output
    assert (tmp_path / "form.xlsx").is_file()
    bad = invoke("template", "-p", FUND, "--period", QUARTER, "-o", str(tmp_path / "f.pdf"))
    assert bad.exit_code == 2
    assert "--format must be csv or xlsx, not 'pdf'" in bad.stderr


def test_a_bad_period_is_a_message(tmp_path: Path, home: Path) -> None:
    result = invoke("template", "-p", FUND, "--period", "2025-13", "-o", str(tmp_path / "f.csv"))

    assert result.exit_code == 2
    assert "'2025-13' is not a period" in result.stderr
    assert "Traceback" not in result.output


# --- errors --------------------------------------------------------------------------------------


@pytest.fixture
def coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Error output as a terminal would show it, with colour codes."""
    monkeypatch.setattr(
        cli.common,
        "err",
        Console(stderr=True, force_terminal=True, color_system="standard", width=200),
    )


@pytest.mark.usefixtures("coloured")
def test_an_unknown_partner_is_a_red_error_without_traceback(tmp_path: Path, home: Path) -> None:
    file = tmp_path / "fund.csv"
    file.write_text(GOOD, encoding="utf-8")

    for args in (
        ["submit", str(file), "-p", "nobody", "--period", QUARTER],
        ["submit", str(file), "-p", "nobody", "--period", QUARTER, "--locale", "de_DE"],
        ["template", "-p", "nobody", "--period", QUARTER, "-o", str(tmp_path / "f.csv")],
    ):
        result = invoke(*args)

        assert result.exit_code == 2, result.output  # a usage error
        assert isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        assert result.stdout == ""
        assert '\x1b[31merror:\x1b[0m no partner "nobody" in beit-hakerem' in result.stderr
        assert "known: biina-council, braude-college" in result.stderr
    assert not (home / "ci_pipeline.db").exists()  # nothing was started


@pytest.mark.usefixtures("coloured")
def test_an_unknown_locale_is_an_error_before_a_flow_starts(tmp_path: Path, home: Path) -> None:
    file = tmp_path / "fund.csv"
    file.write_text(GOOD, encoding="utf-8")
    result = invoke("submit", str(file), "-p", FUND, "--period", QUARTER, "--locale", "klingon")
    assert result.exit_code == 2, result.output  # a usage error
    assert "Traceback" not in result.output
    assert "unknown locale 'klingon'" in result.stderr
    assert not (home / "ci_pipeline.db").exists()  # nothing was started


# --- submitting and listing ----------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_submit_exit_codes_and_output(tmp_path: Path, home: Path) -> None:
    good = write(tmp_path, "fund.csv", GOOD)

    accepted = invoke("submit", str(good), "-p", FUND, "--period", QUARTER)
    assert accepted.exit_code == 0, accepted.output
    assert "ACCEPTED #1 galilee-foundation 2025-Q1 fund.csv: accepted: 1 row(s) stored" in flat(
        accepted.stdout
    )

    duplicate = invoke("submit", str(good), "-p", FUND, "--period", QUARTER, "--json")
    assert duplicate.exit_code == 0, duplicate.output
    receipt = as_json(duplicate)
    assert (receipt["status"], receipt["duplicate_of"], receipt["submission_id"]) == (
        "duplicate",
        1,
        2,
    )

    bad = write(tmp_path, "bad.csv", BAD)
    rejected = invoke("submit", str(bad), "-p", FUND, "--period", QUARTER)
    assert rejected.exit_code == cli.common.EXIT_REJECTED == 3, rejected.output
    assert "REJECTED #3" in rejected.stdout
    reports = sorted((home / "reports" / FUND / QUARTER).glob("*/report.json"))
    assert len(reports) == 2  # the accepted file's and the rejected one's
    rejected_report = next(r for r in reports if json.loads(r.read_text())["status"] == "rejected")
    # The path is printed whole, on one line, so it can be copied.
    assert f"Report: {rejected_report}\n" in rejected.stdout
    assert "geography_served" in rejected.stdout
    assert "value_is_number" in rejected.stdout

    as_data = invoke("submit", str(bad), "-p", FUND, "--period", QUARTER, "--json")
    assert as_data.exit_code == 3
    data = as_json(as_data)
    assert data["status"] == "rejected"
    assert {i["rule"] for i in data["first_issues"]} == {"geography_served", "value_is_number"}
    assert Path(data["report_path"]).is_file()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_submit_with_a_bad_period_is_a_message(tmp_path: Path, home: Path) -> None:
    good = write(tmp_path, "fund.csv", GOOD)

    before = runs_named(f"ingest {FUND} 2025-13")
    result = invoke("submit", str(good), "-p", FUND, "--period", "2025-13")

    assert result.exit_code == 2, result.output
    assert "'2025-13' is not a period" in result.stderr
    assert "Traceback" not in result.output
    # Told before any run starts, so nothing is retried (counted, not timed: machines are noisy).
    assert runs_named(f"ingest {FUND} 2025-13") == before


@pytest.fixture
def ingested(home: Path, settings: Settings, initiative: Initiative, tmp_path: Path) -> Settings:
    """Three submissions stored through the core path (no Prefect needed to list them)."""
    from ci_pipeline import store
    from ci_pipeline.receive import intake

    engine = store.make_engine(settings.resolved_database_url)
    intake.prepare_database(initiative, engine=engine)
    files = [
        (FUND, QUARTER, GOOD),
        (FUND, "2025-Q2", GOOD.replace("2025-Q1", "2025-Q2").replace("250000", "90000")),
        (
            "braude-college",
            "2025-01",
            "measure_id,geo_code,period,sex,value\n"
            "starter-students-trained,karmiel,2025-01,female,4\n"
            "starter-students-trained,karmiel,2025-01,male,3\n"
            "starter-students-trained,misgav,2025-01,female,2\n",
        ),
    ]
    for i, (partner, period, content) in enumerate(files):
        path = write(tmp_path, f"file{i}.csv", content)
        receipt = helpers.ingest(
            path, partner, period, initiative=initiative, settings=settings, engine=engine
        )
        assert receipt.status == "accepted", receipt.first_issues
    engine.dispose()
    return settings


def test_submissions_json_with_filters(ingested: Settings) -> None:
    everything = as_json(invoke("submissions", "--json"))
    assert [(s["id"], s["partner_id"], s["period"]) for s in everything] == [
        (3, "braude-college", "2025-01"),
        (2, FUND, "2025-Q2"),
        (1, FUND, QUARTER),
    ]
    assert everything[0]["status"] == "accepted"
    assert everything[0]["rows_accepted"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", everything[0]["received_at"])

    fund = as_json(invoke("submissions", "--json", "--partner", FUND))
    assert [s["id"] for s in fund] == [2, 1]
    q2 = as_json(invoke("submissions", "--json", "-p", FUND, "--period", "2025-Q2"))
    assert [s["id"] for s in q2] == [2]
    assert [s["id"] for s in as_json(invoke("submissions", "--json", "--limit", "1"))] == [3]
    assert as_json(invoke("submissions", "--json", "--partner", "kurkum")) == []

    table = invoke("submissions")
    assert table.exit_code == 0
    assert "Submissions (3)" in table.stdout


def test_observations_json_with_filters(ingested: Settings) -> None:
    everything = as_json(invoke("observations", "--json"))
    assert len(everything) == 5

    fund = as_json(invoke("observations", "--json", "--measure", "new-resources-nis"))
    assert [(o["period"], o["value"]) for o in fund] == [
        ("2025-Q1", 250000.0),
        ("2025-Q2", 90000.0),
    ]
    q2 = as_json(invoke("observations", "--json", "-m", "new-resources-nis", "--period", "2025-Q2"))
    assert [o["value"] for o in q2] == [90000.0]
    karmiel = as_json(invoke("observations", "--json", "--geo", "karmiel"))
    assert sorted((o["disaggregation"], o["value"]) for o in karmiel) == [
        ("sex=female", 4.0),
        ("sex=male", 3.0),
    ]
    starter = as_json(invoke("observations", "--json", "-p", "braude-college", "-g", "misgav"))
    assert [(o["partner_id"], o["value"]) for o in starter] == [("braude-college", 2.0)]
    assert len(as_json(invoke("observations", "--json", "--limit", "2"))) == 2
    assert as_json(invoke("observations", "--json", "--geo", "rameh")) == []

    table = invoke("observations", "--limit", "2")
    assert table.exit_code == 0
    assert "Observations (2+)" in table.stdout


def test_listings_of_an_empty_database(home: Path) -> None:
    assert as_json(invoke("submissions", "--json")) == []
    assert as_json(invoke("observations", "--json")) == []


def test_another_initiative_folder(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "other"
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    (folder / "measures" / "smb-digital-presence.yaml").unlink()
    monkeypatch.setenv("CI_PIPELINE_INITIATIVE", str(DEFAULT_INITIATIVE))  # restored afterwards
    partners = folder / "partners.yaml"
    partners.write_text(
        partners.read_text(encoding="utf-8").replace("  - smb-digital-presence\n", ""),
        encoding="utf-8",
    )

    result = invoke("--initiative", str(folder), "measures", "--json")

    assert result.exit_code == 0, result.output
    assert len(as_json(result)) == 37
    assert load_initiative(folder).measures.keys() == {m["id"] for m in as_json(result)}


# --- demo ----------------------------------------------------------------------------------------


def demo_receipts(result: Result) -> list[dict[str, Any]]:
    """The receipts in ``demo --json``: the whole output, or its ``submissions`` once the demo
    also reports what processing the period produced."""
    data = as_json(result)
    receipts = data["submissions"] if isinstance(data, dict) else data
    assert isinstance(receipts, list)
    return receipts


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_demo_runs_resets_and_summarises(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo through the command line, on its first few files and its notable ones (each
    with the file before it: the original of the duplicate and of the revision): every file
    through the ingest flow, then the period processed. Every one of the demo's files through
    the same steps, and the three findings it injects, are checked in-process:
    tests/test_pipeline.py and tests/receive/test_intake.py."""
    generate = demo.generate
    kept: list[demo.DemoFile] = []

    def fewer(*args: Any, **kwargs: Any) -> list[demo.DemoFile]:
        files = generate(*args, **kwargs)
        notable = [i for i, f in enumerate(files) if f.note and f.note != "backbone survey"]
        keep = set(range(3)) | {j for i in notable for j in (i - 1, i)}
        kept[:] = [f for i, f in enumerate(files) if i in keep]
        return list(kept)

    monkeypatch.setattr(demo, "generate", fewer)

    first = invoke("demo", "--reset", "--json")
    assert first.exit_code == 0, first.output
    receipts = demo_receipts(first)
    # Every generated file was submitted, in order, none held back.
    assert [(r["partner_id"], r["period"], r["file_name"]) for r in receipts] == [
        (f.partner_id, f.period, f.path.name) for f in kept
    ]
    assert as_json(first)["held"] == []
    statuses = Counter(r["status"] for r in receipts)
    assert statuses == {"accepted": len(receipts) - 2, "rejected": 1, "duplicate": 1}
    rejected = next(r for r in receipts if r["status"] == "rejected")
    assert rejected["file_name"].endswith("_draft.tsv")
    assert Path(rejected["report_path"]).is_file()
    revision = [r for r in receipts if r["supersedes"] is not None]
    assert len(revision) == 1 and revision[0]["partner_id"] == "national-insurance"
    stored = sum(r["rows_accepted"] for r in receipts)
    counted = as_json(invoke("observations", "--json", "--limit", str(stored + 1)))
    superseded = next(r for r in receipts if r["submission_id"] == revision[0]["supersedes"])
    assert len(counted) == stored - superseded["rows_accepted"]
    # ... and the period was processed: indicators, detection, delivery.
    processed = as_json(first)["process"]
    assert set(processed) == {"aggregated", "detected", "delivered", "report"}
    assert processed["report"].endswith("report-card/index.html")  # the card, rebuilt
    assert processed["aggregated"]["slices"] and processed["aggregated"]["rows"] > 0
    assert processed["detected"]["findings"] == len(processed["detected"]["new_alerts"]) > 0
    assert processed["delivered"] and {d["ok"] for d in processed["delivered"]} == {True}

    again = invoke("demo", "--reset")
    assert again.exit_code == 0, again.output
    text = flat(again.stdout)
    assert "Demo: submissions by outcome" in text
    assert "REJECTED" in text and "DUPLICATE" in text
    assert f"Open alerts ({len(processed['detected']['new_alerts'])})" in text
    # Lines to copy are printed whole, however long.
    assert f"Delivered to: {home / 'alerts.log'}\n" in again.stdout
    assert f"Data folder: {home}\n" in again.stdout
    [explore] = [line for line in again.stdout.splitlines() if line.startswith("Explore it:")]
    assert f"CI_PIPELINE_HOME={home}" in explore
    assert ".venv/bin/ci-pipeline submissions" in explore
    # The reset started from an empty database: the same files got the same ids again.
    listed = as_json(invoke("submissions", "--json", "--limit", "500"))
    assert len(listed) == len(receipts)
    assert sorted(s["id"] for s in listed) == [r["submission_id"] for r in receipts]
