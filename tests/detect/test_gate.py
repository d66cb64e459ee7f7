"""The Great Expectations quality gate on small indicator frames.

GX is slow to start, so the gate runs few times: on a clean frame; on a frame with one fault in
each of five measures (and a sixth left clean), as is and with measures excused; on a frame whose
only faults are a late partner's; and a few times on one measure to watch the history pruned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import polars as pl
import pytest

from ci_pipeline.aggregate import expected_partners
from ci_pipeline.detect import FINDING_SCHEMA, gate
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import Initiative, Unit
from ci_pipeline.model.periods import Period, parse_period, shift

LFP = "arab-women-lfp"  # proportion: a cell above 1
STUDENTS = "starter-students-trained"  # count, max 200: cells above and below the range
SCORE = "fsg-vision-work-aligns"  # score: coverage below min_coverage (1.0)
MONEY = "new-resources-nis"  # amount: a 20x jump from the period before
KURKUM = "kurkum-women-employed"  # count: an expected cell missing
WAGE = "below-min-wage-share"  # proportion: clean
JUDGED = {
    LFP: "2025-Q4",
    STUDENTS: "2025-12",
    SCORE: "2025",
    MONEY: "2025-Q4",
    KURKUM: "2025-12",
    WAGE: "2025-Q4",
}
MAX_RULE = "value at or below the measure's maximum (proportions within [0, 1])"
MIN_RULE = "value at or above the measure's minimum"
COVERAGE_RULE = "coverage at or above the measure's minimum"
JUMP_RULE = "no jump of more than 10x from the period before"
SCHEMA = frames.STORED_INDICATOR_SCHEMA  # the stored indicator table's columns
USUAL = {Unit.proportion: 0.3, Unit.count: 20.0, Unit.amount: 1_000_000.0, Unit.score: 3.8}


def periods() -> dict[str, Period]:
    return {m: parse_period(p) for m, p in JUDGED.items()}


def row(
    initiative: Initiative,
    measure_id: str,
    geo: str,
    period: str,
    value: float,
    *,
    disaggregation: str | None = None,
    reported: int | None = None,
) -> dict[str, Any]:
    m = initiative.measures[measure_id]
    partners = expected_partners(initiative).filter(
        (pl.col("measure_id") == measure_id) & (pl.col("geo_code") == geo)
    )
    expected = partners.height
    reported = expected if reported is None else reported
    return {
        "measure_id": measure_id,
        "geo_code": geo,
        "period": period,
        "disaggregation": disaggregation or m.total_key,
        "value": value,
        "numerator": value * 1000 if m.unit is Unit.proportion else None,
        "denominator": 1000.0 if m.unit in (Unit.proportion, Unit.score) else None,
        "partners_reported": reported,
        "partners_expected": expected,
        "coverage": reported / expected,
        "suppressed": False,
        "suppression": None,
        "lineage": "1,2",
    }


def clean_rows(initiative: Initiative) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Every expected cell of the judged measures, this period and the one before, usual values."""
    rows = {}
    geos = expected_partners(initiative).select("measure_id", "geo_code").unique()
    for measure_id, geo in geos.filter(pl.col("measure_id").is_in(list(JUDGED))).iter_rows():
        m = initiative.measures[measure_id]
        now = parse_period(JUDGED[measure_id])
        for p in (shift(now, -1), now):
            r = row(initiative, measure_id, geo, p.label, USUAL[m.unit])
            rows[measure_id, geo, p.label, r["disaggregation"]] = r
    return rows


def as_frame(rows: dict[tuple[str, str, str, str], dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows.values()), schema=SCHEMA, orient="row")


@pytest.fixture(scope="module")
def clean_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gx-clean")


@pytest.fixture(scope="module")
def clean(initiative: Initiative, clean_project: Path) -> gate.GateResult:
    return gate.run_gate(
        as_frame(clean_rows(initiative)), initiative, periods(), project_dir=clean_project
    )


def stored_results(project: Path) -> list[dict[str, Any]]:
    """GX's own validation results under ``project``, oldest first (GX names them by run time)."""
    files = sorted(project.rglob("uncommitted/validations/**/*.json"), key=lambda p: p.parent.name)
    return [json.loads(p.read_text(encoding="utf-8")) for p in files]


def run_folders(project: Path) -> set[str]:
    """The runs whose validation result GX keeps under ``project`` (folders named by run time)."""
    return {p.parent.name for p in project.rglob("uncommitted/validations/**/*.json")}


def docs_pages(project: Path) -> list[Path]:
    """The validation-result pages of the Data Docs site under ``project``."""
    return sorted(project.rglob("data_docs/local_site/validations/**/*.html"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gx-faulty")


def faulty_rows(initiative: Initiative) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    rows = clean_rows(initiative)
    # a proportion above 1, on a breakdown cell
    rows[LFP, "nahf", "2025-Q4", "age_band=25-44"] = row(
        initiative, LFP, "nahf", "2025-Q4", 1.2, disaggregation="age_band=25-44"
    )
    # counts outside the measure's valid range (0 to 200)
    rows[STUDENTS, "karmiel", "2025-11", "sex=total"]["value"] = 100.0  # (no jump: 2.5x)
    rows[STUDENTS, "karmiel", "2025-12", "sex=total"]["value"] = 250.0
    rows[STUDENTS, "rameh", "2025-12", "sex=total"]["value"] = -3.0
    # 10 of the 13 partners answered the survey: coverage 0.77 < 1.0
    rows[SCORE, "beit-hakerem", "2025", "total"] = row(
        initiative, SCORE, "beit-hakerem", "2025", 3.8, reported=10
    )
    # 50,000 NIS last quarter, 1,000,000 now: 20x
    rows[MONEY, "beit-hakerem", "2025-Q3", "total"]["value"] = 50_000.0
    # Kurkum's locality missing this month (the cluster cell is there)
    del rows[KURKUM, "majd-al-krum", "2025-12", "total"]
    return rows


@pytest.fixture(scope="module")
def faulty(initiative: Initiative, project: Path) -> gate.GateResult:
    return gate.run_gate(
        as_frame(faulty_rows(initiative)), initiative, periods(), project_dir=project
    )


def by_measure(result: gate.GateResult) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for f in result.failures:
        out.setdefault(f["measure_id"], set()).add((f["rule"], f["cell"]))
    return out


def test_a_clean_frame_passes(clean: gate.GateResult) -> None:
    assert clean.success
    assert clean.failed_measures == set()
    assert clean.failures == []


def test_each_fault_fails_and_names_its_measure(faulty: gate.GateResult) -> None:
    assert not faulty.success
    assert faulty.failed_measures == {LFP, STUDENTS, SCORE, MONEY, KURKUM}  # not WAGE
    assert by_measure(faulty) == {
        LFP: {(MAX_RULE, "arab-women-lfp|nahf|2025-Q4|age_band=25-44")},
        STUDENTS: {
            (MAX_RULE, "starter-students-trained|karmiel|2025-12|sex=total"),
            (MIN_RULE, "starter-students-trained|rameh|2025-12|sex=total"),
        },
        SCORE: {(COVERAGE_RULE, "fsg-vision-work-aligns|beit-hakerem|2025|total")},
        MONEY: {(JUMP_RULE, "new-resources-nis|beit-hakerem|2025-Q4|total")},
        KURKUM: {(gate.PRESENT_RULE, "kurkum-women-employed|majd-al-krum|2025-12")},
    }


def test_only_the_judged_period_is_checked(initiative: Initiative) -> None:
    """A fault in the period before is history, not this run's gate (no GX run needed)."""
    rows = clean_rows(initiative)
    rows[LFP, "nahf", "2025-Q3", "age_band=total"]["value"] = 1.5
    judged = gate.gate_frame(as_frame(rows), initiative, periods())
    assert judged["period"].unique().sort().to_list() == ["2025", "2025-12", "2025-Q4"]
    nahf = judged.filter((pl.col("measure_id") == LFP) & (pl.col("geo_code") == "nahf"))
    assert nahf["jump"].to_list() == pytest.approx([1.5 / 0.3])


def test_expected_cells(initiative: Initiative) -> None:
    cells = gate.expected_cells(initiative, {KURKUM: parse_period("2025-12")})
    assert cells == {
        KURKUM: [
            "kurkum-women-employed|beit-hakerem|2025-12",
            "kurkum-women-employed|majd-al-krum|2025-12",
        ]
    }


def test_great_expectations_records_the_gates_verdict(
    clean: gate.GateResult, clean_project: Path, faulty: gate.GateResult, project: Path
) -> None:
    """GX's stored result (what Data Docs render as Succeeded or Failed) is the gate's verdict."""
    assert [r["success"] for r in stored_results(clean_project)] == [True] == [clean.success]
    assert [r["success"] for r in stored_results(project)] == [False] == [faulty.success]


def test_excused_measures_are_left_out_of_presence_and_coverage_only(
    initiative: Initiative, tmp_path: Path
) -> None:
    """Kurkum's missing cell and the score's short coverage are excused; LFP is excused too, but
    its value above 1 still fails: an excuse covers lateness, not a wrong figure."""
    excused = {KURKUM: gate.LATE, SCORE: gate.NOT_DUE, LFP: gate.LATE}

    result = gate.run_gate(
        as_frame(faulty_rows(initiative)),
        initiative,
        periods(),
        project_dir=tmp_path,
        excused=excused,
    )

    assert result.failed_measures == {LFP, STUDENTS, MONEY}
    assert not result.success
    assert {(f["measure_id"], f["rule"]) for f in result.failures if f["measure_id"] == LFP} == {
        (LFP, MAX_RULE)
    }
    assert result.excused == excused
    assert [r["success"] for r in stored_results(tmp_path)] == [False]


def test_a_gate_failing_only_for_lateness_passes_and_gx_says_so(
    initiative: Initiative, tmp_path: Path
) -> None:
    rows = clean_rows(initiative)
    del rows[KURKUM, "majd-al-krum", "2025-12", "total"]  # Kurkum's locality has not reported
    rows[SCORE, "beit-hakerem", "2025", "total"] = row(  # 10 of 13 answered so far
        initiative, SCORE, "beit-hakerem", "2025", 3.8, reported=10
    )
    excused = {KURKUM: gate.LATE, SCORE: gate.NOT_DUE}

    judged_strictly = gate.run_gate(as_frame(rows), initiative, periods(), project_dir=tmp_path)
    excusing = gate.run_gate(
        as_frame(rows), initiative, periods(), project_dir=tmp_path, excused=excused
    )

    assert (judged_strictly.success, judged_strictly.failed_measures) == (False, {KURKUM, SCORE})
    assert (excusing.success, excusing.failed_measures, excusing.failures) == (True, set(), [])
    assert excusing.excused == excused
    strict, lenient = stored_results(tmp_path)
    assert (strict["success"], lenient["success"]) == (False, True)
    # GX's own record names what was excused, and why: the checks' meta, the coverage check's
    # row condition, and the suite (whose notes its Data Docs page shows).
    checks = {
        r["expectation_config"]["meta"]["rule"]: r["expectation_config"] for r in lenient["results"]
    }
    assert checks[gate.COVERAGE_RULE]["meta"]["excused"] == excused
    assert checks[gate.PRESENT_RULE]["meta"]["excused"] == excused
    assert (
        "kurkum-women-employed|majd-al-krum|2025-12"
        not in checks[gate.PRESENT_RULE]["kwargs"]["value_set"]
    )
    assert "kurkum-women-employed" in json.dumps(
        checks[gate.COVERAGE_RULE]["kwargs"]["row_condition"]
    )
    suite = json.loads(next(tmp_path.rglob("expectations/indicator-quality.json")).read_text())
    assert suite["meta"]["excused"] == excused
    page = next(tmp_path.rglob("local_site/expectations/indicator-quality.html")).read_text()
    assert f"{SCORE} ({gate.NOT_DUE})" in page


def test_only_the_last_runs_are_kept_with_their_pages(
    initiative: Initiative, tmp_path: Path
) -> None:
    """Five runs keeping 2: after each, at most the newest 2 results are stored, each with its
    Data Docs page, and the index links no pruned page."""
    rows = {k: r for k, r in clean_rows(initiative).items() if k[0] == WAGE}
    seen: list[set[str]] = []
    for _ in range(5):
        gate.run_gate(
            as_frame(rows), initiative, {WAGE: periods()[WAGE]}, project_dir=tmp_path, keep=2
        )
        runs = run_folders(tmp_path)
        assert {p.parent.name for p in docs_pages(tmp_path)} == runs
        seen.append(runs)

    assert [len(runs) for runs in seen] == [1, 2, 2, 2, 2]
    every_run = sorted(set().union(*seen))  # GX names them by run time, so sorted is in order
    assert len(every_run) == 5
    assert seen[-1] == set(every_run[-2:])
    index = next(tmp_path.rglob("local_site/index.html")).read_text(encoding="utf-8")
    assert all(run in index for run in every_run[-2:])
    assert not any(run in index for run in every_run[:3])


def test_findings_are_one_quality_finding_per_failing_measure(
    initiative: Initiative, faulty: gate.GateResult
) -> None:
    found = gate.findings(faulty, initiative, periods())
    assert found.schema == pl.Schema(FINDING_SCHEMA)
    assert found["kind"].to_list() == ["quality"] * 5
    assert found["measure_id"].to_list() == sorted([LFP, STUDENTS, SCORE, MONEY, KURKUM])
    assert found["geo_code"].unique().to_list() == ["*"]
    students = found.filter(pl.col("measure_id") == STUDENTS).row(0, named=True)
    assert (students["period"], students["disaggregation"], students["folded"]) == (
        "2025-12",
        "sex=total",
        2,
    )
    assert students["message"] == (
        "The data-quality gate failed for Students trained by Galilee Starter 2025-12: "
        f"{MIN_RULE}; {MAX_RULE} (2 cell(s): "
        + ", ".join(f["cell"] for f in faulty.failures if f["measure_id"] == STUDENTS)
        + "). Its regression alerts are held as unverified. "
        f"Data Docs: {faulty.docs_path}"
    )
    # Given the intake API's link (judge passes links.gx_url), that is what it names.
    linked = gate.findings(faulty, initiative, periods(), docs_url="http://x/v1/files/gx/i.html")
    assert linked["message"].str.ends_with("Data Docs: http://x/v1/files/gx/i.html").all()
    assert gate.findings(gate.GateResult(True, set()), initiative, periods()).is_empty()


def test_findings_list_five_cells_at_most(initiative: Initiative) -> None:
    failures = [
        {"measure_id": LFP, "rule": MAX_RULE, "cell": f"arab-women-lfp|x{i}|2025-Q4|total"}
        for i in range(7)
    ]
    found = gate.findings(gate.GateResult(False, {LFP}, failures, None), initiative, periods())
    message = found["message"][0]
    assert "(7 cell(s): arab-women-lfp|x0|2025-Q4|total, " in message
    assert "x4|2025-Q4|total …)" in message
    assert "x5" not in message


def test_data_docs_are_built_under_the_project_dir(faulty: gate.GateResult, project: Path) -> None:
    assert faulty.docs_path is not None
    index = Path(unquote(urlparse(faulty.docs_path).path))
    assert index.is_file()
    assert index.is_relative_to(project)
    assert "<html" in index.read_text(encoding="utf-8").lower()
    assert list(project.rglob("validations/**/*.html")), "no validation result page"


def test_suppressed_values_never_reach_great_expectations(
    initiative: Initiative, tmp_path: Path
) -> None:
    """A hidden cell's value must not surface in Data Docs or GX's result files, even when it
    would fail a check."""
    rows = clean_rows(initiative)
    hidden = rows[STUDENTS, "rameh", "2025-12", "sex=total"]
    hidden.update(value=98765.4321, suppressed=True, suppression="small_cell")

    result = gate.run_gate(as_frame(rows), initiative, periods(), project_dir=tmp_path)

    assert result.success  # the hidden value is not checked, so it cannot fail
    written = [p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not any("98765" in text for text in written)


#: A tag that makes the browser fetch from elsewhere: a script, a stylesheet, an image, a font.
EXTERNAL = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.I)


def test_data_docs_load_nothing_from_elsewhere(faulty: gate.GateResult, project: Path) -> None:
    # GX's templates load Bootstrap, jQuery, Font Awesome, Vega… from CDNs: the pages are
    # rewritten to the copies beside them (detect/offline_docs.py), which must exist.
    pages = list(project.rglob("data_docs/local_site/**/*.html"))
    assert len(pages) >= 2  # the index and at least one validation result
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not EXTERNAL.search(text), (page, EXTERNAL.search(text))
        for local in re.findall(r"(?:src|href)=\"([^\"]*static/offline/[^\"]*)\"", text):
            assert (page.parent / local).resolve().is_file(), (page, local)
    index = next(p for p in pages if p.name == "index.html").read_text(encoding="utf-8")
    assert "static/offline/bootstrap.min.css" in index and "static/offline/jquery.min.js" in index
