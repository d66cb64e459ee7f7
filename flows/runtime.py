"""How flows run when the command line calls them in-process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import State
from prefect.utilities.annotations import quote

from ci_pipeline.errors import ConcurrentSubmission, PipelineError

T = TypeVar("T")


def worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """A task's retry condition: retry what may pass next time (the disk, the database, a
    submission accepted at the same moment), never the pipeline's own verdicts (an unknown
    partner, a bad period, invalid definitions): those fail the same way again."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, ConcurrentSubmission) or not isinstance(error, PipelineError)


def passthrough(value: T) -> T:
    """Hand a plain value to a task without Prefect walking through it looking for futures.

    Prefect visits every task argument recursively; for a loaded initiative (dozens of nested
    pydantic models) that cost more than the task itself. This is ``prefect.quote`` typed as
    the value it wraps.
    """
    return cast(T, quote(value))


@contextmanager
def in_process() -> Iterator[None]:
    """Run flows in this process without run heartbeats.

    Heartbeats let a server mark a run crashed when its worker dies; a flow the CLI runs in its
    own process has no worker, and Prefect's heartbeat thread adds up to a second to the end of
    every run (it sleeps in one-second steps before it can be joined). Deployed runs keep them.
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
