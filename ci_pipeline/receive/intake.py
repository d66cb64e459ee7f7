"""One submission, end to end through read → validate → store: the steps the ingest flow runs.

Each function is one step with its I/O at the edge (the settings, initiative and engine are
passed in), so the Prefect flow in ``ci_pipeline/flows/ingest.py`` only wires them, and tests can call them
directly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ConfigDict
from sqlalchemy import Engine
from sqlmodel import Field

from ci_pipeline import read, store, validate
from ci_pipeline.clock import utcnow
from ci_pipeline.config import Settings
from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.validate import report

#: Issues shown in a receipt; the report file has them all.
RECEIPT_ISSUES = 20


#: The stored fields a receipt repeats, in its order after ``submission_id`` (the row's id).
RECEIPT_FIELDS = tuple(store.SubmissionOutcome.model_fields)


class Receipt(store.SubmissionOutcome):
    """What a partner (and the CLI) is told about a submission: the stored outcome (its fields
    are :class:`store.SubmissionOutcome`'s, declared there once), the row's id, and what is not
    stored: the first problems found and the warnings.

    :meth:`from_row` makes it from the stored row; ``Receipt(**receipt.to_dict())`` makes it
    again from its plain form (what the ingest flow returns).
    """

    # SQLModel types its config as its own TypedDict; pydantic's ConfigDict is what it reads.
    model_config = ConfigDict(extra="forbid", frozen=True)  # type: ignore[assignment]

    submission_id: int
    first_issues: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def from_row(
        cls,
        row: store.SubmissionFields,
        issues: pl.DataFrame | None = None,
        warnings: list[str] | None = None,
    ) -> Receipt:
        """The receipt of a stored submission: its fields, the first :data:`RECEIPT_ISSUES` of
        ``issues`` and the warnings."""
        assert row.id is not None
        stored = {name: getattr(row, name) for name in RECEIPT_FIELDS}
        stored["message"] = row.message or ""
        first = (
            report.safe_issues(issues.head(RECEIPT_ISSUES)).to_dicts() if issues is not None else []
        )
        return cls(submission_id=row.id, first_issues=first, warnings=warnings or [], **stored)

    def to_dict(self) -> dict[str, Any]:
        """The receipt as plain JSON-ready data (``submission_id`` first, then the stored
        fields, the first issues and the warnings)."""
        return {"submission_id": self.submission_id, **self.model_dump(exclude={"submission_id"})}


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


def archive(source: Path, target: Path, content_hash: str) -> None:
    """Keep the audit copy at ``target``: written whole under a temporary name and moved into
    place, so a failed write never leaves a truncated copy; a copy already there is kept only
    when its bytes are the file's (re-running the step repairs one that is not)."""
    if target.is_file() and sha256_of(target) == content_hash:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    try:
        shutil.copy2(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def check_received(path: Path, partner_id: str, settings: Settings) -> None:
    """Refuse a path that is not a regular file under ``received/<partner>/`` (a link, or a
    file anywhere else: what a forged ``ci.submission.received`` event would name)."""
    own = (settings.received_dir / partner_id).resolve()
    if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(own):
        raise SubmissionRefused(
            f"{path} is not a file received for {partner_id} (under {own}): not read"
        )


def receive(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    file_name: str | None = None,
    received_only: bool = False,
) -> store.NewSubmission:
    """Check who and when, fingerprint the bytes and keep a copy in the archive.

    ``file_name`` is the name the partner gave the file, when ``path`` is a copy under another
    name (the inbox and the intake API keep received files under a stamped name).
    ``received_only``: the path came in an event, which anyone who can reach the events API can
    send; only a regular file the inbox or the API put under ``received/<partner>/`` is read.
    """
    initiative.partner(partner_id)  # raises UnknownPartner
    if received_only:
        check_received(Path(path), partner_id, settings)
    canonical = parse_period(period).label  # raises InvalidPeriod
    path = Path(path)
    content_hash = sha256_of(path)
    name = file_name or path.name
    archive_path = None
    if path.stat().st_size <= settings.max_file_bytes:
        target = settings.archive_dir / partner_id / canonical / f"{content_hash[:12]}-{name}"
        archive(path, target, content_hash)
        archive_path = str(target)
    return store.NewSubmission(
        initiative_id=initiative.info.id,
        partner_id=partner_id,
        period=canonical,
        content_hash=content_hash,
        file_name=name,
        file_format=read.FORMATS.get(path.suffix.lower(), path.suffix.lower().lstrip(".")),
        encoding=None,
        received_at=utcnow(),
        archive_path=archive_path,
    )


def duplicate_receipt(new: store.NewSubmission, *, engine: Engine) -> Receipt | None:
    """If these bytes were already accepted for this partner and period, say so and stop."""
    original = store.find_duplicate(new, engine=engine)
    if original is None:
        return None
    row = store.record_duplicate(new, original, engine=engine)
    return Receipt.from_row(row)


@dataclass(frozen=True)
class Parsed:
    raw: read.RawSubmission
    frame: pl.DataFrame
    encoding: str | None


def parse(
    path: Path,
    new: store.NewSubmission,
    *,
    encoding: str | None,
    initiative: Initiative,
    settings: Settings,
    locale: str | None = None,
) -> Parsed | str:
    """Read the file into the long frame, or return why it was refused unread.

    ``encoding`` and ``locale`` are this submission's, when it gave them; the partner's
    settings otherwise.
    """
    partner = initiative.partner(new.partner_id)
    try:
        raw = read.read_submission(
            Path(path),
            encoding=encoding or partner.encoding,
            locale=locale or initiative.partner_locale(partner.id),
            sheet=partner.sheet,
            max_bytes=settings.max_file_bytes,
            max_expanded_bytes=settings.max_xlsx_expanded_bytes,
        )
    except SubmissionRefused as exc:
        return str(exc)
    return Parsed(raw, read.to_long_frame(raw, initiative), raw.encoding)


def check(
    parsed: Parsed, new: store.NewSubmission, *, initiative: Initiative, engine: Engine
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
    issues = conflicts.select(
        pl.col("source_row").alias("row"),
        pl.lit(parsed.raw.headers.get("period", "period").strip()).alias("column"),
        pl.col("period").alias("value"),
        pl.lit("already_reported").alias("rule"),
        pl.concat_str(
            pl.lit("this figure was already reported in submission #"),
            pl.col("held_by").cast(pl.Utf8),
            pl.lit(" for "),
            pl.col("held_in"),
            pl.lit("; resubmit that period to correct it, so it is not counted twice"),
        ).alias("message"),
    ).sort("row")
    return validate.ValidationResult(result.rows, issues, None, result.warnings)


def touched(result: validate.ValidationResult | None) -> tuple[list[str], list[str]]:
    """The measures and geographies an accepted file reports: its events' related resources."""
    if result is None or result.observations is None:
        return [], []
    obs = result.observations
    return (
        sorted(obs["measure_id"].unique().to_list()),
        sorted(obs["geo_code"].unique().to_list()),
    )


def _report_folder(new: store.NewSubmission, settings: Settings) -> Path:
    stamp = new.received_at.strftime("%Y%m%dT%H%M%S")
    return settings.reports_dir / new.partner_id / new.period / f"{stamp}-{new.content_hash[:8]}"


def record(
    new: store.NewSubmission,
    result: validate.ValidationResult,
    *,
    encoding: str | None,
    settings: Settings,
    engine: Engine,
) -> Receipt:
    """Store the outcome: all rows of an accepted file in one transaction, or a rejection report."""
    new = store.NewSubmission(**{**vars(new), "encoding": encoding})
    folder = _report_folder(new, settings)
    summary = {
        "partner_id": new.partner_id,
        "period": new.period,
        "file_name": new.file_name,
        "content_hash": new.content_hash,
        "rows": result.rows,
        "warnings": result.warnings,
    }
    if not result.accepted:
        rejected_rows = result.issues["row"].drop_nulls().n_unique()
        message = f"rejected: {result.issues.height} problem(s) in {rejected_rows} row(s); nothing was stored"
        path = report.write_report(
            folder, result.issues, {**summary, "status": "rejected", "message": message}
        )
        row = store.record_rejected(
            new,
            rows_total=result.rows,
            rows_rejected=rejected_rows,
            issues=result.issues.height,
            report_path=str(path),
            message=message,
            engine=engine,
        )
        return Receipt.from_row(row, result.issues, result.warnings)
    assert result.observations is not None
    outcome = store.store_accepted(
        new, result.observations, rows_total=result.rows, report_path=None, engine=engine
    )
    row = outcome.submission
    message = f"accepted: {row.rows_accepted} row(s) stored"
    if outcome.superseded is not None and outcome.diff is not None:
        d = outcome.diff
        message += (
            f"; replaces submission #{outcome.superseded.id} "
            f"({d.added} added, {d.removed} removed, {d.changed} changed)"
        )
    path = report.write_report(
        folder,
        result.issues,
        {**summary, "status": "accepted", "submission_id": row.id, "message": message},
        outcome.diff.rows if outcome.diff else None,
    )
    row = store.set_report(row, str(path), message, engine=engine)
    return Receipt.from_row(row, warnings=result.warnings)


def refuse(new: store.NewSubmission, reason: str, *, settings: Settings, engine: Engine) -> Receipt:
    """Record a file that could not be read at all as rejected, with the reason as its report."""
    issues = pl.DataFrame(
        [(None, None, None, "file_refused", reason)], schema=validate.ISSUE_SCHEMA, orient="row"
    )
    return record(
        new,
        validate.ValidationResult(0, issues, None),
        encoding=None,
        settings=settings,
        engine=engine,
    )
