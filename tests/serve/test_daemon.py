"""The command line's Prefect daemon (ci_pipeline/serve/daemon.py), with real processes: the
first use starts it, later uses find it (same process, no start), it stops by itself once idle
for its configured time, and stop() ends it at once. Slow: each start brings up a Prefect
server (20-36 s here)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ci_pipeline.config import Settings, get_settings
from ci_pipeline.serve import auth, daemon, handoff
from ci_pipeline.serve.local_server import healthy
from tests.helpers import write_fund_file

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    return not daemon.gone(pid)  # this test process is its parent: a zombie must be reaped


def _wait(condition: object, what: str, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while not callable(condition) or not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def daemon_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CI_PIPELINE_PREFECT_PORT", str(_port()))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return home


def test_the_first_use_starts_it_later_uses_find_it_and_it_stops_when_idle(
    daemon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_PREFECT_DAEMON_IDLE_SECONDS", "8")
    settings = get_settings()
    told: list[str] = []
    url = daemon.ensure(settings, on_start=lambda: told.append("starting"))
    try:
        assert url == settings.local_prefect_api_url and healthy(url)
        assert told == ["starting"]
        pid = int((daemon_home / daemon.PID_NAME).read_text().strip())
        assert _alive(pid)

        # A later command finds it: the same daemon, nothing started, the user told nothing.
        assert daemon.ensure(settings, on_start=lambda: told.append("again")) == url
        assert told == ["starting"]
        assert int((daemon_home / daemon.PID_NAME).read_text().strip()) == pid

        # Left alone past its idle time, it stops its server and goes.
        _wait(lambda: not _alive(pid), "the idle daemon to exit")
        assert not healthy(url, timeout=1.0)
        assert not (daemon_home / daemon.PID_NAME).exists()
        assert daemon.running(settings) is None
    finally:
        daemon.stop(settings)


def test_stop_ends_it_and_its_server_and_zero_turns_it_off(
    daemon_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_PIPELINE_PREFECT_DAEMON_IDLE_SECONDS", "1800")  # the default
    settings = get_settings()
    url = daemon.ensure(settings)
    assert url is not None
    pid = int((daemon_home / daemon.PID_NAME).read_text().strip())
    assert daemon.stop(settings) is True
    assert not _alive(pid) and not healthy(url, timeout=1.0)
    assert daemon.stop(settings) is False  # nothing left to stop

    monkeypatch.setenv("CI_PIPELINE_PREFECT_DAEMON_IDLE_SECONDS", "0")
    assert daemon.ensure(get_settings()) is None  # off: commands use temporary servers
    assert not (daemon_home / daemon.PID_NAME).exists()


def _ingest_runs(settings: Settings, url: str) -> dict[str, dict[str, Any]]:
    """The daemon's server's ingest runs by name, read over its REST API with its secret."""
    secret = auth.client_auth_string(settings, url)
    assert secret is not None
    user, password = secret.split(":", 1)
    answer = httpx.post(
        f"{url}/flow_runs/filter",
        json={"flows": {"name": {"any_": ["ingest-submission"]}}},
        auth=(user, password),
        timeout=30,
    )
    answer.raise_for_status()
    return {run["name"]: run for run in answer.json()}


SUBMIT = ("--json", "--partner", "galilee-foundation", "--period", "2025-Q1")


def _submit(file: Path, *env: tuple[str, str]) -> tuple[dict[str, Any], set[str]]:
    """``ci-pipeline submit`` as a user runs it (no Prefect API of their own): its receipt, and
    the top-level packages it imported (``-X importtime`` lists them on stderr)."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", auth.CLIENT_VARIABLE)
    }
    command = Path(sys.executable).parent / "ci-pipeline"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(command), "submit", str(file), *SUBMIT],
        env=environment | dict(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return dict(json.loads(done.stdout)), imported


def test_a_command_hands_its_ingest_to_the_running_daemon(
    daemon_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CI_PIPELINE_PREFECT_DAEMON_IDLE_SECONDS", "1800")
    settings = get_settings()
    url = daemon.ensure(settings)
    assert url is not None
    try:
        _wait(lambda: (daemon_home / handoff.SOCKET_NAME).exists(), "the daemon's hand-off", 120)
        first, imported = _submit(write_fund_file(tmp_path / "fund.csv"))
        assert first["status"] == "accepted"
        # The command itself loaded neither Prefect nor the validation stack (3-4 s here).
        assert {"prefect", "pandera", "pandas"}.isdisjoint(imported)
        assert {"polars", "sqlalchemy"} <= imported  # what it did load was seen
        # The daemon ran it: its run is named and tagged as a warm process's runs are.
        run = _ingest_runs(settings, url)[
            f"ingest galilee-foundation 2025-Q1 #{first['submission_id']}"
        ]
        assert run["state_type"] == "COMPLETED"
        assert {"partner:galilee-foundation", "status:accepted"} <= set(run["tags"])

        # A command whose settings are not the daemon's runs the flow itself, on the same
        # server (untagged, as the command line's own runs are), and gets the same answer.
        again, imported = _submit(
            write_fund_file(tmp_path / "fund-again.csv"), ("CI_PIPELINE_ALERT_REPEAT_HOURS", "12")
        )
        assert again["status"] == "duplicate" and "prefect" in imported
        name = f"ingest galilee-foundation 2025-Q1 #{again['submission_id']}"
        assert _ingest_runs(settings, url)[name]["tags"] == []
    finally:
        daemon.stop(settings)
    assert not (daemon_home / handoff.SOCKET_NAME).exists()
