"""Each verdict's report is its own: two submissions never write the same report folder, even
the same bytes sent twice within one second (found by the concurrent ingests of
test_concurrent.py: the second rejection overwrote the first's report, which then named the
other submission)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from tests.faults.files import STARTER, starter_file
from tests.helpers import ingest, ingest_received


def test_the_same_bytes_rejected_twice_in_one_second_keep_a_report_each(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    january = starter_file(tmp_path / "jan.csv", ("karmiel", "2025-01", "", 4))
    assert ingest(january, STARTER, "2025-01", initiative=initiative, settings=settings, engine=db).status == "accepted"  # fmt: skip
    quarter = starter_file(tmp_path / "q1.csv", ("karmiel", "2025-01", "female", 2))
    ids = []
    for _ in range(2):  # sent twice, received in the same second
        row = intake.take(quarter, STARTER, "2025-Q1", initiative=initiative, settings=settings, engine=db)  # fmt: skip
        assert row.id is not None
        ids.append(row.id)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE submission SET received_at = :at WHERE id IN (:a, :b)"),
            {"at": datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC), "a": ids[0], "b": ids[1]},
        )

    receipts = [
        ingest_received(i, initiative=initiative, settings=settings, engine=db) for i in ids
    ]

    assert [r.status for r in receipts] == ["rejected", "rejected"]  # already_reported, both
    paths = [r.report_path for r in receipts]
    assert None not in paths and paths[0] != paths[1]
    for receipt in receipts:
        assert receipt.report_path is not None
        report = json.loads(Path(receipt.report_path).read_text(encoding="utf-8"))
        assert report["submission_id"] == receipt.submission_id
