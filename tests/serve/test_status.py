"""`ci-pipeline status`: submissions and open alerts from the database, runs from Prefect."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prefect import flow
from sqlalchemy import Engine

from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.serve import status
from tests.helpers import flat, ingest, invoke, ok_json, write_fund_file


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stored(
    tmp_path: Path, initiative: Initiative, settings: Settings, sqlite_engine: Engine
) -> Engine:
    from ci_pipeline.receive import intake

    intake.prepare_database(initiative, engine=sqlite_engine)
    path = write_fund_file(tmp_path / "fund.csv")
    receipt = ingest(
        path,
        "galilee-foundation",
        "2025-Q1",
        initiative=initiative,
        settings=settings,
        engine=sqlite_engine,
    )
    assert receipt.status == "accepted"
    return sqlite_engine


def test_without_a_prefect_api_the_runs_are_left_out_with_the_reason(
    stored: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_unused_port()}/api"
    monkeypatch.setattr(status, "prefect_api_url", lambda _settings: url)
    snap = status.snapshot(settings, engine=stored)
    assert [s["partner_id"] for s in snap.submissions] == ["galilee-foundation"]
    assert snap.runs == [] and snap.open_alerts == []
    assert snap.runs_note is not None and url in snap.runs_note and "serve" in snap.runs_note


@flow(name="status-probe", flow_run_name="probe for status")
def probe() -> int:
    return 1


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_runs_are_read_from_the_prefect_api(stored: Engine, settings: Settings) -> None:
    from prefect.settings import get_current_settings

    probe()
    api = get_current_settings().api.url
    assert api
    runs = status.read_runs(api, limit=5)
    assert any(r["name"] == "probe for status" and r["state"] == "Completed" for r in runs)
    assert all(r["url"].startswith(api.removesuffix("/api")) for r in runs)


def test_the_command_prints_all_three_and_json(
    stored: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_PREFECT_PORT", str(_unused_port()))
    monkeypatch.setattr(
        status, "prefect_api_url", lambda s: f"http://127.0.0.1:{s.prefect_port}/api"
    )
    result = invoke("status")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "Recent submissions" in text and "accepted" in text  # cells fold at 80 columns
    assert "Open alerts (0)" in text and "no Prefect API answers" in text
    data = ok_json(invoke("status", "--json", "--limit", "3"))
    assert set(data) == {"submissions", "open_alerts", "runs", "prefect_api", "runs_note"}
    assert [s["partner_id"] for s in data["submissions"]] == ["galilee-foundation"]


@pytest.mark.parametrize("command", [["status"], ["serve"], ["tokens"], ["demo"]])
def test_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_serve_help_says_what_it_starts() -> None:
    text = flat(invoke("serve", "--help").output)
    assert "Prefect server" in text and "inbox" in text and "intake API" in text
    assert "--no-api" in text and "--no-inbox" in text
