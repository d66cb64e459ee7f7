"""``serve``'s warm lane as a flow: files received, ingested, processed and delivered in the
process that received them.

The queued path costs three process starts per file (an ingest run, an indicators run and a
delivery run, each started by an event and each importing Prefect, polars, SciPy and GX:
6–8 s apiece on the default machine). ``serve`` keeps those imports warm and calls
:func:`take_in` for what it has just received: one parent run whose children are the same
named, tagged runs as on the queued path (``ingest <partner> <period> #<id>``, then
``process <period>``), the process run doing its aggregate, detect and deliver steps as task
runs of its own rather than child runs (``inline_steps``). Wiring only.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from ci_pipeline import events, store
from ci_pipeline.flows.ingest import ingest_submission
from ci_pipeline.flows.process import process_period


def _run_name() -> str:
    ids = list(flow_run.parameters.get("submission_ids") or [])
    return f"take in {' '.join(f'#{i}' for i in ids[:5])}{' …' if len(ids) > 5 else ''}"


@flow(name="take-in", flow_run_name=_run_name, log_prints=True)
def take_in(submission_ids: list[int], initiative_dir: str | None = None) -> dict[str, Any]:
    """Ingest each received submission; then, if any was accepted, one process run that
    recomputes what changed, judges each period it recomputed on the measures recomputed
    there, delivers the alerts and rebuilds the report card.

    The outcome and alert events are labelled ``warm``: the deployments' triggers, which
    would start the same steps in new processes, leave them alone. What this run cannot
    finish it hands over: when processing failed (after its retries), the accepted events are
    sent again labelled ``queued``, so the indicators deployment takes them; a submission
    whose ingest failed is still ``received``, and the reconciler takes it.
    """
    logger = get_run_logger()
    accepted: dict[str, dict[str, Any]] = {}  # one accepted receipt per period
    for submission_id in submission_ids:
        state = ingest_submission(
            submission_id, initiative_dir=initiative_dir, lane=events.WARM, return_state=True
        )
        if state.is_completed():
            receipt = state.result()
            if receipt["status"] == store.Status.accepted:
                accepted.setdefault(str(receipt["period"]), receipt)
        else:
            logger.warning("#%d was not ingested here: the reconciler will", submission_id)
    if not accepted:
        return {"submissions": list(submission_ids), "processed": None}
    periods = sorted(accepted)
    state = process_period(
        period=periods[0] if len(periods) == 1 else None,  # its name: process 2025-Q4
        initiative_dir=initiative_dir,
        deliver=True,
        changed_only=True,
        inline_steps=True,  # its steps as task runs of this one: 0.3 s less a file
        return_state=True,
    )
    if not state.is_completed():
        logger.warning("processing failed here: handed to the indicators deployment")
        events.emit(
            [events.submission_outcome(r) for r in accepted.values()],
            emitter=events.prefect_emitter,
        )
    return {"submissions": list(submission_ids), "processed": state.is_completed()}
