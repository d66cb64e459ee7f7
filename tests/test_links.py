"""Links to what the intake API serves, as artifacts show them."""

from __future__ import annotations

from pathlib import Path

from ci_pipeline import links
from ci_pipeline.config import get_settings


def test_the_api_base_is_its_own_address_unless_told() -> None:
    assert get_settings(api_host="127.0.0.1", api_port=8420).api_base_url == "http://127.0.0.1:8420"
    # Listening everywhere: a browser opens it on this machine.
    assert get_settings(api_host="0.0.0.0", api_port=9000).api_base_url == "http://127.0.0.1:9000"
    assert get_settings(api_host="::1", api_port=9000).api_base_url == "http://[::1]:9000"
    told = get_settings(api_url="https://ci.example.org/intake/")
    assert told.api_base_url == "https://ci.example.org/intake"


def test_report_links(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path, api_url="https://ci.example.org")
    assert links.report_url(settings, 12) == "https://ci.example.org/v1/submissions/12/report.json"
    assert links.errors_url(settings, 12) == "https://ci.example.org/v1/submissions/12/errors.csv"


def test_a_data_docs_page_becomes_the_apis_url(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path, api_url="https://ci.example.org")
    page = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    base = "https://ci.example.org/v1/files/gx/uncommitted/data_docs/local_site"

    assert links.gx_url(settings, page.as_uri()) == f"{base}/index.html"
    assert links.gx_url(settings, str(page)) == f"{base}/index.html"
    spaced = page.with_name("a page.html")
    assert links.gx_url(settings, spaced.as_uri()) == f"{base}/a%20page.html"
    # Nothing outside the GX folder is served, so no link is made to it.
    assert links.gx_url(settings, (tmp_path / "reports" / "x.html").as_uri()) is None
    assert links.gx_url(settings, (tmp_path / "gx" / ".." / "ci_pipeline.db").as_uri()) is None
    assert links.gx_url(settings, None) is None
