"""Confidentiality alongside transparency: small cells are never published.

A count, numerator or denominator (respondents, for scores) below the measure's minimum cell
size is suppressed (*primary*). Because indicator cells add up — a total is the sum of its
breakdown codes, a cluster the sum of its localities — a lone suppressed cell could be
recovered by subtracting published cells from a published total; *complementary* suppression
hides one more cell (the smallest) in every such equation that would otherwise have exactly one
hidden cell, until none has. :func:`exact_audit` then checks each table exactly (linear algebra over
all of its equations at once, and a linear program for hidden cells that must be 0 because no
count is negative) and suppresses more where a hidden cell is still determined.

Suppressed values stay stored and flagged; every output masks them with :func:`mask`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl
from scipy import sparse

from ci_pipeline.aggregate import audit
from ci_pipeline.aggregate.rollup import split_disaggregation
from ci_pipeline.model.initiative import TOTAL, Initiative, Unit

PRIMARY = "small_cell"
COMPLEMENTARY = "complementary"


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
    parents = pl.DataFrame(  # typed: an initiative of one geography has no parent at all
        [(g.code, g.parent) for g in initiative.geographies.values() if g.parent],
        schema={"geo_code": pl.Utf8, "parent": pl.Utf8},
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
    # A total with no codes beneath it (a partner sent only totals for the dimension) is no
    # equation: it does not say the total is 0.
    out = pl.concat(parts)
    return out.filter(
        (pl.col("is_total").sum().over("eq") == 1)
        & (pl.col("is_total").not_().sum().over("eq") >= 1)
    )


def suppress(indicators: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """Add ``suppressed`` (bool) and ``suppression`` (reason) to an indicator table."""
    return protect(indicators, initiative)[0]


def protect(
    indicators: pl.DataFrame, initiative: Initiative
) -> tuple[pl.DataFrame, list[Unaudited]]:
    """:func:`suppress`, and the tables the exact audit could not solve (see
    :class:`Unaudited`): what a run reports, so that none passes silently."""
    if indicators.is_empty():
        empty = indicators.with_columns(
            pl.lit(False).alias("suppressed"), pl.lit(None, pl.Utf8).alias("suppression")
        )
        return empty, []
    minimum = {m.id: m.min_cell_size for m in initiative.measures.values()}
    units = {m.id: str(m.unit) for m in initiative.measures.values()}
    cells = indicators.with_row_index("cell").with_columns(
        _size(initiative).alias("_size"),
        pl.col("measure_id").replace_strict(minimum, default=None).alias("_min"),
        pl.col("measure_id").replace_strict(units, default=None).alias("_unit"),
    )
    cells = cells.with_columns(
        (pl.col("_size") < pl.col("_min")).fill_null(False).alias("suppressed")
    )
    primary = cells["suppressed"]
    eqs = equations(cells, initiative)
    cells = _complement(cells, eqs)
    cells, unaudited = exact_audit(cells, eqs)
    out = cells.with_columns(
        pl.when(primary)
        .then(pl.lit(PRIMARY))
        .when(pl.col("suppressed"))
        .then(pl.lit(COMPLEMENTARY))
        .alias("suppression")
    ).drop("cell", "_size", "_min", "_unit")
    return out, unaudited


def _complement(cells: pl.DataFrame, eqs: pl.DataFrame) -> pl.DataFrame:
    """Hide one more cell in every equation with exactly one hidden cell, until none has: in
    each such equation the smallest visible cell, preferring parts to the total (then the
    lowest ``cell``).

    The equations and their members do not change between rounds, only which cells are hidden:
    the members are put in pick order once (equation, part before total, size with unknown
    last, cell), and each round is array arithmetic over them (a national rebuild's 2M cells
    in 6M memberships went round after round through a join and a sort before).
    """
    if eqs.is_empty():
        return cells
    members = (
        eqs.join(cells.select("cell", "_size"), on="cell")
        .with_columns(pl.col("eq").rank("dense").cast(pl.Int64).alias("_eq") - 1)
        .sort(["_eq", "is_total", "_size", "cell"], nulls_last=True)
    )
    eq = members["_eq"].to_numpy()
    cell = members["cell"].cast(pl.Int64).to_numpy()
    order = np.asarray(cells["cell"].cast(pl.Int64).to_numpy())
    hidden = np.zeros(int(order.max()) + 1, dtype=bool)
    hidden[order] = cells["suppressed"].to_numpy()
    n_eq = int(eq.max()) + 1
    while True:
        member_hidden = hidden[cell]
        lone = np.bincount(eq, weights=member_hidden, minlength=n_eq) == 1
        candidates = lone[eq] & ~member_hidden
        if not candidates.any():
            break
        # The first candidate of each lone equation, in pick order.
        _, first = np.unique(eq[candidates], return_index=True)
        hidden[cell[candidates][first]] = True
    return cells.with_columns(pl.Series("suppressed", hidden[order]))


#: The additive quantities of a cell, by unit: what the equations hold for.
ADDITIVE = {
    Unit.count: ["value"],
    Unit.amount: ["value"],
    Unit.proportion: ["numerator", "denominator"],
    Unit.score: ["denominator"],
}


class Unaudited(NamedTuple):
    """A table with hidden cells that the exact audit could not solve: a group of its hidden
    cells sharing equations (``block`` cells) was over :data:`audit.MAX_BLOCK`. It has only
    the per-equation guarantee (no equation with exactly one hidden cell), not the guarantee
    that no hidden cell can be worked out from all the equations at once."""

    measure_id: str
    period: str
    cells: int
    block: int


def privacy_notes(unaudited: list[Unaudited]) -> list[str]:
    """What an operator is told about tables the exact audit did not check (see
    :class:`Unaudited`): which, how large, why, and which guarantee they have instead."""
    if not unaudited:
        return []
    listed = "; ".join(
        f"{t.measure_id} {t.period} ({t.cells:,} cells; {t.block:,} hidden cells tied together)"
        for t in unaudited
    )
    return [
        f"Privacy: {len(unaudited)} table(s) were not audited exactly, because a group of hidden "
        f"cells that share equations is over the exact audit's {audit.MAX_BLOCK:,}; they are "
        f"only checked equation by equation (no sum with exactly one hidden cell): {listed}"
    ]


def exact_audit(cells: pl.DataFrame, eqs: pl.DataFrame) -> tuple[pl.DataFrame, list[Unaudited]]:
    """Exact check per (measure, period) table: suppress more while a hidden cell is determined
    — by the equations, or because a hidden count cannot be negative (see :mod:`audit`).
    Returns the cells and the tables the audit could not solve (named, never skipped)."""
    key = ["measure_id", "period"]
    due = cells.filter(pl.col("suppressed").any().over(key))
    if due.is_empty():
        return cells, []
    members = eqs.join(due.select("cell", *key), on="cell")
    by_table = members.partition_by(key, as_dict=True)
    newly: list[pl.Series] = []
    unaudited: list[Unaudited] = []
    for (measure_id, period), table in due.partition_by(key, as_dict=True).items():
        tied = by_table.get((measure_id, period))
        if tied is None:  # no equation: nothing can be worked out
            continue
        table = table.sort("cell")
        pos = table.select("cell").with_row_index("pos")
        tied = tied.join(pos, on="cell").with_columns((pl.col("eq").rank("dense") - 1).alias("row"))
        matrix = sparse.csc_array(
            (
                np.where(tied["is_total"].to_numpy(), -1.0, 1.0),
                (tied["row"].to_numpy(), tied["pos"].to_numpy()),
            ),
            shape=(tied["row"].n_unique(), table.height),
        )
        unit = table["_unit"][0] if "_unit" in table.columns else Unit.count
        quantities = [
            table[c].cast(pl.Float64).fill_null(float("nan")).to_numpy()
            for c in ADDITIVE.get(unit, [])
            if c in table.columns
        ]
        result = audit.audit_table(
            matrix,
            table["suppressed"].to_numpy().copy(),
            quantities,
            table["_size"].cast(pl.Float64).fill_null(float("inf")).to_numpy(),
        )
        newly.append(table["cell"].filter(pl.Series(result.hidden)))
        if result.unsolved_block:
            unaudited.append(
                Unaudited(str(measure_id), str(period), table.height, result.unsolved_block)
            )
    if newly:
        cells = cells.with_columns(
            pl.col("suppressed") | pl.col("cell").is_in(pl.concat(newly).implode())
        )
    return cells, sorted(unaudited)


def mask(frame: pl.DataFrame) -> pl.DataFrame:
    """Blank the values of suppressed cells: what every output shows."""
    hidden = pl.col("suppressed").fill_null(False)
    return frame.with_columns(
        pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("value", "numerator", "denominator")
        if c in frame.columns
    )
