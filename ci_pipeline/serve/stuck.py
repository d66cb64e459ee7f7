"""Flow runs left behind by a process that is gone: found, finished, their slots released.

A runner that is killed (a crash, ``kill -9``, a machine that lost power) leaves the runs it had
claimed in a non-final state: ``Submitting``/``Pending`` (the deployment's concurrency slot
secured, the process not yet started) or ``Running``/``Cancelling`` (the process gone). Each
one holds a slot of its deployment's concurrency limit, so ``on-received`` (limit 2) stops
ingesting once two are stuck. Prefect frees such a slot only when the run leaves that state.

The evidence that a run's process is alive is Prefect's own: every flow run process sends a
``prefect.flow-run.heartbeat`` event (``serve``'s runner asks for one every
:data:`HEARTBEAT_SECONDS`). :func:`find_stuck_runs` reads the runs of the given deployments (and
no others) and judges each with :func:`stuck_reason`:

* ``Pending`` (``Submitting`` included) for longer than ``Bounds.pending``: its process never
  reached ``Running``;
* ``Running`` or ``Cancelling`` with no sign of life (a heartbeat, or entering that state) for
  longer than ``Bounds.silent`` (:data:`MISSED_HEARTBEATS` heartbeats missed);
* any of those when the caller knows no process can be running them (``orphaned``: ``serve``
  just started its own Prefect server, or its runner has stopped).

:func:`finish_stuck_runs` sets each ``Crashed`` with a message saying why (``Cancelled`` for a
``Cancelling`` run: the one state Prefect lets it go to). Leaving ``Pending``/``Running`` is
what releases the run's deployment concurrency slot (Prefect's ``ReleaseFlowConcurrencySlots``
rule: it revokes the run's lease, or gives the slot back directly when the server lost the
lease, as an in-memory lease store does when the server restarts). The proposal is not forced,
so a run that finished in the meantime keeps its own final state.

Why a sweep and not (only) Prefect's documented "crash zombie flows" automation (a proactive
trigger on a missing heartbeat): that automation sees only runs that sent a heartbeat, so it
never finishes a run stuck in ``Submitting`` — the runs of the incident — and a trigger's
window cannot tell "the runner restarted, so nothing is running" apart from "quiet for a
while". One sweep with one rule covers all of them and logs what it did.

When the events cannot be read (an events outage), no ``Running`` run is judged on missing
heartbeats — absence of evidence is not evidence — the outage is logged as such, and the next
sweep catches up.

:func:`sweeping` runs the sweep when ``serve`` starts, every :data:`SWEEP_SECONDS` while it
runs, and once more after its runner stopped; each finished run is logged at WARNING by name.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas import OrchestrationResult
    from prefect.client.schemas.objects import FlowRun

#: How often a flow run process started by ``serve``'s runner sends a heartbeat (Prefect's
#: minimum; its default is 180 s). Workers on other machines should set
#: ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` to the same.
HEARTBEAT_SECONDS = 30

#: A ``Running`` run is stuck after this many heartbeats in a row did not come.
MISSED_HEARTBEATS = 4

#: A run still ``Pending``/``Submitting`` after this long never got its process started (a
#: local process reaches ``Running`` in seconds).
PENDING_SECONDS = 120

#: How often ``serve`` sweeps.
SWEEP_SECONDS = 60

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounds:
    """How long a run may stay in a non-final state without a sign of life."""

    pending: timedelta = timedelta(seconds=PENDING_SECONDS)
    silent: timedelta = timedelta(seconds=HEARTBEAT_SECONDS * MISSED_HEARTBEATS)


@dataclass(frozen=True)
class StuckRun:
    """A run whose process is gone, and why that is known."""

    id: UUID
    name: str
    deployment: str
    state: str  # the state's name as found: Submitting, Pending, Running, Cancelling
    reason: str

    @property
    def message(self) -> str:
        """The message of the final state it is given."""
        return f"ci-pipeline found this run stuck: {self.reason}. Its concurrency slot is released."


def _seconds(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())} s"


def stuck_reason(
    state_type: str,
    state_name: str,
    since: datetime,
    last_heartbeat: datetime | None,
    *,
    now: datetime,
    bounds: Bounds = Bounds(),
    orphaned: bool = False,
) -> str | None:
    """Why a run in ``state_type`` (entered at ``since``) is stuck as of ``now``, or None.

    ``state_type`` is Prefect's (``PENDING``, ``RUNNING``, ``CANCELLING``; any other is never
    stuck here: ``Scheduled`` runs wait by design, ``Paused`` ones for a person). A heartbeat
    counts only for ``Running``/``Cancelling``: a ``Pending`` run has no process to send one.
    """
    if state_type not in ("PENDING", "RUNNING", "CANCELLING"):
        return None
    if orphaned:
        return f"{state_name} when no runner was left to run it (serve restarted or stopped)"
    if state_type == "PENDING":
        waited = now - since
        if waited > bounds.pending:
            return (
                f"{state_name} for {_seconds(waited)} (longer than {_seconds(bounds.pending)}): "
                "its process never started"
            )
        return None
    last_sign = max(since, last_heartbeat) if last_heartbeat else since
    silent = now - last_sign
    if silent > bounds.silent:
        what = (
            f"last heartbeat {_seconds(silent)} ago"
            if last_sign > since
            else f"for {_seconds(silent)} without a heartbeat"
        )
        return f"{state_name}, {what} (more than {_seconds(bounds.silent)}): its process is gone"
    return None


async def deployment_ids(names: Sequence[str], *, client: PrefectClient) -> dict[UUID, str]:
    """The ids of the deployments named ``flow/deployment`` that exist on the server (one not
    registered yet has no runs to sweep)."""
    from prefect.exceptions import ObjectNotFound

    found: dict[UUID, str] = {}
    for name in names:
        try:
            found[(await client.read_deployment_by_name(name)).id] = name
        except ObjectNotFound:
            continue
    return found


async def _unfinished_runs(ids: Sequence[UUID], *, client: PrefectClient) -> list[FlowRun]:
    """Every run of these deployments in Pending, Running or Cancelling, page by page."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    flow_run_filter = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=list(ids)),
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(
                any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
            )
        ),
    )
    runs: list[FlowRun] = []
    page = 200
    while True:
        batch = await client.read_flow_runs(
            flow_run_filter=flow_run_filter, limit=page, offset=len(runs)
        )
        runs.extend(batch)
        if len(batch) < page:
            return runs


async def last_heartbeat(
    flow_run_id: UUID, *, client: PrefectClient, now: datetime
) -> datetime | None:
    """When the run's process last sent a heartbeat, up to ``now`` (None: never).

    Raises ``httpx.HTTPError`` when the events cannot be read.
    """
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventOrder,
        EventResourceFilter,
    )

    page = await client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=now - timedelta(days=7), until=now),
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            order=EventOrder.DESC,
        ),
        limit=1,
    )
    return page.events[0].occurred if page.events else None


async def find_stuck_runs(
    deployments: Sequence[str],
    *,
    client: PrefectClient,
    now: datetime | None = None,
    bounds: Bounds = Bounds(),
    orphaned: bool = False,
) -> list[StuckRun]:
    """The runs of ``deployments`` (``flow/deployment`` names; no other deployment's runs are
    read) that are stuck as of ``now`` (see :func:`stuck_reason`).

    When the heartbeats cannot be read, ``Running``/``Cancelling`` runs are not judged this
    time (unless ``orphaned``): the outage is logged at WARNING, and a later sweep judges them.
    """
    now = now or datetime.now(UTC)
    names = await deployment_ids(deployments, client=client)
    if not names:
        return []
    found: list[StuckRun] = []
    unjudged: list[str] = []
    for run in await _unfinished_runs(list(names), client=client):
        state = run.state
        if state is None or state.timestamp is None or run.deployment_id not in names:
            continue
        heartbeat = None
        if state.type.value != "PENDING" and not orphaned:
            try:
                heartbeat = await last_heartbeat(run.id, client=client, now=now)
            except httpx.HTTPError as exc:
                unjudged.append(f"{run.name!r} ({type(exc).__name__})")
                continue
        reason = stuck_reason(
            state.type.value,
            state.name or state.type.value.title(),
            state.timestamp,
            heartbeat,
            now=now,
            bounds=bounds,
            orphaned=orphaned,
        )
        if reason:
            found.append(
                StuckRun(run.id, run.name, names[run.deployment_id], state.name or "", reason)
            )
    if unjudged:
        logger.warning(
            "events outage: the heartbeats of %d running flow run(s) could not be read, so "
            "they are not judged now (the next sweep catches up): %s",
            len(unjudged),
            ", ".join(unjudged),
        )
    return found


async def finish_stuck_runs(runs: Sequence[StuckRun], *, client: PrefectClient) -> list[StuckRun]:
    """Set each run ``Crashed`` (``Cancelled`` if it was ``Cancelling``) with its reason, which
    releases its deployment concurrency slot; returns the runs the server accepted that for.

    Not forced: a run that reached a final state since it was found keeps that state.
    """
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled, Crashed

    finished: list[StuckRun] = []
    for run in runs:
        current = (await client.read_flow_run(run.id)).state
        final = Cancelled if current and current.type == StateType.CANCELLING else Crashed
        result: OrchestrationResult[Any] = await client.set_flow_run_state(
            run.id, final(message=run.message)
        )
        if result.status == SetStateStatus.ACCEPT:
            finished.append(run)
            logger.warning(
                "stuck flow run %r of %s set %s: %s",
                run.name,
                run.deployment,
                result.state.name if result.state else final.__name__,
                run.reason,
            )
        else:
            logger.info("flow run %r was not finished (%s)", run.name, result.status.value)
    return finished


async def sweep(
    deployments: Sequence[str],
    *,
    client: PrefectClient | None = None,
    now: datetime | None = None,
    bounds: Bounds = Bounds(),
    orphaned: bool = False,
) -> list[StuckRun]:
    """Find the stuck runs of ``deployments`` and finish them (a client of the configured
    Prefect API unless one is given); returns the runs finished."""
    if client is None:
        from prefect.client.orchestration import get_client

        async with get_client() as own:
            return await sweep(deployments, client=own, now=now, bounds=bounds, orphaned=orphaned)
    stuck = await find_stuck_runs(
        deployments, client=client, now=now, bounds=bounds, orphaned=orphaned
    )
    return await finish_stuck_runs(stuck, client=client)


def _sweep_logged(deployments: Sequence[str], *, orphaned: bool) -> None:
    """One sweep from a thread of ``serve``: an unreachable API is logged, never raised."""
    try:
        asyncio.run(sweep(deployments, orphaned=orphaned))
    except httpx.HTTPError as exc:
        logger.warning("could not sweep for stuck flow runs: the Prefect API failed (%r)", exc)


@contextmanager
def sweeping(
    deployments: Sequence[str], *, own_server: bool, every: float = SWEEP_SECONDS
) -> Iterator[None]:
    """Sweep for stuck runs of ``deployments`` now, every ``every`` seconds on a background
    thread, and once more on exit.

    Enter it before the runner starts and leave it after the runner stopped. With
    ``own_server`` (``serve`` started the Prefect server itself, so no other process runs
    these deployments' runs) every unfinished run found at start — left by a ``serve`` that
    was killed — and at exit — one the runner was still submitting when it stopped — is
    finished at once; otherwise only runs with the evidence of :func:`stuck_reason` are.
    """
    _sweep_logged(deployments, orphaned=own_server)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            _sweep_logged(deployments, orphaned=False)

    thread = threading.Thread(target=loop, name="stuck-runs", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        _sweep_logged(deployments, orphaned=own_server)
