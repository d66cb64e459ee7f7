"""Schema migrations: every database the project made reaches the head revision, data intact.

Each test runs on SQLite and on PostgreSQL (``engine``). The fixtures here start from that
engine's database and drop its tables, so a test can begin from an empty database or from one
the release before migrations left.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ci_pipeline import store
from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import tokens
from ci_pipeline.store import migrate
from tests.helpers import ingest, write_fund_file

FUND, QUARTER = "galilee-foundation", "2025-Q1"
AT = datetime(2025, 4, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def empty(engine: Engine) -> Engine:
    """A database without a table (``drop_schema`` takes ``alembic_version`` too)."""
    store.drop_schema(engine=engine)
    assert inspect(engine).get_table_names() == []
    return engine


def before_migrations(engine: Engine) -> Engine:
    """Make ``engine``'s empty database what the release before migrations left: the tables of
    revision ``0001`` (that release's models), and no ``alembic_version``."""
    migrate.upgrade(engine=engine, revision=migrate.BASELINE)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
    return engine


@pytest.fixture
def legacy(empty: Engine) -> Engine:
    """A database as the release before migrations made it (``create_all``, no revision)."""
    return before_migrations(empty)


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def utc(value: Any) -> Any:
    """Datetimes compared as aware UTC: SQLite returns them naive, PostgreSQL in its zone."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def contents(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the store, ordered by primary key, as the database has them
    (reflected, so whatever revision the database is at)."""
    ours = set(migrate.metadata().tables)
    found = sa.MetaData()
    with engine.connect() as conn:
        found.reflect(conn, only=lambda name, _: name in ours)
        return {
            name: [
                {key: utc(value) for key, value in row.items()}
                for row in conn.execute(
                    table.select().order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for name, table in found.tables.items()
        }


def differences(engine: Engine, metadata: sa.MetaData) -> list[Any]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


# --- an empty database ---------------------------------------------------------------------------


def test_an_empty_database_is_upgraded_to_exactly_the_models(empty: Engine) -> None:
    assert migrate.current_revision(engine=empty) is None

    store.create_schema(engine=empty)

    assert migrate.current_revision(engine=empty) == migrate.head_revision()
    assert tables(empty) == set(migrate.metadata().tables) | {"alembic_version"}
    assert "api_token" in tables(empty)
    # Autogenerate's own comparison: a model changed without a revision fails here.
    assert differences(empty, migrate.metadata()) == []


def test_the_comparison_sees_a_column_that_has_no_revision(empty: Engine) -> None:
    store.create_schema(engine=empty)
    changed = sa.MetaData()
    for table in migrate.metadata().tables.values():
        table.to_metadata(changed)
    changed.tables["initiative"].append_column(sa.Column("note", sa.String(), nullable=True))

    [(kind, _schema, table, column)] = differences(empty, changed)

    assert (kind, table, column.name) == ("add_column", "initiative", "note")


# --- a database from before migrations -----------------------------------------------------------


def populate_legacy(engine: Engine) -> None:
    """A row in every table the database has, as :data:`ROWS` gives them (the store's
    functions write today's columns, which a database before migrations lacks)."""
    found = sa.MetaData()
    with engine.begin() as conn:
        found.reflect(conn)
        for name in ROWS:  # in the order foreign keys need
            if name not in found.tables:
                continue
            table = found.tables[name]
            conn.execute(table.insert(), written_as(table, ROWS[name]))
            if engine.dialect.name == "postgresql" and isinstance(
                getattr(table.c, "id", None) is not None and table.c.id.type, sa.Integer
            ):
                # Rows written with their ids: the next id comes after them, as it would.
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )


def written_as(table: sa.Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with only the columns ``table`` has (a table at an earlier revision)."""
    names = [c.name for c in table.columns]
    return [{k: r[k] for k in names if k in r} for r in rows]


def populate(engine: Engine, initiative: Initiative, settings: Settings, folder: Path) -> None:
    """A row in every table, through the store's functions where it has them."""
    store.sync_initiative(initiative, engine=engine)
    fund_file = write_fund_file(folder / "fund_2025-Q1.csv")
    receipts = [
        ingest(fund_file, FUND, QUARTER, initiative=initiative, settings=settings, engine=engine)
        for _ in range(2)
    ]
    assert [r.status for r in receipts] == ["accepted", "duplicate"]
    tokens.issue(initiative, FUND, engine=engine, label="grants office")
    cell = {
        "measure_id": "new-resources-nis",
        "geo_code": "beit-hakerem",
        "period": QUARTER,
        "disaggregation": "",
        "value": 250000.0,
        "numerator": None,
        "denominator": None,
        "partners_reported": 1,
        "partners_expected": 2,
        "coverage": 0.5,
        "lineage": str(receipts[0].submission_id),
        "suppressed": False,
        "suppression": None,
    }
    store.replace_indicators(
        "beit-hakerem",
        [("new-resources-nis", QUARTER)],
        pl.DataFrame([cell], schema=frames.STORED_INDICATOR_SCHEMA),
        engine=engine,
    )
    with Session(engine) as session:
        alert = store.Alert(
            initiative_id="beit-hakerem",
            kind="regression",
            measure_id="new-resources-nis",
            geo_code="beit-hakerem",
            disaggregation="",
            period=QUARTER,
            message="new resources fell",
        )
        session.add(alert)
        session.flush()
        assert alert.id is not None
        session.add(store.OutboxMessage(alert_id=alert.id, channel="file:///tmp/alerts.log"))
        session.commit()


def test_a_database_from_before_migrations_is_upgraded_with_its_data(
    legacy: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    populate_legacy(legacy)
    before = contents(legacy)
    assert {name: len(rows) for name, rows in before.items()} == {
        name: len(rows)
        for name, rows in ROWS.items()
        if name not in {"received_file", "submission_slice", "indicator_slice"}  # later tables
    }
    assert before["observation"][0]["value"] == 250000.0
    assert migrate.current_revision(engine=legacy) is None

    store.create_schema(engine=legacy)

    assert migrate.current_revision(engine=legacy) == migrate.head_revision()
    after = contents(legacy)
    assert after["received_file"] == []  # the later revisions' tables and columns, empty
    # ... but for the slice tables, filled from the observations and cells stored
    assert after["submission_slice"] == ROWS["submission_slice"]
    assert after["indicator_slice"] == ROWS["indicator_slice"]
    assert all(r["options"] is None for r in after["submission"])
    assert {
        name: [{k: row[k] for k in rows[0]} for row in after[name]] for name, rows in before.items()
    } == before
    # ... and the store works on it: the next file is stored beside the old ones.
    store.sync_initiative(initiative, engine=legacy)
    corrected = write_fund_file(tmp_path / "corrected.csv", 260_000)
    receipt = ingest(
        corrected, FUND, QUARTER, initiative=initiative, settings=settings, engine=legacy
    )
    assert receipt.status == "accepted"
    assert {
        name: [{k: row[k] for k in rows[0]} for row in contents(legacy)[name][: len(rows)]]
        for name, rows in before.items()
        if name in ("submission", "observation", "alert")
    } == {name: before[name] for name in ("submission", "observation", "alert")}


def test_a_table_without_columns_of_the_first_revision_is_refused(empty: Engine) -> None:
    with empty.begin() as conn:  # an initiative table with two of its columns, no outbox
        conn.execute(sa.text("CREATE TABLE initiative (id VARCHAR PRIMARY KEY, name VARCHAR)"))
    models = migrate.metadata()
    models.create_all(
        empty, tables=[t for n, t in models.tables.items() if n not in ("initiative", "outbox")]
    )

    with pytest.raises(PipelineError) as refused:
        store.create_schema(engine=empty)

    assert (
        "missing: initiative.digest, initiative.indicators_digest, initiative.loaded_at, "
        "initiative.version. It was not made by ci-pipeline"
    ) in str(refused.value)
    assert migrate.current_revision(engine=empty) is None
    assert "outbox" not in tables(empty) and "alembic_version" not in tables(empty)


def test_a_database_from_before_a_table_existed_gets_that_table(empty: Engine) -> None:
    """The release before the intake API had every table but ``api_token``: the upgrade makes
    it, and leaves the rest (and their rows) alone."""
    before_migrations(empty)
    with empty.begin() as conn:
        conn.execute(sa.text("DROP TABLE api_token"))
        conn.execute(
            sa.text(
                "INSERT INTO initiative (id, name, version, digest, loaded_at) "
                "VALUES ('x', 'X', '1', 'd', '2025-01-01')"
            )
        )

    store.create_schema(engine=empty)

    assert "api_token" in tables(empty)
    assert migrate.current_revision(engine=empty) == migrate.head_revision()
    with empty.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM initiative")).scalars().all() == ["x"]


# --- one revision to the next ---------------------------------------------------------------------

#: An accepted submission of revision 0001.
SUBMISSION: dict[str, Any] = {
    "id": 1,
    "initiative_id": "ini",
    "partner_id": "fund",
    "period": "2025-Q1",
    "content_hash": "a" * 64,
    "file_name": "fund.csv",
    "file_format": "csv",
    "encoding": "utf-8",
    "status": "accepted",
    "received_at": AT,
    "validated_at": AT,
    "rows_total": 1,
    "rows_accepted": 1,
    "rows_rejected": 0,
    "issues": 0,
    "report_path": "reports/1.html",
    "archive_path": None,
    "message": None,
    "supersedes": None,
    "superseded_by": None,
    "duplicate_of": None,
    "rows_added": None,
    "rows_removed": None,
    "rows_changed": None,
}
#: A row for every table of revision 0001, with the columns it has. A later revision that adds a
#: table or a required column extends this, and its own test checks what it computes.
ROWS: dict[str, list[dict[str, Any]]] = {
    "initiative": [
        {
            "id": "ini",
            "name": "An initiative",
            "version": "1",
            "digest": "d1",
            "loaded_at": AT,
            "indicators_digest": "d0",
        }
    ],
    "geography": [
        {
            "initiative_id": "ini",
            "code": "town",
            "level": "locality",
            "parent": None,
            "name_en": "Town",
            "name_he": "עיר",
            "name_ar": "مدينة",
        }
    ],
    "partner": [
        {
            "initiative_id": "ini",
            "id": "fund",
            "name": "A fund",
            "sector": "philanthropy",
            "localities": '["town"]',
            "measures": '["m"]',
            "submits_every": "quarter",
            "contact_email": "fund@example.org",
        }
    ],
    "measure": [
        {
            "initiative_id": "ini",
            "id": "m",
            "version": 1,
            "title": "M",
            "unit": "count",
            "periodicity": "quarter",
            "definition": "{}",
            "loaded_at": AT,
        }
    ],
    "submission": [SUBMISSION, SUBMISSION | {"id": 2, "status": "duplicate", "duplicate_of": 1}],
    # 0002: the received bytes (the submission's new columns are nullable, absent before it).
    "received_file": [
        {"content_hash": "a" * 64, "size_bytes": 3, "content": b"a,b", "stored_at": AT}
    ],
    "observation": [
        {
            "id": 1,
            "submission_id": 1,
            "partner_id": "fund",
            "measure_id": "m",
            "measure_version": 1,
            "geo_code": "town",
            "period": "2025-Q1",
            "disaggregation": "",
            "numerator": None,
            "denominator": None,
            "value": 250000.0,
            "source_row": 2,
        }
    ],
    "submission_slice": [{"submission_id": 1, "measure_id": "m", "period": "2025-Q1"}],
    "indicator_slice": [
        {
            "initiative_id": "ini",
            "measure_id": "m",
            "period": "2025-Q1",
            "lineage": "1",
            "computed_at": AT,
        }
    ],
    "indicator_value": [
        {
            "initiative_id": "ini",
            "measure_id": "m",
            "geo_code": "town",
            "period": "2025-Q1",
            "disaggregation": "",
            "value": 250000.0,
            "numerator": None,
            "denominator": None,
            "partners_reported": 1,
            "partners_expected": 2,
            "coverage": 0.5,
            "suppressed": False,
            "suppression": None,
            "lineage": "1",
            "computed_at": AT,
        }
    ],
    "alert": [
        {
            "id": 1,
            "initiative_id": "ini",
            "kind": "regression",
            "measure_id": "m",
            "geo_code": "town",
            "disaggregation": "",
            "period": "2025-Q1",
            "subject": "",
            "working_group": None,
            "status": "open",
            "verified": True,
            "message": "m fell",
            "evidence": "{}",
            "first_seen_at": AT,
            "last_seen_at": AT,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "resolved_at": None,
            "notifications": 1,
            "last_notified_at": AT,
        }
    ],
    "outbox": [
        {
            "id": 1,
            "alert_id": 1,
            "channel": "file:///alerts.log",
            "round": 0,
            "audience": "backbone",
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": AT,
            "last_error": None,
            "created_at": AT,
            "sent_at": AT,
        }
    ],
    "api_token": [
        {
            "id": 1,
            "initiative_id": "ini",
            "partner_id": "fund",
            "token_hash": "b" * 64,
            "prefix": "cip_abcd",
            "label": None,
            "created_at": AT,
            "revoked_at": None,
            "last_used_at": None,
        }
    ],
}


@pytest.mark.parametrize("revision", migrate.revisions())
def test_a_database_at_each_revision_is_upgraded_with_its_data(
    empty: Engine, revision: str
) -> None:
    migrate.upgrade(engine=empty, revision=revision)
    assert migrate.current_revision(engine=empty) == revision
    found = sa.MetaData()
    with empty.begin() as conn:
        found.reflect(conn)
        present = set(found.tables) - {"alembic_version"}
        assert present <= set(ROWS)  # a row for every table
        written = {
            name: written_as(found.tables[name], ROWS[name]) for name in ROWS if name in present
        }
        for name, rows in written.items():
            conn.execute(found.tables[name].insert(), rows)

    store.create_schema(engine=empty)

    assert migrate.current_revision(engine=empty) == migrate.head_revision()
    after = contents(empty)
    for name, rows in written.items():
        assert [{key: row[key] for key in rows[0]} for row in after[name]] == rows, name


def test_the_slice_tables_are_filled_from_what_is_stored(empty: Engine) -> None:
    """A database at 0002 with an observation and an indicator cell: revision 0003 fills the
    slice tables from them (submission 1 behind m 2025-Q1, whose cells carry lineage "1"), so
    the upgraded database finds the same slices stale as before: none."""
    migrate.upgrade(engine=empty, revision="0002")
    found = sa.MetaData()
    with empty.begin() as conn:
        found.reflect(conn)
        for name in ROWS:  # in order: a row's foreign keys first
            if name in found.tables:
                conn.execute(
                    found.tables[name].insert(), written_as(found.tables[name], ROWS[name])
                )

    store.create_schema(engine=empty)

    after = contents(empty)
    assert after["submission_slice"] == ROWS["submission_slice"]
    assert after["indicator_slice"] == ROWS["indicator_slice"]
    assert store.stale_slices("ini", engine=empty) == []


# --- repeated and concurrent upgrades -----------------------------------------------------------


def test_upgrading_again_changes_nothing(
    engine: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    populate(engine, initiative, settings, tmp_path)
    before = contents(engine)
    schema = differences(engine, migrate.metadata())

    store.create_schema(engine=engine)
    migrate.upgrade(engine=engine)

    assert contents(engine) == before
    assert differences(engine, migrate.metadata()) == schema == []
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [v for (v,) in versions] == [migrate.head_revision()]


#: What each process runs: the store's own entry point, once both are ready.
UPGRADER = (
    "import sys; from ci_pipeline import store; engine = store.make_engine(sys.argv[1]); "
    "print('ready', flush=True); sys.stdin.readline(); store.create_schema(engine=engine)"
)


def test_two_processes_upgrading_at_once_do_not_collide(empty: Engine) -> None:
    url = empty.url
    if empty.dialect.name == "postgresql":  # the other processes work in this test's schema too
        with empty.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    command = [sys.executable, "-c", UPGRADER, url.render_as_string(hide_password=False)]
    children = [
        subprocess.Popen(command, stdin=PIPE, stdout=PIPE, stderr=PIPE, text=True) for _ in range(2)
    ]
    try:
        for child in children:  # both have imported everything: start them at the same moment
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        errors = [child.communicate(timeout=120)[1] for child in children]
    finally:
        for child in children:
            child.kill()

    assert [child.returncode for child in children] == [0, 0], errors
    assert migrate.current_revision(engine=empty) == migrate.head_revision()
    assert differences(empty, migrate.metadata()) == []


# --- a later revision ---------------------------------------------------------------------------

REBUILD = '''"""Rebuild a table others refer to (SQLite alters it by copying it)."""

from alembic import op

revision = "9999"
down_revision = "{down}"


def upgrade() -> None:
    with op.batch_alter_table("initiative") as batch:
        batch.alter_column("name", nullable=True)
'''


@pytest.fixture
def later_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The migrations, copied, with one more revision on top: it alters ``initiative``."""
    location = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, location, ignore=shutil.ignore_patterns("__pycache__"))
    down = migrate.head_revision()
    (location / "versions" / "9999_rebuild.py").write_text(REBUILD.format(down=down))
    monkeypatch.setattr(migrate, "MIGRATIONS", location)
    migrate._scripts.cache_clear()
    yield "9999"
    migrate._scripts.cache_clear()


def test_a_later_revision_alters_a_table_that_others_refer_to(
    engine: Engine, initiative: Initiative, later_revision: str
) -> None:
    store.sync_initiative(initiative, engine=engine)
    before = contents(engine)

    store.create_schema(engine=engine)

    assert migrate.current_revision(engine=engine) == later_revision
    name = next(c for c in inspect(engine).get_columns("initiative") if c["name"] == "name")
    assert name["nullable"] is True
    assert contents(engine) == before
    # The foreign keys still hold (SQLite's are switched back on after the upgrade).
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO geography (initiative_id, code, level, name_en) "
                "VALUES ('nowhere', 'x', 'locality', 'X')"
            )
        )
