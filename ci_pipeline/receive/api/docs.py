"""The API's documentation pages (``/docs``, ``/redoc``) with their scripts and styles served
by the API itself.

FastAPI's default pages load Swagger UI and ReDoc from a CDN (and ReDoc its fonts from
Google): on a machine without the internet they are blank. The assets come from the
``fastapi-offline`` package (Swagger UI's bundle and stylesheet, ReDoc's standalone script, a
favicon), mounted read-only under :data:`ASSETS`; the pages are FastAPI's own
(``get_swagger_ui_html``, ``get_redoc_html``) pointed at them, FastAPI's documented recipe for
self-hosting.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the documentation assets are served.
ASSETS = "/docs-assets"
#: The installed package's asset folder.
ASSET_FOLDER = Path(str(files("fastapi_offline") / "static"))


def add_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the documentation pages of ``app`` (created with ``docs_url=None`` and
    ``redoc_url=None``) and their assets from this process."""
    app.mount(ASSETS, StaticFiles(directory=ASSET_FOLDER), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=f"{base}{openapi_url}",
            title=f"{app.title} — Swagger UI",
            oauth2_redirect_url=f"{base}{redirect_url}",
            swagger_js_url=f"{base}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=f"{base}{openapi_url}",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{base}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS}/favicon.png",
            with_google_fonts=False,  # fonts from Google are as unreachable as a CDN
        )
