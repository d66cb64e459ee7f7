"""Building the report card: read what is stored, write the site and its Data Package beside
the old one, and swap it in whole."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.aggregate.privacy import mask
from ci_pipeline.detect.gaps import gap_series
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.report import cells_folder, drawn_folder, kept_folder, rows_folder
from ci_pipeline.report.cells import read_cells
from ci_pipeline.report.content import pages
from ci_pipeline.report.headlines import what_happened
from ci_pipeline.report.package import ALERT_FIELDS, write_package
from ci_pipeline.report.site import Built, write_site


def _open_alerts(engine: Engine, initiative: Initiative) -> pl.DataFrame:
    """The open alerts, with each one's headline in Hebrew and Arabic (the pages in those
    languages lead with it; the English sentence follows)."""
    alerts = store.list_alerts(engine=engine, status="open", limit=10_000)
    rows = [
        {c: getattr(a, c) for c, _, _ in ALERT_FIELDS}
        # Without its "[kind] #id" head: the page lists those itself.
        | {f"headline_{lang}": what_happened(a, initiative, lang) for lang in ("he", "ar")}
        for a in alerts
    ]
    schema = {"id": pl.Int64, "kind": pl.Utf8, "measure_id": pl.Utf8, "geo_code": pl.Utf8}
    schema |= {
        "period": pl.Utf8,
        "message": pl.Utf8,
        "headline_he": pl.Utf8,
        "headline_ar": pl.Utf8,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def build_report(initiative: Initiative, root: Path, *, engine: Engine, today: date) -> Built:
    """Rebuild the report card under ``root`` from the stored indicators and open alerts:
    written next to it and swapped in whole, so a reader never sees half a site."""
    cells = read_cells(initiative.info.id, engine=engine, folder=cells_folder(root))
    indicators = mask(cells.frame)
    alerts = _open_alerts(engine, initiative)
    staging = root.with_name(root.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    gaps = gap_series(indicators, initiative)  # masked: a suppressed side hides its gap
    _, count = write_site(
        pages(indicators, alerts, initiative, gaps),
        initiative,
        staging,
        built_on=today,
        drawn=drawn_folder(root),
        kept=kept_folder(root),
    )
    write_package(
        indicators, alerts, initiative, staging, kept=rows_folder(root), versions=cells.versions
    )
    old = root.with_name(root.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    staging.rename(root)
    shutil.rmtree(old, ignore_errors=True)
    return Built(root, root / "index.html", count)
