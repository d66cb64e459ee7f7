"""Great Expectations' Data Docs without the internet: every page loads its scripts, styles and
fonts from files next to it, never from a CDN.

GX 1.x's page templates load Bootstrap, jQuery, Popper, Font Awesome, bootstrap-table,
bootstrap-datepicker, Vega and a dark theme from public CDNs, and its logo from an S3 bucket;
it ships only its own CSS, fonts and images. A backbone team's machine offline (or a data
engineer's behind a proxy) then sees unstyled pages. :func:`make_offline` copies the exact
files those addresses serve (``gx_assets/``, taken from the npm packages named in
:data:`REPLACEMENTS`, licenses in ``gx_assets/LICENSES/``) into the site's ``static/offline/``
and rewrites each page to point at them by relative path, so the pages work opened from disk
and served by the intake API (``/v1/files/gx/…``) alike.

To refresh the files (a GX upgrade that changes its templates' addresses): ``npm pack
<package>@<version>`` each package below and copy the named file out of its ``package/``
folder into ``gx_assets/``; ``tests/detect/test_offline_docs.py`` fails on any page address
left unreplaced.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

#: The files that replace the CDN addresses (package data, beside this module).
ASSETS = Path(__file__).with_name("gx_assets")

#: Each address GX 1.x's templates load → the file here serving the same bytes (npm
#: package@version: its path in the package).
REPLACEMENTS: dict[str, str] = {
    # bootstrap@4.3.1: dist/css/bootstrap.min.css, dist/js/bootstrap.min.js
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap.min.js",
    # jquery@3.7.1: dist/jquery.min.js
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery.min.js",
    # popper.js@1.12.9: dist/umd/popper.min.js
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.min.js",
    # @fortawesome/fontawesome-free@6.6.0: css/all.min.css and webfonts/*.woff2
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    # bootstrap-table@1.19.1: dist/… (the filter-control styles GX asks of 1.19.0 are 1.19.1's)
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    # bootstrap-datepicker@1.9.0: dist/css/…, dist/js/…
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    # vega@5.33.1, vega-lite@5.23.0, vega-embed@6.29.0: build/*.min.js (what @5/@6 resolve to)
    "https://cdn.jsdelivr.net/npm/vega@5": "vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed.min.js",
    # @forevolve/bootstrap-dark@1.1.0: dist/css/bootstrap-prefers-dark.css
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": "bootstrap-prefers-dark.css",
}

#: GX's logos from its S3 bucket (with tracking parameters) → its own logo in the site.
_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3\.[\w.-]+\.amazonaws\.com/[\w.-]+\.png(\?[^\"'\s)]*)?"
)

#: Where the copied files go, inside the site.
OFFLINE = Path("static") / "offline"


def make_offline(site: Path) -> int:
    """Copy the assets into ``site/static/offline/`` (when missing) and rewrite every page of
    ``site`` that still names a CDN address; the number of pages rewritten. Re-running it
    changes nothing."""
    target = site / OFFLINE
    if not (target / "jquery.min.js").exists():
        shutil.copytree(
            ASSETS, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("LICENSES")
        )
    rewritten = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if "https://" not in text:
            continue
        prefix = Path(os.path.relpath(target, page.parent)).as_posix()
        logo = Path(os.path.relpath(site / "static" / "images" / "logo-long.png", page.parent))
        new = text
        for address, local in REPLACEMENTS.items():
            new = new.replace(address, f"{prefix}/{local}")
        new = _LOGO.sub(logo.as_posix(), new)
        if new != text:
            page.write_text(new, encoding="utf-8")
            rewritten += 1
    return rewritten
