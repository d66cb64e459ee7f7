"""Helpers shared by several test modules."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import Artifact, FlowRun, TaskRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import State
from sqlalchemy import Engine, Integer, create_engine, inspect, text, update
from sqlmodel import SQLModel
from typer.testing import CliRunner, Result

from ci_pipeline import aggregate, alert, cli, demo, detect, store
from ci_pipeline.config import DEFAULT_INITIATIVE, Settings, get_settings
from ci_pipeline.flows.runtime import in_process
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import intake
from ci_pipeline.store import IndicatorSlice, IndicatorValue, Submission

#: Observations as validate.to_observations returns them (and store.accept takes them).
OBSERVATION_SCHEMA: dict[str, Any] = {
    "source_row": pl.Int64,
    "measure_id": pl.Utf8,
    "measure_version": pl.Int64,
    "geo_code": pl.Utf8,
    "period": pl.Utf8,
    "disaggregation": pl.Utf8,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "value": pl.Float64,
}


def new_submission(
    content_hash: str, *, partner_id: str, period: str, file_name: str, received_at: datetime
) -> store.NewSubmission:
    """A UTF-8 CSV file of a beit-hakerem partner, as the store records its arrival."""
    return store.NewSubmission(
        initiative_id="beit-hakerem",
        partner_id=partner_id,
        period=period,
        content_hash=content_hash,
        file_name=file_name,
        file_format="csv",
        encoding="utf-8",
        received_at=received_at,
    )


def finding(
    initiative: Initiative,
    kind: str,
    measure_id: str,
    geo_code: str,
    period: str,
    *,
    subject: str = "",
    value: float,
    reference: float,
    reference_period: str,
    change: float,
    statistic: float,
    message: str,
) -> dict[str, Any]:
    """A hand-made finding (a row of detect.FINDING_SCHEMA) on a measure's total in one place,
    judged with one partner of one expected reporting, nothing folded into it."""
    return {
        "kind": kind,
        "measure_id": measure_id,
        "geo_code": geo_code,
        "disaggregation": initiative.measures[measure_id].total_key,
        "period": period,
        "subject": subject,
        "value": value,
        "reference": reference,
        "reference_period": reference_period,
        "change": change,
        "statistic": statistic,
        "p_value": 0.001,
        "partners_reported": 1,
        "partners_expected": 1,
        "coverage_note": "",
        "folded": 0,
        "message": message,
    }


def findings_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Findings as detection hands them on (with its columns when there are none)."""
    return (
        pl.DataFrame(rows, schema=detect.FINDING_SCHEMA)
        if rows
        else pl.DataFrame(schema=detect.FINDING_SCHEMA)
    )


def write_fund_file(path: Path, value: int = 250_000) -> Path:
    """galilee-foundation's 2025-Q1 file: the new resources (NIS) it brought to beit-hakerem."""
    path.write_text(
        f"measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q1,{value}\n",
        encoding="utf-8",
    )
    return path


def ingest(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    options: dict[str, Any] | None = None,
) -> intake.Receipt:
    """One file received (with the submission's reading ``options``, if any) and through the
    intake steps, as the ingest flow runs them, without Prefect."""
    row = intake.take(
        path,
        partner_id,
        period,
        initiative=initiative,
        settings=settings,
        engine=engine,
        options=options,
    )
    assert row.id is not None
    return ingest_received(row.id, initiative=initiative, settings=settings, engine=engine)


def ingest_received(
    submission_id: int, *, initiative: Initiative, settings: Settings, engine: Engine
) -> intake.Receipt:
    """A received submission through the ingest flow's steps, without Prefect."""
    receipt, _ = intake.ingest(
        submission_id, initiative=initiative, settings=settings, engine=engine
    )
    return receipt


@dataclass(frozen=True)
class IngestedDemo:
    """Every demo file ingested in order without Prefect (as the ingest flow runs the steps),
    once per session and database: each test gets a copy of the database."""

    files: list[demo.DemoFile]
    receipts: list[intake.Receipt]
    source: str  # the SQLite file or the PostgreSQL schema that holds them: copy, never write


def ingest_demo(
    files: list[demo.DemoFile], initiative: Initiative, engine: Engine, folder: Path, source: str
) -> IngestedDemo:
    """The demo's ``files`` ingested in order into ``engine`` (which is ``source``); the
    archive and reports kept in ``folder``."""
    settings = get_settings(home=folder, initiative=DEFAULT_INITIATIVE)
    intake.prepare_database(initiative, engine=engine)
    receipts = [
        ingest(
            f.path, f.partner_id, f.period, initiative=initiative, settings=settings, engine=engine
        )
        for f in files
    ]
    return IngestedDemo(files, receipts, source)


def copy_schema(source: str, engine: Engine) -> None:
    """Copy every row of PostgreSQL schema ``source`` into ``engine``'s (empty) schema, and
    move its id sequences past the copied ids."""
    tables = set(inspect(engine).get_table_names(schema=source))
    with engine.begin() as conn:
        target = conn.execute(text("SELECT current_schema()")).scalar_one()
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in tables:
                continue
            conn.execute(
                text(
                    f'INSERT INTO "{target}"."{table.name}" SELECT * FROM "{source}"."{table.name}"'
                )
            )
            if list(table.primary_key.columns.keys()) == ["id"] and isinstance(
                table.c.id.type, Integer
            ):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{target}\".\"{table.name}\"', 'id'), "
                        f'COALESCE(MAX(id), 0) + 1, false) FROM "{target}"."{table.name}"'
                    )
                )


# --- PostgreSQL ----------------------------------------------------------------------------------

POSTGRES_ENV = "CI_PIPELINE_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The PostgreSQL to test against, or the test is skipped."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL to test against")
    return url


@contextmanager
def postgres_schema(url: str) -> Iterator[tuple[Engine, str]]:
    """A fresh schema with the app's tables, and an engine whose search path is it; dropped
    on exit."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = store.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = _engine_in_schema(url, schema)
    try:
        store.create_schema(engine=engine)
        yield engine, schema
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _engine_in_schema(url: str, schema: str) -> Engine:
    return create_engine(url, connect_args={"options": f"-csearch_path={schema}"})


runner = CliRunner()


def invoke(*args: str) -> Result:
    """Run the command line as a user would."""
    return runner.invoke(cli.app, list(args), prog_name="ci-pipeline")


def flat(text: str) -> str:
    """Help text without rich's boxes and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def as_json(result: Result) -> Any:
    """A command's JSON output, whatever its exit code."""
    return json.loads(result.stdout)


def ok_json(result: Result) -> Any:
    """The JSON output of a command that must have succeeded."""
    assert result.exit_code == 0, result.output
    return as_json(result)


def task_runs(flow_run_id: UUID, *, settle_seconds: float = 15.0) -> list[TaskRun]:
    """The task runs of one finished flow run (at most 50), read back from the Prefect API.

    Prefect 3 records a task run's states from events, after the run has returned; read at
    once, a task that failed can still show ``Pending``, and a late one can be missing. This
    waits (up to ``settle_seconds``) until every task run read back is in a final state and two
    reads 0.3 s apart find the same task runs.
    """
    deadline = time.monotonic() + settle_seconds
    seen: list[UUID] | None = None
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=50
            )
            # Final, and the same task runs twice in a row: a task run whose events are not
            # recorded yet is missing from a read, not only unfinished in it.
            ids = sorted(t.id for t in runs)
            final = all(t.state is not None and t.state.is_final() for t in runs)
            if (final and ids == seen) or time.monotonic() > deadline:
                return runs
            seen = ids
            time.sleep(0.3)


def run_flow(flow: Any, *args: Any, **parameters: Any) -> tuple[Any, UUID]:
    """Run a flow in-process as the command line does; it must complete. Its result and run id."""
    with in_process():
        state: State[Any] = flow(*args, **parameters, return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return state.result(), flow_run_id


def runs_named(name: str) -> list[FlowRun]:
    """The flow runs of this name (at most 50), newest first, read back from the Prefect API."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=50,
        )


def children(flow_run_id: UUID) -> dict[str, FlowRun]:
    """The subflow runs of a run, by flow name."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            ),
            limit=20,
        )
        return {client.read_flow(r.flow_id).name: r for r in runs}


def read_run(flow_run_id: UUID) -> FlowRun:
    """A flow run, read back from the Prefect API."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def task_names(flow_run_id: UUID) -> list[str]:
    """The tasks a run ran, in order, by task name (a task run is named ``<task>-<key>``)."""
    runs = sorted(task_runs(flow_run_id), key=lambda t: str(t.expected_start_time))
    return [t.name.rsplit("-", 1)[0] for t in runs]


def artifact(key: str, flow_run_id: UUID) -> Artifact:
    """The one artifact a run published under ``key``."""
    with get_client(sync_client=True) as client:
        [found] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            ),
            limit=10,
        )
    return found


# --- the demo as the notices read it -------------------------------------------------------------

#: Every demo submission's arrival, and when its indicators were computed.
RECEIVED = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
COMPUTED = RECEIVED + timedelta(minutes=30)


def build_demo_database(folder: Path, ingested: Path) -> Path:
    """The demo (``ingested``: every file ingested, see tests/conftest.py) processed and
    alerted as of its day, in ``folder``; the database file is returned (copy it: tests
    change what they read)."""
    database = folder / "ci_pipeline.db"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ingested, database)
    settings = get_settings(
        home=folder,
        database_url=f"sqlite:///{database}",
        initiative=DEFAULT_INITIATIVE,
        alert_urls=[],
        engineer_urls=[],
        alert_routes={},
    )
    initiative = load_initiative(DEFAULT_INITIATIVE)
    engine = store.make_engine(settings.resolved_database_url)
    try:
        aggregate.refresh_indicators(initiative, engine=engine)
        judgement = detect.judge(
            initiative, engine=engine, settings=settings, as_of=demo.DEMO_AS_OF
        )
        alert.record_alerts(judgement, initiative, settings=settings, engine=engine)
        with engine.begin() as conn:
            conn.execute(update(Submission).values(received_at=RECEIVED))
            conn.execute(update(IndicatorValue).values(computed_at=COMPUTED))
            conn.execute(update(IndicatorSlice).values(computed_at=COMPUTED))
        with engine.begin() as conn:  # everything in the main file: it is copied alone
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        engine.dispose()
    return database
