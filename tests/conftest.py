"""Shared fixtures: the bundled initiative, an isolated data folder, databases, Prefect."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ci_pipeline import demo, store
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings, get_settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import intake
from tests.helpers import (
    IngestedDemo,
    build_demo_database,
    copy_schema,
    ingest_demo,
    postgres_schema,
    postgres_url,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def initiative() -> Initiative:
    return load_initiative(DEFAULT_INITIATIVE)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder; the environment points every setting at it."""
    folder = tmp_path / "home"
    monkeypatch.setenv("CI_PIPELINE_HOME", str(folder))
    # No test leaves the command line's Prefect daemon running unless it asks for one.
    monkeypatch.setenv("CI_PIPELINE_PREFECT_DAEMON_IDLE_SECONDS", "0")
    # setenv first, so monkeypatch restores these even when they were unset (the CLI sets them).
    for name in (
        "CI_PIPELINE_DATABASE_URL",
        "CI_PIPELINE_INITIATIVE",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
        "PREFECT_SERVER_ANALYTICS_ENABLED",
    ):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return folder


@pytest.fixture
def settings(home: Path) -> Settings:
    return get_settings()


@pytest.fixture
def sqlite_engine(settings: Settings) -> Iterator[Engine]:
    engine = store.make_engine(settings.resolved_database_url)
    store.create_schema(engine=engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A fresh schema in the PostgreSQL named by CI_PIPELINE_TEST_POSTGRES_URL (CI sets it)."""
    with postgres_schema(postgres_url()) as (engine, _):
        yield engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each storage test runs on SQLite and, where one is configured, on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def db(engine: Engine, initiative: Initiative) -> Engine:
    """The database of ``engine`` (SQLite, and PostgreSQL where configured) with the
    initiative's definitions: ready for the intake."""
    intake.prepare_database(initiative, engine=engine)
    return engine


# --- the demo, ingested once per database ---------------------------------------------------------


@pytest.fixture(scope="session")
def demo_files(
    initiative: Initiative, tmp_path_factory: pytest.TempPathFactory
) -> list[demo.DemoFile]:
    """The demo's files, generated once (read them, never change them)."""
    return demo.generate(initiative, tmp_path_factory.mktemp("demo-files"))


@pytest.fixture(scope="session")
def sqlite_demo(
    demo_files: list[demo.DemoFile],
    initiative: Initiative,
    tmp_path_factory: pytest.TempPathFactory,
) -> IngestedDemo:
    folder = tmp_path_factory.mktemp("demo-sqlite")
    database = folder / "ci_pipeline.db"
    engine = store.make_engine(f"sqlite:///{database}")
    try:
        built = ingest_demo(demo_files, initiative, engine, folder, str(database))
        with engine.begin() as conn:  # everything in the main file: it is copied alone
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        engine.dispose()
    return built


@pytest.fixture(scope="session")
def postgres_demo(
    demo_files: list[demo.DemoFile],
    initiative: Initiative,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IngestedDemo]:
    with postgres_schema(postgres_url()) as (engine, schema):
        folder = tmp_path_factory.mktemp("demo-postgres")
        yield ingest_demo(demo_files, initiative, engine, folder, schema)


@pytest.fixture(params=["sqlite", "postgres"])
def demo_db(
    request: pytest.FixtureRequest, settings: Settings
) -> Iterator[tuple[IngestedDemo, Engine]]:
    """The ingested demo and this test's own copy of its database, on SQLite (where the
    settings point) and, where one is configured, on PostgreSQL."""
    if request.param == "sqlite":
        built: IngestedDemo = request.getfixturevalue("sqlite_demo")
        target = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built.source, target)
        engine = store.make_engine(settings.resolved_database_url)
        yield built, engine
        engine.dispose()
    else:
        built = request.getfixturevalue("postgres_demo")
        copy = request.getfixturevalue("postgres_engine")
        copy_schema(built.source, copy)
        yield built, copy


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory, sqlite_demo: IngestedDemo) -> Path:
    """The demo as the notices read it (see build_demo_database): copy it, never write."""
    return build_demo_database(tmp_path_factory.mktemp("notices-demo"), Path(sqlite_demo.source))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts the Prefect server must be marked ``slow``, so ``make test-fast``
    (``pytest -m "not slow"``) never waits for one."""
    unmarked = [
        item.nodeid
        for item in items
        if "prefect_harness" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests using prefect_harness must be marked @pytest.mark.slow: " + ", ".join(unmarked)
        )


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect server for every test that runs a flow.

    It evaluates proactive triggers every second (as `ci-pipeline serve`'s server does), so the
    coalescing window of a burst closes on time; and a deployment run that found its
    concurrency slot taken (the trailing run of a burst behind the leading one) asks again
    after 1 s instead of Prefect's 30 s.
    """
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY", "PT1S")
    os.environ.setdefault("PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS", "1")
    with prefect_test_harness(server_startup_timeout=120):
        yield
