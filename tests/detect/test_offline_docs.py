"""Data Docs pages pointed at local copies of the assets GX loads from CDNs
(ci_pipeline/detect/offline_docs.py). The real pages are checked in test_gate.py."""

from __future__ import annotations

from pathlib import Path

from ci_pipeline.detect.offline_docs import ASSETS, OFFLINE, REPLACEMENTS, make_offline

LOGO = (
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"
    "?d=20261130T203432Z&dataContextId=abc"
)


def page(addresses: list[str]) -> str:
    tags = "".join(f'<script src="{a}"></script>' for a in addresses)
    return f'<html><head>{tags}</head><body><img src="{LOGO}"><a href="https://greatexpectations.io">GX</a></body></html>'


def test_every_address_has_its_file() -> None:
    for local in REPLACEMENTS.values():
        assert (ASSETS / local).is_file(), local
    # Font Awesome's stylesheet finds its fonts beside it, as on the CDN.
    assert (ASSETS / "fontawesome" / "webfonts" / "fa-solid-900.woff2").is_file()
    assert (ASSETS / "LICENSES").is_dir()


def test_pages_at_any_depth_point_at_the_copies_and_a_second_run_changes_nothing(
    tmp_path: Path,
) -> None:
    site = tmp_path / "local_site"
    index, deep = site / "index.html", site / "validations" / "suite" / "run" / "x.html"
    deep.parent.mkdir(parents=True)
    for p in (index, deep):
        p.write_text(page(list(REPLACEMENTS)), encoding="utf-8")

    assert make_offline(site) == 2
    for p, prefix in ((index, "static/offline"), (deep, "../../../static/offline")):
        text = p.read_text(encoding="utf-8")
        assert not any(address in text for address in REPLACEMENTS)
        assert "amazonaws" not in text
        assert f'src="{prefix}/jquery.min.js"' in text
        assert "https://greatexpectations.io" in text  # a plain link stays a link
    assert (site / OFFLINE / "vega.min.js").is_file()
    assert not (site / OFFLINE / "LICENSES").exists()
    before = {p: p.read_text(encoding="utf-8") for p in (index, deep)}
    assert make_offline(site) == 0
    assert {p: p.read_text(encoding="utf-8") for p in (index, deep)} == before
