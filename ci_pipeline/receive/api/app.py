"""The application: the routes, the health check, and the pipeline's errors as HTTP statuses
(here and nowhere else).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.errors import (
    ConcurrentSubmission,
    InvalidPeriod,
    PipelineError,
    SubmissionRefused,
    UnknownPartner,
)
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive.api.ack import router as ack_router
from ci_pipeline.receive.api.auth import ApiContext
from ci_pipeline.receive.api.docs import add_docs
from ci_pipeline.receive.api.files import router as files_router
from ci_pipeline.receive.api.routes import router
from ci_pipeline.receive.api.schemas import Health

#: Where the API serves the report card.
REPORT_ROUTE = "/report"

#: Pipeline errors as HTTP statuses (the most specific class wins; anything else is 400).
ERROR_STATUS: dict[type[PipelineError], int] = {
    InvalidPeriod: 422,
    SubmissionRefused: 422,
    UnknownPartner: 404,
    ConcurrentSubmission: 409,
}


def pipeline_error(_request: Request, exc: Exception) -> JSONResponse:
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
        docs_url=None,  # served by add_docs, with local assets instead of a CDN's
        redoc_url=None,
        openapi_tags=[
            {"name": "health", "description": "Liveness, without a token."},
            {"name": "submissions", "description": "Upload files and read their outcomes."},
            {"name": "partners", "description": "The same, addressed by partner."},
            {"name": "files", "description": "The quality gate's Data Docs, read-only."},
            {
                "name": "alerts",
                "description": "Acknowledge an alert from its message's link (the signed "
                "link is the credential; no token).",
            },
        ],
    )
    app.state.context = ApiContext(settings, initiative, engine, emitter)
    app.add_exception_handler(PipelineError, pipeline_error)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    def healthz() -> Health:
        """The process is up (no token needed)."""
        return Health(status="ok")

    app.include_router(router)
    app.include_router(files_router)
    app.include_router(ack_router)
    # The report card, read-only and without a token: it shows only published (masked)
    # figures, for the backbone team and the communities alike. Built by ``process``.
    settings.report_card_dir.mkdir(parents=True, exist_ok=True)
    app.mount(
        REPORT_ROUTE,
        StaticFiles(directory=settings.report_card_dir, html=True, check_dir=False),
        name="report-card",
    )
    add_docs(app)
    return app
