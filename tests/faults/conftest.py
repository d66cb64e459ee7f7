"""Fixtures of the fault tests: the database every storage test runs on (SQLite and
PostgreSQL), with the initiative's definitions."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake


@pytest.fixture
def db(engine: Engine, initiative: Initiative) -> Engine:
    intake.prepare_database(initiative, engine=engine)
    return engine
