"""How flows run when the command line calls them in-process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Flow
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.states import State
from prefect.utilities.annotations import quote

from ci_pipeline import store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.errors import ConcurrentSubmission, PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import Stamps, file_stamps, load_initiative

T = TypeVar("T")
P = ParamSpec("P")


def worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """A task's retry condition: retry what may pass next time (the disk, the database, a
    submission accepted at the same moment), never the pipeline's own verdicts (an unknown
    partner, a bad period, invalid definitions): those fail the same way again."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, ConcurrentSubmission) or not isinstance(error, PipelineError)


#: The one retry policy: task options for steps that touch the disk or the database (and only
#: those, and only idempotent ones). A quick first retry for a passing lock, a longer second.
RETRYING: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": worth_retrying,
}


def context(initiative_dir: str | None) -> tuple[Settings, Initiative, Any]:
    """What a flow works with: the settings, the loaded initiative and an engine on a database
    whose tables exist."""
    settings = get_settings(**({"initiative": Path(initiative_dir)} if initiative_dir else {}))
    initiative = current_initiative(settings.initiative)
    return settings, initiative, store.engine_for(settings.resolved_database_url)


#: The last initiative :func:`current_initiative` loaded, per folder, with its files' stamps.
_LOADED: dict[Path, tuple[Stamps, Initiative]] = {}
_LOADED_LOCK = threading.Lock()


def current_initiative(folder: Path) -> Initiative:
    """The initiative in ``folder`` as its files are now, loaded again only when one of them
    changed (or was added or removed).

    Every flow run loads the definitions (a run may start in a fresh process); in a long-lived
    process (``serve``, the command line's daemon) a file's take-in runs six flows, and loading
    the sample initiative six times cost 0.3 s of each file's wait. Stat-ing its files costs a
    millisecond. The initiative is frozen, so runs can share it.
    """
    folder = Path(folder).resolve()
    stamp = file_stamps(folder) if folder.is_dir() else ()
    with _LOADED_LOCK:
        cached = _LOADED.get(folder)
        if cached is not None and cached[0] == stamp and stamp:
            return cached[1]
    initiative = load_initiative(folder)  # raises for a folder with problems: nothing cached
    with _LOADED_LOCK:
        _LOADED[folder] = (stamp, initiative)
    return initiative


def passthrough(value: T) -> T:
    """Hand a plain value to a task without Prefect walking through it looking for futures.

    Prefect visits every task argument recursively; for a loaded initiative (dozens of nested
    pydantic models) that cost more than the task itself. This is ``prefect.quote`` typed as
    the value it wraps.
    """
    return cast(T, quote(value))


def unwrapped(flow: Flow[P, State[T]]) -> Flow[P, T]:
    """A flow that returns a state (to name its final state, e.g. ``Rejected``) as its
    callers see it: Prefect makes the returned state the run's final state and hands a caller
    its data, so ``flow(...)`` gives ``T`` (and ``return_state=True`` a ``State[T]``), not a
    state. The flow itself is unchanged; this corrects its type only."""
    return cast("Flow[P, T]", flow)


@contextmanager
def in_process() -> Iterator[None]:
    """Run flows in this process without run heartbeats.

    Heartbeats let a server mark a run crashed when its worker dies; a flow the CLI runs in its
    own process has no worker, and Prefect's heartbeat thread adds up to a second to the end of
    every run (it sleeps in one-second steps before it can be joined). Deployed runs keep them.
    """
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def warm_up() -> None:
    """Pay a long-lived process's first-run costs when it starts, not on the first partner's
    file: Prefect checks the API's version once per process before the first run (0.5-0.6 s
    here, the server answering its first request) and imports FastAPI's encoder to serialise
    the first run's parameters (0.2-0.4 s). ``serve`` and the command line's daemon call it.
    Without an API URL it asks nothing (a client would start a temporary server). Either
    way pandera registers its polars backends (:func:`.validate.contract.warm`)."""
    from fastapi.encoders import jsonable_encoder  # noqa: F401  (what Prefect imports then)
    from prefect.settings import get_current_settings

    from ci_pipeline.validate.contract import warm

    warm()
    if not get_current_settings().api.url:
        return
    with get_client(sync_client=True) as client:
        client.raise_for_api_version_mismatch_once()


#: Whether :func:`tag_run` tags in-process runs too (:func:`tagged_in_process`).
_TAG_IN_PROCESS: ContextVar[bool] = ContextVar("tag_in_process", default=False)


@contextmanager
def tagged_in_process() -> Iterator[None]:
    """Tag the in-process runs started inside this block as deployed runs are tagged.

    For a long-lived process on a warm Prefect server (``serve``'s warm lane), where the
    round trip is one quick API call; the command line's runs on a temporary server stay
    untagged (:func:`tag_run`)."""
    token = _TAG_IN_PROCESS.set(True)
    try:
        yield
    finally:
        _TAG_IN_PROCESS.reset(token)


def tag_run(*tags: str) -> None:
    """Add tags to the current deployed flow run (``partner:nahf-council``, ``measure:…``), so
    operators can filter runs by what they worked on. A triggered run is created by an
    automation, which cannot tag it, and some tags are known only once the run has read its
    file; they are added here.

    In-process runs (the CLI's ``submit`` and ``demo``) are left untagged, unless started in
    :func:`tagged_in_process` (``serve``'s warm lane). This round trip
    would make each wait for the temporary server's backlog of task-run events, and tagging
    them at creation (``prefect.tags``) tags their task runs too, which then ask the API for
    tag concurrency slots: measured, 1.2 s per ingest run instead of 0.5 s.
    """
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    # Read from the run in hand: prefect.runtime's helpers ask the API when the answer is None.
    if run is None or not tags or (run.deployment_id is None and not _TAG_IN_PROCESS.get()):
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=sorted({*run.tags, *tags}))
