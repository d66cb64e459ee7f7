"""The command line's Prefect daemon (ci_pipeline/serve/daemon.py), with real processes: the
first use starts it, later uses find it (same process, no start), it stops by itself once idle
for its configured time, and stop() ends it at once. Slow: each start brings up a Prefect
server (20-36 s here)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from ci_pipeline.config import get_settings
from ci_pipeline.serve import daemon
from ci_pipeline.serve.local_server import healthy

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
