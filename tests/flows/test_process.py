"""The processing flows on a temporary Prefect server: results, run names, tasks, artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterName,
)
from sqlalchemy import Engine

from ci_pipeline import alert, store
from ci_pipeline.config import Settings
from ci_pipeline.detect import gate
from ci_pipeline.errors import InvalidPeriod
from ci_pipeline.flows.process import process_period
from ci_pipeline.flows.runtime import in_process
from ci_pipeline.model.initiative import Initiative
from tests.helpers import artifact, children, read_run, run_flow, task_runs
from tests.helpers import task_names as all_task_names
from tests.test_pipeline import ALERT_SETTINGS, SMALL_AS_OF, ingest_small

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CHILDREN = ["aggregate-indicators", "detect-regressions", "deliver-alerts"]


@pytest.fixture(autouse=True)
def default_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts go to the default local files, whatever the environment configures."""
    for name in ALERT_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def small(
    tmp_path: Path, initiative: Initiative, settings: Settings, sqlite_engine: Engine
) -> Settings:
    """The small dataset stored where the settings (and so the flows) point."""
    ingest_small(tmp_path / "files", initiative=initiative, settings=settings, engine=sqlite_engine)
    return settings


def task_names(flow_run_id: UUID) -> list[str]:
    """The tasks a run ran, in order; subflows excluded."""
    return [name for name in all_task_names(flow_run_id) if name not in CHILDREN]


def test_process_period_aggregates_detects_and_delivers(
    small: Settings, initiative: Initiative
) -> None:
    result, flow_run_id = run_flow(process_period, as_of=SMALL_AS_OF)

    assert set(result) == {"aggregated", "detected", "delivered", "report"}
    aggregated, detected, delivered = result["aggregated"], result["detected"], result["delivered"]
    # The report card, rebuilt after the run: the file a reader opens, in its data folder.
    assert result["report"] == str(small.report_card_dir / "index.html")
    assert (small.report_card_dir / "he" / "index.html").exists()
    assert len(aggregated["slices"]) == 5
    engine = store.make_engine(small.resolved_database_url)
    try:
        indicators = store.read_indicators(initiative.info.id, engine=engine)
        stored_alerts = alert.list_alerts(engine=engine)
    finally:
        engine.dispose()
    assert aggregated["rows"] == indicators.height > 0
    assert detected["judged"]["starter-students-trained"] == "2025-03"
    assert detected["judged"]["new-resources-nis"] == "2025-Q2"
    assert detected["gate_passed"] is False  # Braude College reported 2 of its 7 localities
    assert {f["measure_id"] for f in detected["gate_failures"]} == {"starter-students-trained"}
    assert detected["data_docs"]
    # GX's own record (what its Data Docs show) agrees: the one validation result failed too.
    stored = list(small.gx_dir.rglob("uncommitted/validations/**/*.json"))
    assert [json.loads(p.read_text(encoding="utf-8"))["success"] for p in stored] == [False]
    assert detected["findings"] == len(stored_alerts) == len(detected["new_alerts"])
    assert sorted(detected["new_alerts"]) == sorted(alert.alert_id(a) for a in stored_alerts)
    assert detected["resolved_alerts"] == []
    assert detected["queued"] == len(stored_alerts)
    assert sorted((d["channel"], d["ok"], d["error"]) for d in delivered) == sorted(
        [
            (alert.file_channel(small.alerts_file), True, None),
            (alert.file_channel(small.engineers_file), True, None),
        ]
    )
    assert sum(d["alerts"] for d in delivered) == len(stored_alerts)
    quality = next(a for a in stored_alerts if a.kind == "quality")
    assert quality.message in small.engineers_file.read_text(encoding="utf-8")
    # The engineers open the Data Docs through the intake API, not a path on the server.
    assert f"Data Docs: {small.api_base_url}/v1/files/gx/" in quality.message
    assert "file://" not in quality.message
    kurkum = next(a for a in stored_alerts if a.subject == "kurkum")
    # Measures with a late partner (a missing-data alert) are excused from the gate's presence
    # and coverage checks before GX runs; Kurkum's employment is one of them.
    late = {a.measure_id for a in stored_alerts if a.kind == "missing"}
    assert "kurkum-women-employed" in late
    assert detected["gate_excused"] == dict.fromkeys(late, gate.LATE)
    assert kurkum.message in small.alerts_file.read_text(encoding="utf-8")

    # The runs are named as declared, the subflows and their tasks ran.
    parent = read_run(flow_run_id)
    assert parent.name == "process latest"
    assert parent.parameters["as_of"] == SMALL_AS_OF.isoformat()
    subflows = children(flow_run_id)
    assert sorted(subflows) == sorted(CHILDREN)
    assert all(r.state is not None and r.state.is_completed() for r in subflows.values())
    assert task_names(subflows["aggregate-indicators"].id) == ["refresh-indicators"]
    assert task_names(subflows["detect-regressions"].id) == ["gate-and-detect", "record-alerts"]
    assert task_names(subflows["deliver-alerts"].id) == ["deliver"]

    # The headline table: judged periods' totals as a coordinator reads them, suppressed
    # cells "—". (The run's result keeps the numbers.)
    table = artifact("indicators", subflows["detect-regressions"].id)
    assert table.type == "table"
    assert isinstance(table.data, str)
    rows = json.loads(table.data)
    students = {r["geo_code"]: r for r in rows if r["measure_id"] == "starter-students-trained"}
    assert set(students) == {"beit-hakerem", "karmiel", "misgav"}
    assert {r["period"] for r in students.values()} == {"2025-03"}
    assert students["misgav"]["suppressed"] is True
    assert students["misgav"]["value"] == "—"  # 3 students: never shown
    assert students["misgav"]["numerator"] == "—"
    assert students["beit-hakerem"]["value"] == "40 students"
    assert [r["value"] for r in rows if r["measure_id"] == "new-resources-nis"] == ["260,000 NIS"]
    assert all(r["value"] == "—" for r in rows if r["suppressed"])
    headline = {(r["measure_id"], r["geo_code"]): r["value"] for r in detected["headline"]}
    assert headline["starter-students-trained", "beit-hakerem"] == 40.0

    notes = artifact("alerts", subflows["detect-regressions"].id)
    assert notes.type == "markdown"
    assert isinstance(notes.data, str)
    assert "Quality gate **failed** for starter-students-trained" in notes.data
    # The Data Docs as the intake API serves them, not a path on the server.
    # (The quality alert's own sentence is detect/gate.py's and still names the path.)
    verdict = notes.data.splitlines()[0]
    assert f"Data Docs: [open]({small.api_base_url}/v1/files/gx/" in verdict
    assert verdict.endswith("/index.html)")
    assert "file://" not in verdict and str(small.home) not in verdict
    assert (
        "Excused from the presence and coverage checks: arab-women-lfp "
        f"({gate.LATE}); below-min-wage-share ({gate.LATE});"
    ) in notes.data
    for a in stored_alerts:
        assert f"- {a.message}" in notes.data


def test_a_second_run_sends_nothing_new(small: Settings) -> None:
    first, _ = run_flow(process_period, period="2025-Q2", as_of=SMALL_AS_OF)
    assert first["detected"]["new_alerts"]

    again, flow_run_id = run_flow(process_period, period="2025-Q2", as_of=SMALL_AS_OF)

    assert read_run(flow_run_id).name == "process 2025-Q2"
    assert again["aggregated"] == {"slices": [], "rows": 0, "unaudited": []}
    assert again["detected"]["new_alerts"] == []
    assert again["detected"]["resolved_alerts"] == []
    assert again["detected"]["queued"] == 0
    assert again["delivered"] == []


def test_a_run_after_new_files_judges_each_period_it_recomputed_on_its_own_measures(
    small: Settings,
) -> None:
    # The small dataset: Braude's months 2025-01..03 (starter-students-trained) and the
    # fund's quarters 2025-Q1..Q2 (new-resources-nis), all stored, nothing aggregated yet. A
    # run started by the last file's event recomputes every stale slice, so it must judge
    # every period it recomputed (a second run finds nothing new and stops), each on the
    # measure recomputed there only.
    result, flow_run_id = run_flow(
        process_period, period="2025-Q2", as_of=SMALL_AS_OF, changed_only=True, deliver=False
    )
    assert read_run(flow_run_id).name == "process 2025-Q2"
    assert [d["judged"] for d in result["detected"]] == [
        {"starter-students-trained": "2025-01"},
        {"starter-students-trained": "2025-02"},
        {"starter-students-trained": "2025-03"},
        {"new-resources-nis": "2025-Q1"},
        {"new-resources-nis": "2025-Q2"},
    ]
    assert result["delivered"] is None  # left to the on-alert deployment

    again, flow_run_id = run_flow(process_period, changed_only=True, as_of=SMALL_AS_OF)
    assert read_run(flow_run_id).name == "process changes"
    assert again["aggregated"]["slices"] == [] and again["detected"] is None

    # Judging every measure (the daily run, the command line) is the default.
    full, _ = run_flow(process_period, as_of=SMALL_AS_OF, deliver=False)
    assert {"starter-students-trained", "new-resources-nis"} < set(full["detected"]["judged"])


def test_an_empty_database_is_processed_without_findings(settings: Settings) -> None:
    result, flow_run_id = run_flow(process_period, as_of=SMALL_AS_OF)

    assert result["aggregated"] == {"slices": [], "rows": 0, "unaudited": []}
    assert result["detected"]["judged"] == {}
    assert result["detected"]["findings"] == 0
    assert result["detected"]["gate_passed"] is True
    assert result["delivered"] == []
    notes = artifact("alerts", children(flow_run_id)["detect-regressions"].id)
    assert isinstance(notes.data, str) and "No findings." in notes.data


def test_a_failing_channel_is_reported_redacted(
    small: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 9: the channel refuses, the flow completes, the row waits.
    monkeypatch.setenv("CI_PIPELINE_ALERT_URLS", '["json://dana:hunter2@127.0.0.1:9/hook"]')

    result, _ = run_flow(process_period, as_of=SMALL_AS_OF)

    failed = [d for d in result["delivered"] if not d["ok"]]
    assert [d["channel"] for d in failed] == ["json://127.0.0.1:9/…"]
    assert failed[0]["error"] == "not accepted"
    assert "hunter2" not in json.dumps(result)


def test_a_bad_period_fails_at_once_without_retries(small: Settings) -> None:
    with in_process(), pytest.raises(InvalidPeriod, match="'2025-13' is not a period"):
        process_period(period="2025-13", as_of=SMALL_AS_OF)

    # A caller's mistake is not retried: read from the runs, not timed (the machines are noisy).
    with get_client(sync_client=True) as client:
        [failed] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["process 2025-13"])),
            limit=5,
        )
    assert failed.run_count == 1
    detect = children(failed.id)["detect-regressions"]
    [judge] = [t for t in task_runs(detect.id) if t.name.startswith("gate-and-detect")]
    assert judge.state is not None and judge.state.is_failed()
    assert judge.run_count == 1
