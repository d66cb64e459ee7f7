"""Who is calling: the partner a bearer token belongs to (from the token alone), and the
request's context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import tokens


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


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": challenge})


def authenticated_partner(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The partner the bearer token belongs to: the only source of the caller's identity."""
    if credentials is None:
        raise unauthorized("missing bearer token: send 'Authorization: Bearer cip_...'")
    if not tokens.well_formed(credentials.credentials):
        raise unauthorized("malformed token", "invalid_token")
    partner_id = tokens.authenticate(
        credentials.credentials,
        engine=context.engine,
        initiative_id=context.initiative.info.id,
    )
    if partner_id is None or partner_id not in context.initiative.partners:
        raise unauthorized("unknown or revoked token", "invalid_token")
    return partner_id


PartnerId = Annotated[str, Depends(authenticated_partner)]
