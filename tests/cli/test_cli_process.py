"""The command line for processing: ``process``, ``indicators``, ``alerts`` and ``alerts ack``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ci_pipeline import aggregate, alert, cli, detect, store
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from tests.helpers import flat, invoke, ok_json
from tests.test_pipeline import ALERT_SETTINGS, SMALL_AS_OF, ingest_small


@pytest.fixture(autouse=True)
def default_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts go to the default local files, whatever the environment configures."""
    for name in ALERT_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def quiet_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app sets this for its own process; keep it from leaking into other tests."""
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


@pytest.fixture
def small(
    tmp_path: Path, initiative: Initiative, settings: Settings, sqlite_engine: Engine
) -> Engine:
    """The small dataset stored where the command line looks (CI_PIPELINE_HOME)."""
    ingest_small(tmp_path / "files", initiative=initiative, settings=settings, engine=sqlite_engine)
    return sqlite_engine


@pytest.fixture
def computed(small: Engine, initiative: Initiative) -> Engine:
    """... with its indicators computed (no Prefect needed)."""
    aggregate.refresh_indicators(initiative, engine=small)
    return small


@pytest.fixture
def alerted(computed: Engine, initiative: Initiative, settings: Settings) -> Engine:
    """... and judged, its alerts recorded (no Prefect needed)."""
    judgement = detect.judge(initiative, engine=computed, settings=settings, as_of=SMALL_AS_OF)
    alert.record_alerts(judgement, initiative, settings=settings, engine=computed)
    return computed


# --- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "doc", "options"),
    [
        (
            "process",
            lambda: cli.processing.process.__doc__,
            ["--period", "--as-of", "--full", "--json"],
        ),
        (
            "indicators",
            lambda: cli.processing.indicators.__doc__,
            ["--measure", "--geo", "--period", "--breakdowns", "--limit", "--json"],
        ),
        (
            "alerts",
            lambda: cli.alerts.alerts_app.info.help,
            ["--status", "--limit", "--json", "ack"],
        ),
        ("alerts ack", lambda: cli.alerts.alerts_ack.__doc__, ["alert_id", "--by", "--json"]),
    ],
)
def test_help(command: str, doc: Any, options: list[str]) -> None:
    result = invoke(*command.split(), "--help")

    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert f"Usage: ci-pipeline {command} [OPTIONS]" in text
    assert flat(doc().strip().splitlines()[0]) in text
    for option in options:
        assert option in text


# --- process -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_process_json(small: Engine, settings: Settings) -> None:
    result = invoke("process", "--as-of", SMALL_AS_OF.isoformat(), "--json")

    data = ok_json(result)
    assert set(data) == {"aggregated", "detected", "delivered", "report"}
    assert len(data["aggregated"]["slices"]) == 5
    assert data["detected"]["judged"]["new-resources-nis"] == "2025-Q2"
    assert data["detected"]["gate_passed"] is False
    assert data["detected"]["findings"] == len(data["detected"]["new_alerts"]) > 0
    assert {d["ok"] for d in data["delivered"]} == {True}
    assert settings.alerts_file.is_file()

    again = ok_json(invoke("process", "--as-of", SMALL_AS_OF.isoformat(), "--json"))
    assert again["aggregated"] == {"slices": [], "rows": 0, "unaudited": []}
    assert again["detected"]["new_alerts"] == [] and again["delivered"] == []

    table = invoke("process", "--as-of", SMALL_AS_OF.isoformat())
    assert table.exit_code == 0, table.output
    text = flat(table.stdout)
    assert "Indicators: 0 slice(s) recomputed" in text
    assert "Quality gate: failed" in text
    assert "kurkum-women-employed: excused from the presence and coverage checks (a partner" in text
    assert "nothing new to deliver" in text


@pytest.mark.parametrize("bad", ["notadate", "2026-02-30", "15/03/2026"])
def test_process_with_a_bad_date_is_a_clear_error(home: Path, bad: str) -> None:
    result = invoke("process", "--as-of", bad)

    assert result.exit_code == 2
    assert f"--as-of must be a date such as 2026-03-15, not '{bad}'" in flat(result.stderr)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- indicators ----------------------------------------------------------------------------------


def test_indicators_json_masks_suppressed_cells(computed: Engine, initiative: Initiative) -> None:
    rows = ok_json(invoke("indicators", "--json"))

    stored = store.read_indicators(initiative.info.id, engine=computed)
    assert len(rows) == stored.filter(stored["disaggregation"].is_in(["total", "sex=total"])).height
    assert {r["disaggregation"] for r in rows} == {"total", "sex=total"}
    assert "lineage" not in rows[0]
    hidden = [r for r in rows if r["suppressed"]]
    shown = [r for r in rows if not r["suppressed"]]
    assert hidden and shown
    for r in hidden:
        assert (r["value"], r["numerator"], r["denominator"]) == (None, None, None)
    assert all(r["value"] is not None for r in shown)
    # Misgav's 3 students a month are never shown; the cluster's totals are.
    misgav = [r for r in rows if r["geo_code"] == "misgav"]
    assert len(misgav) == 3 and all(r["suppressed"] and r["value"] is None for r in misgav)
    cluster = {
        r["period"]: r["value"]
        for r in rows
        if r["geo_code"] == "beit-hakerem" and r["measure_id"] == "starter-students-trained"
    }
    assert cluster == {"2025-01": 38.0, "2025-02": 39.0, "2025-03": 40.0}
    # Stored values behind the mask are still there.
    assert stored.filter(stored["suppressed"])["value"].null_count() == 0


def test_indicators_breakdowns_and_filters(computed: Engine) -> None:
    totals = ok_json(invoke("indicators", "--json"))
    everything = ok_json(invoke("indicators", "--json", "--breakdowns"))

    breakdown_rows = [r for r in everything if r["disaggregation"] not in ("total", "sex=total")]
    assert len(everything) == len(totals) + len(breakdown_rows)
    assert {r["disaggregation"] for r in breakdown_rows} == {"sex=female", "sex=male"}
    assert all(r["value"] is None for r in everything if r["suppressed"])
    misgav_female = [
        r
        for r in breakdown_rows
        if r["geo_code"] == "misgav" and r["disaggregation"] == "sex=female"
    ]
    assert len(misgav_female) == 3 and all(r["value"] is None for r in misgav_female)

    march = ok_json(
        invoke("indicators", "--json", "-m", "starter-students-trained", "--period", "2025-03")
    )
    assert sorted(r["geo_code"] for r in march) == ["beit-hakerem", "karmiel", "misgav"]
    fund = ok_json(
        invoke("indicators", "--json", "--geo", "beit-hakerem", "-m", "new-resources-nis")
    )
    assert [(r["period"], r["value"]) for r in fund] == [
        ("2025-Q1", 250000.0),
        ("2025-Q2", 260000.0),
    ]
    assert len(ok_json(invoke("indicators", "--json", "--limit", "2"))) == 2

    table = invoke("indicators", "-m", "starter-students-trained", "--period", "2025-03")
    assert table.exit_code == 0, table.output
    text = flat(table.stdout)
    assert "Indicators (3)" in text and "suppressed" in text


def test_indicators_of_an_empty_database(home: Path) -> None:
    assert ok_json(invoke("indicators", "--json")) == []


# --- alerts --------------------------------------------------------------------------------------


def test_alerts_list_ack_and_status(alerted: Engine) -> None:
    everything = ok_json(invoke("alerts", "--json"))
    assert everything
    ids = [a["id"] for a in everything]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert {a["status"] for a in everything} == {"open"}
    kurkum = next(a for a in everything if a["subject"] == "kurkum")
    assert kurkum["kind"] == "missing"
    assert kurkum["measure_id"] == "kurkum-women-employed"
    assert kurkum["evidence"]["reference_period"]  # the due date
    quality = next(a for a in everything if a["kind"] == "quality")
    assert quality["verified"] is False
    assert len(ok_json(invoke("alerts", "--json", "--limit", "2"))) == 2

    acked = ok_json(invoke("alerts", "ack", str(kurkum["id"]), "--by", "dana", "--json"))
    assert (acked["id"], acked["status"], acked["acknowledged_by"]) == (
        kurkum["id"],
        "acknowledged",
        "dana",
    )

    open_ids = [a["id"] for a in ok_json(invoke("alerts", "--json", "--status", "open"))]
    assert kurkum["id"] not in open_ids
    assert len(open_ids) == len(everything) - 1
    [only] = ok_json(invoke("alerts", "--json", "--status", "acknowledged"))
    assert (only["id"], only["status"]) == (kurkum["id"], "acknowledged")
    assert ok_json(invoke("alerts", "--json", "--status", "resolved")) == []

    again = invoke("alerts", "ack", str(kurkum["id"]))
    assert again.exit_code == 0, again.output
    assert f"Alert #{kurkum['id']} is acknowledged (by dana)" in flat(again.stdout)

    table = invoke("alerts", "--status", "acknowledged")
    assert table.exit_code == 0, table.output
    assert "Alerts (1)" in flat(table.stdout)


def test_ack_of_an_unknown_alert_is_an_error(home: Path) -> None:
    result = invoke("alerts", "ack", "999")

    assert result.exit_code == 2
    assert "no alert #999" in flat(result.stderr)
    assert "Traceback" not in result.output


def test_ack_needs_a_number(home: Path) -> None:
    result = invoke("alerts", "ack", "first")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_alerts_of_an_empty_database(home: Path) -> None:
    assert ok_json(invoke("alerts", "--json")) == []
    table = invoke("alerts")
    assert table.exit_code == 0 and "Alerts (0)" in flat(table.stdout)
