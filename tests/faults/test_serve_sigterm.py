"""SIGTERM of ``ci-pipeline serve`` with ingests in flight, then ``serve`` again: every file
dropped in the inbox reaches exactly one verdict, and every guarantee holds.

``serve`` runs as a user runs it (its own Prefect server, the runner, the inbox watcher), in a
temporary ``CI_PIPELINE_HOME``. Four files land in the inbox at once; as soon as an ingest has
taken one (its submission claimed, no verdict yet) ``serve`` gets SIGTERM. Started again, its
first reconciler pass takes every submission the first left without a verdict.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.config import get_settings
from ci_pipeline.model.initiative import Initiative
from tests.faults.files import STARTER, starter_file
from tests.faults.invariants import check_invariants, files_outside

STARTUP = 240.0  # a first Prefect server start migrates its database: 10–60 s here
VERDICTS = 300.0  # every ingest is a fresh process (6–8 s of imports) behind a limit of 2
FILES = {  # inbox/braude-college/<period>/<name>: rows
    ("2025-01", "jan.csv"): [("karmiel", "2025-01", "", 4)],
    ("2025-02", "feb.csv"): [("karmiel", "2025-02", "female", 3), ("misgav", "2025-02", "", 1)],
    ("2025-Q1", "q1.csv"): [("karmiel", "2025-01", "female", 2), ("misgav", "2025-03", "", 2)],
    ("2025-03", "mar.csv"): [("nahf", "2025-03", "male", 1)],
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, done: Callable[[], bool], timeout: float, log: Path, *, poll: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: timed out\n{log.read_text()[-5000:]}"
        time.sleep(poll)


def statuses(engine: Engine) -> list[tuple[str, bool]]:
    """(status, taken by an ingest) of every submission."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, claimed_at FROM submission ORDER BY id"))
        return [(status, claimed is not None) for status, claimed in rows]


def start_serve(env: dict[str, str], cwd: Path, log: IO[str]) -> subprocess.Popen[str]:
    command = [str(Path(sys.executable).with_name("ci-pipeline")), "serve", "--no-api"]
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True
    )


def stop(server: subprocess.Popen[str], sig: signal.Signals) -> int:
    server.send_signal(sig)
    try:
        return server.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        raise


@pytest.mark.slow
def test_sigterm_of_serve_with_ingests_in_flight_then_serve_again_decides_every_file_once(
    tmp_path: Path, home: Path, initiative: Initiative, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and not k.startswith("CI_PIPELINE_")
    }
    prefect_home = tmp_path / "prefect-home"  # Prefect's own profile folder, not the pipeline's
    env |= {
        "CI_PIPELINE_HOME": str(home),
        "CI_PIPELINE_PREFECT_PORT": str(_port()),
        "CI_PIPELINE_SETTLE_SECONDS": "0.5",
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    settings = get_settings()
    engine = store.engine_for(settings.resolved_database_url)  # the schema, before serve
    sent = tmp_path / "sent"
    staged = [starter_file(sent / period / name, *rows) for (period, name), rows in FILES.items()]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    ignore = (prefect_home, logs)  # the test's own
    # What is outside the home once the files have been moved into the inbox (below).
    outside = files_outside(tmp_path, home, ignore=ignore) - {
        str(p.relative_to(tmp_path)) for p in staged
    }
    first_log, second_log = logs / "serve-1.log", logs / "serve-2.log"

    with first_log.open("w") as log:
        server = start_serve(env, cwd, log)
        try:
            wait_for("serve started", lambda: "is serving" in first_log.read_text(), STARTUP, first_log)  # fmt: skip
            for path in staged:  # dropped at once: renamed into the inbox, whole
                target = settings.inbox_dir / STARTER / path.parent.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
            # An ingest has taken a file (claimed it) and not decided it yet: SIGTERM now.
            # Polled often: a warm ingest of a few rows holds its claim for tens of
            # milliseconds, and a 0.2 s poll could miss all four.
            wait_for(
                "an ingest in flight",
                lambda: ("received", True) in statuses(engine),
                VERDICTS,
                first_log,
                poll=0.002,
            )
        finally:
            code = stop(server, signal.SIGTERM)
    assert code == 0, first_log.read_text()[-5000:]
    after_sigterm = statuses(engine)
    assert len(after_sigterm) <= len(FILES)

    with second_log.open("w") as log:
        server = start_serve(env, cwd, log)
        try:

            def all_decided() -> bool:
                found = statuses(engine)
                return len(found) == len(FILES) and all(s != "received" for s, _ in found)

            wait_for("every file decided", all_decided, STARTUP + VERDICTS, second_log)
        finally:
            code = stop(server, signal.SIGINT)
    assert code == 0, second_log.read_text()[-5000:]

    rows = check_invariants(
        engine, settings, initiative, root=tmp_path, outside_before=outside, ignore=ignore
    )
    assert sorted(r["file_name"] for r in rows) == sorted(name for _, name in FILES)
    assert not any(settings.inbox_dir.rglob("*.csv"))  # every file was taken
    engine.dispose()
