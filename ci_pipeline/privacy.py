"""Confidentiality alongside transparency: small cells are never published.

A count, numerator or denominator (respondents, for scores) below the measure's minimum cell
size is suppressed (*primary*). Because indicator cells add up — a total is the sum of its
breakdown codes, a cluster the sum of its localities — a lone suppressed cell could be
recovered by subtracting published cells from a published total; *complementary* suppression
hides one more cell (the smallest) in every such equation that would otherwise have exactly one
hidden cell, until none has. :func:`audit` then checks each table exactly (linear algebra over
all of its equations at once) and suppresses more where a hidden cell is still determined.

Suppressed values stay stored and flagged; every output masks them with :func:`mask`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ci_pipeline.aggregate import KEY, split_disaggregation
from ci_pipeline.initiative import TOTAL, Initiative, Unit

PRIMARY = "small_cell"
COMPLEMENTARY = "complementary"
#: Tables larger than this are not audited exactly (the per-equation rule still applies).
AUDIT_MAX_CELLS = 4000


def _size(initiative: Initiative) -> pl.Expr:
    """The quantity that identifies people in a cell, by the measure's unit."""
    units = {m.id: str(m.unit) for m in initiative.measures.values()}
    unit = pl.col("measure_id").replace_strict(units, default=None)
    return (
        pl.when(unit == Unit.count)
        .then(pl.col("value"))
        .when(unit == Unit.proportion)
        .then(pl.min_horizontal("numerator", "denominator"))
        .when(unit == Unit.score)
        .then(pl.col("denominator"))
    )


def equations(cells: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """(eq, cell, is_total): each additive equation total = Σ parts, and its member cells.

    ``cells`` needs a ``cell`` index column and the indicator key columns.
    """
    dims = initiative.dimension_names
    frame = split_disaggregation(cells, dims)
    parts = []
    for dim in dims:
        others = [d for d in dims if d != dim]
        uses = [m.id for m in initiative.measures.values() if dim in m.dimensions]
        parts.append(
            frame.filter(pl.col("measure_id").is_in(uses)).select(
                pl.concat_str(
                    [pl.lit(f"{dim}|"), "measure_id", "geo_code", "period", *others], separator="|"
                ).alias("eq"),
                "cell",
                (pl.col(dim) == TOTAL).alias("is_total"),
            )
        )
    parents = pl.DataFrame(
        [(g.code, g.parent) for g in initiative.geographies.values() if g.parent],
        schema=["geo_code", "parent"],
        orient="row",
    )
    children = frame.join(parents, on="geo_code", how="inner")
    has_children = children.select(
        "measure_id", "period", "disaggregation", pl.col("parent").alias("geo_code")
    ).unique()
    totals = frame.join(
        has_children, on=["measure_id", "period", "disaggregation", "geo_code"], how="semi"
    )
    geo_eq = ["measure_id", "period", "disaggregation"]
    parts.append(
        children.select(
            pl.concat_str([pl.lit("geo|"), "parent", *geo_eq], separator="|").alias("eq"),
            "cell",
            pl.lit(False).alias("is_total"),
        )
    )
    parts.append(
        totals.select(
            pl.concat_str([pl.lit("geo|"), "geo_code", *geo_eq], separator="|").alias("eq"),
            "cell",
            pl.lit(True).alias("is_total"),
        )
    )
    return pl.concat(parts)


def suppress(indicators: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """Add ``suppressed`` (bool) and ``suppression`` (reason) to an indicator table."""
    if indicators.is_empty():
        return indicators.with_columns(
            pl.lit(False).alias("suppressed"), pl.lit(None, pl.Utf8).alias("suppression")
        )
    minimum = {m.id: m.min_cell_size for m in initiative.measures.values()}
    cells = indicators.with_row_index("cell").with_columns(
        _size(initiative).alias("_size"),
        pl.col("measure_id").replace_strict(minimum, default=None).alias("_min"),
    )
    cells = cells.with_columns(
        (pl.col("_size") < pl.col("_min")).fill_null(False).alias("suppressed")
    )
    primary = cells["suppressed"]
    eqs = equations(cells, initiative)
    cells = _complement(cells, eqs)
    cells = audit(cells, eqs)
    return cells.with_columns(
        pl.when(primary)
        .then(pl.lit(PRIMARY))
        .when(pl.col("suppressed"))
        .then(pl.lit(COMPLEMENTARY))
        .alias("suppression")
    ).drop("cell", "_size", "_min")


def _complement(cells: pl.DataFrame, eqs: pl.DataFrame) -> pl.DataFrame:
    """Hide one more cell in every equation with exactly one hidden cell, until none has."""
    while True:
        members = eqs.join(cells.select("cell", "suppressed", "_size"), on="cell")
        lone = (
            members.group_by("eq")
            .agg(pl.col("suppressed").sum().alias("hidden"))
            .filter(pl.col("hidden") == 1)
        )
        if lone.is_empty():
            return cells
        # In each such equation, the smallest visible cell, preferring parts to the total.
        picks = (
            members.join(lone.select("eq"), on="eq")
            .filter(~pl.col("suppressed"))
            .sort(["eq", "is_total", "_size", "cell"], nulls_last=True)
            .group_by("eq", maintain_order=True)
            .first()
            .select("cell")
            .unique()
        )
        if picks.is_empty():
            return cells
        cells = cells.with_columns(
            pl.col("suppressed") | pl.col("cell").is_in(picks["cell"].implode())
        )


def determined(matrix: np.ndarray, hidden: list[int]) -> list[int]:
    """Hidden cells (column indexes) whose value the equations fix, given every other cell."""
    sub = matrix[:, hidden]
    sub = sub[np.any(sub != 0, axis=1)]
    if sub.size == 0:
        return []
    rank = np.linalg.matrix_rank(sub)
    out = []
    for i, cell in enumerate(hidden):
        probe = np.zeros((1, len(hidden)))
        probe[0, i] = 1.0
        if np.linalg.matrix_rank(np.vstack([sub, probe])) == rank:
            out.append(cell)
    return out


def audit(cells: pl.DataFrame, eqs: pl.DataFrame) -> pl.DataFrame:
    """Exact check per (measure, period) table: suppress more while a hidden cell is determined."""
    slices = cells.select("measure_id", "period").unique()
    for measure_id, period in slices.iter_rows():
        table = cells.filter((pl.col("measure_id") == measure_id) & (pl.col("period") == period))
        if not table["suppressed"].any() or table.height > AUDIT_MAX_CELLS:
            continue
        index = {c: i for i, c in enumerate(table["cell"].to_list())}
        members = eqs.filter(pl.col("cell").is_in(table["cell"].implode()))
        names = {e: i for i, e in enumerate(members["eq"].unique().sort().to_list())}
        matrix = np.zeros((len(names), len(index)))
        for eq, cell, is_total in members.iter_rows():
            matrix[names[eq], index[cell]] = -1.0 if is_total else 1.0
        hidden_mask = table["suppressed"].to_list()
        size = table["_size"].fill_null(float("inf")).to_list()
        while True:
            hidden = [i for i, h in enumerate(hidden_mask) if h]
            leaks = determined(matrix, hidden)
            if not leaks:
                break
            # Hide the smallest visible cell that shares an equation with the first leak.
            rows = np.nonzero(matrix[:, leaks[0]])[0]
            partners = {j for r in rows for j in np.nonzero(matrix[r])[0] if not hidden_mask[j]}
            if not partners:
                break
            pick = min(partners, key=lambda j: (size[j], j))
            hidden_mask[pick] = True
        newly = [c for c, i in index.items() if hidden_mask[i]]
        cells = cells.with_columns(pl.col("suppressed") | pl.col("cell").is_in(newly))
    return cells


def mask(frame: pl.DataFrame) -> pl.DataFrame:
    """Blank the values of suppressed cells: what every output shows."""
    hidden = pl.col("suppressed").fill_null(False)
    return frame.with_columns(
        pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("value", "numerator", "denominator")
        if c in frame.columns
    )


__all__ = [
    "COMPLEMENTARY",
    "KEY",
    "PRIMARY",
    "audit",
    "determined",
    "equations",
    "mask",
    "suppress",
]
