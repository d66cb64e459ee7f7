"""The reconciler: every received submission reaches a verdict, whatever was lost on the way.

A file is stored (bytes and ``received`` submission) before anyone is told "received"; its
ingest is started by an event. When that event is lost (the Prefect server was down: ``emit``
logs and carries on), or the run that took it died (a kill, a crash, a SIGTERM), the submission
stays ``received``. :func:`reconcile` finds such submissions — never taken and older than
``reconcile_after_seconds``, or taken longer than ``ingest_lease_seconds`` ago — and starts an
ingest for each. ``serve`` runs it at start and every ``reconcile_every_seconds``
(:class:`Reconciler`), ingesting in its own warm process (no process start, no concurrency
slot to wait for, so a backlog drains at the pace of the work); ``ci-pipeline reconcile`` runs
it once, by hand.

Starting a second ingest of a submission that is in fact still being ingested is safe: the
verdict is written once (``store.decide``), and the later run returns it unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ci_pipeline import store
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.serve.background import Background

logger = logging.getLogger(__name__)

#: This many submissions in a row that could not be started mean an outage: the pass stops.
OUTAGE = 3

#: A submission whose ingest could not be started is left out of the passes for this long
#: (the others go on; an outage stops the pass anyway).
RETRY_AFTER_SECONDS = 300.0

#: Starts an ingest of one submission (a deployment run in ``serve``, a flow call by hand);
#: raises if it could not.
Starter = Callable[[int], None]


def reconcile(
    settings: Settings,
    initiative: Initiative,
    *,
    engine: Engine,
    start: Starter,
    unclaimed_for: timedelta | None = None,
    lease: timedelta | None = None,
    skip: Collection[int] = (),
    failed: list[int] | None = None,
) -> list[int]:
    """Start an ingest for every received submission nobody is deciding (but those in
    ``skip``); the ids started.

    One that could not be started is logged, added to ``failed`` and left for a later pass (it
    is claimed only once its run was started); the pass goes on with the others, unless
    :data:`OUTAGE` in a row failed: then the orchestrator or the database is down, and the
    pass stops.
    """
    rows = store.unfinished_submissions(
        initiative.info.id,
        unclaimed_for=(
            timedelta(seconds=settings.reconcile_after_seconds)
            if unclaimed_for is None
            else unclaimed_for
        ),
        lease=timedelta(seconds=settings.ingest_lease_seconds) if lease is None else lease,
        engine=engine,
    )
    started: list[int] = []
    failures = 0
    for row in rows:  # one per stranded submission, not per data row
        assert row.id is not None
        if row.id in skip:
            continue
        try:
            start(row.id)
        except Exception as exc:  # its ingest, or the orchestrator, failed: say so
            failures += 1
            if failed is not None:
                failed.append(row.id)
            logger.warning(
                "reconcile: could not start an ingest for submission #%d (%s %s): %s; "
                "%d received submission(s) wait, retried at a later pass",
                row.id,
                row.partner_id,
                row.period,
                exc,
                len(rows) - len(started),
            )
            if failures >= OUTAGE:
                break
            continue
        failures = 0
        store.claim_received(row.id, engine=engine)
        started.append(row.id)
    if started:
        logger.warning(
            "reconcile: started ingests for %d received submission(s) nobody was deciding: %s",
            len(started),
            ", ".join(f"#{i}" for i in started),
        )
    return started


class Reconciler(Background):
    """:func:`reconcile` at start and every ``reconcile_every_seconds``, on a daemon thread
    (a context manager, like the inbox watcher)."""

    thread_name = "ci-reconciler"

    def __init__(
        self,
        settings: Settings,
        initiative: Initiative,
        *,
        engine: Engine,
        start: Starter,
        sole_runner: bool = False,
    ) -> None:
        """``sole_runner``: no ingest can be running anywhere else when this starts (``serve``
        with its own Prefect server), so the first pass starts an ingest for every received
        submission at once, whatever its age or claim: those left by the last ``serve`` (a
        SIGTERM, a kill, a lost event) need not wait for the lease."""
        self.settings, self.initiative, self.engine, self.start_run = (
            settings,
            initiative,
            engine,
            start,
        )
        super().__init__()
        self._first = sole_runner
        self._retry_at: dict[int, float] = {}  # submission → when its ingest may be tried again

    def pass_once(self) -> list[int]:
        """One pass; a database outage is logged, not raised (the next pass tries again)."""
        everything = timedelta(0) if self._first else None
        self._first = False
        now = time.monotonic()
        self._retry_at = {i: at for i, at in self._retry_at.items() if at > now}
        failed: list[int] = []
        try:
            return reconcile(
                self.settings,
                self.initiative,
                engine=self.engine,
                start=self.start_run,
                unclaimed_for=everything,
                lease=everything,
                skip=set(self._retry_at),
                failed=failed,
            )
        except SQLAlchemyError as exc:
            logger.warning("reconcile: the database did not answer (%s); trying again later", exc)
            return []
        finally:
            self._retry_at |= {i: now + RETRY_AFTER_SECONDS for i in failed}

    def _run(self) -> None:
        while True:
            self.pass_once()
            if self._stop.wait(self.settings.reconcile_every_seconds):
                return


def ingest_here(
    settings: Settings,
    initiative: Initiative,
    engine: Engine,
    *,
    emitter: Callable[[Any], Any] | None = None,
) -> Callable[[int], None]:
    """The reconciler's ingest: the steps of one stored submission in this warm process,
    without the orchestrator (which may be what failed: a submission reaches its verdict
    whatever state Prefect is in), and its outcome announced as the flow would announce it.
    A backlog left by an outage drains at the pace of the work, not of process starts and
    concurrency slots; the verdicts are in ``submissions`` and the events in the UI."""
    from ci_pipeline import events
    from ci_pipeline.receive import intake

    def ingest(submission_id: int) -> None:
        receipt, result = intake.ingest(
            submission_id, initiative=initiative, settings=settings, engine=engine
        )
        events.emit(
            intake.outcome_event(receipt, result), emitter=emitter or events.prefect_emitter
        )
        logger.info(
            "reconcile: #%d %s %s %s: %s",
            submission_id,
            receipt.partner_id,
            receipt.period,
            receipt.file_name,
            receipt.message,
        )

    return ingest
