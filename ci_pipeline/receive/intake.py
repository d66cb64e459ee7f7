"""One received submission through load → read → validate → store: the steps the ingest flow
runs. The reception before them (:func:`take`, in :mod:`.reception`) is re-exported here, so
callers find every step of a submission in one place.

Each function is one step with its I/O at the edge (the settings, initiative and engine are
passed in), so the Prefect flow in ``ci_pipeline/flows/ingest.py`` only wires them, and tests
can call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import events, read, store, validate
from ci_pipeline.config import Settings
from ci_pipeline.errors import AlreadyReported, SubmissionRefused
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive import blobs
from ci_pipeline.receive.receipt import RECEIPT_FIELDS, Receipt
from ci_pipeline.receive.reception import (
    archive_target,
    sha256_of,
    take,
    take_bytes,
    write_archive,
)
from ci_pipeline.validate import report

__all__ = [
    "RECEIPT_FIELDS",
    "Parsed",
    "Receipt",
    "archive_target",
    "check",
    "duplicate_receipt",
    "ingest",
    "load",
    "outcome_event",
    "parse",
    "prepare_database",
    "record",
    "refuse",
    "sha256_of",
    "take",
    "take_bytes",
    "touched",
    "write_archive",
]


def prepare_database(initiative: Initiative, *, engine: Engine) -> list[str]:
    """Create missing tables and store the initiative's definitions (idempotent)."""
    store.create_schema(engine=engine)
    return store.sync_initiative(initiative, engine=engine)


def load(submission_id: int, *, settings: Settings, engine: Engine) -> store.Submission | Receipt:
    """Take a received submission for ingest: its row, with the audit copy of its bytes in the
    archive (written from the database, checked against the hash). A submission that already
    has a verdict is not ingested again: its receipt is returned, and nothing changes.
    """
    row = store.get_submission(submission_id, engine=engine)
    if row is None:
        raise SubmissionRefused(f"there is no submission #{submission_id}")
    if row.status != store.Status.received:
        return Receipt.from_row(row)
    # The copy goes to this machine's archive, not the receiving machine's: beyond one machine
    # the worker that ingests has a data folder of its own (the path is recorded with the claim).
    # None stays None: a file too large to keep was never received whole.
    here = (
        None
        if row.archive_path is None
        else str(
            archive_target(settings, row.partner_id, row.period, row.content_hash, row.file_name)
        )
    )
    if not store.claim_received(submission_id, engine=engine, archive_path=here):
        decided = store.get_submission(submission_id, engine=engine)  # decided since it was read
        assert decided is not None
        return Receipt.from_row(decided)
    if here is not None:
        row.archive_path = here
        content = (
            blobs.get(row.content_url, row.content_hash)
            if row.content_url
            else store.received_content(row.content_hash, engine=engine)
        )
        if content is None:
            raise SubmissionRefused(
                f"submission #{submission_id}'s bytes are not in the database: cannot ingest"
            )
        write_archive(content, Path(row.archive_path), row.content_hash)
    return row


def duplicate_receipt(row: store.Submission, *, engine: Engine) -> Receipt | None:
    """If these bytes were already accepted for this partner and period, say so and stop."""
    original = store.find_duplicate(row, engine=engine)
    if original is None:
        return None
    assert row.id is not None
    return Receipt.from_row(store.record_duplicate(row.id, original, engine=engine))


@dataclass(frozen=True)
class Parsed:
    raw: read.RawSubmission
    frame: pl.DataFrame
    encoding: str | None


def parse(
    row: store.Submission,
    *,
    initiative: Initiative,
    settings: Settings,
) -> Parsed | str:
    """Read the received file (its audit copy) into the long frame, or return why it was
    refused unread. The encoding and locale are the ones declared for this file, else the
    partner's settings."""
    if row.archive_path is None:
        return (
            f"{row.file_name} is {row.size_bytes} bytes, larger than the limit of "
            f"{settings.max_file_bytes} bytes a submission may be; it was not read"
        )
    declared = store.submission_options(row)
    partner = initiative.partner(row.partner_id)
    try:
        raw = read.read_submission(
            Path(row.archive_path),
            encoding=declared.get("encoding") or partner.encoding,
            locale=declared.get("locale") or initiative.partner_locale(partner.id),
            sheet=partner.sheet,
            max_bytes=settings.max_file_bytes,
            max_expanded_bytes=settings.max_xlsx_expanded_bytes,
        )
    except SubmissionRefused as exc:
        return str(exc)
    return Parsed(raw, read.to_long_frame(raw, initiative), raw.encoding)


def check(
    parsed: Parsed, new: store.Submission, *, initiative: Initiative, engine: Engine
) -> validate.ValidationResult:
    """Validate the rows, then make sure none is already counted in another submission."""
    result = validate.validate(
        parsed.frame, parsed.raw, initiative, new.partner_id, parse_period(new.period)
    )
    if not result.accepted:
        return result
    assert result.observations is not None
    observations = validate.to_observations(result.observations, initiative)
    conflicts = store.find_conflicts(
        new.initiative_id, new.partner_id, new.period, observations, engine=engine
    )
    if conflicts.is_empty():
        warnings = list(result.warnings)
        old = store.find_duplicate(new, engine=engine, status=store.Status.superseded)
        if old is not None:  # a revert is allowed, but never silently
            warnings.append(
                f"these are the same bytes as submission #{old.id}, which #{old.superseded_by} "
                "replaced; accepting them undoes that correction"
            )
        return validate.ValidationResult(result.rows, result.issues, observations, warnings)
    column = parsed.raw.headers.get("period", "period").strip()
    return validate.ValidationResult(
        result.rows, already_reported(conflicts, new.partner_id, column), None, result.warnings
    )


def already_reported(
    conflicts: pl.DataFrame, partner_id: str, column: str = "period"
) -> pl.DataFrame:
    """The ``already_reported`` issues of the rows :func:`store.find_overlaps` found: each
    names its row, the period column as the partner named it, the period written, and the
    figure it overlaps. Another partner's submission is not named to this partner (a partner
    sees only its own submissions)."""
    held = pl.concat_str(
        pl.col("held_period"),
        pl.when(pl.col("held_disaggregation") == pl.col("disaggregation"))
        .then(pl.lit(""))
        .otherwise(pl.lit(" (") + pl.col("held_disaggregation") + pl.lit(")")),
    )
    own = pl.concat_str(
        pl.lit("this figure overlaps "),
        held,
        pl.lit(", already reported in submission #"),
        pl.col("held_by").cast(pl.Utf8),
        pl.lit(" for "),
        pl.col("held_in"),
        pl.lit("; resubmit that period to correct it, so it is not counted twice"),
    )
    other = pl.concat_str(
        pl.lit("this figure overlaps "),
        held,
        pl.lit(
            ", already reported by another partner; this measure counts one partner's figure "
            "for a place and period (across_partners: exclusive): ask the backbone team"
        ),
    )
    return conflicts.select(
        pl.col("source_row").alias("row"),
        pl.lit(column).alias("column"),
        pl.col("period").alias("value"),
        pl.lit("already_reported").alias("rule"),
        pl.when(pl.col("held_partner") == partner_id).then(own).otherwise(other).alias("message"),
    ).sort("row")


def touched(result: validate.ValidationResult | None) -> tuple[list[str], list[str]]:
    """The measures and geographies an accepted file reports: its events' related resources."""
    if result is None or result.observations is None:
        return [], []
    obs = result.observations
    return (
        sorted(obs["measure_id"].unique().to_list()),
        sorted(obs["geo_code"].unique().to_list()),
    )


def outcome_event(receipt: Receipt, result: validate.ValidationResult | None) -> events.EventSpec:
    """The announcement of a submission's verdict, as the ingest flow and the reconciler send
    it: the receipt, with the measures and geographies an accepted file reports
    (:func:`touched`) as its payload's ``measures`` and ``geographies`` and its related
    resources."""
    measures, geographies = touched(result)
    return events.submission_outcome(receipt.to_dict(), measures=measures, geographies=geographies)


def _report_folder(row: store.Submission, settings: Settings) -> Path:
    """The submission's own report folder: named by its id too, so the same bytes received
    twice in one second never share (and overwrite) one."""
    stamp = row.received_at.strftime("%Y%m%dT%H%M%S")
    name = f"{stamp}-{row.content_hash[:8]}-{row.id}"
    return settings.reports_dir / row.partner_id / row.period / name


def record(
    row: store.Submission,
    result: validate.ValidationResult,
    *,
    encoding: str | None,
    settings: Settings,
    engine: Engine,
) -> Receipt:
    """Decide the received submission: all rows of an accepted file in one transaction, or a
    rejection with its report. Re-running it after it committed changes nothing: the stored
    verdict's receipt is returned (a submission never supersedes itself)."""
    assert row.id is not None
    folder = _report_folder(row, settings)
    summary = {
        "partner_id": row.partner_id,
        "period": row.period,
        "file_name": row.file_name,
        "content_hash": row.content_hash,
        "submission_id": row.id,
        "rows": result.rows,
        "warnings": result.warnings,
    }
    if not result.accepted:
        rejected_rows = result.issues["row"].drop_nulls().n_unique()
        message = f"rejected: {result.issues.height} problem(s) in {rejected_rows} row(s); nothing was stored"
        # The report first, the verdict naming it second: a crash between the two leaves the
        # submission received, and the retry writes the same report again.
        path = report.write_report(
            folder, result.issues, {**summary, "status": "rejected", "message": message}
        )
        stored = store.record_rejected(
            row.id,
            rows_total=result.rows,
            rows_rejected=rejected_rows,
            issues=result.issues.height,
            report_path=str(path),
            message=message,
            encoding=encoding,
            engine=engine,
        )
        issues = result.issues if stored.report_path == str(path) else None
        return Receipt.from_row(stored, issues, result.warnings)
    assert result.observations is not None
    try:
        accepted = _accept(row, result, folder, summary, encoding=encoding, engine=engine)
    except AlreadyReported as exc:  # accepted meanwhile: another file holds these figures now
        issues = already_reported(exc.conflicts, row.partner_id)
        refused = validate.ValidationResult(result.rows, issues, None, result.warnings)
        return record(row, refused, encoding=encoding, settings=settings, engine=engine)
    final = store.get_submission(row.id, engine=engine)
    assert final is not None
    return Receipt.from_row(final, warnings=result.warnings if accepted else [])


def _accept(
    row: store.Submission,
    result: validate.ValidationResult,
    folder: Path,
    summary: dict[str, Any],
    *,
    encoding: str | None,
    engine: Engine,
) -> bool:
    """Check and write an accepted file under ``store.ACCEPT_LOCK``, its report written before
    the commit; False when the submission was decided otherwise (a duplicate, or already)."""
    assert result.observations is not None
    with store.locked_transaction(store.ACCEPT_LOCK, engine=engine) as session:
        outcome = store.accept(
            session, row, result.observations, rows_total=result.rows, encoding=encoding
        )
        if isinstance(outcome, store.Accepted):
            accepted = outcome.submission
            message = f"accepted: {accepted.rows_accepted} row(s) stored"
            if outcome.superseded is not None and outcome.diff is not None:
                d = outcome.diff
                message += (
                    f"; replaces submission #{outcome.superseded.id} "
                    f"({d.added} added, {d.removed} removed, {d.changed} changed)"
                )
            path = report.write_report(
                folder,
                result.issues,
                {**summary, "status": "accepted", "message": message},
                outcome.diff.rows if outcome.diff else None,
            )
            store.describe(session, accepted, report_path=str(path), message=message)
            return True
    return False


def ingest(
    submission_id: int, *, initiative: Initiative, settings: Settings, engine: Engine
) -> tuple[Receipt, validate.ValidationResult | None]:
    """A received submission through every step, in order, in this process and without an
    orchestrator: the steps the ingest flow wires (``flows/ingest.py``), for the reconciler,
    which must decide submissions whatever state the orchestrator is in. Returns the receipt,
    and the validation result when the file was validated."""
    loaded = load(submission_id, settings=settings, engine=engine)
    if isinstance(loaded, Receipt):
        return loaded, None
    duplicate = duplicate_receipt(loaded, engine=engine)
    if duplicate is not None:
        return duplicate, None
    parsed = parse(loaded, initiative=initiative, settings=settings)
    if isinstance(parsed, str):
        return refuse(loaded, parsed, settings=settings, engine=engine), None
    result = check(parsed, loaded, initiative=initiative, engine=engine)
    encoding = parsed.encoding
    del parsed  # the file's text and long frame: not held while the rows are written
    receipt = record(loaded, result, encoding=encoding, settings=settings, engine=engine)
    return receipt, result


def refuse(row: store.Submission, reason: str, *, settings: Settings, engine: Engine) -> Receipt:
    """Record a file that could not be read at all as rejected, with the reason as its report."""
    issues = pl.DataFrame(
        [(None, None, None, "file_refused", reason)], schema=validate.ISSUE_SCHEMA, orient="row"
    )
    return record(
        row,
        validate.ValidationResult(0, issues, None),
        encoding=None,
        settings=settings,
        engine=engine,
    )
