"""The figures behind the report card as a Frictionless Data Package (the open format data
portals take): the published indicators and the open alerts as CSV, and ``datapackage.json``
describing them, with each measure's definition, unit and suppression rule.

A national package holds 2.07M cells, and writing them all took a second of every rebuild, most
of what was left of one after a partner's file. The rows are sorted by measure first, so each
measure's rows are a run of the file: they are kept (``kept``, :func:`.rows_folder`) under the
key of the measure's stored slices (``versions``, :class:`.cells.Cells`) and the code that
writes them, and a rebuild writes again only the measures whose slices were replaced; the file
is those runs put together, byte for byte the file written whole."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import IO, Any

import polars as pl

from ci_pipeline.keeping import code_digest, prune, write_whole
from ci_pipeline.model.initiative import Initiative

INDICATOR_FIELDS: list[tuple[str, str, str]] = [
    ("measure_id", "string", "The shared measure (see the package's measures)."),
    ("geo_code", "string", "The geography: the cluster or a locality."),
    ("period", "string", "The period: 2025-09, 2025-Q3 or 2025."),
    ("disaggregation", "string", "The breakdown cell, dimension=code;… (total: the whole)."),
    ("value", "number", "The published value; blank where suppressed."),
    ("numerator", "number", "Proportions: what is counted; blank where suppressed."),
    ("denominator", "number", "Proportions: what it is out of; scores: respondents."),
    ("partners_reported", "integer", "Partners whose figures are in the value."),
    ("partners_expected", "integer", "Partners expected to report this cell."),
    ("suppressed", "boolean", "Hidden to protect privacy (its values are blank)."),
    ("suppression", "string", "small_cell (too few people) or complementary."),
]
ALERT_FIELDS: list[tuple[str, str, str]] = [
    ("id", "integer", "The alert's number."),
    ("kind", "string", "step, seasonal_step, sustained, drift, missing, off_track, quality …"),
    ("measure_id", "string", "The measure."),
    ("geo_code", "string", "The geography."),
    ("period", "string", "The period it is about."),
    ("message", "string", "The sentence sent to the backbone team (English)."),
]


#: The order of the published rows.
ROW_ORDER = ["measure_id", "geo_code", "period", "disaggregation"]


def _schema(fields: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"fields": [{"name": n, "type": t, "description": d} for n, t, d in fields]}


def write_package(
    indicators: pl.DataFrame,
    alerts: pl.DataFrame,
    initiative: Initiative,
    root: Path,
    *,
    kept: Path | None = None,
    versions: Mapping[str, str] | None = None,
) -> Path:
    """Write ``data/indicators.csv``, ``data/alerts.csv`` and ``datapackage.json`` under
    ``root``. ``indicators`` must be masked already (suppressed cells blank); ``versions``, each
    measure's version of its cells (:class:`.cells.Cells`), lets the rows of a measure whose
    version is kept in ``kept`` be copied from there."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    _write_indicators(indicators, data / "indicators.csv", kept=kept, versions=versions)
    alerts.select([n for n, _, _ in ALERT_FIELDS]).write_csv(data / "alerts.csv")
    measures = [
        {
            "id": m.id,
            "version": m.version,
            "title": m.title_in,
            "description": m.description,
            "unit": str(m.unit),
            "unit_label": m.unit_label,
            "numerator": m.numerator,
            "denominator": m.denominator,
            "direction": str(m.direction),
            "periodicity": str(m.periodicity),
            "baseline": m.baseline.model_dump() if m.baseline else None,
            "target": m.target.model_dump() if m.target else None,
            "suppression": (
                f"A cell whose count, numerator or respondents are under {m.min_cell_size} is "
                "suppressed, and more cells where it could be worked out from published sums."
            ),
        }
        for m in initiative.measures.values()
    ]
    descriptor = {
        "name": initiative.info.id,
        "title": initiative.info.name.en,
        "description": "Population-level indicators of the initiative's shared measures.",
        "resources": [
            {
                "name": "indicators",
                "path": "data/indicators.csv",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": _schema(INDICATOR_FIELDS),
            },
            {
                "name": "alerts",
                "path": "data/alerts.csv",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": _schema(ALERT_FIELDS),
            },
        ],
        "measures": measures,
    }
    path = root / "datapackage.json"
    path.write_text(json.dumps(descriptor, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _rows(indicators: pl.DataFrame) -> pl.DataFrame:
    """The published rows: their fields, in their order."""
    return indicators.select([n for n, _, _ in INDICATOR_FIELDS]).sort(ROW_ORDER)


@cache
def _salt() -> bytes:
    """The code that writes a measure's rows: this module, the build that gives it the cells,
    the masking of suppressed cells, and polars (it writes the numbers)."""
    return code_digest(
        ("report/package.py", "report/build.py", "aggregate/privacy.py"), ("polars",)
    )


# Worked out as this module is imported: the code that runs (see report.kept).
_salt()


def _write_indicators(
    indicators: pl.DataFrame,
    target: Path,
    *,
    kept: Path | None,
    versions: Mapping[str, str] | None,
) -> None:
    """``data/indicators.csv``: written whole, or, with kept rows (see the module's
    docstring), one measure's run at a time, each copied from ``kept`` or written (and kept)."""
    measures = sorted(indicators["measure_id"].unique().to_list())
    if kept is not None:
        try:
            kept.mkdir(parents=True, exist_ok=True)
        except OSError:  # a folder that cannot be made only costs the writing
            kept = None
    if kept is None or versions is None or not set(measures) <= versions.keys():
        _rows(indicators).write_csv(target)
        return
    names = {}
    with target.open("wb") as out:
        out.write(_rows(indicators.clear()).write_csv().encode())  # the header
        for m in measures:  # in code point order: polars sorts text so too
            key = hashlib.sha256(_salt() + repr((m, versions[m])).encode()).hexdigest()
            names[f"{key}.csv"] = m
            try:
                part = (kept / f"{key}.csv").open("rb")
            except OSError:  # not kept (or not any more): written, and kept for the next
                _write_measure(indicators, m, out, kept / f"{key}.csv")
                continue
            with part:
                shutil.copyfileobj(part, out, 1 << 20)
    prune(kept, set(names))  # the rows of measures no longer stored, or older


def _write_measure(indicators: pl.DataFrame, measure_id: str, out: IO[bytes], keep: Path) -> None:
    """A measure's rows written into ``out``, and kept at ``keep`` for the next build."""
    rows = _rows(indicators.filter(pl.col("measure_id") == measure_id))
    rows.write_csv(out, include_header=False)

    def durable(part: Path) -> None:
        # On disk before it is put in place: a kept file a crash cut short would be copied
        # into every build until the measure's slices change (nothing reads it back).
        with part.open("wb") as file:
            try:
                rows.write_csv(file, include_header=False)
            except pl.exceptions.PolarsError as exc:  # e.g. a full disk: not kept, no more
                raise OSError(str(exc)) from exc
            file.flush()
            os.fsync(file.fileno())

    write_whole(keep, durable)
