"""What the intake API answers, as OpenAPI documents it: the submission schema (the stored
record's public fields, selected from the store's declaration), the receipt of an upload,
problems.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, create_model

from ci_pipeline import store


class Problem(BaseModel):
    """Why a request failed, in a sentence."""

    detail: str


class Health(BaseModel):
    status: str


class Received(BaseModel):
    """An upload was received — its bytes and submission are stored — and waits to be
    ingested; poll ``submission_url`` for the verdict."""

    status: str
    submission_id: int
    partner_id: str
    period: str
    file_name: str
    content_hash: str
    size_bytes: int
    submission_url: str
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


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses an endpoint can answer."""
    words = {
        401: "Missing, malformed, unknown or revoked bearer token.",
        403: "The request names another partner's resource.",
        404: "No such submission (or not this partner's), or no such report.",
        413: "The file is larger than the installation's limit.",
        415: "The declared Content-Type, or the file's first bytes, contradict its name.",
        422: "The period, file name, encoding, locale or body is not acceptable.",
        503: "The file could not be stored just now; nothing was received: send it again.",
    }
    return {code: {"model": Problem, "description": words[code]} for code in codes}
