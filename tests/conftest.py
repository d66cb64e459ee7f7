"""Shared fixtures: the bundled initiative, an isolated data folder, databases, Prefect."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings, get_settings
from ci_pipeline.model.initiative import Initiative, load_initiative

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_ENV = "CI_PIPELINE_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def initiative() -> Initiative:
    return load_initiative(DEFAULT_INITIATIVE)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder; the environment points every setting at it."""
    folder = tmp_path / "home"
    monkeypatch.setenv("CI_PIPELINE_HOME", str(folder))
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
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL to test against")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = store.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = _engine_in_schema(url, schema)
    store.create_schema(engine=engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _engine_in_schema(url: str, schema: str) -> Engine:
    from sqlalchemy import create_engine

    return create_engine(url, connect_args={"options": f"-csearch_path={schema}"})


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each storage test runs on SQLite and, where one is configured, on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "postgres_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


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
    coalescing window of a burst closes on time.
    """
    from prefect.testing.utilities import prefect_test_harness

    os.environ.setdefault("PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY", "PT1S")
    with prefect_test_harness(server_startup_timeout=120):
        yield
