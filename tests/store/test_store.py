"""Storage: definitions, submissions, observations, supersession and the one-transaction rule.

Every test that touches a database takes ``engine``, so it runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
import yaml
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, func, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ci_pipeline import store
from ci_pipeline.config import DEFAULT_INITIATIVE
from ci_pipeline.errors import DefinitionError
from ci_pipeline.model.frames import STORED_INDICATOR_SCHEMA
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.store import Status, Submission
from ci_pipeline.store import submissions as store_submissions
from tests import helpers

PARTNER = "galilee-foundation"
PERIOD = "2025-Q1"
Row = tuple[str, str, str, str, float | None, float | None, float | None]


def observations(rows: list[Row]) -> pl.DataFrame:
    """Observations as validate.to_observations returns them: (measure, geo, period, breakdown,
    numerator, denominator, value), numbered from row 2 as in a CSV file."""
    return pl.DataFrame(
        [(i + 2, m, 1, g, p, d, n, den, v) for i, (m, g, p, d, n, den, v) in enumerate(rows)],
        schema=helpers.OBSERVATION_SCHEMA,
        orient="row",
    )


def new_submission(
    content_hash: str = "a" * 64,
    *,
    partner_id: str = PARTNER,
    period: str = PERIOD,
    file_name: str = "file.csv",
) -> store.NewSubmission:
    return helpers.new_submission(
        content_hash,
        partner_id=partner_id,
        period=period,
        file_name=file_name,
        received_at=datetime(2025, 4, 2, 9, 30, tzinfo=UTC),
    )


def receive(engine: Engine, new: store.NewSubmission) -> Submission:
    """The submission as it is received: bytes aside (none here), status ``received``."""
    return store.record_received(new, content=None, size_bytes=0, engine=engine)


def received_id(engine: Engine, new: store.NewSubmission) -> int:
    row = receive(engine, new)
    assert row.id is not None
    return row.id


def accept_received(engine: Engine, pending: Submission, frame: pl.DataFrame) -> Any:
    with store.locked_transaction("test", engine=engine) as session:
        return store.accept(session, pending, frame, rows_total=frame.height, encoding="utf-8")


def accept(engine: Engine, rows: list[Row], content_hash: str, **kwargs: str) -> store.Accepted:
    """Receive a file of ``rows`` and accept it, as the intake does (in the accept lock)."""
    outcome = accept_received(
        engine, receive(engine, new_submission(content_hash, **kwargs)), observations(rows)
    )
    assert isinstance(outcome, store.Accepted)
    return outcome


def reject(engine: Engine, submission_id: int) -> Submission:
    """Record ``submission_id`` rejected: a one-row file with one problem, no report."""
    return store.record_rejected(
        submission_id,
        rows_total=1,
        rows_rejected=1,
        issues=1,
        report_path=None,
        message="rejected",
        encoding=None,
        engine=engine,
    )


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def stored(engine: Engine, submission_id: int | None) -> Submission:
    assert submission_id is not None
    row = store.get_submission(submission_id, engine=engine)
    assert row is not None
    return row


@pytest.fixture
def synced(engine: Engine, initiative: Initiative) -> Engine:
    """A database holding the bundled initiative's definitions."""
    store.sync_initiative(initiative, engine=engine)
    return engine


def copy_initiative(tmp_path: Path) -> Path:
    folder = tmp_path / "initiative"
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    return folder


def edit_measure(folder: Path, measure_id: str, **changes: Any) -> None:
    path = folder / "measures" / f"{measure_id}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def measure_titles(engine: Engine, measure_id: str) -> dict[int, str]:
    with Session(engine) as session:
        rows = session.exec(select(store.MeasureRow).where(store.MeasureRow.id == measure_id)).all()
        return {r.version: r.title for r in rows}


# --- definitions ---------------------------------------------------------------------------------


def test_sync_initiative_stores_definitions_and_is_idempotent(
    engine: Engine, initiative: Initiative
) -> None:
    changes = store.sync_initiative(initiative, engine=engine)

    assert changes[0] == "initiative beit-hakerem loaded"
    assert sorted(changes[1:]) == sorted(
        f"measure {m.id} v{m.version} added" for m in initiative.measures.values()
    )
    assert count(engine, "SELECT count(*) FROM measure") == len(initiative.measures) == 38
    assert count(engine, "SELECT count(*) FROM partner") == len(initiative.partners) == 13
    assert count(engine, "SELECT count(*) FROM geography") == len(initiative.geographies)
    with Session(engine) as session:
        ini = session.get(store.InitiativeRow, "beit-hakerem")
        assert ini is not None
        assert ini.digest == initiative.digest
        assert ini.version == initiative.info.version
        fund = session.get(store.PartnerRow, ("beit-hakerem", PARTNER))
        assert fund is not None
        assert json.loads(fund.measures) == initiative.partners[PARTNER].measures
        assert "new-resources-nis" in json.loads(fund.measures)
        assert fund.submits_every == "quarter"
        nis = session.get(store.MeasureRow, ("beit-hakerem", "new-resources-nis", 1))
        assert nis is not None
        assert (nis.unit, nis.periodicity) == ("amount", "quarter")
        assert json.loads(nis.definition)["valid_range"] == {"min": 0.0, "max": 50000000.0}

    assert store.sync_initiative(initiative, engine=engine) == []
    assert count(engine, "SELECT count(*) FROM measure") == 38
    assert count(engine, "SELECT count(*) FROM initiative") == 1


def test_changed_definition_under_the_same_version_is_refused(
    engine: Engine, initiative: Initiative, tmp_path: Path
) -> None:
    store.sync_initiative(initiative, engine=engine)
    folder = copy_initiative(tmp_path)
    edit_measure(folder, "new-resources-nis", title="Money raised (redefined)")
    changed = load_initiative(folder)
    assert changed.digest != initiative.digest

    with pytest.raises(DefinitionError) as caught:
        store.sync_initiative(changed, engine=engine)

    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith("measures/new-resources-nis.yaml: version:")
    assert "raise 'version' to 2" in problem
    # Nothing of the refused definitions was stored.
    assert measure_titles(engine, "new-resources-nis") == {
        1: "New resources mobilised for the initiative"
    }
    with Session(engine) as session:
        ini = session.get(store.InitiativeRow, "beit-hakerem")
        assert ini is not None
        assert ini.digest == initiative.digest


def test_a_definition_stored_before_a_field_existed_is_not_a_change(
    engine: Engine, initiative: Initiative
) -> None:
    """A database loaded before ``across_partners`` existed holds definitions without it; the
    field's default keeps their meaning, so syncing again refuses nothing."""
    store.sync_initiative(initiative, engine=engine)
    with engine.begin() as conn:
        for measure_id, definition in conn.execute(
            text("SELECT id, definition FROM measure")
        ).all():
            older = json.loads(definition)
            del older["across_partners"], older["partner_precedence"]
            conn.execute(
                text("UPDATE measure SET definition = :d WHERE id = :id"),
                {"d": json.dumps(older), "id": measure_id},
            )
        conn.execute(text("UPDATE initiative SET digest = 'older'"))

    assert store.sync_initiative(initiative, engine=engine) == ["initiative beit-hakerem updated"]


def test_a_new_version_is_added_beside_the_old(
    engine: Engine, initiative: Initiative, tmp_path: Path
) -> None:
    store.sync_initiative(initiative, engine=engine)
    folder = copy_initiative(tmp_path)
    edit_measure(folder, "new-resources-nis", title="Money raised (redefined)", version=2)

    changes = store.sync_initiative(load_initiative(folder), engine=engine)

    assert changes == ["initiative beit-hakerem updated", "measure new-resources-nis v2 added"]
    assert measure_titles(engine, "new-resources-nis") == {
        1: "New resources mobilised for the initiative",
        2: "Money raised (redefined)",
    }
    assert count(engine, "SELECT count(*) FROM measure") == 39


# --- accepting a file ----------------------------------------------------------------------------


def test_store_accepted_writes_every_row_through_the_bulk_path(
    synced: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    bulk = store_submissions.bulk_insert_observations

    def spy(conn: Connection, frame: pl.DataFrame) -> None:
        calls.append(frame.height)
        bulk(conn, frame, batch_rows=500)  # three batches: 500, 500 and 203 rows

    monkeypatch.setattr(store_submissions, "bulk_insert_observations", spy)
    rows: list[Row] = [
        ("new-resources-nis", "beit-hakerem", "2025-Q1", "total", None, None, 250000.0),
        ("arab-women-lfp", "nahf", "2025-Q1", "age_band=25-44", 31.0, 120.0, 31 / 120),
        ("fsg-vision-work-aligns", "karmiel", "2025-Q1", "total", None, 7.0, 3.57),
    ]
    # Enough rows that a per-row path would show; every natural key distinct.
    rows += [
        ("starter-students-trained", f"geo-{i % 7}", "2025-Q1", f"sex=total;n={i}", None, None, i)
        for i in range(1200)
    ]
    frame = observations(rows)

    pending = receive(synced, new_submission())
    with store.locked_transaction("test", engine=synced) as session:
        outcome = store.accept(session, pending, frame, rows_total=1210, encoding="utf-8")
        assert isinstance(outcome, store.Accepted)
        store.describe(session, outcome.submission, report_path="r.json", message="accepted")

    assert calls == [1203]
    sub = stored(synced, pending.id)
    assert (sub.status, sub.rows_total, sub.rows_accepted, sub.report_path, sub.message) == (
        "accepted",
        1210,
        1203,
        "r.json",
        "accepted",
    )
    assert (sub.partner_id, sub.period, sub.supersedes) == (PARTNER, PERIOD, None)
    assert outcome.superseded is None
    assert outcome.diff is None
    assert count(synced, "SELECT count(*) FROM observation") == 1203

    assert sub.id is not None
    back = store.read_observations(sub.id, engine=synced).sort("source_row")
    assert back["submission_id"].unique().to_list() == [sub.id]
    assert back["partner_id"].unique().to_list() == [PARTNER]
    assert_frame_equal(back.select(frame.columns), frame, check_dtypes=False)
    # A proportion's value keeps its full precision; null stays null.
    lfp = back.filter(pl.col("measure_id") == "arab-women-lfp").row(0, named=True)
    assert lfp["value"] == 31 / 120
    nis = back.filter(pl.col("measure_id") == "new-resources-nis").row(0, named=True)
    assert (nis["numerator"], nis["denominator"], nis["value"]) == (None, None, 250000.0)

    current = store.current_observations(engine=synced, measure_id="new-resources-nis")
    assert current.height == 1
    assert current["value"].to_list() == [250000.0]
    assert store.current_submission("beit-hakerem", PARTNER, PERIOD, engine=synced) == sub


OLD: list[Row] = [
    ("new-resources-nis", "beit-hakerem", PERIOD, "total", None, None, 250000.0),
    ("fsg-vision-work-aligns", "karmiel", PERIOD, "total", None, 5.0, 3.2),
    ("fsg-vision-work-aligns", "misgav", PERIOD, "total", None, 6.0, 4.0),
    ("fsg-vision-work-aligns", "nahf", PERIOD, "total", None, 4.0, 2.5),
]
NEW: list[Row] = [
    ("new-resources-nis", "beit-hakerem", PERIOD, "total", None, None, 300000.0),  # changed
    ("fsg-vision-work-aligns", "karmiel", PERIOD, "total", None, 5.0, 3.2),  # the same
    ("fsg-vision-work-aligns", "misgav", PERIOD, "total", None, 7.0, 4.0),  # changed
    ("fsg-vision-work-aligns", "rameh", PERIOD, "total", None, 3.0, 4.5),  # added
    # nahf removed
]


def test_a_second_accepted_file_supersedes_the_first(synced: Engine) -> None:
    first = accept(synced, OLD, "1" * 64).submission
    earlier = [(m, g, "2024-Q4", d, n, den, v) for m, g, _, d, n, den, v in OLD]
    other_period = accept(synced, earlier, "3" * 64, period="2024-Q4").submission

    outcome = accept(synced, NEW, "2" * 64)

    second = outcome.submission
    assert second.id is not None and first.id is not None
    assert outcome.superseded is not None
    assert outcome.superseded.id == first.id
    old = stored(synced, first.id)
    assert (old.status, old.superseded_by) == (Status.superseded, second.id)
    assert (second.status, second.supersedes) == (Status.accepted, first.id)
    assert outcome.diff is not None
    assert (outcome.diff.added, outcome.diff.removed, outcome.diff.changed) == (1, 1, 2)
    assert (second.rows_added, second.rows_removed, second.rows_changed) == (1, 1, 2)
    changes = outcome.diff.rows.select("geo_code", "change").rows()
    assert sorted(changes) == [
        ("beit-hakerem", "changed"),
        ("misgav", "changed"),
        ("nahf", "removed"),
        ("rameh", "added"),
    ]
    # The other period is untouched.
    assert stored(synced, other_period.id).status == Status.accepted

    current = store.current_observations(engine=synced, period=PERIOD)
    assert current["submission_id"].unique().to_list() == [second.id]
    assert current.height == len(NEW)
    nis = store.current_observations(engine=synced, measure_id="new-resources-nis", period=PERIOD)
    assert nis["value"].to_list() == [300000.0]
    # The superseded rows are kept, they just stop counting.
    assert store.read_observations(first.id, engine=synced).height == len(OLD)
    assert store.current_submission("beit-hakerem", PARTNER, PERIOD, engine=synced) == second
    assert store.current_observations(engine=synced).height == len(NEW) + len(OLD)


def test_a_third_file_supersedes_the_second_and_the_chain_is_kept(synced: Engine) -> None:
    a = accept(synced, OLD, "1" * 64).submission
    b = accept(synced, NEW, "2" * 64).submission
    c = accept(synced, OLD, "3" * 64)

    assert c.superseded is not None and c.superseded.id == b.id
    assert c.diff is not None
    assert (c.diff.added, c.diff.removed, c.diff.changed) == (1, 1, 2)
    assert [stored(synced, s.id).status for s in (a, b)] == [Status.superseded] * 2
    assert stored(synced, a.id).superseded_by == b.id
    assert stored(synced, b.id).superseded_by == c.submission.id
    assert count(synced, "SELECT count(*) FROM submission WHERE status = 'accepted'") == 1


def test_accepting_is_one_transaction(synced: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = accept(synced, OLD, "1" * 64).submission
    real = store_submissions.bulk_insert_observations
    seen_inside: list[int] = []

    def insert_then_fail(conn: Connection, frame: pl.DataFrame) -> None:
        """Insert every row, then fail: what a connection dropped mid-load looks like."""
        real(conn, frame)
        seen_inside.append(conn.execute(text("SELECT count(*) FROM observation")).scalar_one())
        raise RuntimeError("the connection dropped")

    monkeypatch.setattr(store_submissions, "bulk_insert_observations", insert_then_fail)

    with pytest.raises(RuntimeError, match="connection dropped"):
        accept(synced, NEW, "2" * 64)

    assert seen_inside == [len(OLD) + len(NEW)]  # the rows were written, then rolled back
    # The second file is still only received (an ingest will decide it again).
    assert count(synced, "SELECT count(*) FROM submission WHERE status = 'accepted'") == 1
    assert (
        count(
            synced,
            "SELECT count(*) FROM submission WHERE content_hash = :h AND status = 'received'",
            h="2" * 64,
        )
        == 1
    )
    assert count(synced, "SELECT count(*) FROM observation") == len(OLD)
    assert (
        count(synced, "SELECT count(*) FROM observation WHERE submission_id <> :id", id=first.id)
        == 0
    )
    previous = stored(synced, first.id)
    assert (previous.status, previous.superseded_by) == (Status.accepted, None)
    assert store.current_submission("beit-hakerem", PARTNER, PERIOD, engine=synced) == previous
    nis = store.current_observations(engine=synced, measure_id="new-resources-nis")
    assert nis["value"].to_list() == [250000.0]


def test_a_row_breaking_the_unique_key_rolls_back_the_whole_file(synced: Engine) -> None:
    first = accept(synced, OLD, "1" * 64).submission
    clash = [*NEW, NEW[0]]  # the same natural key twice: the database refuses the second

    # SQLAlchemy wraps the sqlite3 error; PostgreSQL's COPY raises psycopg's own.
    with pytest.raises((IntegrityError, psycopg.errors.UniqueViolation), match="observation"):
        accept(synced, clash, "2" * 64)

    assert count(synced, "SELECT count(*) FROM submission WHERE status = 'accepted'") == 1
    assert count(synced, "SELECT count(*) FROM observation") == len(OLD)
    previous = stored(synced, first.id)
    assert (previous.status, previous.superseded_by) == (Status.accepted, None)


def test_a_submission_is_decided_once_and_never_supersedes_itself(synced: Engine) -> None:
    """Accepting a received submission again (a retried store step, the reconciler beside a
    late run) writes nothing: the first verdict stands, with its rows counted once."""
    first = accept(synced, OLD, "1" * 64).submission
    pending = receive(synced, new_submission("2" * 64))
    outcome = accept_received(synced, pending, observations(NEW))
    assert isinstance(outcome, store.Accepted) and outcome.superseded is not None

    again = accept_received(synced, pending, observations(NEW))

    assert again is None
    row = stored(synced, pending.id)
    assert (row.status, row.supersedes) == (Status.accepted, first.id)
    assert count(
        synced, "SELECT count(*) FROM observation WHERE submission_id = :id", id=row.id
    ) == len(NEW)
    assert reject(synced, received_id(synced, new_submission("3" * 64))).status == Status.rejected
    # A verdict already written is not overwritten by another.
    assert reject(synced, row.id).status == Status.accepted  # type: ignore[arg-type]


def insert(engine: Engine, content_hash: str, status: Status, period: str = PERIOD) -> None:
    with Session(engine) as session:
        session.add(Submission(**vars(new_submission(content_hash, period=period)), status=status))
        session.commit()


def test_only_one_accepted_submission_per_partner_and_period(synced: Engine) -> None:
    insert(synced, "1" * 64, Status.accepted)
    # Any number of others for the same partner and period, and accepted ones for other periods.
    insert(synced, "2" * 64, Status.rejected)
    insert(synced, "3" * 64, Status.rejected)
    insert(synced, "4" * 64, Status.superseded)
    insert(synced, "5" * 64, Status.duplicate)
    insert(synced, "6" * 64, Status.accepted, period="2025-Q2")

    with pytest.raises(IntegrityError, match=r"one_accepted_per_partner_period|UNIQUE"):
        insert(synced, "7" * 64, Status.accepted)

    assert count(synced, "SELECT count(*) FROM submission") == 6
    assert (
        count(
            synced,
            "SELECT count(*) FROM submission WHERE status = 'accepted' AND period = :p",
            p=PERIOD,
        )
        == 1
    )


# --- duplicates and rejections -------------------------------------------------------------------


def test_find_and_record_a_duplicate(synced: Engine) -> None:
    original = accept(synced, OLD, "1" * 64).submission
    store.record_rejected(
        received_id(synced, new_submission("9" * 64)),
        encoding=None,
        rows_total=3,
        rows_rejected=1,
        issues=2,
        report_path="rejected.json",
        message="rejected",
        engine=synced,
    )
    again = new_submission("1" * 64, file_name="again.csv")

    found = store.find_duplicate(again, engine=synced)

    assert found is not None and found.id == original.id
    assert store.find_duplicate(new_submission("2" * 64), engine=synced) is None
    assert store.find_duplicate(new_submission("1" * 64, period="2025-Q2"), engine=synced) is None
    assert (
        store.find_duplicate(new_submission("1" * 64, partner_id="kurkum"), engine=synced) is None
    )
    # A rejected file sent again is validated again, not a duplicate.
    assert store.find_duplicate(new_submission("9" * 64), engine=synced) is None

    dup = store.record_duplicate(received_id(synced, again), found, engine=synced)

    assert dup.id is not None and dup.id != original.id
    assert (dup.status, dup.duplicate_of, dup.file_name) == (
        Status.duplicate,
        original.id,
        "again.csv",
    )
    assert dup.rows_total == len(OLD)
    assert dup.rows_accepted == 0
    assert dup.message == f"identical to submission #{original.id}; nothing was written"
    assert store.read_observations(dup.id, engine=synced).height == 0
    assert stored(synced, original.id).status == Status.accepted
    assert count(synced, "SELECT count(*) FROM observation") == len(OLD)
    listed = store.list_submissions(engine=synced, partner_id=PARTNER, period=PERIOD)
    assert [s.status for s in listed] == ["duplicate", "rejected", "accepted"]


def test_reported_cells_are_the_slices_of_the_submissions_that_count(synced: Engine) -> None:
    """Who reported what, (partner, measure, period), read from the submissions' slices, not
    from every observation. Worked by hand: galilee-foundation's first 2025-Q1 file (two
    measures) is replaced by one of fsg-vision-work-aligns alone, so new-resources-nis is no
    longer reported; braude-college's January file stands; a rejected file reports nothing.
    The same as the distinct (partner, measure, period) of the observations that count."""
    accept(synced, OLD, "1" * 64)
    accept(synced, [r for r in NEW if r[0] == "fsg-vision-work-aligns"], "2" * 64)
    accept(synced, MONTHLY, "3" * 64, partner_id="braude-college", period="2025-01")
    reject(synced, received_id(synced, new_submission("4" * 64, period="2025-Q2")))

    reported = store.reported_cells("beit-hakerem", engine=synced)

    assert sorted(reported.rows()) == [
        ("braude-college", "starter-students-trained", "2025-01"),
        (PARTNER, "fsg-vision-work-aligns", PERIOD),
    ]
    counted = store.current_observations(engine=synced).select(reported.columns).unique()
    assert sorted(counted.rows()) == sorted(reported.rows())


def test_record_rejected_stores_no_observation(synced: Engine) -> None:
    row = store.record_rejected(
        received_id(synced, new_submission()),
        encoding=None,
        rows_total=10,
        rows_rejected=3,
        issues=4,
        report_path="report.json",
        message="rejected: 4 problem(s) in 3 row(s); nothing was stored",
        engine=synced,
    )

    assert row.id is not None
    assert (row.status, row.rows_total, row.rows_rejected, row.issues, row.rows_accepted) == (
        Status.rejected,
        10,
        3,
        4,
        0,
    )
    assert row.validated_at is not None
    assert store.read_observations(row.id, engine=synced).height == 0
    assert store.current_submission("beit-hakerem", PARTNER, PERIOD, engine=synced) is None
    as_json = store.submission_dict(row)
    assert as_json["status"] == "rejected"
    assert as_json["received_at"].startswith("2025-04-02T09:30:00")
    assert list(as_json) == list(store.SubmissionFields.model_fields)  # the record's order
    json.dumps(as_json)


# --- figures already reported --------------------------------------------------------------------


MONTHLY: list[Row] = [
    ("starter-students-trained", "karmiel", "2025-01", "total", None, None, 4.0),
    ("starter-students-trained", "misgav", "2025-01", "total", None, None, 2.0),
]


def test_find_conflicts_finds_figures_held_by_another_period(synced: Engine) -> None:
    january = accept(synced, MONTHLY, "1" * 64, partner_id="braude-college", period="2025-01")
    # The same key from another partner, and from a rejected file, do not clash.
    accept(synced, MONTHLY, "2" * 64, partner_id="online-commerce-centre", period="2025-01")
    reject(
        synced,
        received_id(
            synced, new_submission("3" * 64, partner_id="braude-college", period="2025-02")
        ),
    )
    quarter = observations(
        [
            ("starter-students-trained", "misgav", "2025-02", "total", None, None, 3.0),
            ("starter-students-trained", "karmiel", "2025-01", "total", None, None, 4.0),
            ("starter-students-trained", "karmiel", "2025-03", "total", None, None, 5.0),
            ("starter-students-trained", "karmiel", "2025-01", "sex=female", None, None, 1.0),
        ]
    )

    conflicts = store.find_conflicts(
        "beit-hakerem", "braude-college", "2025-Q1", quarter, engine=synced
    )

    # Karmiel's January total (row 3), and its January female figure (row 5): part of the
    # same total, so counted twice too.
    assert conflicts.select("source_row", "geo_code", "period", "disaggregation").rows() == [
        (3, "karmiel", "2025-01", "total"),
        (5, "karmiel", "2025-01", "sex=female"),
    ]
    assert set(conflicts["held_by"]) == {january.submission.id}
    assert set(conflicts["held_in"]) == {"2025-01"}
    assert set(conflicts["held_partner"]) == {"braude-college"}

    # Resubmitting the same period replaces it: no clash with itself.
    again = store.find_conflicts(
        "beit-hakerem", "braude-college", "2025-01", observations(MONTHLY), engine=synced
    )
    assert again.is_empty()
    assert {"held_by", "held_in"} <= set(again.columns)


def test_find_conflicts_ignores_superseded_submissions(synced: Engine) -> None:
    accept(synced, MONTHLY, "1" * 64, partner_id="braude-college", period="2025-Q1")
    accept(synced, MONTHLY[1:], "2" * 64, partner_id="braude-college", period="2025-Q1")

    conflicts = store.find_conflicts(
        "beit-hakerem", "braude-college", "2025-01", observations(MONTHLY), engine=synced
    )

    assert conflicts.select("geo_code", "held_in").rows() == [("misgav", "2025-Q1")]


def test_find_conflicts_of_an_empty_frame(synced: Engine) -> None:
    empty = observations([])
    assert store.find_conflicts("beit-hakerem", PARTNER, PERIOD, empty, engine=synced).is_empty()


# --- diffs ---------------------------------------------------------------------------------------


def frame(*rows: tuple[str, float | None, float | None, float | None]) -> pl.DataFrame:
    """Tiny observation frames keyed by geo_code: (geo, numerator, denominator, value)."""
    return observations([("m", g, "2025-Q1", "total", n, d, v) for g, n, d, v in rows])


DIFF_CASES: dict[str, tuple[pl.DataFrame, pl.DataFrame, tuple[int, int, int], list[Any]]] = {
    "identical": (frame(("a", 1, 2, 0.5)), frame(("a", 1, 2, 0.5)), (0, 0, 0), []),
    "added": (
        frame(("a", None, None, 1)),
        frame(("a", None, None, 1), ("b", None, None, 2)),
        (1, 0, 0),
        [("b", "added")],
    ),
    "removed": (
        frame(("a", None, None, 1), ("b", None, None, 2)),
        frame(("b", None, None, 2)),
        (0, 1, 0),
        [("a", "removed")],
    ),
    "value changed": (
        frame(("a", None, None, 1)),
        frame(("a", None, None, 2)),
        (0, 0, 1),
        [("a", "changed")],
    ),
    "numerator changed": (
        frame(("a", 1, 4, 0.25)),
        frame(("a", 2, 4, 0.25)),
        (0, 0, 1),
        [("a", "changed")],
    ),
    "null became a number": (
        frame(("a", None, 10, 3.5)),
        frame(("a", 5, 10, 3.5)),
        (0, 0, 1),
        [("a", "changed")],
    ),
    "a number became null": (
        frame(("a", None, 10, 3.5)),
        frame(("a", None, None, 3.5)),
        (0, 0, 1),
        [("a", "changed")],
    ),
    "all kinds": (
        frame(("a", None, None, 1), ("b", None, None, 2), ("c", None, None, 3)),
        frame(
            ("b", None, None, 2), ("c", None, None, 4), ("d", None, None, 5), ("e", None, None, 6)
        ),
        (2, 1, 1),
        [("a", "removed"), ("c", "changed"), ("d", "added"), ("e", "added")],
    ),
    "from nothing": (frame(), frame(("a", None, None, 1)), (1, 0, 0), [("a", "added")]),
    "to nothing": (frame(("a", None, None, 1)), frame(), (0, 1, 0), [("a", "removed")]),
}


@pytest.mark.parametrize(("old", "new", "counts", "changes"), DIFF_CASES.values(), ids=DIFF_CASES)
def test_diff_observations(
    old: pl.DataFrame, new: pl.DataFrame, counts: tuple[int, int, int], changes: list[Any]
) -> None:
    diff = store.diff_observations(old, new)

    assert (diff.added, diff.removed, diff.changed) == counts
    assert diff.rows.select("geo_code", "change").rows() == changes


def test_diff_rows_carry_old_and_new_values() -> None:
    diff = store.diff_observations(
        frame(("a", 1, 4, 0.25), ("b", None, None, 7)),
        frame(("a", 3, 4, 0.75), ("c", None, None, 9)),
    )

    rows = {r["geo_code"]: r for r in diff.rows.to_dicts()}
    assert (rows["a"]["value"], rows["a"]["value_new"]) == (0.25, 0.75)
    assert (rows["a"]["numerator"], rows["a"]["numerator_new"]) == (1, 3)
    assert (rows["b"]["value"], rows["b"]["value_new"]) == (7, None)
    assert (rows["c"]["value"], rows["c"]["value_new"]) == (None, 9)
    assert list(rows) == ["a", "b", "c"]


def test_diff_against_a_stored_submission_with_null_columns(synced: Engine) -> None:
    """Counts come back from the database with all-null numerator/denominator columns."""
    first = accept(synced, OLD[:1], "1" * 64).submission
    assert first.id is not None
    old = store.read_observations(first.id, engine=synced)

    diff = store.diff_observations(old, observations(OLD[:1]))

    assert (diff.added, diff.removed, diff.changed) == (0, 0, 0)


def test_list_submissions_newest_first_with_filters(synced: Engine) -> None:
    a = accept(synced, OLD, "1" * 64).submission
    q2 = [(m, g, "2025-Q2", d, n, den, v) for m, g, _, d, n, den, v in OLD]
    b = accept(synced, q2, "2" * 64, period="2025-Q2").submission
    c = accept(synced, MONTHLY, "3" * 64, partner_id="braude-college", period="2025-01").submission

    ids: Callable[..., list[int | None]] = lambda **kw: [  # noqa: E731
        s.id for s in store.list_submissions(engine=synced, **kw)
    ]
    assert ids() == [c.id, b.id, a.id]
    assert ids(partner_id=PARTNER) == [b.id, a.id]
    assert ids(period="2025-Q2") == [b.id]
    assert ids(limit=1) == [c.id]
    assert ids(partner_id=PARTNER, limit=1) == [b.id]
    with Session(synced) as session:
        total = session.exec(select(func.count()).select_from(Submission)).one()
        assert total == 3
        assert session.exec(select(col(Submission.id)).order_by(col(Submission.id))).all() == [
            a.id,
            b.id,
            c.id,
        ]


def test_indicators_read_back_typed_and_in_key_order(
    synced: Engine, initiative: Initiative
) -> None:
    """Cells written out of order come back ordered by measure, period, place and breakdown
    (code point order, on every database), each value as written: the suppression flag a
    boolean, a blank value null, a lineage's commas and an empty suppression reason kept."""
    ini, m = initiative.info.id, next(iter(initiative.measures))
    cells = pl.DataFrame(
        [
            (m, "b", "2025-Q2", "total", 2.5, None, None, 1, 2, 0.5, "3,11", True, "small"),
            (m, "a", "2025-Q2", "total", None, None, None, 0, 2, 0.0, "", False, ""),
            (m, "b", "2025-Q1", "sex=male", 1.0, 1.0, 4.0, 2, 2, 1.0, "3", False, None),
            (m, "B", "2025-Q1", "total", 7.0, None, None, 1, 1, 1.0, "11", False, None),
        ],
        schema=STORED_INDICATOR_SCHEMA,
        orient="row",
    )
    store.replace_indicators(ini, [(m, "2025-Q1"), (m, "2025-Q2")], cells, engine=synced)
    read = store.read_indicators(ini, engine=synced)
    # Q1 before Q2; within Q1 "B" (66) before "b" (98); within Q2 "a" before "b".
    expected = cells[[3, 2, 1, 0]]
    assert_frame_equal(read, expected)
    assert read.schema == pl.Schema(STORED_INDICATOR_SCHEMA)
