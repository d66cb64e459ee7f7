"""What an operator wants at a glance: recent submissions, recent runs, open alerts.

The database part always works; the runs come from the Prefect API the pipeline is served
against (``PREFECT_API_URL``, or the local server ``ci-pipeline serve`` starts, with its stored
secret), and are simply left out, with the reason, when none answers (or refuses the secret) —
asking must never start a server of its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from ci_pipeline import alert, store
from ci_pipeline.config import Settings
from ci_pipeline.serve import auth


@dataclass(frozen=True)
class Snapshot:
    submissions: list[dict[str, Any]]
    open_alerts: list[dict[str, Any]]
    runs: list[dict[str, Any]] = field(default_factory=list)
    prefect_api: str | None = None
    runs_note: str | None = None  # why runs are missing, when they are


def prefect_api_url(settings: Settings) -> str:
    """``PREFECT_API_URL`` when configured, else the local server ``serve`` starts."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or settings.local_prefect_api_url


def read_runs(
    api_url: str, *, limit: int, auth_string: str | None = None, timeout: float = 3.0
) -> list[dict[str, Any]]:
    """The latest flow runs that were due by now, newest first, from the Prefect REST API
    (the runs the schedules created for later days would otherwise fill the list), sending
    ``auth_string`` as Prefect's basic authentication when given."""
    now = datetime.now(UTC).isoformat()
    headers = {}
    if auth_string:
        token = base64.b64encode(auth_string.encode("utf-8")).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    response = httpx.post(
        f"{api_url.rstrip('/')}/flow_runs/filter",
        json={
            "limit": limit,
            "sort": "EXPECTED_START_TIME_DESC",
            "flow_runs": {"expected_start_time": {"before_": now}},
        },
        headers=headers,
        timeout=timeout,
    )
    response.raise_for_status()
    return [
        {
            "name": r.get("name"),
            "state": (r.get("state") or {}).get("name") or r.get("state_type"),
            "message": (r.get("state") or {}).get("message"),
            "expected_start": r.get("expected_start_time"),
            "seconds": r.get("total_run_time"),
            "tags": r.get("tags") or [],
            "url": f"{api_url.rstrip('/').removesuffix('/api')}/runs/flow-run/{r.get('id')}",
        }
        for r in response.json()
    ]


def snapshot(settings: Settings, *, engine: Engine, limit: int = 10) -> Snapshot:
    """Recent submissions and open alerts from the database, and recent runs from Prefect."""
    submissions = [
        store.submission_dict(s) for s in store.list_submissions(engine=engine, limit=limit)
    ]
    open_alerts = [
        alert.alert_dict(a)
        for a in store.list_alerts(engine=engine, status=store.AlertStatus.open, limit=limit)
    ]
    api_url = prefect_api_url(settings)
    try:
        secret = auth.client_auth_string(settings, api_url)
        runs, note = read_runs(api_url, limit=limit, auth_string=secret), None
    except httpx.HTTPStatusError as exc:
        runs, note = (
            [],
            f"the Prefect API at {api_url} refused the request ({exc.response.status_code}); "
            "for a server that needs a secret, set PREFECT_API_AUTH_STRING",
        )
    except httpx.HTTPError as exc:
        runs, note = (
            [],
            f"no Prefect API answers at {api_url} ({type(exc).__name__}); start `ci-pipeline serve` or set PREFECT_API_URL",
        )
    return Snapshot(submissions, open_alerts, runs, api_url, note)
