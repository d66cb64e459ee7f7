"""Twenty files of one partner ingested at once through the intake (take → load → parse →
check → record, each on its own thread), on SQLite and PostgreSQL: totals and breakdowns,
months, quarters and the year for the same cells, two files sent twice and corrections of
the same period. Whatever order they land in, every file gets exactly one verdict, a
rejection is only ever ``already_reported``, no figure is counted twice, and the archive
holds each file whole.

(tests/store/test_counted_once.py races the acceptances alone, at the store's level.)
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from tests.faults.files import STARTER, starter_file
from tests.faults.invariants import check_invariants, files_outside
from tests.helpers import ingest

K, M, N, R = "karmiel", "misgav", "nahf", "rameh"
Row = tuple[str, str, str, int]  # place, month, sex ("" for the total), students
#: (file name, submission period, rows). Files 17 and 18 are files 0 and 2 sent again (the
#: same name, the same bytes); 0, 1 and 16 correct one another (all three are January's).
FILES: list[tuple[str, str, list[Row]]] = [
    ("jan.csv", "2025-01", [(K, "2025-01", "", 4)]),
    ("jan-v2.csv", "2025-01", [(K, "2025-01", "female", 2), (K, "2025-01", "male", 2), (M, "2025-01", "", 3)]),
    ("q1.csv", "2025-Q1", [(K, "2025-01", "female", 2), (K, "2025-02", "", 5)]),
    ("q1-misgav.csv", "2025-Q1", [(M, "2025-02", "", 1), (M, "2025-03", "female", 1)]),
    ("year.csv", "2025", [(K, "2025-03", "", 2), (M, "2025-06", "male", 1)]),
    ("feb.csv", "2025-02", [(K, "2025-02", "female", 3)]),
    ("feb-misgav.csv", "2025-02", [(M, "2025-02", "female", 1), (M, "2025-02", "male", 0)]),
    ("mar.csv", "2025-03", [(K, "2025-03", "female", 1), (K, "2025-03", "male", 1)]),
    # 8, 10 and 11 are the only files of their periods; 8 overlaps 10 (Karmiel's April men)
    # and 11 (Karmiel's May women): whatever the order, one of them is rejected.
    ("q2.csv", "2025-Q2", [(K, "2025-04", "", 6), (K, "2025-05", "female", 2)]),
    ("q4.csv", "2025-Q4", [(K, "2025-10", "", 2), (K, "2025-11", "", 1)]),
    ("apr.csv", "2025-04", [(K, "2025-04", "male", 3)]),
    ("may.csv", "2025-05", [(K, "2025-05", "", 4)]),
    ("jun.csv", "2025-06", [(M, "2025-06", "", 2)]),
    ("year-v2.csv", "2025", [(K, "2025-07", "", 1), (M, "2025-09", "female", 2)]),
    ("q3.csv", "2025-Q3", [(K, "2025-07", "female", 1), (M, "2025-08", "", 3)]),
    ("q3-v2.csv", "2025-Q3", [(M, "2025-09", "", 5)]),
    ("jan-v3.csv", "2025-01", [(N, "2025-01", "", 2)]),
    ("jan.csv", "2025-01", [(K, "2025-01", "", 4)]),
    ("q1.csv", "2025-Q1", [(K, "2025-01", "female", 2), (K, "2025-02", "", 5)]),
    ("q1-rameh.csv", "2025-Q1", [(R, "2025-01", "", 1), (R, "2025-02", "", 1)]),
]  # fmt: skip


def test_twenty_files_ingested_at_once_each_get_one_verdict_and_count_once(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    paths = [
        starter_file(tmp_path / "files" / f"{i:02d}" / name, *rows)
        for i, (name, _period, rows) in enumerate(FILES)
    ]
    assert paths[17].read_bytes() == paths[0].read_bytes()  # sent twice
    assert paths[18].read_bytes() == paths[2].read_bytes()
    outside = files_outside(tmp_path, settings.home)
    start = threading.Barrier(len(FILES))

    def send(index: int) -> intake.Receipt:
        start.wait()  # all at once
        return ingest(
            paths[index],
            STARTER,
            FILES[index][1],
            initiative=initiative,
            settings=settings,
            engine=db,
        )

    with ThreadPoolExecutor(max_workers=len(FILES)) as pool:
        receipts = list(pool.map(send, range(len(FILES))))  # an error in one is raised here

    assert len({r.submission_id for r in receipts}) == len(FILES)
    assert {r.status for r in receipts} <= {"accepted", "rejected", "duplicate"}
    for receipt in receipts:
        if receipt.status == "rejected":
            assert {i["rule"] for i in receipt.first_issues} == {"already_reported"}, receipt
    rows = check_invariants(db, settings, initiative, root=tmp_path, outside_before=outside)
    by_id = {r["id"]: r for r in rows}
    assert len(rows) == len(FILES)
    assert "rejected" in [by_id[receipts[i].submission_id]["status"] for i in (8, 10, 11)]


def test_the_same_file_archived_by_two_ingests_at_once_is_written_whole_by_both(
    db: Engine,
    initiative: Initiative,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file sent twice at once (same name, same bytes: one archive path): both ingests write
    their copy before either checks it. Neither may remove or overwrite the other's partial
    copy: both loads succeed, and the copy is whole."""
    path = starter_file(tmp_path / "files" / "jan.csv", ("karmiel", "2025-01", "", 4))
    rows = [
        intake.take(path, STARTER, "2025-01", initiative=initiative, settings=settings, engine=db)
        for _ in range(2)
    ]
    assert rows[0].archive_path == rows[1].archive_path is not None
    both_written = threading.Barrier(2, timeout=30)
    real_hash = intake.sha256_of

    def hash_once_both_wrote(target: Path) -> str:
        if target.name.endswith(".part"):
            both_written.wait()
        return real_hash(target)

    monkeypatch.setattr(intake, "sha256_of", hash_once_both_wrote)

    def load(submission_id: int) -> object:
        return intake.load(submission_id, settings=settings, engine=db)

    with ThreadPoolExecutor(max_workers=2) as pool:
        loaded = list(pool.map(load, [r.id or 0 for r in rows]))  # an error is raised here

    assert all(isinstance(row, store.Submission) for row in loaded)
    archived = Path(rows[0].archive_path or "")
    assert archived.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in archived.parent.iterdir()) == [archived.name]
