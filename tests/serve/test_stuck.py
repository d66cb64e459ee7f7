"""Runs left behind by a process that is gone are found, finished and their slots released.

The rule (:func:`stuck_reason`) is checked on hand-picked moments; the sweep against the shared
Prefect test server, on deployments of its own (so no other test's runs are in reach), with
runs put in the states a killed runner leaves: ``Submitting`` and ``Running`` with the
deployment's concurrency slots held, and no process behind them. The sweep judges them "as of"
a moment ten minutes after they were made, so no test waits for a bound to pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas import OrchestrationResult
from prefect.client.schemas.responses import SetStateStatus
from prefect.events import emit_event
from prefect.states import Cancelling, Pending, Running

from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.serve import stuck
from ci_pipeline.serve.stuck import Bounds, stuck_reason

T0 = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
BOUNDS = Bounds(pending=timedelta(seconds=120), silent=timedelta(seconds=120))


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the rule -------------------------------------------------------------------------------


def test_a_run_submitting_past_the_bound_is_stuck_and_one_within_it_is_not() -> None:
    # Submitting since T0; at T0+121 s it has waited 121 s > 120 s.
    assert stuck_reason("PENDING", "Submitting", T0, None, now=at(121), bounds=BOUNDS) == (
        "Submitting for 121 s (longer than 120 s): its process never started"
    )
    # At T0+120 s it has waited exactly the bound: not more than it.
    assert stuck_reason("PENDING", "Submitting", T0, None, now=at(120), bounds=BOUNDS) is None


def test_a_running_run_is_judged_by_its_last_sign_of_life() -> None:
    # Running since T0, no heartbeat: silent for 200 s at T0+200 s (> 120 s).
    assert stuck_reason("RUNNING", "Running", T0, None, now=at(200), bounds=BOUNDS) == (
        "Running, for 200 s without a heartbeat (more than 120 s): its process is gone"
    )
    # A heartbeat at T0+150 s: silent for 50 s at T0+200 s; alive.
    assert stuck_reason("RUNNING", "Running", T0, at(150), now=at(200), bounds=BOUNDS) is None
    # The same heartbeat at T0+300 s: silent for 300 - 150 = 150 s.
    assert stuck_reason("RUNNING", "Running", T0, at(150), now=at(300), bounds=BOUNDS) == (
        "Running, last heartbeat 150 s ago (more than 120 s): its process is gone"
    )
    # A heartbeat from before it entered this state (an earlier attempt) does not count: the
    # run is silent since T0, 200 s at T0+200 s.
    assert stuck_reason("CANCELLING", "Cancelling", T0, at(-30), now=at(200), bounds=BOUNDS) == (
        "Cancelling, for 200 s without a heartbeat (more than 120 s): its process is gone"
    )


def test_a_pending_run_is_never_kept_alive_by_a_heartbeat() -> None:
    # A Pending run has no process: a heartbeat at T0+200 s (from an earlier attempt) is ignored.
    assert stuck_reason("PENDING", "Pending", T0, at(200), now=at(201), bounds=BOUNDS) == (
        "Pending for 201 s (longer than 120 s): its process never started"
    )


def test_with_no_runner_left_every_unfinished_run_is_stuck_at_once() -> None:
    for state_type, name in (("PENDING", "Submitting"), ("RUNNING", "Running")):
        assert stuck_reason(
            state_type, name, T0, at(1), now=at(2), bounds=BOUNDS, orphaned=True
        ) == (f"{name} when no runner was left to run it (serve restarted or stopped)")


@pytest.mark.parametrize("state_type", ["SCHEDULED", "PAUSED", "COMPLETED", "CRASHED"])
def test_other_states_are_never_stuck(state_type: str) -> None:
    # A Scheduled run waits by design (for its time or a slot), a Paused one for a person.
    assert stuck_reason(state_type, "x", T0, None, now=at(10_000), orphaned=True) is None


# --- the sweep, against a Prefect server ----------------------------------------------------


@flow(name="stuck-probe")
def probe() -> None:
    """A flow for the deployments of these tests: never run, only its runs' states are set."""


async def _deploy(name: str, limit: int) -> str:
    """Register a deployment of :func:`probe` with a concurrency limit; its full name."""
    deployment = await probe.ato_deployment(name=name, concurrency_limit=limit)
    await cast(Awaitable[UUID], deployment.apply())
    return deployment.full_name


async def _run_in(client: PrefectClient, deployment: str, *states: Any) -> UUID:
    """A new run of ``deployment`` moved through ``states`` as a runner would move it."""
    found = await client.read_deployment_by_name(deployment)
    run = await client.create_flow_run_from_deployment(found.id)
    for state in states:
        result = await client.set_flow_run_state(run.id, state)
        assert result.status == SetStateStatus.ACCEPT, (state, result)
    return run.id


async def _slots(client: PrefectClient, deployment: str) -> int:
    found = await client.read_deployment_by_name(deployment)
    limit = await client.read_global_concurrency_limit_by_name(f"deployment:{found.id}")
    return int(limit.active_slots)


async def _state(client: PrefectClient, run_id: UUID) -> tuple[str, str]:
    state = (await client.read_flow_run(run_id)).state
    assert state is not None
    return state.type.value, state.message or ""


async def _heartbeat(client: PrefectClient, run_id: UUID, occurred: datetime) -> None:
    """Send a heartbeat for ``run_id`` as its process would, and wait until it can be read."""
    emit_event(
        stuck.HEARTBEAT_EVENT,
        resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"},
        occurred=occurred,
    )
    deadline = time.monotonic() + 60
    while await stuck.last_heartbeat(run_id, client=client, now=occurred) != occurred:
        assert time.monotonic() < deadline, "the heartbeat event was never stored"
        await asyncio.sleep(0.2)


@pytest.fixture
def names(prefect_harness: None) -> Iterator[dict[str, str]]:
    """Deployments of this test alone: swept (ingest-like, limit 2; another, limit 1) and one
    that is never swept."""
    tag = uuid.uuid4().hex[:8]

    async def deploy() -> dict[str, str]:
        return {
            "ingest": await _deploy(f"ingest-{tag}", 2),
            "other": await _deploy(f"other-{tag}", 1),
            "foreign": await _deploy(f"foreign-{tag}", 1),
        }

    async def remove(deployments: dict[str, str]) -> None:
        async with get_client() as client:
            for name in deployments.values():
                await client.delete_deployment((await client.read_deployment_by_name(name)).id)

    deployments = asyncio.run(deploy())
    yield deployments
    asyncio.run(remove(deployments))


@pytest.mark.slow
def test_runs_left_by_a_killed_runner_are_crashed_and_their_slots_freed(
    names: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with get_client() as client:
            ingest, other, foreign = names["ingest"], names["other"], names["foreign"]
            # What the incident left: two ingest runs holding both slots, one still
            # Submitting, one Running whose process is gone (no heartbeat ever).
            submitting = await _run_in(client, ingest, Pending(name="Submitting"))
            dead = await _run_in(client, ingest, Pending(name="Submitting"), Running())
            assert await _slots(client, ingest) == 2
            # A run of a swept deployment that is alive, and a silent run of a deployment the
            # sweep is not given.
            alive = await _run_in(client, other, Pending(), Running())
            untouched = await _run_in(client, foreign, Pending(), Running())

            # A third ingest run cannot start: both slots are held.
            waiting = await client.create_flow_run_from_deployment(
                (await client.read_deployment_by_name(ingest)).id
            )
            refused: OrchestrationResult[Any] = await client.set_flow_run_state(
                waiting.id, Pending()
            )
            assert refused.state is not None and refused.state.name == "AwaitingConcurrencySlot"

            now = datetime.now(UTC) + timedelta(minutes=10)
            await _heartbeat(client, alive, now - timedelta(seconds=30))
            with caplog.at_level(logging.WARNING, logger=stuck.__name__):
                finished = await stuck.sweep([ingest, other], client=client, now=now)

            assert {r.id for r in finished} == {submitting, dead}
            kind, message = await _state(client, submitting)
            assert kind == "CRASHED" and "Submitting for 6" in message  # 600 s, give or take
            assert message.endswith("its process never started. Its concurrency slot is released.")
            kind, message = await _state(client, dead)
            assert kind == "CRASHED" and "Running, for 6" in message
            assert "without a heartbeat (more than 120 s): its process is gone" in message
            assert await _state(client, alive) == ("RUNNING", "")
            assert (await _state(client, untouched))[0] == "RUNNING"
            # The slots are free: a new ingest run starts.
            assert await _slots(client, ingest) == 0
            fresh = await client.create_flow_run_from_deployment(
                (await client.read_deployment_by_name(ingest)).id
            )
            started: OrchestrationResult[Any] = await client.set_flow_run_state(fresh.id, Pending())
            assert started.status == SetStateStatus.ACCEPT
            # What was done is logged, by name.
            logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            for run_id in (submitting, dead):
                name = (await client.read_flow_run(run_id)).name
                assert any(name in line and ingest in line for line in logged), logged

    asyncio.run(scenario())


@pytest.mark.slow
def test_with_no_runner_left_serve_finishes_every_unfinished_run_at_once(
    names: dict[str, str],
) -> None:
    async def scenario() -> None:
        async with get_client() as client:
            ingest = names["ingest"]
            submitting = await _run_in(client, ingest, Pending(name="Submitting"))
            running = await _run_in(client, ingest, Pending(), Running())
            # Just made, with a heartbeat now: only "no runner is left" makes them stuck.
            await _heartbeat(client, running, datetime.now(UTC))
            assert await stuck.sweep([ingest], client=client) == []
            finished = await stuck.sweep([ingest], client=client, orphaned=True)
            assert {r.id for r in finished} == {submitting, running}
            for run_id in (submitting, running):
                assert (await _state(client, run_id))[0] == "CRASHED"
            assert await _slots(client, ingest) == 0

    asyncio.run(scenario())


@pytest.mark.slow
def test_an_events_outage_is_logged_and_no_running_run_is_judged_without_heartbeats(
    names: dict[str, str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with get_client() as client:
            ingest = names["ingest"]
            submitting = await _run_in(client, ingest, Pending(name="Submitting"))
            running = await _run_in(client, ingest, Pending(), Running())

            async def outage(*_: object, **__: object) -> None:
                raise httpx.ConnectError("events unavailable")

            now = datetime.now(UTC) + timedelta(minutes=10)
            with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
                patch.setattr(client, "read_events", outage)
                finished = await stuck.sweep([ingest], client=client, now=now)
            # The Submitting run needs no heartbeat to be judged; the Running one is left.
            assert [r.id for r in finished] == [submitting]
            assert (await _state(client, running))[0] == "RUNNING"
            name = (await client.read_flow_run(running)).name
            assert any(
                "events outage" in r.getMessage() and name in r.getMessage() for r in caplog.records
            )
            # Once the events answer again, the next sweep catches up.
            assert [r.id for r in await stuck.sweep([ingest], client=client, now=now)] == [running]

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_silent_cancelling_run_is_set_cancelled_the_one_state_prefect_allows_it(
    names: dict[str, str],
) -> None:
    async def scenario() -> None:
        async with get_client() as client:
            deployment = names["foreign"]
            run_id = await _run_in(client, deployment, Pending(), Running(), Cancelling())
            assert await _slots(client, deployment) == 1
            now = datetime.now(UTC) + timedelta(minutes=10)
            finished = await stuck.sweep([deployment], client=client, now=now)
            assert [r.id for r in finished] == [run_id]
            kind, message = await _state(client, run_id)
            assert kind == "CANCELLED" and message.startswith("ci-pipeline found this run stuck")
            assert "Cancelling, for 6" in message  # 600 s, give or take
            assert await _slots(client, deployment) == 0

    asyncio.run(scenario())


@pytest.mark.slow
def test_sweeping_finishes_what_no_runner_is_left_to_run_at_start_and_at_exit(
    names: dict[str, str],
) -> None:
    async def submitting(deployment: str) -> UUID:
        async with get_client() as client:
            return await _run_in(client, deployment, Pending(name="Submitting"))

    async def state(run_id: UUID) -> str:
        async with get_client() as client:
            return (await _state(client, run_id))[0]

    ingest, other = names["ingest"], names["other"]
    # serve with its own Prefect server: a run left Submitting by the serve that was killed
    # is finished at start; one the runner was still submitting when it stopped, at exit.
    left = asyncio.run(submitting(ingest))
    with stuck.sweeping([ingest], own_server=True, every=3600):
        assert asyncio.run(state(left)) == "CRASHED"
        during = asyncio.run(submitting(ingest))
        assert asyncio.run(state(during)) == "PENDING"
    assert asyncio.run(state(during)) == "CRASHED"
    # serve against a shared server: a run just submitted may be another worker's; kept.
    shared = asyncio.run(submitting(other))
    with stuck.sweeping([other], own_server=False, every=3600):
        pass
    assert asyncio.run(state(shared)) == "PENDING"


@flow(name="stuck-heartbeat-probe")
def heartbeat_probe(path: str) -> None:
    """Write the heartbeat frequency this run's process was given."""
    from prefect.settings import get_current_settings

    Path(path).write_text(str(get_current_settings().flows.heartbeat_frequency))


@pytest.mark.slow
def test_runs_served_by_serve_send_a_heartbeat_every_30_s(
    prefect_harness: None, tmp_path: Path
) -> None:
    # Prefect's default is 180 s: a dead run would be noticed only after 4 x 180 s = 12 min.
    from prefect.deployments.runner import RunnerDeployment

    from ci_pipeline.serve.runner import running

    deployment = RunnerDeployment.from_entrypoint(
        f"{Path(__file__)}:heartbeat_probe", name=f"heartbeat-{uuid.uuid4().hex[:8]}"
    )
    out = tmp_path / "frequency.txt"

    async def run_it() -> str:
        async with get_client() as client:
            found = await client.read_deployment_by_name(deployment.full_name)
            run = await client.create_flow_run_from_deployment(
                found.id, parameters={"path": str(out)}
            )
            deadline = time.monotonic() + 240
            while not (state := (await client.read_flow_run(run.id)).state) or not state.is_final():
                assert time.monotonic() < deadline, "the probe run never finished"
                await asyncio.sleep(0.5)
            return state.type.value

    async def remove() -> None:
        async with get_client() as client:
            await client.delete_deployment(
                (await client.read_deployment_by_name(deployment.full_name)).id
            )

    with running([deployment], poll_seconds=0.5):
        assert asyncio.run(run_it()) == "COMPLETED"
    asyncio.run(remove())
    assert out.read_text() == str(stuck.HEARTBEAT_SECONDS) == "30"


def test_serve_sweeps_before_its_runner_starts_and_after_it_stops(
    settings: Settings, initiative: Initiative, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ci_pipeline.serve import runner

    calls: list[Any] = []

    def step(name: str) -> Callable[..., AbstractContextManager[Any]]:
        @contextmanager
        def context(*args: Any, **kwargs: Any) -> Iterator[str]:
            calls.append((f"{name} up", *args[:1], *sorted(kwargs.items())))
            yield "http://127.0.0.1:1/api"
            calls.append(f"{name} down")

        return context

    monkeypatch.setattr(runner, "prefect_server", step("server"))
    monkeypatch.setattr(stuck, "sweeping", step("sweep"))
    monkeypatch.setattr(runner, "running", lambda *_, **__: step("runner")())
    monkeypatch.setattr(runner, "_wait_for_interrupt", lambda: calls.append("serving"))
    # Nothing listens here: whatever holds the default ports on this machine does not matter.
    monkeypatch.setattr(runner.preflight, "check_ports", lambda *_, **__: None)
    with temporary_settings(updates={PREFECT_API_URL: None}):
        runner.serve(settings, initiative, on_ready=print, with_api=False, with_inbox=False)
    names = [
        "check-completeness/daily",
        "deliver-alerts/on-alert",
        "ingest-submission/on-received",
        "notify-quiet-intake/quiet-intake",
        "process-period/indicators",
        "weekly-digest/weekly",
    ]
    assert [c if isinstance(c, str) else c[0] for c in calls] == [
        "server up",
        "sweep up",
        "runner up",
        "serving",
        "runner down",
        "sweep down",
        "server down",
    ]
    sweep_up = calls[1]
    assert isinstance(sweep_up, tuple)
    assert sorted(sweep_up[1]) == names and sweep_up[2] == ("own_server", True)
