"""The database: one engine per process (made, reused and disposed here), the schema's
creation and removal, and reading a query into a polars frame.
"""

from __future__ import annotations

import atexit
import io
import logging
import shutil
import sqlite3
import tempfile
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlmodel import Session, create_engine

if TYPE_CHECKING:
    import pyarrow as pa

from ci_pipeline.store import tables  # noqa: F401  (every table registers on SQLModel.metadata)

logger = logging.getLogger(__name__)

#: The process's engines, one per database URL (see :func:`engine_for`).
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """The process's one engine for ``url``, its schema brought up to date on first use.

    Every entry point (the CLI, the flows, ``serve``) asks here instead of making its own, so a
    process holds one connection pool per database and :func:`dispose_engines` can close them
    all — at exit, SQLite then checkpoints and removes its write-ahead log.
    """
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = make_engine(url)
            create_schema(engine=engine)
            _ENGINES[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every engine :func:`engine_for` made (the next call makes a fresh one)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


atexit.register(dispose_engines)


def make_engine(url: str) -> Engine:
    """An engine for the app database; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        event.listen(engine, "checkin", _detach_staged)
        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(*, engine: Engine) -> None:
    """Create the tables, or upgrade them to the head revision (see :mod:`.migrate`)."""
    from ci_pipeline.store import migrate  # migrate needs the tables this module registers

    migrate.upgrade(engine=engine)


def drop_schema(*, engine: Engine) -> None:
    """Drop every table, ``alembic_version`` included (``demo --reset`` on a server database)."""
    from ci_pipeline.store import migrate

    migrate.drop(engine=engine)


@contextmanager
def session_scope(*, engine: Engine) -> Iterator[Session]:
    """A session on ``engine``, closed on leaving the block."""
    with Session(engine) as session:
        yield session


@contextmanager
def transaction(*, engine: Engine) -> Iterator[Session]:
    """One unit of work: a session committed when the block ends, rolled back if it raises.

    Objects read in it keep their values after the commit (they are not expired), so the caller
    can still read what it recorded.
    """
    with Session(engine, expire_on_commit=False) as session:
        yield session
        session.commit()


@contextmanager
def locked_transaction(name: str, *, engine: Engine) -> Iterator[Session]:
    """A unit of work that no other ``locked_transaction(name)`` runs beside, in any process.

    What is read in it cannot change before it commits, so a check and the write it allows are
    one atomic step. The database's own means, not an in-process lock: SQLite's write lock
    (``BEGIN IMMEDIATE``: every writer waits, up to the busy timeout), or a PostgreSQL
    transaction-level advisory lock on ``name`` (other names run beside it), released by the
    commit or rollback. Committed when the block ends, rolled back if it raises.
    """
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            # pysqlite has not begun a transaction yet (it begins lazily, before a write): this
            # is the first statement, so it takes the lock before anything is read.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            key = zlib.crc32(name.encode()) - (1 << 31)  # a signed 32-bit key
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        yield session
        session.commit()


def read_frame(
    conn: Connection,
    sql: str,
    params: dict[str, Any],
    schema: dict[str, pl.DataType | type[pl.DataType]] | None = None,
) -> pl.DataFrame:
    """A query's result as a polars frame, its columns named as the query names them.

    With ``schema`` (every column's type, in the query's order; text and numbers only), large
    reads are set-based: PostgreSQL streams the rows through ``COPY … TO STDOUT`` as CSV, which
    polars parses (no Python object per value), and SQLite's rows are built straight into the
    given types, where inferring them cost as much as fetching the rows."""
    if schema is not None and conn.dialect.name == "postgresql":
        return _copy_out(conn, sql, params, schema)
    names, rows = _fetch(conn, sql, params)
    if schema is not None:
        try:
            return pl.DataFrame(rows, schema=schema, orient="row")
        except pl.exceptions.ComputeError:
            # SQLite keeps each value's own type: a whole number stored as REAL (another
            # writer's 10.0 in an integer column) does not build strictly. Infer, then cast,
            # as the untyped read's callers always did.
            inferred = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
            return inferred.cast(schema)  # type: ignore[arg-type]
    return pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)


def _fetch(conn: Connection, sql: str, params: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """A query's column names and rows, as tuples. On SQLite straight from the driver's cursor,
    on the caller's connection (its transaction): ``sqlite3`` takes the ``:name`` parameters
    as they are, and SQLAlchemy's result rows, built around each tuple, took as long as the
    fetch itself (2.07M indicator cells: 12.0 s through them, 8.4 s without)."""
    raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
    if isinstance(raw, sqlite3.Connection):
        cursor = raw.execute(sql, params)
        try:
            return [d[0] for d in cursor.description], cursor.fetchall()
        finally:
            cursor.close()
    result = conn.execute(text(sql), params)
    return list(result.keys()), list(result.fetchall())


#: How ``COPY … TO STDOUT`` marks a null, unquoted, so that an empty string stays a string.
COPY_NULL = "\\N"


def _copy_out(
    conn: Connection,
    sql: str,
    params: dict[str, Any],
    schema: dict[str, pl.DataType | type[pl.DataType]],
) -> pl.DataFrame:
    """A PostgreSQL query's rows through ``COPY (query) TO STDOUT`` as CSV, parsed by polars
    with the given types (floats are sent in their shortest exact form, so they read back
    exactly)."""
    compiled = text(sql).bindparams(**params).compile(dialect=conn.dialect)
    raw = conn.connection.driver_connection
    assert raw is not None
    buffer = io.BytesIO()
    query, bound = str(compiled), dict(compiled.params)
    if not bound:  # nothing to bind: psycopg leaves the text as it is, so unescape its %%
        query = query.replace("%%", "%")
    with raw.cursor() as cursor:
        statement = f"COPY ({query}) TO STDOUT (FORMAT csv, NULL '{COPY_NULL}')"
        with cursor.copy(statement, bound or None) as copy:
            for chunk in copy:
                buffer.write(chunk)
    if not buffer.getbuffer().nbytes:
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    return pl.read_csv(
        buffer,
        has_header=False,
        new_columns=list(schema),
        schema=schema,
        null_values=COPY_NULL,
        empty_string_is_null=False,
    )


#: Rows written per batch: each batch is one ``executemany`` (or one ``COPY`` chunk), so the
#: Python values of at most this many rows exist at once, however large the frame.
INSERT_BATCH_ROWS = 50_000

#: From this many rows a frame goes into SQLite through an ADBC-written staging file
#: (:func:`_insert_staged`); fewer go through ``executemany``, which needs no file. Staging
#: costs about a millisecond and a file; it saves about 1.5 s a million rows.
STAGE_MIN_ROWS = 5_000

#: A large frame is staged in parts of about this many rows, at most :data:`STAGE_PARTS`:
#: while SQLite copies one part in, ADBC writes the next in a thread of its own (both work
#: outside Python's lock), so the two use two cores. A million observations were written in
#: 2.5 s in 4 parts against 3.7 s in one (the copy 1.4 s, the staging 0.75 s; one machine).
STAGE_PART_ROWS = 250_000

#: The most parts a frame is staged in: each is a database attached until the transaction
#: ends, and SQLite attaches at most ten (fewer when the transaction holds others already).
STAGE_PARTS = 4

#: The prefix of a staging database's name while it is attached to a connection.
_STAGE_PREFIX = "ci_stage_"


def bulk_insert(
    conn: Connection,
    table: str,
    frame: pl.DataFrame,
    *,
    batch_rows: int = INSERT_BATCH_ROWS,
    stage_min_rows: int = STAGE_MIN_ROWS,
    stage_part_rows: int = STAGE_PART_ROWS,
) -> None:
    """Insert a frame's rows (its columns named as the table's) set-based on the caller's
    connection, inside its transaction: PostgreSQL ``COPY`` fed CSV chunks; on SQLite a large
    frame is written by ADBC into a staging file and copied in by one ``INSERT … SELECT``
    (:func:`_insert_staged`), a small one by ``executemany`` fed column lists zipped into
    rows, batch by batch (as is a large one when the transaction has attached as many
    staging databases as SQLite allows). No per-row objects of our own, and the rows join
    the caller's transaction (the one that holds the write lock and records the verdict).
    Datetimes are written as SQLAlchemy writes them (naive UTC text), so the ORM reads them
    back alike."""
    frame = _datetimes_as_stored(frame)
    columns = ", ".join(frame.columns)
    large = frame.height >= stage_min_rows
    if large and (parts := _stage_parts(conn, frame.height, stage_part_rows)):
        _insert_staged(conn, table, frame, columns, batch_rows=batch_rows, parts=parts)
        return
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            for batch in frame.iter_slices(batch_rows):
                buffer = io.BytesIO()
                batch.write_csv(buffer, include_header=False)
                copy.write(buffer.getbuffer())
        return
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' for _ in frame.columns)})"
    for batch in frame.iter_slices(batch_rows):
        rows = list(zip(*(batch.get_column(c).to_list() for c in frame.columns), strict=True))
        conn.exec_driver_sql(sql, rows)


def _stage_parts(conn: Connection, rows: int, part_rows: int) -> int:
    """The parts a frame of ``rows`` is staged in on SQLite: one per ``part_rows``, at most
    :data:`STAGE_PARTS` and no more than the databases the connection may still attach in
    this transaction (0: none, and the frame goes through ``executemany``)."""
    if conn.dialect.name != "sqlite":
        return 0
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    room = raw.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED) - len(conn.info.get(_STAGE_PREFIX, []))
    return max(0, min(-(-rows // max(part_rows, 1)), STAGE_PARTS, room))


def _insert_staged(
    conn: Connection, table: str, frame: pl.DataFrame, columns: str, *, batch_rows: int, parts: int
) -> None:
    """SQLite's bulk path: ADBC's ``adbc_ingest`` writes the frame's Arrow columns into a
    table of a new database file of its own (no Python value per cell, no lock on the app
    database), which the caller's connection attaches and copies from with one
    ``INSERT … SELECT`` of ``columns`` (the frame's, joined), inside its transaction. The
    frame reaches ADBC as a stream of Arrow batches of ``batch_rows``, converted one at a
    time, so no Arrow copy of the whole frame is held beside it.

    A large frame goes in ``parts``, in its order: a thread stages part k + 1 while the
    connection copies part k in (:data:`STAGE_PART_ROWS`). Each part is a file of its own,
    written by ADBC and closed before the connection attaches it.

    ADBC never opens the app database itself. The caller's transaction holds SQLite's write
    lock, and the rows must commit or roll back with the verdict. And ADBC's driver carries
    its own copy of SQLite: two copies in one process with the same file open break each
    other's POSIX locks (sqlite.org, "How To Corrupt An SQLite Database File", 2.2.1); tried
    here for reads, the second copy did not see rows committed in the write-ahead log. A
    staging file is open in one copy at a time: ADBC closes it before it is attached. The
    files are removed once the rows are in (an attached database stays readable through its
    open handle); SQLite cannot detach a database inside a transaction, so the connection
    detaches them when it returns to the pool (:func:`_detach_staged`).
    """
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(tempfile.mkdtemp(prefix="ci-pipeline-stage-"))
    size = -(-frame.height // parts)
    pool = ThreadPoolExecutor(1, thread_name_prefix="ci-pipeline-stage")
    try:
        staged = [
            pool.submit(_stage, folder / f"part-{k}.db", frame.slice(k * size, size), batch_rows)
            for k in range(parts)
        ]
        for future in staged:
            name = f"{_STAGE_PREFIX}{uuid.uuid4().hex}"
            conn.exec_driver_sql(f"ATTACH DATABASE ? AS {name}", (str(future.result()),))
            conn.info.setdefault(_STAGE_PREFIX, []).append(name)
            conn.exec_driver_sql(
                f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM {name}.stage"
            )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # no part is written after this
        shutil.rmtree(folder, ignore_errors=True)


def _stage(path: Path, frame: pl.DataFrame, batch_rows: int) -> Path:
    """The frame written by ADBC into a table ``stage`` of a new database file at ``path``,
    closed when it returns."""
    import adbc_driver_sqlite.dbapi as adbc_sqlite
    import pyarrow as pa

    with adbc_sqlite.connect(str(path)) as stage, stage.cursor() as cursor:
        batches = pa.RecordBatchReader.from_batches(
            frame.head(0).to_arrow().schema, _arrow_batches(frame, batch_rows)
        )
        cursor.adbc_ingest("stage", batches, mode="create")
        stage.commit()
    return path


def _arrow_batches(frame: pl.DataFrame, rows: int) -> Iterator[pa.RecordBatch]:
    """The frame as Arrow record batches, ``rows`` at a time, each converted when it is read."""
    for part in frame.iter_slices(rows):
        yield from part.to_arrow().to_batches()


def _detach_staged(dbapi_conn: Any, record: Any) -> None:
    """Pool ``checkin``: detach the staging databases :func:`_insert_staged` attached (the
    connection's transaction has ended by now, so SQLite allows it). A connection that cannot
    detach one is closed, not reused: its attached databases would pile up."""
    for name in record.info.pop(_STAGE_PREFIX, []):
        if dbapi_conn is None:  # closed already: nothing stays attached
            return
        try:
            dbapi_conn.execute(f"DETACH DATABASE {name}")
        except sqlite3.Error as exc:
            logger.warning("could not detach staging database %s: %s", name, exc)
            record.invalidate(exc)
            return


def _datetimes_as_stored(frame: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as the text SQLAlchemy stores them: naive UTC, microseconds."""
    text_of = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            expr = pl.col(name)
            if dtype.time_zone:
                expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            text_of.append(expr.dt.to_string("%Y-%m-%d %H:%M:%S.%6f"))
    return frame.with_columns(text_of) if text_of else frame
