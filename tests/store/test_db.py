"""The store's database plumbing: the cross-process write lock of :func:`store.locked_transaction`,
and typed reads."""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.store.db import bulk_insert, read_frame
from tests import helpers


def _counter(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE lock_probe (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO lock_probe (n) VALUES (0)"))


def test_a_locked_transaction_waits_for_the_one_holding_the_lock(engine: Engine) -> None:
    """Two read-then-write units of work on one counter, the first paused inside its lock while
    the second starts: the second reads only after the first committed, so both increments
    count (0 → 1 → 2). Without the lock the second would read 0 as well."""
    _counter(engine)
    inside, release, second_read = threading.Event(), threading.Event(), []

    def first() -> None:
        with store.locked_transaction("probe", engine=engine) as session:
            n = session.execute(text("SELECT n FROM lock_probe")).scalar_one()
            inside.set()
            release.wait(10)
            session.execute(text("UPDATE lock_probe SET n = :n"), {"n": n + 1})

    def second() -> None:
        with store.locked_transaction("probe", engine=engine) as session:
            n = session.execute(text("SELECT n FROM lock_probe")).scalar_one()
            second_read.append(n)
            session.execute(text("UPDATE lock_probe SET n = :n"), {"n": n + 1})

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.5)  # it must still be waiting: the first holds the lock
    assert b.is_alive() and second_read == []
    release.set()
    a.join(10)
    b.join(10)
    assert second_read == [1]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM lock_probe")).scalar_one() == 2


def test_a_failed_locked_transaction_rolls_back_and_frees_the_lock(engine: Engine) -> None:
    _counter(engine)
    try:
        with store.locked_transaction("probe", engine=engine) as session:
            session.execute(text("UPDATE lock_probe SET n = 5"))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with store.locked_transaction("probe", engine=engine) as session:  # not held any more
        assert session.execute(text("SELECT n FROM lock_probe")).scalar_one() == 0


def test_a_typed_read_returns_exactly_what_an_untyped_read_returns(engine: Engine) -> None:
    """The typed read (PostgreSQL: COPY as CSV, parsed by polars; SQLite: rows built into the
    types) against the row-by-row read, on the values CSV could get wrong: a comma, a quote and
    a newline inside text, an empty string beside a null, a float whose shortest form has 17
    digits (0.1 + 0.2), and a null float."""
    sql = (
        "SELECT CAST(:s AS TEXT) AS s, CAST(:e AS TEXT) AS e, CAST(NULL AS TEXT) AS n, "
        "CAST(:f AS DOUBLE PRECISION) AS f, CAST(NULL AS DOUBLE PRECISION) AS g, "
        "CAST(:i AS BIGINT) AS i"
    )
    params = {"s": 'a,"b"\nc', "e": "", "f": 0.1 + 0.2, "i": 7}
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "s": pl.Utf8,
        "e": pl.Utf8,
        "n": pl.Utf8,
        "f": pl.Float64,
        "g": pl.Float64,
        "i": pl.Int64,
    }
    with engine.connect() as conn:
        typed = read_frame(conn, sql, params, schema)
        untyped = read_frame(conn, sql, params)
        none = read_frame(conn, sql + " WHERE 1 = 0", params, schema)
        percent = read_frame(conn, "SELECT '50%' AS x", {}, {"x": pl.Utf8})  # nothing bound
    assert typed.schema == pl.Schema(schema)
    assert typed.row(0) == ('a,"b"\nc', "", None, 0.30000000000000004, None, 7)
    assert typed.equals(untyped.cast(schema))  # type: ignore[arg-type]
    assert none.is_empty() and none.schema == pl.Schema(schema)
    assert percent["x"].to_list() == ["50%"]


def test_a_whole_number_stored_as_real_reads_into_an_integer_column(engine: Engine) -> None:
    """SQLite keeps each value's own type: another writer (ADBC's ingest, say) may store 10 as
    10.0 in an integer column. The typed read takes it as the integer it is, as the untyped
    read did, and does not turn it into a null."""
    sql = "SELECT CAST(:a AS DOUBLE PRECISION) AS i UNION ALL SELECT CAST(:b AS DOUBLE PRECISION)"
    with engine.connect() as conn:
        frame = read_frame(conn, sql, {"a": 10.0, "b": 7.0}, {"i": pl.Int64})
    assert sorted(frame["i"].to_list()) == [7, 10]


def _probe_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bulk_probe (n INTEGER NOT NULL, s TEXT, f DOUBLE PRECISION, "
                "i BIGINT, b BOOLEAN, t TIMESTAMP)"
            )
        )


#: A frame with the values a bulk path could get wrong: text with a comma, a quote, a newline
#: and Hebrew; an empty string beside a null; floats whose shortest form has 17 digits; the
#: largest 64-bit integer; a boolean; a zoned time (stored as naive UTC text, as the ORM does).
PROBE = pl.DataFrame(
    {
        "n": [0, 1, 2, 3],  # the order to read them back in
        "s": ['a,"b"\nc', "", None, "שלום"],
        "f": [0.1 + 0.2, None, -1e-300, 12345678.9],
        "i": [2**63 - 1, None, 0, -7],
        "b": [True, False, None, True],
        "t": [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), None, None, None],
    }
)


@pytest.mark.parametrize(
    ("threshold", "part_rows"),
    [(1, 10**9), (1, 1), (10**9, 10**9)],
    ids=["staged", "staged-in-parts", "executemany"],
)
def test_bulk_insert_stores_each_value_exactly_and_joins_the_callers_transaction(
    engine: Engine, threshold: int, part_rows: int
) -> None:
    """Both SQLite paths (the ADBC-staged copy for large frames, whole or in parts of one row
    each; ``executemany`` for small ones: the thresholds set so that these four rows take the
    one under test) and PostgreSQL's COPY store the probe's values exactly. The rows belong to
    the caller's transaction: a rollback leaves none, and a commit keeps them all."""
    _probe_table(engine)
    sizes = {"stage_min_rows": threshold, "stage_part_rows": part_rows}
    try:
        with store.locked_transaction("probe", engine=engine) as session:
            bulk_insert(session.connection(), "bulk_probe", PROBE, **sizes)
            raise RuntimeError("the verdict failed")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM bulk_probe")).scalar_one() == 0
    with store.locked_transaction("probe", engine=engine) as session:
        bulk_insert(session.connection(), "bulk_probe", PROBE, **sizes)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT s, f, i, b, t FROM bulk_probe ORDER BY n")).all()
    assert [r[:3] for r in rows] == list(zip(PROBE["s"], PROBE["f"], PROBE["i"], strict=True))
    assert [None if r[3] is None else bool(r[3]) for r in rows] == [True, False, None, True]
    stamp = rows[0][4]
    assert str(stamp).startswith("2026-01-02 03:04:05.000006"), stamp


def test_a_staged_insert_leaves_no_file_and_no_attached_database(
    sqlite_engine: Engine,
) -> None:
    """The staging file is gone once the rows are in, and the connection back in the pool has
    only its own databases attached (SQLite allows ten: they must not pile up)."""
    _probe_table(sqlite_engine)
    before = set(Path(tempfile.gettempdir()).glob("ci-pipeline-stage-*"))
    for _ in range(12):  # four parts each: 48 databases attached and detached
        with store.transaction(engine=sqlite_engine) as session:
            bulk_insert(
                session.connection(), "bulk_probe", PROBE, stage_min_rows=1, stage_part_rows=1
            )
    assert set(Path(tempfile.gettempdir()).glob("ci-pipeline-stage-*")) <= before
    with sqlite_engine.connect() as conn:
        names = [row[1] for row in conn.exec_driver_sql("PRAGMA database_list")]
        assert conn.execute(text("SELECT count(*) FROM bulk_probe")).scalar_one() == 48
    assert set(names) <= {"main", "temp"}, names


def test_a_transaction_stages_no_more_parts_than_sqlite_can_attach(
    sqlite_engine: Engine,
) -> None:
    """Worked by hand: SQLite attaches at most ten databases, and a staged part stays attached
    until the transaction ends. Four frames of four rows, each in parts of one row, in one
    transaction: the first two are staged in 4 + 4 parts, the third in the 2 that are left,
    and the fourth goes through ``executemany``. All 16 rows are stored, in their order."""
    _probe_table(sqlite_engine)
    with store.transaction(engine=sqlite_engine) as session:
        conn = session.connection()
        for k in range(4):
            frame = PROBE.with_columns(pl.col("n") + 4 * k)
            bulk_insert(conn, "bulk_probe", frame, stage_min_rows=1, stage_part_rows=1)
            names = [row[1] for row in conn.exec_driver_sql("PRAGMA database_list")]
            assert len(set(names) - {"main", "temp"}) == [4, 8, 10, 10][k]
    with sqlite_engine.connect() as conn:
        stored = conn.execute(text("SELECT n, s FROM bulk_probe ORDER BY rowid")).all()
    assert [n for n, _ in stored] == list(range(16))
    assert [s for _, s in stored] == PROBE["s"].to_list() * 4


def test_a_large_file_is_stored_exactly_and_in_key_order(
    db: Engine, initiative: Initiative
) -> None:
    """6,000 observations (over the staging threshold: ADBC's staging file on SQLite, COPY on
    PostgreSQL) under one submission, in scattered order, come back value for value, in the
    order of their unique key, with their slices recorded once each."""
    from ci_pipeline.clock import utcnow
    from ci_pipeline.store.db import STAGE_MIN_ROWS
    from ci_pipeline.store.observations import bulk_insert_observations, read_observations
    from ci_pipeline.store.tables import NATURAL_KEY

    engine = db
    partner = next(iter(initiative.partners))
    arrived = helpers.new_submission(
        "h" * 64, partner_id=partner, period="2025", file_name="f.csv", received_at=utcnow()
    )
    with store.transaction(engine=engine) as session:
        sub = store.Submission(**vars(arrived), status="accepted")
        session.add(sub)
    assert sub.id is not None
    n = 6_000
    assert n >= STAGE_MIN_ROWS
    frame = pl.DataFrame(
        {
            "submission_id": [sub.id] * n,
            "partner_id": [partner] * n,
            "measure_id": [f"m{i % 3}" for i in range(n)],
            "measure_version": [1] * n,
            "geo_code": [f"g{(i * 7919) % n:05d}" for i in range(n)],  # scattered
            "period": ["2025-Q1" if i % 2 else "2025-Q2" for i in range(n)],
            "disaggregation": ["sex=total"] * n,
            "numerator": [None if i % 4 else i / 3 for i in range(n)],
            "denominator": [None if i % 4 else float(i + 1) for i in range(n)],
            "value": [0.1 * i for i in range(n)],
            "source_row": [i + 2 for i in range(n)],
        },
        schema_overrides={"numerator": pl.Float64, "denominator": pl.Float64},
    )
    with store.transaction(engine=engine) as session:
        bulk_insert_observations(session.connection(), frame)
    stored = read_observations(sub.id, engine=engine)
    assert stored.height == n
    assert stored.sort("source_row").equals(frame.cast(stored.schema))
    with engine.connect() as conn:  # the order written: the ids the rows were given
        written = read_frame(
            conn,
            f"SELECT {', '.join(NATURAL_KEY)} FROM observation WHERE submission_id = :id "
            "ORDER BY id",
            {"id": sub.id},
        )
    assert written.equals(frame.sort(NATURAL_KEY).select(NATURAL_KEY))
    with engine.connect() as conn:
        slices = conn.execute(text("SELECT count(*) FROM submission_slice")).scalar_one()
    assert slices == 6  # 3 measures x 2 quarters
