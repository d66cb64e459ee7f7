"""The rows a partner is expected to fill for a period: a data-entry form as a file.

Each row is one cell the partner owes: every measure it reports, every period of the measure's
periodicity inside the submission period, every geography it reports for, and every breakdown
the measure defines. Helper columns (titles, names, units) are ignored when the file comes back.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl

from ci_pipeline.model.initiative import TOTAL, Initiative
from ci_pipeline.model.periods import Period, periods_in
from ci_pipeline.read import NUMBER_COLUMNS


def expected_rows(initiative: Initiative, partner_id: str, period: Period) -> pl.DataFrame:
    """The cells a partner owes for a submission period, one row each, in a stable order."""
    partner = initiative.partner(partner_id)
    served = initiative.partner_geographies(partner_id)
    dims = initiative.dimension_names
    records = []
    for measure_id in partner.measures:
        m = initiative.measures[measure_id]
        geos = [g for g in served if initiative.geographies[g].level in m.geo_levels]
        breakdowns = [
            [c for c in m.dimensions[d] if c != TOTAL] if d in m.dimensions else [TOTAL]
            for d in dims
        ]
        for p in periods_in(period, m.periodicity):
            for geo, combo in itertools.product(geos, itertools.product(*breakdowns)):
                records.append((measure_id, geo, p.label, *combo))
    schema = ["measure_id", "geo_code", "period", *dims]
    return (
        pl.DataFrame(records, schema=schema, orient="row")
        if records
        else pl.DataFrame(schema={c: pl.Utf8 for c in schema})
    )


def template_frame(initiative: Initiative, partner_id: str, period: Period) -> pl.DataFrame:
    """:func:`expected_rows` with empty number columns and helper columns for a person."""
    rows = expected_rows(initiative, partner_id, period)
    titles = {m.id: m.title for m in initiative.measures.values()}
    units = {m.id: f"{m.unit} ({m.unit_label})" for m in initiative.measures.values()}
    names = {g.code: g.name.he or g.name.en for g in initiative.geographies.values()}
    return rows.with_columns(
        pl.col("measure_id").replace_strict(titles, return_dtype=pl.Utf8).alias("measure_title"),
        pl.col("geo_code").replace_strict(names, return_dtype=pl.Utf8).alias("geo_name"),
        pl.col("measure_id").replace_strict(units, return_dtype=pl.Utf8).alias("unit"),
        *(pl.lit(None, pl.Utf8).alias(c) for c in NUMBER_COLUMNS),
    ).select(
        "measure_id",
        "measure_title",
        "geo_code",
        "geo_name",
        "period",
        *initiative.dimension_names,
        "unit",
        *NUMBER_COLUMNS,
    )


def write_table(frame: pl.DataFrame, path: Path) -> Path:
    """Write a frame as CSV (UTF-8 with a byte-order mark, so Excel shows Hebrew) or XLSX."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        frame.write_excel(path, autofit=True)
    elif path.suffix.lower() == ".parquet":
        frame.write_parquet(path)
    else:
        path.write_bytes(b"\xef\xbb\xbf" + frame.write_csv().encode("utf-8"))
    return path
