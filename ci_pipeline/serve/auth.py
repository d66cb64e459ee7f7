"""The secret that guards the local Prefect server ``serve`` starts: only the pipeline's own
processes (and operators who have the secret) reach its API.

Prefect's self-hosted server does HTTP basic authentication: the server process is given
``PREFECT_SERVER_API_AUTH_STRING=admin:<secret>``, and every client — the runner, the flow runs
it starts, the CLI, the UI (it asks for the string once) — sends ``PREFECT_API_AUTH_STRING`` with
the same value. The secret is made once (``secrets.token_urlsafe``), kept in
``$CI_PIPELINE_HOME/prefect-api-auth`` readable by its owner only (0600), and reused on every
later start, so runs and operators keep working across restarts.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from ci_pipeline.config import Settings
from ci_pipeline.secret import read_secret, stored_secret

#: The user name of the auth string (Prefect checks the whole ``user:secret`` string).
USER = "admin"


#: The environment variables Prefect reads: on the server process, and on its clients.
SERVER_VARIABLE = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_VARIABLE = "PREFECT_API_AUTH_STRING"


def read_auth_string(settings: Settings) -> str | None:
    """The auth string stored under the pipeline's home, or None when there is none yet."""
    return read_secret(settings.prefect_auth_file)


def auth_string(settings: Settings) -> str:
    """The auth string for the local server: the stored one, or a new one stored now (0600)."""
    return stored_secret(settings.prefect_auth_file, lambda: f"{USER}:{secrets.token_urlsafe(32)}")


def client_auth_string(settings: Settings, api_url: str) -> str | None:
    """What a client of ``api_url`` should authenticate with: ``PREFECT_API_AUTH_STRING`` when
    set, else the stored secret when ``api_url`` is the local server ``serve`` starts."""
    configured = os.environ.get(CLIENT_VARIABLE)
    if configured:
        return configured
    if api_url.rstrip("/") == settings.local_prefect_api_url:
        return read_auth_string(settings)
    return None


def use_local_auth(settings: Settings) -> None:
    """Let this process's Prefect client authenticate to the local server ``serve`` started,
    when ``PREFECT_API_URL`` names it and no auth string is set (the CLI calls this first)."""
    url = os.environ.get("PREFECT_API_URL", "")
    if not url or os.environ.get(CLIENT_VARIABLE):
        return
    with contextlib.suppress(OSError):
        found = client_auth_string(settings, url)
        if found:
            os.environ[CLIENT_VARIABLE] = found
