"""Links to what the intake API serves, for the screens operators read (Prefect artifacts):
an http URL they can open instead of a path on the server's disk.

The routes are :mod:`ci_pipeline.receive.api`'s (``/v1/submissions/{id}/report.json``,
``…/errors.csv``, ``/v1/files/gx/…``); they all need a partner's token, as every GET of the
API does. Only plain strings here, so a flow (or an alert's sentence: detect) can make links
without importing the web app.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from ci_pipeline.config import Settings

#: Where the API serves the Great Expectations folder (its Data Docs) read-only.
GX_ROUTE = "/v1/files/gx"


def report_url(settings: Settings, submission_id: int) -> str:
    """A submission's report (its verdict and every problem, JSON)."""
    return f"{settings.api_base_url}/v1/submissions/{submission_id}/report.json"


def errors_url(settings: Settings, submission_id: int) -> str:
    """A submission's problems, one a row (CSV)."""
    return f"{settings.api_base_url}/v1/submissions/{submission_id}/errors.csv"


def gx_url(settings: Settings, docs: str | None) -> str | None:
    """The API's URL of a Data Docs page GX names as a ``file://`` URL or a path; None when
    there is none, or it lies outside the GX folder (the API serves nothing else)."""
    if not docs:
        return None
    path = Path(unquote(urlparse(docs).path) if docs.startswith("file:") else docs)
    root = settings.gx_dir.resolve()
    try:
        relative = path.resolve().relative_to(root)
    except ValueError:
        return None
    return f"{settings.api_base_url}{GX_ROUTE}/{quote(relative.as_posix())}"
