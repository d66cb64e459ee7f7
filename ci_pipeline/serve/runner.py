"""Serve the whole pipeline from one process: the single-machine default.

``ci-pipeline serve`` calls :func:`serve`. It starts (or finds) a Prefect server, serves every
deployment of ``deployments/prefect.yaml`` (:mod:`.deployments`) with its triggers and
schedules from a Prefect runner, watches the inbox, and answers the intake API, until Ctrl-C
stops all of it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from ci_pipeline.config import Settings
from ci_pipeline.errors import OperationalProblem
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.serve import daemon, handoff, names, preflight, reconcile, stuck, warm
from ci_pipeline.serve.deployments import runner_deployments
from ci_pipeline.serve.local_server import prefect_server

#: How often the runner asks the server for runs to start: every hop of an event-driven chain
#: waits up to this long (Prefect's default is 10 s).
POLL_SECONDS = 1.0


logger = logging.getLogger(__name__)


@contextmanager
def intake_api(app: Any, host: str, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a thread; stop it on exit."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="intake-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OperationalProblem(f"the intake API could not listen on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Addresses:
    """What ``serve`` prints for the user."""

    prefect_api: str
    prefect_ui: str
    intake_api: str
    inbox: Path


@contextmanager
def running(
    deployments: list[RunnerDeployment], *, poll_seconds: float = POLL_SECONDS, limit: int = 4
) -> Iterator[None]:
    """Serve ``deployments`` from a Prefect runner on a background thread until exit.

    Registering them creates their triggers (as automations) and schedules on the server; the
    runner then polls for their runs every ``poll_seconds`` and starts each in a subprocess.
    """
    from prefect.runner import Runner

    ready, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        runner = Runner(
            name="ci-pipeline",
            query_seconds=poll_seconds,
            limit=limit,
            pause_on_shutdown=False,
            heartbeat_seconds=stuck.HEARTBEAT_SECONDS,
        )
        try:
            for deployment in deployments:
                await runner.aadd_deployment(deployment)
            task = asyncio.create_task(runner.start())
            ready.set()
            await asyncio.to_thread(stop.wait)
            await runner.astop()
            await asyncio.wait_for(task, timeout=30)
        except BaseException as exc:  # surfaced to the caller, not lost in the thread
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="runner", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise RuntimeError(f"the deployments could not be served: {failure[0]}") from failure[0]
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=40)


def serve(
    settings: Settings,
    initiative: Initiative,
    *,
    on_ready: Callable[[Addresses], None],
    on_start: Callable[[], None] = lambda: None,
    poll_seconds: float = POLL_SECONDS,
    with_api: bool = True,
    with_inbox: bool = True,
    with_flows: bool = True,
) -> None:
    """Run the pipeline until interrupted (Ctrl-C / SIGTERM), then shut everything down.

    ``with_flows=False`` (``serve --no-flows``) runs no flow here: no runner, no warm lane.
    The deployments are those ``prefect deploy`` registered for the workers of the
    ``ci-pipeline`` work pool, on the Prefect server of ``PREFECT_API_URL`` (required);
    registering them again from a runner would take them from the workers (Prefect's runner
    polls for the runs of every deployment it registered, whatever its work pool, and resets
    their pull steps, so the workers could no longer load the flows). The inbox, the intake
    API, the reconciler and the run namer and sweeper still run here.

    First the checks of :mod:`.preflight` (:class:`OperationalProblem` for a second ``serve``
    on this data folder or a port taken), then ``on_start``, then everything starts; once all
    of it runs, ``on_ready`` is told the addresses.

    SIGTERM does what Ctrl-C does: the intake API and the inbox stop taking files, then the
    runner sends SIGTERM to each flow run process in flight (SIGKILL after 30 s) and marks the
    run Cancelled ("Runner is shutting down."), which frees its concurrency slot; an ingest
    stopped so has no verdict, and its submission is picked up again by the reconciler. Runs
    the runner was still submitting, and runs left by a ``serve`` that was killed, are set
    Crashed by :func:`.stuck.sweeping` before the Prefect server stops, or when ``serve``
    starts again.
    """
    from prefect.settings import get_current_settings

    from ci_pipeline import events, store
    from ci_pipeline.receive import api, inbox, intake

    own_server = not get_current_settings().api.url
    if own_server and not with_flows:
        raise OperationalProblem(
            "serve --no-flows leaves every run to the workers of a Prefect server: set "
            "PREFECT_API_URL (and PREFECT_API_AUTH_STRING) to that server"
        )
    with ExitStack() as stack:
        # Before anything starts: a second serve, or a port taken, is one sentence.
        announce = stack.enter_context(preflight.only_serve(settings))
        if own_server and daemon.stop(settings):  # the command line's: same port, same database
            logger.info("stopped the command line's Prefect daemon: serve's server replaces it")
        preflight.check_ports(settings, with_api=with_api, own_server=own_server)
        on_start()
        engine = store.engine_for(settings.resolved_database_url)
        intake.prepare_database(initiative, engine=engine)
        api_url = stack.enter_context(prefect_server(settings))
        announce(api_url)  # commands run meanwhile use this server, not a temporary one
        deployments = runner_deployments()
        # Before the runner and left after it: stuck runs are finished at start and at exit.
        names_of = [d.full_name for d in deployments]
        stack.enter_context(stuck.sweeping(names_of, own_server=own_server))
        emitter: events.Emitter = events.prefect_emitter
        intake_url = "(not started)"
        # Deployments first: their triggers must exist before the first file is announced
        # (with_flows=False: `prefect deploy` made them, for the workers).
        if with_flows:
            stack.enter_context(running(deployments, poll_seconds=poll_seconds))
        stack.enter_context(names.QueuedNamer(names_of, engine=engine))  # queued runs named
        if with_flows and settings.warm_lane:  # files received here are taken in here
            lane = warm.WarmLane(
                warm.take_in_here(
                    str(settings.initiative),
                    without_prefect=reconcile.ingest_here(settings, initiative, engine),
                ),
                forward=events.prefect_emitter,
            )
            emitter = stack.enter_context(lane).emit
        if with_flows:  # a command's submit on this data folder is ingested here, warm
            stack.enter_context(handoff.listening(settings, {"ingest": handoff.run_ingest}))
        # Then every received submission left without a verdict (lost events, dead runs)
        # gets its ingest, now and every reconcile_every_seconds.
        stack.enter_context(
            reconcile.Reconciler(
                settings,
                initiative,
                engine=engine,
                start=reconcile.ingest_here(settings, initiative, engine),
                sole_runner=own_server,
            )
        )
        if with_inbox:
            stack.enter_context(
                inbox.InboxWatcher(settings, initiative, emitter=emitter, engine=engine)
            )
        if with_api:
            app = api.create_app(settings, initiative, engine=engine, emitter=emitter)
            intake_url = stack.enter_context(intake_api(app, settings.api_host, settings.api_port))
        on_ready(
            Addresses(
                prefect_api=api_url,
                prefect_ui=api_url.removesuffix("/api"),
                intake_api=intake_url,
                inbox=settings.inbox_dir,
            )
        )
        _wait_for_interrupt()
    store.dispose_engines()


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM (both end in KeyboardInterrupt, so exits run in order)."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits SIGINT *ignored*.
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("interrupted: shutting down")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
