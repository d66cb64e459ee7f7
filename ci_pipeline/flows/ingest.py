"""The ingest flow: one partner file through read → validate → store.

Wiring only: every step calls :mod:`ci_pipeline.receive.intake`. One task per step (Prefect's API
round-trips cost more than the steps on small files). Only the steps that touch the disk or the
database retry, with the one policy of :data:`ci_pipeline.flows.runtime.RETRYING`; reading the
same bytes again cannot help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.flows.runtime import RETRYING, context, tag_run
from ci_pipeline.flows.runtime import passthrough as quote
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.store import NewSubmission
from ci_pipeline.validate import ValidationResult


@task(name="receive", **RETRYING)
def receive(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    file_name: str | None = None,
    received_only: bool = False,
) -> tuple[NewSubmission, intake.Receipt | None]:
    """Prepare the database, fingerprint and archive the file, and spot a duplicate."""
    intake.prepare_database(initiative, engine=engine)
    new = intake.receive(
        path,
        partner_id,
        period,
        initiative=initiative,
        settings=settings,
        file_name=file_name,
        received_only=received_only,
    )
    return new, intake.duplicate_receipt(new, engine=engine)


read = task(name="read", cache_policy=NO_CACHE)(intake.parse)
validate = task(name="validate", **RETRYING)(intake.check)  # it reads the stored figures
store = task(name="store", **RETRYING)(intake.record)
refuse = task(name="store-refusal", **RETRYING)(intake.refuse)


def publish(receipt: intake.Receipt, result: ValidationResult | None) -> None:
    """A table of the validation result (failures by rule), or the receipt, for operators."""
    # Partner ids may hold underscores; Prefect artifact keys allow only a-z, 0-9 and dashes.
    key = f"validation-{receipt.partner_id.replace('_', '-')}"
    if result is not None and result.issues.height:
        create_table_artifact(
            key=key,
            table=result.summary().to_dicts(),
            description=f"`{receipt.file_name}`: {receipt.message}. Report: `{receipt.report_path}`",
        )
    else:
        create_markdown_artifact(
            key=key,
            markdown=(
                f"**{receipt.partner_id} {receipt.period}** — `{receipt.file_name}`: "
                f"{receipt.message} (submission #{receipt.submission_id})"
            ),
        )


@flow(name="ingest-submission", flow_run_name="ingest {partner_id} {period}", log_prints=True)
def ingest_submission(
    path: str,
    partner_id: str,
    period: str,
    encoding: str | None = None,
    initiative_dir: str | None = None,
    file_name: str | None = None,
    received_only: bool = False,
    locale: str | None = None,
) -> dict[str, Any]:
    """Ingest one partner's file for one period and return the receipt.

    ``encoding`` and ``locale`` (how the file writes numbers: he_IL, de_DE …) override the
    partner's settings for this file.

    ``file_name``: the name the partner gave the file, when ``path`` is the inbox's or the
    intake API's stamped copy of it (receipts and reports use the partner's name).
    ``received_only``: read only a file under ``received/<partner>/`` (set by the deployment
    an event triggers, whose path anyone able to send events could name).
    """
    settings, initiative, engine = context(initiative_dir)

    # quote(): these are plain values, not futures; Prefect need not walk through them.
    ini, cfg, db = quote(initiative), quote(settings), quote(engine)

    new, receipt = receive(
        Path(path),
        partner_id,
        period,
        initiative=ini,
        settings=cfg,
        engine=db,
        file_name=file_name,
        received_only=received_only,
    )
    result = None
    if receipt is None:
        parsed = read(
            Path(path), new, encoding=encoding, initiative=ini, settings=cfg, locale=locale
        )
        if isinstance(parsed, str):
            receipt = refuse(new, parsed, settings=cfg, engine=db)
        else:
            result = validate(quote(parsed), new, initiative=ini, engine=db)
            receipt = store(new, quote(result), encoding=parsed.encoding, settings=cfg, engine=db)
    publish(receipt, result)
    measures, geographies = intake.touched(result)
    tag_run(
        f"partner:{receipt.partner_id}",
        f"period:{receipt.period}",
        f"status:{receipt.status}",
        *(f"measure:{m}" for m in measures),
    )
    events.emit(
        events.submission_outcome(receipt.to_dict(), measures=measures, geographies=geographies),
        emitter=events.prefect_emitter,
    )
    print(f"{receipt.partner_id} {receipt.period} {receipt.file_name}: {receipt.message}")
    return receipt.to_dict()
