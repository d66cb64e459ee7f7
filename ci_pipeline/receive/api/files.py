"""Read-only files of the data folder an operator follows a link to: the quality gate's Data
Docs (``/v1/files/gx/…``, under ``CI_PIPELINE_HOME/gx``).

Behind the same token as every other ``/v1`` route. Data Docs show the gated indicators
masked (suppressed cells blank), the figures every partner shares, so any partner's token
reads them; a partner's own reports stay at ``/v1/submissions/{id}/report.json``, its own
only. Nothing outside the folder is served: the path is resolved (links and ``..`` followed)
and must still lie inside it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from ci_pipeline.links import GX_ROUTE
from ci_pipeline.receive.api.auth import Context, authenticated_partner

router = APIRouter(dependencies=[Depends(authenticated_partner)])


def inside(root: Path, relative: str) -> Path | None:
    """``relative`` under ``root`` if it is a file there once resolved, else None."""
    base = root.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) and path.is_file() else None


@router.get(
    f"{GX_ROUTE}/{{path:path}}",
    tags=["files"],
    summary="A Data Docs file of the quality gate",
    responses={404: {"description": "No such file"}},
)
def gx_file(path: str, context: Context) -> FileResponse:
    """A file of the quality gate's Data Docs (HTML pages and their assets)."""
    found = inside(context.settings.gx_dir, path)
    if found is None:
        raise HTTPException(404, detail="no such file")
    return FileResponse(found)
