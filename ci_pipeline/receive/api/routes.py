"""The ``/v1`` endpoints: upload a file, list and read the partner's own submissions and their
reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from ci_pipeline import events, read, store
from ci_pipeline.config import Settings
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive import intake
from ci_pipeline.receive.api.auth import ApiContext, Context, PartnerId, authenticated_partner
from ci_pipeline.receive.api.schemas import Received, SubmissionOut, problems
from ci_pipeline.receive.api.uploads import (
    UPLOAD_TYPES,
    checked_content_type,
    checked_encoding,
    checked_signature,
    safe_file_name,
    spool,
    too_large,
)
from ci_pipeline.receive.inbox.moves import folder_within

NOT_FOUND = "no such submission"  # the same words whether it does not exist or is not yours


router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated_partner)])


def report_file(row: store.Submission, name: str, settings: Settings) -> Path | None:
    """``errors.csv`` or ``report.json`` beside the row's stored report, if it is there."""
    if not row.report_path:
        return None
    path = Path(row.report_path).parent / name
    inside = path.resolve().is_relative_to(settings.reports_dir.resolve())
    return path if inside and path.is_file() else None


def submission_out(row: store.Submission) -> SubmissionOut:
    """A submission as the partner sees it: report URLs instead of filesystem paths."""
    data = store.submission_dict(row)
    has_report = bool(row.report_path)
    data["report_url"] = f"/v1/submissions/{row.id}/report.json" if has_report else None
    data["errors_url"] = (
        f"/v1/submissions/{row.id}/errors.csv" if has_report and row.issues else None
    )
    return SubmissionOut.model_validate(data)


def partner_submissions(
    context: ApiContext,
    partner_id: str,
    *,
    period: str | None,
    content_hash: str | None,
    limit: int,
) -> list[SubmissionOut]:
    """The partner's own submissions, newest first, filtered; never another partner's."""
    rows = store.list_submissions(
        engine=context.engine,
        initiative_id=context.initiative.info.id,
        partner_id=partner_id,
        period=parse_period(period).label if period else None,
        content_hash=content_hash.strip().lower() if content_hash else None,
        limit=limit,
    )
    return [submission_out(r) for r in rows]


#: The largest id a submission can have (a signed 64-bit integer column).
MAX_ID = 2**63 - 1


def own_submission(context: ApiContext, partner_id: str, submission_id: int) -> store.Submission:
    """The submission if it is this partner's; 404 alike when it is missing or someone else's.

    An id no database column can hold (below 1, past 2**63 - 1) is missing too, not an error.
    """
    if not 1 <= submission_id <= MAX_ID:
        raise HTTPException(404, detail=NOT_FOUND)
    row = store.get_submission(submission_id, engine=context.engine)
    if (
        row is None
        or row.partner_id != partner_id
        or row.initiative_id != context.initiative.info.id
    ):
        raise HTTPException(404, detail=NOT_FOUND)
    return row


PeriodQuery = Annotated[
    str | None, Query(description="Only this period: 2025-09, 2025-Q3 or 2025.")
]


HashQuery = Annotated[
    str | None, Query(description="Only the submission(s) of the file with this SHA-256.")
]


LimitQuery = Annotated[int, Query(ge=1, le=500, description="At most this many, newest first.")]


@router.post(
    "/submissions",
    status_code=202,
    response_model=Received,
    tags=["submissions"],
    summary="Upload a file for a period",
    responses=problems(401, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The file's bytes, as they are (`curl --data-binary @file.csv`).",
            "content": {
                t: {"schema": {"type": "string", "format": "binary"}} for t in UPLOAD_TYPES
            },
        }
    },
)
async def upload(
    request: Request,
    context: Context,
    partner_id: PartnerId,
    period: Annotated[str, Query(description="The period the file reports: 2025-Q4, 2025-09.")],
    filename: Annotated[str, Query(description="The file's name; its suffix says its format.")],
    encoding: Annotated[
        str | None, Query(description="CSV text encoding, e.g. windows-1255. Default: partner's.")
    ] = None,
    locale: Annotated[
        str | None,
        Query(
            description="How the file writes numbers (a CLDR locale): he_IL for 1,234.5, de_DE "
            "for 1.234,5, fr_FR for 1 234,5. Default: the partner's."
        ),
    ] = None,
) -> Received:
    """Receive one file for the token's partner; ingestion follows asynchronously (poll).

    Refused before anything is read: a bad period, name or encoding (422), a declared
    Content-Type that contradicts the name (415), a declared length past the limit (413).
    Refused after streaming, the spooled file deleted: a body past the limit (413), an empty
    one (422), first bytes that contradict the name (415). Every failure after the spool file
    is made deletes it.
    """
    canonical = parse_period(period).label
    file_name = safe_file_name(filename)
    declared_encoding = checked_encoding(encoding)
    # An unknown locale is a 422 now (SubmissionRefused), not a rejected file later.
    declared_locale = read.check_locale(locale) if locale and locale.strip() else None
    checked_content_type(request.headers.get("content-type"), file_name)
    limit = context.settings.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)  # refused unread
    # Made without following a link: the folders below received/ are the pipeline's own.
    folder = folder_within(context.settings.received_dir, (partner_id, canonical))
    partial, content_hash, size, head = await spool(request, folder, limit)
    try:
        if size == 0:
            raise HTTPException(422, detail="the request body is empty: send the file's bytes")
        checked_signature(head, file_name)
        # The bytes and the received submission are committed before the 202: whatever
        # crashes next, the file reaches a verdict (the reconciler sees to it).
        row = await run_in_threadpool(
            intake.take_bytes,
            partial.read_bytes(),
            partner_id,
            canonical,
            file_name=file_name,
            initiative=context.initiative,
            settings=context.settings,
            engine=context.engine,
            options={"encoding": declared_encoding, "locale": declared_locale},
        )
    except SQLAlchemyError as exc:
        raise HTTPException(
            503, detail="the file could not be stored just now; nothing was received: send it again"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)  # never leave a spooled upload behind
    assert row.id is not None
    spec = events.submission_received(
        submission_id=row.id,
        partner_id=partner_id,
        period=canonical,
        file_name=file_name,
        content_hash=content_hash,
        size_bytes=size,
        source="api",
    )
    await run_in_threadpool(events.emit, spec, emitter=context.emitter)
    return Received(
        status="received",
        submission_id=row.id,
        partner_id=partner_id,
        period=canonical,
        file_name=file_name,
        content_hash=content_hash,
        size_bytes=size,
        submission_url=f"/v1/submissions/{row.id}",
        submissions_url=f"/v1/submissions?content_hash={content_hash}",
    )


@router.get(
    "/submissions",
    response_model=list[SubmissionOut],
    tags=["submissions"],
    summary="The token's partner's submissions",
    responses=problems(401, 422),
)
def list_own(
    context: Context,
    partner_id: PartnerId,
    period: PeriodQuery = None,
    content_hash: HashQuery = None,
    limit: LimitQuery = 100,
) -> list[SubmissionOut]:
    """Submissions of the token's partner, newest first: poll here for an upload's verdict."""
    return partner_submissions(
        context, partner_id, period=period, content_hash=content_hash, limit=limit
    )


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionOut,
    tags=["submissions"],
    summary="One submission",
    responses=problems(401, 404),
)
def get_own(context: Context, partner_id: PartnerId, submission_id: int) -> SubmissionOut:
    """One of the partner's submissions with its outcome."""
    return submission_out(own_submission(context, partner_id, submission_id))


@router.get(
    "/submissions/{submission_id}/errors.csv",
    response_class=FileResponse,
    tags=["submissions"],
    summary="The submission's error report (CSV)",
    responses={200: {"content": {"text/csv": {}}}, **problems(401, 404)},
)
def errors_csv(context: Context, partner_id: PartnerId, submission_id: int) -> FileResponse:
    """Every problem found, one per row, for a spreadsheet (UTF-8 with a byte-order mark)."""
    row = own_submission(context, partner_id, submission_id)
    path = report_file(row, "errors.csv", context.settings)
    if path is None:
        raise HTTPException(404, detail="this submission has no error report")
    return FileResponse(
        path, media_type="text/csv; charset=utf-8", filename=f"submission-{row.id}-errors.csv"
    )


@router.get(
    "/submissions/{submission_id}/report.json",
    response_class=FileResponse,
    tags=["submissions"],
    summary="The submission's report (JSON)",
    responses={200: {"content": {"application/json": {}}}, **problems(401, 404)},
)
def report_json(context: Context, partner_id: PartnerId, submission_id: int) -> FileResponse:
    """The outcome, the warnings and every problem found, for a script."""
    row = own_submission(context, partner_id, submission_id)
    path = report_file(row, "report.json", context.settings)
    if path is None:
        raise HTTPException(404, detail="this submission has no report")
    return FileResponse(path, media_type="application/json")


@router.get(
    "/partners/{partner_id}/submissions",
    response_model=list[SubmissionOut],
    tags=["partners"],
    summary="A partner's submissions (only your own)",
    responses=problems(401, 403, 422),
)
def list_partner(
    context: Context,
    caller: PartnerId,
    partner_id: str,
    period: PeriodQuery = None,
    content_hash: HashQuery = None,
    limit: LimitQuery = 100,
) -> list[SubmissionOut]:
    """The same list as ``GET /v1/submissions``, addressed by partner; 403 for another's."""
    if partner_id != caller:
        raise HTTPException(403, detail="a token reads only its own partner's submissions")
    return partner_submissions(
        context, caller, period=period, content_hash=content_hash, limit=limit
    )
