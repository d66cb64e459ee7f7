"""The hand-off of a command's ingest to the warm daemon (ci_pipeline/serve/handoff.py), with a
fake job in place of the ingest flow: what the command gets back in each case the daemon can
be in. The real daemon and flow: tests/serve/test_daemon.py."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from ci_pipeline.config import get_settings
from ci_pipeline.serve import handoff


def _receipt(request: dict[str, Any]) -> dict[str, Any]:
    return {"submission_id": request["submission_id"], "status": "accepted"}


def test_a_daemon_with_the_same_settings_runs_the_job_and_answers(home: Path) -> None:
    settings = get_settings()
    with handoff.listening(settings, {"ingest": _receipt}) as busy:
        assert busy is not None and not busy.is_set()
        assert handoff.ingest(settings, 7) == {"submission_id": 7, "status": "accepted"}
        # Its owner's alone, as the Prefect auth secret is.
        mode = (home / handoff.SOCKET_NAME).stat().st_mode
        assert stat.S_ISSOCK(mode) and mode & 0o077 == 0
    assert not (home / handoff.SOCKET_NAME).exists()
    assert handoff.ingest(settings, 7) is None  # no daemon: the command runs the flow itself


def test_a_command_with_other_settings_or_code_is_turned_away(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[int] = []

    def job(request: dict[str, Any]) -> dict[str, Any]:
        ran.append(request["submission_id"])
        return _receipt(request)

    with handoff.listening(get_settings(), {"ingest": job}):
        # Another database in the command's environment: the daemon's run would not be its.
        monkeypatch.setenv("CI_PIPELINE_DATABASE_URL", f"sqlite:///{home / 'other.db'}")
        assert handoff.ingest(get_settings(), 1) is None
        monkeypatch.delenv("CI_PIPELINE_DATABASE_URL")
        # Code changed since the daemon started (a module's size or time differs).
        real = handoff.fingerprint
        monkeypatch.setattr(handoff, "fingerprint", lambda s: real(s) + "-edited")
        assert handoff.ingest(get_settings(), 2) is None
        monkeypatch.setattr(handoff, "fingerprint", real)
        assert handoff.ingest(get_settings(), 3) == _receipt({"submission_id": 3})
    assert ran == [3]


def test_the_fingerprint_is_of_the_folders_not_how_they_are_written(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absolute = handoff.fingerprint(get_settings())
    monkeypatch.chdir(home.parent)
    monkeypatch.setenv("CI_PIPELINE_HOME", home.name)  # the same folder, relative
    assert handoff.fingerprint(get_settings()) == absolute
    monkeypatch.setenv("CI_PIPELINE_ALERT_REPEAT_HOURS", "12")
    assert handoff.fingerprint(get_settings()) != absolute


def test_a_failed_job_is_left_to_the_command(home: Path) -> None:
    def job(request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("database is locked")

    with handoff.listening(get_settings(), {"ingest": job}):
        # The command runs the flow itself and meets the error as its own, typed and told.
        assert handoff.ingest(get_settings(), 4) is None


def test_a_daemon_that_stops_before_answering_is_told(home: Path) -> None:
    settings = get_settings()
    path = home / handoff.SOCKET_NAME
    home.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)

        def take_and_drop() -> None:
            connection, _ = listener.accept()
            with connection, connection.makefile("rb") as request:
                request.readline()  # the request taken, then gone without an answer

        thread = threading.Thread(target=take_and_drop)
        thread.start()
        with pytest.raises(handoff.DaemonStopped, match="#5"):
            handoff.ingest(settings, 5)
        thread.join()


def test_a_socket_left_by_a_killed_daemon_is_not_an_answer(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(home / handoff.SOCKET_NAME))  # bound, never listening: refused
    assert handoff.ingest(get_settings(), 6) is None


def test_a_data_folder_too_deep_for_a_socket_has_no_hand_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("CI_PIPELINE_HOME", str(deep))
    settings = get_settings()
    assert len(os.fsencode(deep / handoff.SOCKET_NAME)) > handoff.MAX_SOCKET_PATH
    assert handoff.socket_path(settings) is None
    with handoff.listening(settings, {"ingest": _receipt}) as busy:
        assert busy is None
        assert handoff.ingest(settings, 8) is None


def test_a_command_with_its_own_prefect_api_runs_its_flow_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The listener (serve, or the daemon) runs flows on the API in its environment.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert handoff._same_api({"api": ""})  # the command named none: the daemon's would be used
    assert handoff._same_api({"api": "http://127.0.0.1:4200/api/"})  # serve's, from serve.lock
    assert not handoff._same_api({"api": "https://prefect.example.org/api"})  # the user's own
