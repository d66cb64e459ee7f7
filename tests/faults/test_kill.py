"""kill -9 of an ingest at each step boundary, on SQLite and PostgreSQL: the reconciler's
retry gives the submission exactly one verdict, and every guarantee holds.

Before each kill, braude-college's January total for Karmiel (4) is accepted. Then either

- its **correction** (Karmiel's January female 2 and male 2, Misgav's total 3) is ingested by a
  child process that dies at the boundary: once recovered it is accepted and replaces the
  first file (superseded), so Karmiel's January counts 2 + 2, never 4 + 2 + 2; or
- a **Q1 file** repeating Karmiel's January women (2, inside the January total) dies there:
  once recovered it is rejected, ``already_reported``, and nothing of it counts.

A kill before the verdict's commit leaves the submission ``received`` with nothing of it
stored; a kill after it leaves the verdict, and the recovery changes nothing at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.serve.reconcile import reconcile
from tests.faults.child import BOUNDARIES
from tests.faults.files import STARTER, starter_file, url_for_another_process
from tests.faults.invariants import check_invariants, files_outside, snapshot
from tests.helpers import ingest, ingest_received

REPO = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT = 120.0  # imports take a few seconds; a hang must not hang the suite

ACCEPTED_BOUNDARIES = [
    "after_load",
    "after_duplicate_check",
    "after_parse",
    "after_check",
    "after_report_write",
    "before_commit",
    "after_commit",
]
CASES = [("accepted", b) for b in ACCEPTED_BOUNDARIES] + [
    ("rejected", "after_report_write"),
    ("rejected", "after_reject_commit"),
]
COMMITTED = {"after_commit", "after_reject_commit"}


def test_every_boundary_is_one_the_child_knows() -> None:
    assert {b for _, b in CASES} == set(BOUNDARIES)


def kill_9_at(boundary: str, submission_id: int, engine: Engine, home: Path, cwd: Path) -> None:
    """Ingest the submission in another process that SIGKILLs itself at ``boundary``."""
    env = {**os.environ, "CI_PIPELINE_HOME": str(home), "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faults.child",
            url_for_another_process(engine),
            str(submission_id),
            boundary,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    # Killed by the signal, there and nowhere else (it would have finished otherwise).
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr


@pytest.mark.parametrize(("outcome", "boundary"), CASES)
def test_kill_9_at_a_step_boundary_then_recovery_gives_one_verdict(
    outcome: str,
    boundary: str,
    db: Engine,
    initiative: Initiative,
    settings: Settings,
    tmp_path: Path,
) -> None:
    files = tmp_path / "files"
    january = starter_file(files / "jan.csv", ("karmiel", "2025-01", "", 4))
    first = ingest(january, STARTER, "2025-01", initiative=initiative, settings=settings, engine=db)
    assert first.status == "accepted"
    if outcome == "accepted":
        period = "2025-01"
        path = starter_file(
            files / "jan-corrected.csv",
            ("karmiel", "2025-01", "female", 2),
            ("karmiel", "2025-01", "male", 2),
            ("misgav", "2025-01", "", 3),
        )
    else:
        period = "2025-Q1"
        path = starter_file(
            files / "q1.csv",
            ("karmiel", "2025-01", "female", 2),  # row 2: inside January's total
            ("misgav", "2025-02", "", 1),
        )
    row = intake.take(path, STARTER, period, initiative=initiative, settings=settings, engine=db)
    assert row.id is not None
    before = snapshot(db)
    outside = files_outside(tmp_path, settings.home)

    kill_9_at(boundary, row.id, db, settings.home, cwd=tmp_path)

    killed = snapshot(db)
    status = {s["id"]: s["status"] for s in killed.submissions}
    if boundary in COMMITTED:
        assert status == {first.submission_id: "superseded" if outcome == "accepted" else "accepted", row.id: outcome}  # fmt: skip
    else:  # nothing of it decided, nothing of it stored
        assert status == {first.submission_id: "accepted", row.id: "received"}
        assert killed.observations == before.observations
        [taken] = [s for s in killed.submissions if s["id"] == row.id]
        assert taken["claimed_at"] is not None  # the ingest had taken it

    def start(submission_id: int) -> None:
        ingest_received(submission_id, initiative=initiative, settings=settings, engine=db)

    started = reconcile(
        settings,
        initiative,
        engine=db,
        start=start,
        unclaimed_for=timedelta(0),
        lease=timedelta(0),
    )

    if boundary in COMMITTED:
        assert started == []
        assert snapshot(db) == killed  # the verdict and rows committed before the kill
    else:
        assert started == [row.id]
    rows = check_invariants(db, settings, initiative, root=tmp_path, outside_before=outside)
    assert {r["id"]: r["status"] for r in rows} == (
        {first.submission_id: "superseded", row.id: "accepted"}
        if outcome == "accepted"
        else {first.submission_id: "accepted", row.id: "rejected"}
    )
    counted = store.current_observations(engine=db, partner_id=STARTER)
    if outcome == "accepted":
        assert counted.select("geo_code", "disaggregation", "value").rows() == [
            ("karmiel", "sex=female", 2.0),
            ("karmiel", "sex=male", 2.0),
            ("misgav", "sex=total", 3.0),
        ]
    else:
        assert counted.select("geo_code", "disaggregation", "value").rows() == [
            ("karmiel", "sex=total", 4.0)
        ]
        [rejected] = [r for r in rows if r["id"] == row.id]
        assert (rejected["rows_rejected"], rejected["issues"]) == (1, 1)
