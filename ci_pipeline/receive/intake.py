"""One submission, end to end through receive → read → validate → store: the steps the
ingest flow runs, and the reception that comes before it (:func:`take`).

Each function is one step with its I/O at the edge (the settings, initiative and engine are
passed in), so the Prefect flow in ``ci_pipeline/flows/ingest.py`` only wires them, and tests can call them
directly.

Over 400 lines: the steps of one submission are kept together, in the order the flow runs
them, so the one place that decides a submission reads top to bottom.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import read, store, validate
from ci_pipeline.clock import utcnow
from ci_pipeline.config import Settings
from ci_pipeline.errors import AlreadyReported, SubmissionRefused
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive.receipt import RECEIPT_FIELDS, Receipt
from ci_pipeline.validate import report

__all__ = [
    "RECEIPT_FIELDS",
    "Parsed",
    "Receipt",
    "archive_target",
    "check",
    "duplicate_receipt",
    "load",
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


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_target(
    settings: Settings, partner_id: str, period: str, content_hash: str, name: str
) -> Path:
    """Where the audit copy of a received file is kept."""
    return settings.archive_dir / partner_id / period / f"{content_hash[:12]}-{name}"


def take(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    file_name: str | None = None,
    options: dict[str, Any] | None = None,
) -> store.Submission:
    """Receive the file at ``path`` (see :func:`take_bytes`); a file over the size limit is
    recorded without its bytes, and its ingest refuses it."""
    path = Path(path)
    size = path.stat().st_size
    content = path.read_bytes() if size <= settings.max_file_bytes else None
    return take_bytes(
        content,
        partner_id,
        period,
        file_name=file_name or path.name,
        size_bytes=size,
        content_hash=sha256_of(path) if content is None else None,
        initiative=initiative,
        settings=settings,
        engine=engine,
        options=options,
    )


def take_bytes(
    content: bytes | None,
    partner_id: str,
    period: str,
    *,
    file_name: str,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    size_bytes: int | None = None,
    content_hash: str | None = None,
    options: dict[str, Any] | None = None,
) -> store.Submission:
    """Receive a file: check who and when, then commit its bytes and a ``received`` submission
    in one transaction. Only then may anyone be told "received" (the API's 202, the inbox's
    move): whatever crashes next, the submission is in the database and will reach a verdict.

    ``file_name`` is the name the partner gave the file; ``options`` what the submitter
    declared for this file alone (``encoding``). ``content`` None: the file was too large to
    keep (``size_bytes`` and ``content_hash`` say what it was), and its ingest refuses it.
    """
    initiative.partner(partner_id)  # raises UnknownPartner
    canonical = parse_period(period).label  # raises InvalidPeriod
    if content is not None:
        content_hash = hashlib.sha256(content).hexdigest()
        size_bytes = len(content)
    assert content_hash is not None and size_bytes is not None
    suffix = Path(file_name).suffix.lower()
    new = store.NewSubmission(
        initiative_id=initiative.info.id,
        partner_id=partner_id,
        period=canonical,
        content_hash=content_hash,
        file_name=file_name,
        file_format=read.FORMATS.get(suffix, suffix.lstrip(".")),
        encoding=None,
        received_at=utcnow(),
        archive_path=(
            str(archive_target(settings, partner_id, canonical, content_hash, file_name))
            if content is not None
            else None
        ),
    )
    declared = {k: v for k, v in (options or {}).items() if v is not None}
    return store.record_received(
        new, content=content, size_bytes=size_bytes, options=declared, engine=engine
    )


def load(submission_id: int, *, settings: Settings, engine: Engine) -> store.Submission | Receipt:
    """Take a received submission for ingest: its row, with the audit copy of its bytes in the
    archive (written from the database, checked against the hash). A submission that already
    has a verdict is not ingested again: its receipt is returned, and nothing changes.
    """
    row = store.get_submission(submission_id, engine=engine)
    if row is None:
        raise SubmissionRefused(f"there is no submission #{submission_id}")
    if row.status != store.Status.received or not store.claim_received(
        submission_id, engine=engine
    ):
        decided = store.get_submission(submission_id, engine=engine)
        assert decided is not None
        return Receipt.from_row(decided)
    if row.archive_path is not None:
        content = store.received_content(row.content_hash, engine=engine)
        if content is None:
            raise SubmissionRefused(
                f"submission #{submission_id}'s bytes are not in the database: cannot ingest"
            )
        write_archive(content, Path(row.archive_path), row.content_hash)
    return row


def write_archive(content: bytes, target: Path, content_hash: str) -> None:
    """Keep the audit copy at ``target``: written whole under a temporary name, checked against
    the hash and moved into place, so a failed write never leaves a truncated copy; a copy
    already there is kept only when its bytes are the file's (re-running repairs one that is
    not)."""
    if target.is_file() and sha256_of(target) == content_hash:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    try:
        partial.write_bytes(content)
        if sha256_of(partial) != content_hash:
            raise OSError(f"the copy written to {partial} does not match its SHA-256")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


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
    refused unread. The encoding is the one declared for this file, else the partner's."""
    if row.archive_path is None:
        return (
            f"{row.file_name} is {row.size_bytes} bytes, larger than the limit of "
            f"{settings.max_file_bytes} bytes a submission may be; it was not read"
        )
    encoding = (
        store.submission_options(row).get("encoding") or initiative.partner(row.partner_id).encoding
    )
    try:
        raw = read.read_submission(
            Path(row.archive_path),
            encoding=encoding,
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


def _report_folder(row: store.Submission, settings: Settings) -> Path:
    stamp = row.received_at.strftime("%Y%m%dT%H%M%S")
    return settings.reports_dir / row.partner_id / row.period / f"{stamp}-{row.content_hash[:8]}"


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
