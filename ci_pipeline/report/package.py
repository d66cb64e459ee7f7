"""The figures behind the report card as a Frictionless Data Package (the open format data
portals take): the published indicators and the open alerts as CSV, and ``datapackage.json``
describing them, with each measure's definition, unit and suppression rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

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


def _schema(fields: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {"fields": [{"name": n, "type": t, "description": d} for n, t, d in fields]}


def write_package(
    indicators: pl.DataFrame, alerts: pl.DataFrame, initiative: Initiative, root: Path
) -> Path:
    """Write ``data/indicators.csv``, ``data/alerts.csv`` and ``datapackage.json`` under
    ``root``. ``indicators`` must be masked already (suppressed cells blank)."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    indicators.select([n for n, _, _ in INDICATOR_FIELDS]).sort(
        "measure_id", "geo_code", "period", "disaggregation"
    ).write_csv(data / "indicators.csv")
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
