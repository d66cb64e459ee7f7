"""The API's documentation pages work without the internet: every script, style and icon
they name is served by the API itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import tokens
from ci_pipeline.receive.api import create_app

#: What FastAPI's default pages load from the internet.
REMOTE = ("cdn.jsdelivr.net", "unpkg.com", "fonts.googleapis.com", "fastapi.tiangolo.com")


@pytest.fixture
def client(
    sqlite_engine: Engine, initiative: Initiative, settings: Settings
) -> Iterator[TestClient]:
    sent: list[events.EventSpec] = []
    app = create_app(settings, initiative, engine=sqlite_engine, emitter=sent.append)
    with TestClient(app) as c:
        yield c


def assets(page: str) -> list[str]:
    """The URLs a page's ``<script src>``, ``<link href>`` and ``favicon`` name."""
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page) + re.findall(
        r"""favicon_url\s*[:=]\s*["']([^"']+)["']""", page
    )


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"}),
        ("/redoc", {"/docs-assets/redoc.standalone.js"}),
    ],
)
def test_the_documentation_pages_load_nothing_from_the_internet(
    client: TestClient, page: str, expected: set[str]
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    for host in REMOTE:
        assert host not in html
    named = set(assets(html))
    assert expected <= named
    assert "/docs-assets/favicon.png" in named
    for url in named:
        assert url.startswith("/"), url  # this server's, never another host's
        served = client.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 1000, url  # the asset itself, not an error page


def test_the_assets_are_the_real_scripts(client: TestClient) -> None:
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in js.text
    assert "javascript" in js.headers["content-type"]
    assert "Redoc" in client.get("/docs-assets/redoc.standalone.js").text
    assert client.get("/docs-assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs-assets/nothing.js").status_code == 404


# --- the Data Docs, read-only, behind a partner's token -----------------------------------------


def test_data_docs_are_served_to_a_partner_and_nothing_else(
    client: TestClient, settings: Settings, sqlite_engine: Engine, initiative: Initiative
) -> None:
    page = settings.gx_dir / "uncommitted" / "data_docs" / "local_site" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>gate</html>", encoding="utf-8")
    (settings.home / "ci_pipeline.secret").write_text("not for the web", encoding="utf-8")
    secret = tokens.issue(initiative, "galilee-foundation", engine=sqlite_engine).secret
    auth = {"Authorization": f"Bearer {secret}"}
    url = "/v1/files/gx/uncommitted/data_docs/local_site/index.html"

    assert client.get(url).status_code == 401  # the same token as every other GET
    served = client.get(url, headers=auth)
    assert (served.status_code, served.text) == (200, "<html>gate</html>")
    assert served.headers["content-type"].startswith("text/html")
    for outside in ("..%2Fci_pipeline.secret", "../ci_pipeline.secret", "uncommitted"):
        assert client.get(f"/v1/files/gx/{outside}", headers=auth).status_code == 404, outside
    (settings.gx_dir / "link.txt").symlink_to(settings.home / "ci_pipeline.secret")
    assert client.get("/v1/files/gx/link.txt", headers=auth).status_code == 404
    assert client.post(url, headers=auth).status_code == 405  # read-only
