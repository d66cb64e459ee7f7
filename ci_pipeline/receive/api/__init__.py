"""The HTTP intake API: partners upload files and follow what became of them.

Who the caller is comes from the bearer token alone (:mod:`ci_pipeline.receive.tokens`), never from
the request, and every ``/v1`` read is confined to that partner's own submissions. An upload is
received, not processed: the bytes are streamed to ``received/<partner>/<period>/`` (capped at
``max_file_bytes`` while streaming), renamed into place atomically, and announced with a
``ci.submission.received`` event; the ingest deployment that event triggers does the rest, and
the partner polls ``submissions_url`` for the verdict.

This module is the API's edge: the pipeline's exceptions (:mod:`ci_pipeline.errors`) become HTTP
statuses here and nowhere else. Serve it with ``uvicorn`` through :func:`create_app`.

The modules: ``schemas`` (what it answers), ``auth`` (who is calling), ``uploads`` (taking a
file safely), ``routes`` (the endpoints) and ``app`` (the application and its error statuses).
This namespace re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.receive.api.app import ERROR_STATUS, create_app, pipeline_error
from ci_pipeline.receive.api.auth import (
    ApiContext,
    Context,
    PartnerId,
    authenticated_partner,
    bearer,
    get_context,
    unauthorized,
)
from ci_pipeline.receive.api.routes import (
    NOT_FOUND,
    HashQuery,
    LimitQuery,
    PeriodQuery,
    errors_csv,
    get_own,
    list_own,
    list_partner,
    own_submission,
    partner_submissions,
    report_file,
    report_json,
    router,
    submission_out,
    upload,
)
from ci_pipeline.receive.api.schemas import (
    PUBLIC_FIELDS,
    SHOWN_AS,
    Health,
    Problem,
    Received,
    SubmissionOut,
    SubmissionRecord,
    problems,
)
from ci_pipeline.receive.api.uploads import (
    DECLARED_TYPES,
    GENERIC_TYPES,
    HEAD_BYTES,
    MAX_NAME_LENGTH,
    SAFE_NAME_CHARS,
    SIGNATURE_NAMES,
    SIGNATURES,
    UPLOAD_TYPES,
    Spooled,
    checked_content_type,
    checked_encoding,
    checked_signature,
    file_format,
    flush_to_disk,
    safe_file_name,
    spool,
    too_large,
    unsupported,
)

__all__ = [
    "DECLARED_TYPES",
    "ERROR_STATUS",
    "GENERIC_TYPES",
    "HEAD_BYTES",
    "MAX_NAME_LENGTH",
    "NOT_FOUND",
    "PUBLIC_FIELDS",
    "SAFE_NAME_CHARS",
    "SHOWN_AS",
    "SIGNATURES",
    "SIGNATURE_NAMES",
    "UPLOAD_TYPES",
    "ApiContext",
    "Context",
    "HashQuery",
    "Health",
    "LimitQuery",
    "PartnerId",
    "PeriodQuery",
    "Problem",
    "Received",
    "Spooled",
    "SubmissionOut",
    "SubmissionRecord",
    "authenticated_partner",
    "bearer",
    "checked_content_type",
    "checked_encoding",
    "checked_signature",
    "create_app",
    "errors_csv",
    "file_format",
    "flush_to_disk",
    "get_context",
    "get_own",
    "list_own",
    "list_partner",
    "own_submission",
    "partner_submissions",
    "pipeline_error",
    "problems",
    "report_file",
    "report_json",
    "router",
    "safe_file_name",
    "spool",
    "submission_out",
    "too_large",
    "unauthorized",
    "unsupported",
    "upload",
]
