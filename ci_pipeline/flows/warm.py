"""``serve``'s warm lane as a flow: files received, ingested, processed and delivered in the
process that received them.

The queued path costs three process starts per file (an ingest run, an indicators run and a
delivery run, each started by an event and each importing Prefect, polars, SciPy and GX:
6–8 s apiece on the default machine). ``serve`` keeps those imports warm and calls
:func:`take_in` for what it has just received: one parent run whose children are the same
named, tagged runs as on the queued path (``ingest <partner> <period> #<id>``, then
``process <period>`` with its aggregate, detect and deliver runs). Wiring only.
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
    """Ingest each received submission, then process each period that gained an accepted
    file and deliver its alerts; the report card is rebuilt once, after the last period.

    The outcome and alert events are labelled ``warm``: the deployments' triggers, which
    would start the same steps in new processes, leave them alone. What this run cannot
    finish it hands over: a period whose processing failed (after its retries) has its
    accepted event sent again labelled ``queued``, so the indicators deployment takes it;
    a submission whose ingest failed is still ``received``, and the reconciler takes it.
    """
    logger = get_run_logger()
    accepted: dict[str, dict[str, Any]] = {}
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
    processed: dict[str, bool] = {}
    periods = sorted(accepted)
    for period in periods:
        state = process_period(
            period=period,
            initiative_dir=initiative_dir,
            deliver=True,
            only_if_new=False,  # this period did gain a file; an earlier period's run may
            # already have refreshed its slices, and it must still be judged
            report=period == periods[-1],
            return_state=True,
        )
        processed[period] = state.is_completed()
        if not processed[period]:
            logger.warning("processing %s failed here: handed to the indicators deployment", period)
            events.emit(events.submission_outcome(accepted[period]), emitter=events.prefect_emitter)
    return {"submissions": list(submission_ids), "processed": processed}
