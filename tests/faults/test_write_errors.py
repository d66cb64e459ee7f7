"""A write error (a full disk) while archiving and while writing the report, on SQLite and
PostgreSQL: the step raises, nothing is decided, and the retry gives one verdict, a whole
archive copy and a whole report.

(tests/receive/test_intake.py checks the archive step alone: no truncated copy is left and
the step's retry writes it whole. Here the whole ingest fails, and the reconciler's retry
finishes it.)
"""

from __future__ import annotations

import errno
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.serve.reconcile import reconcile
from tests.faults.files import STARTER, starter_file
from tests.faults.invariants import check_invariants, files_outside, snapshot
from tests.helpers import ingest, ingest_received


def full_disk_once(
    monkeypatch: pytest.MonkeyPatch, method: str, fails: Any, written: list[Path]
) -> None:
    """``Path.<method>`` writes half of the data, then fails with ENOSPC, the first time it
    writes a path for which ``fails(path)`` is true; every other write goes through."""
    real = getattr(Path, method)

    def write(self: Path, data: Any, *args: Any, **kwargs: Any) -> int:
        if not written and fails(self):
            written.append(self)
            real(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device")
        result: int = real(self, data, *args, **kwargs)
        return result

    monkeypatch.setattr(Path, method, write)


def recover(db: Engine, initiative: Initiative, settings: Settings) -> list[int]:
    """The reconciler's pass, taking every received submission at once."""

    def start(submission_id: int) -> None:
        ingest_received(submission_id, initiative=initiative, settings=settings, engine=db)

    return reconcile(
        settings, initiative, engine=db, start=start, unclaimed_for=timedelta(0), lease=timedelta(0)
    )


@pytest.fixture
def first(db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path) -> int:
    """Karmiel's January total (4), accepted: the file under test replaces it or overlaps it."""
    path = starter_file(tmp_path / "files" / "jan.csv", ("karmiel", "2025-01", "", 4))
    receipt = ingest(path, STARTER, "2025-01", initiative=initiative, settings=settings, engine=db)
    assert receipt.status == "accepted"
    return receipt.submission_id


def correction(tmp_path: Path) -> Path:
    """January again (2025-01): Karmiel by sex, and Misgav; it replaces the first file."""
    return starter_file(
        tmp_path / "files" / "jan-corrected.csv",
        ("karmiel", "2025-01", "female", 2),
        ("karmiel", "2025-01", "male", 2),
        ("misgav", "2025-01", "", 3),
    )


def overlapping_quarter(tmp_path: Path) -> Path:
    """A Q1 file with Karmiel's January women, already inside January's total: rejected."""
    return starter_file(
        tmp_path / "files" / "q1.csv",
        ("karmiel", "2025-01", "female", 2),
        ("misgav", "2025-02", "", 1),
    )


def test_a_full_disk_while_archiving_decides_nothing_and_the_retry_finishes(
    first: int,
    db: Engine,
    initiative: Initiative,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = correction(tmp_path)
    row = intake.take(path, STARTER, "2025-01", initiative=initiative, settings=settings, engine=db)
    assert row.id is not None and row.archive_path is not None
    before = snapshot(db)
    outside = files_outside(tmp_path, settings.home)
    failed: list[Path] = []
    full_disk_once(
        monkeypatch, "write_bytes", lambda p: p.is_relative_to(settings.archive_dir), failed
    )

    with pytest.raises(OSError, match="No space left on device"):
        ingest_received(row.id, initiative=initiative, settings=settings, engine=db)

    assert failed and failed[0].parent == Path(row.archive_path).parent
    after = snapshot(db)
    assert after.observations == before.observations
    assert [s["status"] for s in after.submissions] == ["accepted", "received"]
    assert not Path(row.archive_path).exists()
    assert recover(db, initiative, settings) == [row.id]
    rows = check_invariants(db, settings, initiative, root=tmp_path, outside_before=outside)
    assert [r["status"] for r in rows] == ["superseded", "accepted"]
    assert Path(row.archive_path).read_bytes() == path.read_bytes()


@pytest.mark.parametrize("outcome", ["accepted", "rejected"])
def test_a_full_disk_while_writing_the_report_decides_nothing_and_the_retry_finishes(
    outcome: str,
    first: int,
    db: Engine,
    initiative: Initiative,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """report.json half written, then ENOSPC: for an accepted file inside the accept
    transaction (its rows and the supersession are rolled back with it), for a rejected file
    before its verdict. The retry writes the whole report and the verdict naming it."""
    path, period = (
        (correction(tmp_path), "2025-01")
        if outcome == "accepted"
        else (overlapping_quarter(tmp_path), "2025-Q1")
    )
    row = intake.take(path, STARTER, period, initiative=initiative, settings=settings, engine=db)
    assert row.id is not None
    before = snapshot(db)
    outside = files_outside(tmp_path, settings.home)
    failed: list[Path] = []
    full_disk_once(monkeypatch, "write_text", lambda p: p.name == "report.json", failed)

    with pytest.raises(OSError, match="No space left on device"):
        ingest_received(row.id, initiative=initiative, settings=settings, engine=db)

    assert failed and failed[0].is_relative_to(settings.reports_dir / STARTER / period)
    assert failed[0].read_text(encoding="utf-8").count("{") >= 1  # half a report is there
    after = snapshot(db)
    assert after.observations == before.observations
    assert [s["status"] for s in after.submissions] == ["accepted", "received"]
    assert [s["report_path"] for s in after.submissions][1] is None
    assert recover(db, initiative, settings) == [row.id]
    rows = check_invariants(db, settings, initiative, root=tmp_path, outside_before=outside)
    expected = ["superseded", "accepted"] if outcome == "accepted" else ["accepted", "rejected"]
    assert [r["status"] for r in rows] == expected
    assert rows[1]["report_path"] == str(failed[0])  # the same report, now whole
    counted = store.current_observations(engine=db, partner_id=STARTER)
    assert counted["submission_id"].cast(int).unique().to_list() == [
        rows[1]["id"] if outcome == "accepted" else first
    ]
