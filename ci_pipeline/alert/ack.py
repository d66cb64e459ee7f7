"""Acknowledgement by link: each alert sent carries a signed, expiring link that acknowledges
exactly that alert, so a backbone team member needs no terminal and no account.

The token is the alert's id signed with a key kept in the data folder (itsdangerous's timed
serializer: HMAC-SHA1 over the id and the moment it was signed); the intake API checks the
signature and the age (``CI_PIPELINE_ACK_LINK_DAYS``) before it acknowledges. Opening the link
shows the alert and a button; only the button's POST acknowledges, so a mail scanner that
fetches every link acknowledges nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.secret import stored_secret

SALT = "ci-pipeline.alert-ack"
ROUTE = "/ack"


class AckLinkInvalid(PipelineError):
    """An acknowledgement link that was altered, or signed with another key."""


class AckLinkExpired(PipelineError):
    """An acknowledgement link older than ``ack_link_days``."""


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=SALT)


def sign(alert_id: int, *, key: str) -> str:
    """The token of an alert's acknowledgement link (it carries the moment it was signed)."""
    token: str = _serializer(key).dumps(alert_id)
    return token


def verify(token: str, *, key: str, max_age_seconds: float) -> int:
    """The alert id a token acknowledges; :class:`AckLinkExpired` past its age,
    :class:`AckLinkInvalid` when it was altered."""
    try:
        alert_id = _serializer(key).loads(token, max_age=int(max_age_seconds))
    except SignatureExpired:
        raise AckLinkExpired("this acknowledgement link has expired") from None
    except BadSignature:
        raise AckLinkInvalid("this is not a valid acknowledgement link") from None
    if not isinstance(alert_id, int):
        raise AckLinkInvalid("this is not a valid acknowledgement link")
    return alert_id


def ack_key(settings: Settings) -> str:
    """The signing key: the stored one, or a new one stored now (0600)."""
    return stored_secret(settings.ack_key_file, lambda: secrets.token_urlsafe(32))


def link_maker(settings: Settings) -> Callable[[int], str]:
    """A function giving each alert's acknowledgement link on the intake API."""
    key = ack_key(settings)
    base = settings.api_base_url
    return lambda alert_id: f"{base}{ROUTE}/{sign(alert_id, key=key)}"
