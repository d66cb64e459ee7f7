"""The HTTP intake API: partners upload files and follow what became of them.

Who the caller is comes from the bearer token alone (:mod:`ci_pipeline.tokens`), never from
the request, and every ``/v1`` read is confined to that partner's own submissions. An upload is
received, not processed: the bytes are streamed to ``received/<partner>/<period>/`` (capped at
``max_file_bytes`` while streaming), renamed into place atomically, and announced with a
``ci.submission.received`` event; the ingest deployment that event triggers does the rest, and
the partner polls ``submissions_url`` for the verdict.

This module is the API's edge: the pipeline's exceptions (:mod:`ci_pipeline.errors`) become HTTP
statuses here and nowhere else. Serve it with ``uvicorn`` through :func:`create_app`.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, create_model
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from ci_pipeline import events, read, store
from ci_pipeline.clock import utcnow
from ci_pipeline.config import Settings
from ci_pipeline.errors import (
    ConcurrentSubmission,
    InvalidPeriod,
    PipelineError,
    SubmissionRefused,
    UnknownPartner,
)
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive import tokens

#: Pipeline errors as HTTP statuses (the most specific class wins; anything else is 400).
ERROR_STATUS: dict[type[PipelineError], int] = {
    InvalidPeriod: 422,
    SubmissionRefused: 422,
    UnknownPartner: 404,
    ConcurrentSubmission: 409,
}
UPLOAD_TYPES = (
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
)
SAFE_NAME_CHARS = re.compile(r"[^\w.\-]+")  # \w: letters and digits of any script, and _
MAX_NAME_LENGTH = 120
NOT_FOUND = "no such submission"  # the same words whether it does not exist or is not yours


class Problem(BaseModel):
    """Why a request failed, in a sentence."""

    detail: str


class Health(BaseModel):
    status: str


class Received(BaseModel):
    """An upload was received and waits to be ingested; poll ``submissions_url`` for the verdict."""

    status: str
    partner_id: str
    period: str
    file_name: str
    content_hash: str
    size_bytes: int
    submissions_url: str


#: How the API shows the stored fields it does not show as stored: moments as ISO 8601 text
#: (:func:`store.submission_dict`), and the id, which a stored submission always has.
SHOWN_AS: dict[str, Any] = {"id": int, "received_at": str, "validated_at": str | None}

#: The stored record's public fields (all but :data:`store.SUBMISSION_INTERNAL`), in its order,
#: each required: selected from :class:`store.SubmissionFields`, not declared again.
PUBLIC_FIELDS: dict[str, Any] = {
    name: (SHOWN_AS.get(name, field.annotation), ...)
    for name, field in store.SubmissionFields.model_fields.items()
    if name not in store.SUBMISSION_INTERNAL
}
SubmissionRecord = create_model("SubmissionRecord", **PUBLIC_FIELDS)


class SubmissionOut(SubmissionRecord):
    """One of the partner's submissions and its outcome (internal paths are never shown)."""

    report_url: str | None
    errors_url: str | None


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses an endpoint can answer."""
    words = {
        401: "Missing, malformed, unknown or revoked bearer token.",
        403: "The request names another partner's resource.",
        404: "No such submission (or not this partner's), or no such report.",
        413: "The file is larger than the installation's limit.",
        422: "The period, file name, encoding or body is not acceptable.",
    }
    return {code: {"model": Problem, "description": words[code]} for code in codes}


@dataclass(frozen=True)
class ApiContext:
    """What every request needs, held on ``app.state``."""

    settings: Settings
    initiative: Initiative
    engine: Engine
    emitter: events.Emitter


def get_context(request: Request) -> ApiContext:
    """The context :func:`create_app` stored on the application."""
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PartnerToken",
    description="A partner's API token (`ci-pipeline tokens issue --partner ...`).",
)


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": challenge})


def authenticated_partner(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The partner the bearer token belongs to: the only source of the caller's identity."""
    if credentials is None:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer cip_...'")
    if not tokens.well_formed(credentials.credentials):
        raise _unauthorized("malformed token", "invalid_token")
    partner_id = tokens.authenticate(
        credentials.credentials,
        engine=context.engine,
        initiative_id=context.initiative.info.id,
    )
    if partner_id is None or partner_id not in context.initiative.partners:
        raise _unauthorized("unknown or revoked token", "invalid_token")
    return partner_id


PartnerId = Annotated[str, Depends(authenticated_partner)]
router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated_partner)])


# --- helpers -------------------------------------------------------------------------------------


def safe_file_name(name: str) -> str:
    """The base name of ``name`` reduced to a safe charset; 422 unless it is a readable type.

    Any directory part (``/`` or ``\\``) is dropped, so the name can never leave its folder;
    leading dots go too (no hidden files, no ``..``).
    """
    base = PurePosixPath(unicodedata.normalize("NFC", name).replace("\\", "/")).name
    safe = SAFE_NAME_CHARS.sub("_", base).lstrip(".")
    suffix = PurePosixPath(safe).suffix.lower()
    if suffix not in read.FORMATS:
        kinds = ", ".join(sorted(read.FORMATS))
        raise HTTPException(
            422, detail=f"{name!r} is not a file the pipeline reads: send one ending in {kinds}"
        )
    stem = safe[: -len(suffix)][: MAX_NAME_LENGTH - len(suffix)]
    return stem + suffix


def _encoding(encoding: str | None) -> str | None:
    """The declared text encoding, checked now so the partner hears about a typo at once."""
    if encoding is None or not encoding.strip():
        return None
    try:
        codecs.lookup(encoding.strip())
    except LookupError:
        raise HTTPException(
            422, detail=f"unknown encoding {encoding!r}: e.g. windows-1255, windows-1256, utf-8"
        ) from None
    return encoding.strip()


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, detail=f"the file is larger than the limit of {limit} bytes")


async def spool(request: Request, folder: Path, limit: int) -> tuple[Path, str, int]:
    """Stream the body into a temporary file in ``folder``: its path, SHA-256 and size.

    Counting as it goes, it stops with 413 the moment the body passes ``limit`` (a chunked
    upload has no Content-Length to check first); on any failure the partial file is deleted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    partial = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                digest.update(chunk)
                await run_in_threadpool(fh.write, chunk)
            await run_in_threadpool(_flush, fh)
    except BaseException:  # a refusal, a client gone mid-upload, a full disk
        partial.unlink(missing_ok=True)
        raise
    return partial, digest.hexdigest(), size


def _flush(fh: Any) -> None:
    """Make the bytes durable before the rename makes them visible."""
    fh.flush()
    os.fsync(fh.fileno())


def _report_file(row: store.Submission, name: str, settings: Settings) -> Path | None:
    """``errors.csv`` or ``report.json`` beside the row's stored report, if it is there."""
    if not row.report_path:
        return None
    path = Path(row.report_path).parent / name
    inside = path.resolve().is_relative_to(settings.reports_dir.resolve())
    return path if inside and path.is_file() else None


def _out(row: store.Submission) -> SubmissionOut:
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
    return [_out(r) for r in rows]


def own_submission(context: ApiContext, partner_id: str, submission_id: int) -> store.Submission:
    """The submission if it is this partner's; 404 alike when it is missing or someone else's."""
    row = store.get_submission(submission_id, engine=context.engine)
    if (
        row is None
        or row.partner_id != partner_id
        or row.initiative_id != context.initiative.info.id
    ):
        raise HTTPException(404, detail=NOT_FOUND)
    return row


# --- endpoints -----------------------------------------------------------------------------------

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
    responses=_problems(401, 413, 422),
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
) -> Received:
    """Receive one file for the token's partner; ingestion follows asynchronously (poll)."""
    canonical = parse_period(period).label
    file_name = safe_file_name(filename)
    declared_encoding = _encoding(encoding)
    limit = context.settings.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)  # refused unread
    folder = context.settings.received_dir / partner_id / canonical
    partial, content_hash, size = await spool(request, folder, limit)
    if size == 0:
        partial.unlink(missing_ok=True)
        raise HTTPException(422, detail="the request body is empty: send the file's bytes")
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    final = folder / f"{stamp}-{content_hash[:12]}-{file_name}"
    os.replace(partial, final)  # atomic: the ingest run never sees half a file
    spec = events.submission_received(
        partner_id=partner_id,
        period=canonical,
        path=str(final),
        file_name=file_name,
        content_hash=content_hash,
        size_bytes=size,
        source="api",
        encoding=declared_encoding,
    )
    await run_in_threadpool(events.emit, spec, emitter=context.emitter)
    return Received(
        status="received",
        partner_id=partner_id,
        period=canonical,
        file_name=file_name,
        content_hash=content_hash,
        size_bytes=size,
        submissions_url=f"/v1/submissions?content_hash={content_hash}",
    )


@router.get(
    "/submissions",
    response_model=list[SubmissionOut],
    tags=["submissions"],
    summary="The token's partner's submissions",
    responses=_problems(401, 422),
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
    responses=_problems(401, 404),
)
def get_own(context: Context, partner_id: PartnerId, submission_id: int) -> SubmissionOut:
    """One of the partner's submissions with its outcome."""
    return _out(own_submission(context, partner_id, submission_id))


@router.get(
    "/submissions/{submission_id}/errors.csv",
    response_class=FileResponse,
    tags=["submissions"],
    summary="The submission's error report (CSV)",
    responses={200: {"content": {"text/csv": {}}}, **_problems(401, 404)},
)
def errors_csv(context: Context, partner_id: PartnerId, submission_id: int) -> FileResponse:
    """Every problem found, one per row, for a spreadsheet (UTF-8 with a byte-order mark)."""
    row = own_submission(context, partner_id, submission_id)
    path = _report_file(row, "errors.csv", context.settings)
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
    responses={200: {"content": {"application/json": {}}}, **_problems(401, 404)},
)
def report_json(context: Context, partner_id: PartnerId, submission_id: int) -> FileResponse:
    """The outcome, the warnings and every problem found, for a script."""
    row = own_submission(context, partner_id, submission_id)
    path = _report_file(row, "report.json", context.settings)
    if path is None:
        raise HTTPException(404, detail="this submission has no report")
    return FileResponse(path, media_type="application/json")


@router.get(
    "/partners/{partner_id}/submissions",
    response_model=list[SubmissionOut],
    tags=["partners"],
    summary="A partner's submissions (only your own)",
    responses=_problems(401, 403, 422),
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


# --- the application -----------------------------------------------------------------------------


def _pipeline_error(_request: Request, exc: Exception) -> JSONResponse:
    """A pipeline error the endpoints did not handle, as a status and its message."""
    status = next((ERROR_STATUS[c] for c in type(exc).__mro__ if c in ERROR_STATUS), 400)
    return JSONResponse({"detail": str(exc)}, status_code=status)


def create_app(
    settings: Settings, initiative: Initiative, *, engine: Engine, emitter: events.Emitter
) -> FastAPI:
    """The intake API for ``initiative``, storing uploads under ``settings.received_dir``.

    ``emitter`` sends the ``ci.submission.received`` events (:func:`events.prefect_emitter` in
    production; a list's ``append`` in tests).
    """
    app = FastAPI(
        title=f"ci-pipeline intake API — {initiative.info.name.en}",
        description=(
            "Partners of the initiative upload their periodic data files and follow what became "
            "of them. Authenticate with your partner's API token "
            "(`Authorization: Bearer cip_...`): the token alone says who you are, and you see "
            "only your own submissions.\n\n"
            "Upload: `curl --data-binary @file.csv -H 'Authorization: Bearer cip_...' "
            "'.../v1/submissions?period=2025-Q4&filename=file.csv'`. The answer (202) means "
            "received, not yet checked: poll `submissions_url` for the verdict and the report."
        ),
        version="1",
        openapi_tags=[
            {"name": "health", "description": "Liveness, without a token."},
            {"name": "submissions", "description": "Upload files and read their outcomes."},
            {"name": "partners", "description": "The same, addressed by partner."},
        ],
    )
    app.state.context = ApiContext(settings, initiative, engine, emitter)
    app.add_exception_handler(PipelineError, _pipeline_error)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    def healthz() -> Health:
        """The process is up (no token needed)."""
        return Health(status="ok")

    app.include_router(router)
    return app
