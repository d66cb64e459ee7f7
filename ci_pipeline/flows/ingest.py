"""The ingest flow: one partner file through read → validate → store.

Wiring only: every step calls :mod:`ci_pipeline.receive.intake`. One task per step (Prefect's API
round-trips cost more than the steps on small files). Only the steps that touch the disk or the
database retry, with the one policy of :data:`ci_pipeline.flows.runtime.RETRYING`; reading the
same bytes again cannot help.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State
from sqlalchemy import Engine

from ci_pipeline import events, links, store
from ci_pipeline.config import Settings
from ci_pipeline.flows import names
from ci_pipeline.flows.runtime import RETRYING, context, tag_run, unwrapped
from ci_pipeline.flows.runtime import passthrough as quote
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.validate import ValidationResult


@task(name="receive", **RETRYING)
def receive(
    submission_id: int, *, initiative: Initiative, settings: Settings, engine: Engine
) -> tuple[store.Submission | None, intake.Receipt | None]:
    """Take the received submission (its bytes from the database into the archive), or the
    receipt of its verdict if it has one; spot a duplicate."""
    intake.prepare_database(initiative, engine=engine)
    loaded = intake.load(submission_id, settings=settings, engine=engine)
    if isinstance(loaded, intake.Receipt):
        return None, loaded
    return loaded, intake.duplicate_receipt(loaded, engine=engine)


read = task(name="read", cache_policy=NO_CACHE)(intake.parse)
validate = task(name="validate", **RETRYING)(intake.check)  # it reads the stored figures
store_ = task(name="store", **RETRYING)(intake.record)
refuse = task(name="store-refusal", **RETRYING)(intake.refuse)


def publish(receipt: intake.Receipt, result: ValidationResult | None, settings: Settings) -> None:
    """A table of the validation result (failures by rule), or the receipt, for operators,
    with links to the report as the intake API serves it (not a path on the server)."""
    # Partner ids may hold underscores; Prefect artifact keys allow only a-z, 0-9 and dashes.
    key = f"validation-{receipt.partner_id.replace('_', '-')}"
    if result is not None and result.issues.height:
        report = links.report_url(settings, receipt.submission_id)
        errors = links.errors_url(settings, receipt.submission_id)
        create_table_artifact(
            key=key,
            table=result.summary().to_dicts(),
            description=(
                f"`{receipt.file_name}`: {receipt.message}. "
                f"Report: [report.json]({report}), [errors.csv]({errors})"
            ),
        )
    else:
        create_markdown_artifact(
            key=key,
            markdown=(
                f"**{receipt.partner_id} {receipt.period}** — `{receipt.file_name}`: "
                f"{receipt.message} (submission #{receipt.submission_id})"
            ),
        )


#: The rule of a rejection that never read the file (:func:`intake.refuse`).
REFUSED_RULE = "file_refused"


def final_state(receipt: intake.Receipt) -> State[dict[str, Any]]:
    """The run's final state, named after the verdict, carrying the receipt as its result.

    A rejected file ends ``Rejected``, a file refused unread (unreadable, too large)
    ``Refused``, a duplicate ``Duplicate``; an accepted one plain ``Completed``. All are of
    Prefect's *Completed* type, deliberately: a partner's bad file is the pipeline doing its
    job, not a crash. A Failed-type state would retry the run, page whoever watches failures,
    and make an in-process call (``ingest_submission(id)``, the command line's ``submit``)
    raise instead of returning the receipt. Failed stays for what the pipeline could not do
    (the database after retries, an unknown submission). The name is what the UI shows, and
    Prefect's state event (``prefect.flow-run.Rejected``) lets an automation select on it.
    """
    data = receipt.to_dict()
    if receipt.status == store.Status.rejected:
        refused = [i.get("rule") for i in receipt.first_issues] == [REFUSED_RULE]
        name = "Refused" if refused else "Rejected"
        return Completed(data=data, name=name, message=receipt.message)
    if receipt.status == store.Status.duplicate:
        return Completed(data=data, name="Duplicate", message=receipt.message)
    return Completed(data=data, message=receipt.message)


def run_name() -> str:
    """``ingest <partner> <period> #<id>``: what operators look for in the runs list (the run
    has only the submission's id as a parameter; the rest is read from its record)."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    submission_id = parameters["submission_id"]
    try:
        _, _, engine = context(parameters.get("initiative_dir"))
        row = store.get_submission(int(submission_id), engine=engine)
    except Exception:  # a name must never stop the run; the run reports the real error
        row = None
    known = (row.partner_id, row.period) if row is not None else None
    return (
        names.run_name("ingest-submission", parameters, today=date.today(), submission=known)
        or f"ingest #{submission_id}"
    )


@unwrapped
@flow(name="ingest-submission", flow_run_name=run_name, log_prints=True)
def ingest_submission(
    submission_id: int, initiative_dir: str | None = None, lane: str = events.QUEUED
) -> State[dict[str, Any]]:
    """Ingest one received submission (:func:`intake.take` recorded it, with its bytes) and
    return the receipt, in a final state named after the verdict (:func:`final_state`).

    Only a ``received`` submission is ingested; one that already has a verdict (a retried or
    repeated event, the reconciler beside a late run) is not touched again: its receipt is
    returned and its outcome announced again, which changes nothing downstream.

    ``lane`` labels the outcome event: ``queued`` (the indicators deployment processes the
    period), or ``warm`` when the caller processes it itself (``serve``'s warm lane).
    """
    settings, initiative, engine = context(initiative_dir)

    # quote(): these are plain values, not futures; Prefect need not walk through them.
    ini, cfg, db = quote(initiative), quote(settings), quote(engine)

    row, receipt = receive(submission_id, initiative=ini, settings=cfg, engine=db)
    result = None
    if receipt is None:
        assert row is not None
        parsed = read(quote(row), initiative=ini, settings=cfg)
        if isinstance(parsed, str):
            receipt = refuse(quote(row), parsed, settings=cfg, engine=db)
        else:
            result = validate(quote(parsed), quote(row), initiative=ini, engine=db)
            receipt = store_(
                quote(row), quote(result), encoding=parsed.encoding, settings=cfg, engine=db
            )
    publish(receipt, result, settings)
    outcome = intake.outcome_event(receipt, result)
    tag_run(
        f"partner:{receipt.partner_id}",
        f"period:{receipt.period}",
        f"status:{receipt.status}",
        *(f"measure:{m}" for m in outcome.payload["measures"]),
    )
    events.emit(events.in_lane(outcome, lane), emitter=events.prefect_emitter)
    print(f"{receipt.partner_id} {receipt.period} {receipt.file_name}: {receipt.message}")
    return final_state(receipt)
