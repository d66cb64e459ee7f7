"""The demo's mark in a database it made, so ``demo --reset`` drops only such a database.

The mark is a one-row table of its own, ``ci_pipeline_demo``, outside the store's schema (no
revision makes it, and only a database the demo found empty has it): the token the demo also
wrote under ``CI_PIPELINE_HOME``. Every function takes the database URL and uses an engine of
its own, disposed before it returns: it must look at a database without upgrading it (as
:func:`~ci_pipeline.store.db.engine_for` would), and without creating a SQLite file that is not
there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Column, Engine, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import make_url

from ci_pipeline.store.db import make_engine
from ci_pipeline.store.migrate import metadata

#: The table that holds the mark (its own metadata: never part of the store's schema).
DEMO_MARK_TABLE = Table(
    "ci_pipeline_demo", MetaData(), Column("token", String(64), primary_key=True)
)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or one in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def database_is_empty(url: str) -> bool:
    """Whether the database holds no table at all (a SQLite file that is not there is empty)."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return True
    with _engine(url) as engine:
        return not inspect(engine).get_table_names()


def demo_mark(url: str) -> str | None:
    """The demo's token in the database, or None if the demo did not mark it."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    with _engine(url) as engine, engine.connect() as conn:
        if not inspect(conn).has_table(DEMO_MARK_TABLE.name):
            return None
        return conn.execute(select(DEMO_MARK_TABLE.c.token)).scalars().first()


def mark_demo_database(url: str, token: str) -> None:
    """Mark the database as the demo's with ``token`` (the caller found it empty)."""
    with _engine(url) as engine, engine.begin() as conn:
        DEMO_MARK_TABLE.create(conn, checkfirst=True)
        conn.execute(DEMO_MARK_TABLE.delete())
        conn.execute(DEMO_MARK_TABLE.insert().values(token=token))


def drop_demo_database(url: str) -> None:
    """Drop every table of the store, Alembic's ``alembic_version`` and the demo's mark."""
    with _engine(url) as engine, engine.begin() as conn:
        metadata().drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        DEMO_MARK_TABLE.drop(conn, checkfirst=True)
