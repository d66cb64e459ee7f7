"""``serve``'s warm lane: a received file's ingest, processing and alerts, in ``serve``'s own
process, within seconds.

The inbox watcher and the intake API announce every file they store with a
``ci.submission.received`` event. In ``serve`` they announce it through :meth:`WarmLane.emit`,
which labels the event ``ci.lane: warm`` (so the on-received deployment's trigger, which
selects ``queued``, leaves it alone), sends it on, and queues the submission for a worker
thread. The worker takes everything queued so far as one batch and runs the ``take-in`` flow
(:func:`ci_pipeline.flows.warm.take_in`) on it, in this process: imports and connections are
warm, and a burst of files is ingested one by one and each period processed once.

Every file still reaches a verdict whatever happens here: a submission the lane did not ingest
(a crash, Prefect failing mid-batch, ``serve`` stopped with files queued) is still ``received``,
and the reconciler takes it; with the Prefect API not answering at all, the lane ingests each
file without it, as the reconciler does. ``CI_PIPELINE_WARM_LANE=false`` turns the lane off:
the deployments' triggers then start every step here, the queued way (``serve --no-flows``,
the multi-machine setup, runs no flow here at all: a work pool's workers run them).
"""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable
from typing import Any

from ci_pipeline import events
from ci_pipeline.serve.background import Background

logger = logging.getLogger(__name__)

#: Takes a batch of received submissions through the pipeline (the ``take-in`` flow).
Handler = Callable[[list[int]], Any]

#: How long :meth:`WarmLane.__exit__` lets a batch in progress finish before leaving it to
#: the reconciler.
STOP_SECONDS = 60.0


def take_in_here(
    initiative_dir: str | None = None, *, without_prefect: Callable[[int], None] | None = None
) -> Handler:
    """The handler ``serve`` uses: the ``take-in`` flow, called in this process, its runs
    tagged as deployed runs are, without the heartbeats a worker-less run does not need.

    The flows (and with them polars, SciPy, GX, the report's charts) are imported here, when
    ``serve`` starts, not when the first file lands: that file waits for no import. When the
    Prefect API does not answer (an outage, a restart), each file is ingested by
    ``without_prefect`` instead (the reconciler's ingest, which needs no orchestrator), so
    partners still get their verdicts at once; processing then waits for the indicators
    deployment (the verdicts' events are ``queued``) or the daily run.
    """
    from prefect.settings import get_current_settings

    from ci_pipeline.flows.runtime import in_process, tagged_in_process, warm_up
    from ci_pipeline.flows.warm import take_in
    from ci_pipeline.serve.local_server import healthy

    with contextlib.suppress(Exception):  # a slower first file, not a failed start
        warm_up()

    def handle(submission_ids: list[int]) -> Any:
        api = get_current_settings().api.url
        if without_prefect is not None and api and not healthy(api):
            logger.warning(
                "warm lane: Prefect does not answer; %s ingested without it",
                ", ".join(f"#{i}" for i in submission_ids),
            )
            for submission_id in submission_ids:
                without_prefect(submission_id)
            return None
        with in_process(), tagged_in_process():
            return take_in(submission_ids, initiative_dir=initiative_dir)

    return handle


class WarmLane(Background):
    """A worker thread that hands each batch of received submissions to ``handle``; a
    context manager, like the inbox watcher and the reconciler."""

    thread_name = "ci-warm-lane"
    join_seconds = STOP_SECONDS

    def __init__(self, handle: Handler, *, forward: events.Emitter) -> None:
        """``forward`` sends events on (:func:`events.prefect_emitter` in ``serve``)."""
        super().__init__()
        self.handle, self.forward = handle, forward
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()

    def emit(self, spec: events.EventSpec) -> Any:
        """An emitter for the inbox and the intake API: a received file is queued here and
        announced as ``warm``; any other event goes on unchanged."""
        if spec.event != events.SUBMISSION_RECEIVED:
            return self.forward(spec)
        # Queued before it is announced: an events outage must not keep the file waiting.
        self._queue.put(int(spec.payload["submission_id"]))
        return self.forward(events.in_lane(spec, events.WARM))

    def _batch(self) -> list[int]:
        """Everything queued now (at least one id, waiting for it), in arrival order, once."""
        batch = [self._queue.get(timeout=0.2)]
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return list(dict.fromkeys(batch))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._batch()
            except queue.Empty:
                continue
            try:
                self.handle(batch)
            except Exception:  # the reconciler gives each of them its verdict
                logger.exception(
                    "warm lane: %s not taken in here; the reconciler will",
                    ", ".join(f"#{i}" for i in batch),
                )
