"""The store's schema, owned by Alembic: every entry point upgrades the database to the head.

``create_all`` only creates missing tables; it never adds a column to a table that exists, so a
release that changes a table needs a revision in ``migrations/versions``. Alembic runs in code,
on the caller's engine: no ``alembic.ini``. To add a revision::

    python -m ci_pipeline.store.migrate revision -m "what changed"

A database made by a release before migrations (tables made by ``create_all``, no
``alembic_version``) is upgraded from the start like an empty one: revision ``0001`` makes only
the tables it lacks (a release before the API had no ``api_token``), after checking that the
tables it has hold every column of ``0001``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text
from sqlmodel import SQLModel

from ci_pipeline.errors import PipelineError

MIGRATIONS = Path(__file__).with_name("migrations")
#: What a database made by the release before migrations is at.
BASELINE = "0001"
#: The PostgreSQL advisory lock that serialises upgrades (any fixed 32-bit number would do).
LOCK_KEY = zlib.crc32(b"ci_pipeline.store.migrate")


def metadata() -> MetaData:
    """Every table of the store, ``api_token`` included (its module registers it on import)."""
    from ci_pipeline.store import tables  # noqa: F401  (every table registers on import)

    return SQLModel.metadata


def _config(connection: Connection | None = None) -> Config:
    config = Config(attributes={"connection": connection})
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")  # versions/0002_add_x.py
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()  # raises if the versions have two heads
    if head is None:
        raise RuntimeError(f"no revision in {MIGRATIONS / 'versions'}")
    return head


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def current_revision(*, engine: Engine) -> str | None:
    """The revision the database is at; ``None`` when it has none (empty, or made before
    migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(*, engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the head, by default); nothing to do costs one query.

    Two processes upgrading at once do not collide: the second waits for the first (an advisory
    lock on PostgreSQL, SQLite's write lock) and then finds nothing left to do. On PostgreSQL the
    whole upgrade is one transaction; SQLite commits only at the end too, so a failed revision
    leaves the database as it was.
    """
    if current_revision(engine=engine) == (head_revision() if revision == "head" else revision):
        return
    with _migrating(engine) as conn:
        if MigrationContext.configure(conn).get_current_revision() is None:
            _check_made_before_migrations(conn)
        command.upgrade(_config(conn), revision)


def drop(*, engine: Engine) -> None:
    """Drop every table of the store and Alembic's ``alembic_version``."""
    with engine.begin() as conn:
        metadata().drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that no other upgrade runs beside; committed at the end."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # A later revision rebuilds a SQLite table to alter it (drop, then rename a copy):
            # with foreign keys enforced, dropping a table others refer to fails. SQLite's own
            # recipe: keys off (a no-op inside a transaction, so first), checked before commit.
            keys_on = conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock: another upgrade waits
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        try:
            yield conn
            if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").first()):
                raise PipelineError(f"the upgrade broke a foreign key: {tuple(broken)}")
            conn.commit()
        finally:
            conn.rollback()  # after a commit, a no-op; the advisory lock went with the transaction
            if sqlite and keys_on:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _check_made_before_migrations(conn: Connection) -> None:
    """Refuse a database whose store tables lack columns of ``BASELINE``.

    Tables a release made hold every column it had: a table without one was not made by
    ci-pipeline (or was changed by hand), and is refused rather than guessed at. Missing tables
    are fine: ``BASELINE`` makes them.
    """
    existing = _columns(conn)
    expected = _baseline_columns()
    missing = [
        f"{table}.{column}"
        for table in expected.keys() & existing.keys()
        for column in sorted(expected[table] - existing[table])
    ]
    if missing:
        raise PipelineError(
            f"the database has the store's tables without columns of revision {BASELINE}; "
            f"missing: {', '.join(sorted(missing))}. It was not made by ci-pipeline, or was "
            "changed by hand: not upgraded"
        )


def _columns(conn: Connection) -> dict[str, set[str]]:
    found = inspect(conn)
    return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names()}


@cache
def _baseline_columns() -> dict[str, set[str]]:
    """The tables and columns of revision ``BASELINE``, read from a scratch database made by it."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            command.upgrade(_config(conn), BASELINE)
            columns = _columns(conn)
    finally:
        scratch.dispose()
    columns.pop("alembic_version")
    return columns


# --- authoring -----------------------------------------------------------------------------------


def new_revision(message: str) -> Path:
    """Write the next revision, autogenerated: the models compared with a scratch SQLite
    database at the head. Read it before committing: autogenerate misses renames and data."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = create_engine(f"sqlite:///{folder}/scratch.db")
        try:
            upgrade(engine=scratch)
            with scratch.begin() as conn:
                script = command.revision(
                    _config(conn), message=message, autogenerate=True, rev_id=_next_id()
                )
        finally:
            scratch.dispose()
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    for args in (["check", "--fix", "--quiet"], ["format", "--quiet"]):
        subprocess.run([sys.executable, "-m", "ruff", *args, str(path)], check=False)
    return path


def _next_id() -> str:
    numbers = [int(r) for r in revisions() if r.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ci_pipeline.store.migrate")
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="autogenerate the next revision")
    revision.add_argument("-m", "--message", required=True, help="what the revision changes")
    commands.add_parser("heads", help="print the head revision")
    args = parser.parse_args(argv)
    if args.command == "revision":
        print(new_revision(args.message))
    else:
        print(head_revision())


if __name__ == "__main__":
    main()
