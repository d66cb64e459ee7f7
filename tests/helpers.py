"""Helpers shared by several test modules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import Artifact, FlowRun, TaskRun
from prefect.states import State
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from ci_pipeline import cli
from ci_pipeline.config import Settings
from ci_pipeline.flows.runtime import in_process
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake


def ingest(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
) -> intake.Receipt:
    """One file through the intake steps, as the ingest flow runs them, without Prefect."""
    new = intake.receive(path, partner_id, period, initiative=initiative, settings=settings)
    duplicate = intake.duplicate_receipt(new, engine=engine)
    if duplicate is not None:
        return duplicate
    parsed = intake.parse(path, new, encoding=None, initiative=initiative, settings=settings)
    if isinstance(parsed, str):
        return intake.refuse(new, parsed, settings=settings, engine=engine)
    result = intake.check(parsed, new, initiative=initiative, engine=engine)
    return intake.record(new, result, encoding=parsed.encoding, settings=settings, engine=engine)


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


def task_runs(flow_run_id: UUID) -> list[TaskRun]:
    """The task runs of one flow run (at most 50), read back from the Prefect API."""
    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=50
        )


def run_flow(flow: Any, *args: Any, **parameters: Any) -> tuple[Any, UUID]:
    """Run a flow in-process as the command line does; it must complete. Its result and run id."""
    with in_process():
        state: State[Any] = flow(*args, **parameters, return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    return state.result(), flow_run_id


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
