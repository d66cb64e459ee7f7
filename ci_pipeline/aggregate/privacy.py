"""Confidentiality alongside transparency: small cells are never published.

A count, numerator or denominator (respondents, for scores) below the measure's minimum cell
size is suppressed (*primary*). Because indicator cells add up — a total is the sum of its
breakdown codes, a cluster the sum of its localities — a lone suppressed cell could be
recovered by subtracting published cells from a published total; *complementary* suppression
hides one more cell (the smallest) in every such equation that would otherwise have exactly one
hidden cell, until none has. :func:`audit` then checks each table exactly (linear algebra over
all of its equations at once, and a linear program for hidden cells that must be 0 because no
count is negative) and suppresses more where a hidden cell is still determined.

Suppressed values stay stored and flagged; every output masks them with :func:`mask`.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse import csgraph

from ci_pipeline.aggregate.rollup import split_disaggregation
from ci_pipeline.model.initiative import TOTAL, Initiative, Unit

PRIMARY = "small_cell"
COMPLEMENTARY = "complementary"
#: Tables larger than this are not audited exactly (the per-equation rule still applies):
#: :func:`unaudited` names them, and the process summary and flow log say so.
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
    if indicators.is_empty():
        return indicators.with_columns(
            pl.lit(False).alias("suppressed"), pl.lit(None, pl.Utf8).alias("suppression")
        )
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
    cells = audit(cells, eqs)
    return cells.with_columns(
        pl.when(primary)
        .then(pl.lit(PRIMARY))
        .when(pl.col("suppressed"))
        .then(pl.lit(COMPLEMENTARY))
        .alias("suppression")
    ).drop("cell", "_size", "_min", "_unit")


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


def determined(matrix: np.ndarray, hidden: list[int], zeros: list[int] | None = None) -> list[int]:
    """Hidden cells (column indexes) whose value the equations fix, given every other cell.

    ``zeros`` are hidden cells known to be 0 (see :func:`forced_zeros`): they are determined,
    and may determine others.

    A hidden cell is fixed exactly when its unit vector lies in the row space of the equations
    restricted to the hidden cells, that is when the null space of that system is 0 at the
    cell. The system falls apart into blocks of hidden cells that share no equation (a table's
    localities, its periods of breakdowns): each block's null space comes from one SVD, so the
    cost grows with the blocks' sizes, not with the table times its hidden cells.
    """
    sub = matrix[:, hidden]
    sub = sub[np.any(sub != 0, axis=1)]
    pinned = [hidden.index(z) for z in zeros or [] if z in hidden]
    if pinned:
        sub = np.vstack([sub, np.eye(len(hidden))[pinned]])
    if sub.size == 0:
        return []
    linked = sparse.csr_matrix(sub != 0, dtype=np.int8)
    n_blocks, block = csgraph.connected_components(linked.T @ linked, directed=False)
    out: list[int] = []
    for b in range(n_blocks):
        cols = np.flatnonzero(block == b)
        rows = np.flatnonzero(np.any(sub[:, cols] != 0, axis=1))
        if len(rows) == 0:
            continue
        out += [hidden[int(cols[i])] for i in _fixed(sub[np.ix_(rows, cols)])]
    return sorted(out, key=hidden.index)


def _fixed(system: np.ndarray) -> list[int]:
    """Columns of a linear system whose unknown it fixes: those where its null space is 0
    (the rank threshold is numpy's ``matrix_rank`` default)."""
    _, s, vt = np.linalg.svd(system, full_matrices=True)
    tol = (s.max() if len(s) else 0.0) * max(system.shape) * np.finfo(float).eps
    rank = int(np.sum(s > tol))
    null = vt[rank:]
    if null.shape[0] == 0:
        return list(range(system.shape[1]))
    return [int(j) for j in np.flatnonzero(np.linalg.norm(null, axis=0) <= 1e-8)]


def forced_zeros(matrix: np.ndarray, hidden: list[int], values: np.ndarray) -> list[int]:
    """Hidden cells that must be 0 because no cell is negative (column indexes).

    Two hidden cells that a published total and published codes say add up to 0 are each 0,
    though no equation fixes either alone. ``values`` are the cells' true (additive) values:
    only a hidden 0 can be forced. Equations the values do not satisfy exactly (a total that
    holds more than its codes, when a partner sent only the total) are slack at the true values,
    so they cannot force anything and are left out. One linear program finds every hidden cell
    that can be positive at once (Freund, Roundy and Todd's test for implicit equalities):
    maximise Σ t with t_j ≤ x_j, t_j ≤ 1, over the cone A x = λ b, λ ≥ 1; the candidates left
    with t_j = 0 can never be positive.
    """
    candidates = [j for j in hidden if values[j] == 0]
    if not candidates or np.isnan(values).any():
        return []
    shown = [j for j in range(matrix.shape[1]) if j not in hidden]
    exact = np.abs(matrix @ values) <= 1e-9 * (1.0 + np.abs(matrix) @ np.abs(values))
    a = matrix[exact][:, hidden]
    b = -matrix[exact][:, shown] @ values[shown]
    n, k = len(hidden), len(candidates)
    # Variables: x (the hidden cells), t (the candidates), λ.
    pick = np.zeros((k, n))
    pick[np.arange(k), [hidden.index(j) for j in candidates]] = 1.0
    lp = linprog(
        np.concatenate([np.zeros(n), -np.ones(k), [0.0]]),
        A_ub=np.hstack([-pick, np.eye(k), np.zeros((k, 1))]),
        b_ub=np.zeros(k),
        A_eq=np.hstack([a, np.zeros((a.shape[0], k)), -b[:, None]]) if a.size else None,
        b_eq=np.zeros(a.shape[0]) if a.size else None,
        bounds=[(0, None)] * n + [(0, 1)] * k + [(1, None)],
        method="highs",
    )
    if lp.status != 0:  # not expected (the true values are feasible): assume nothing is forced
        return []
    t = lp.x[n : n + k]
    return [j for j, tj in zip(candidates, t, strict=True) if tj < 0.5]


def _nearest_visible(matrix: np.ndarray, cell: int, hidden_mask: list[bool]) -> list[int]:
    """The visible cells fewest equations away from ``cell``, going through hidden cells."""
    seen_rows: set[int] = set()
    seen = {cell}
    frontier = [cell]
    while frontier:
        rows = {int(r) for c in frontier for r in np.nonzero(matrix[:, c])[0]} - seen_rows
        seen_rows |= rows
        reached = {int(j) for r in rows for j in np.nonzero(matrix[r])[0]} - seen
        seen |= reached
        visible = [j for j in reached if not hidden_mask[j]]
        if visible:
            return visible
        frontier = list(reached)
    return []


#: The additive quantities of a cell, by unit: what the equations hold for.
ADDITIVE = {
    Unit.count: ["value"],
    Unit.amount: ["value"],
    Unit.proportion: ["numerator", "denominator"],
    Unit.score: ["denominator"],
}


def unaudited(indicators: pl.DataFrame) -> list[tuple[str, str, int]]:
    """The (measure, period, cells) tables with a hidden cell that are too large for the exact
    audit (over :data:`AUDIT_MAX_CELLS` cells): they have only the per-equation guarantee (no
    equation with exactly one hidden cell), not the guarantee that no hidden cell can be
    worked out from all the equations at once."""
    if indicators.is_empty():
        return []
    sizes = (
        indicators.group_by("measure_id", "period")
        .agg(pl.len().alias("cells"), pl.col("suppressed").any().alias("hidden"))
        .filter(pl.col("hidden") & (pl.col("cells") > AUDIT_MAX_CELLS))
        .sort("measure_id", "period")
    )
    return [(str(m), str(p), int(n)) for m, p, n, _ in sizes.iter_rows()]


def privacy_notes(unaudited: list[tuple[str, str, int]]) -> list[str]:
    """What an operator is told about tables the exact audit did not check (see
    :func:`unaudited`): which, how large, and which guarantee they have instead."""
    if not unaudited:
        return []
    listed = "; ".join(f"{m} {p} ({n:,} cells)" for m, p, n in unaudited)
    return [
        f"Privacy: {len(unaudited)} table(s) over {AUDIT_MAX_CELLS:,} cells were not audited "
        f"exactly, only checked equation by equation (no sum with exactly one hidden cell): "
        f"{listed}"
    ]


def audit(cells: pl.DataFrame, eqs: pl.DataFrame) -> pl.DataFrame:
    """Exact check per (measure, period) table: suppress more while a hidden cell is determined
    — by the equations, or because a hidden count cannot be negative. Tables too large for it
    are left to the per-equation rule (:func:`unaudited` names them)."""
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
        unit = table["_unit"][0] if "_unit" in table.columns else Unit.count
        quantities = [
            table[c].cast(pl.Float64).fill_null(float("nan")).to_numpy()
            for c in ADDITIVE.get(unit, [])
            if c in table.columns
        ]
        hidden_mask = table["suppressed"].to_list()
        size = table["_size"].fill_null(float("inf")).to_list()
        while True:
            hidden = [i for i, h in enumerate(hidden_mask) if h]
            leaks = determined(matrix, hidden)
            for values in quantities:
                zeros = forced_zeros(matrix, hidden, values)
                if zeros:
                    leaks += [j for j in determined(matrix, hidden, zeros) if j not in leaks]
            # Hide the smallest visible cell nearest a leak: in an equation with it, else in
            # one with a hidden cell linked to it (what the leak was recovered through).
            pick = None
            for leak in leaks:
                near = _nearest_visible(matrix, leak, hidden_mask)
                if near:
                    pick = min(near, key=lambda j: (size[j], j))
                    break
            if pick is None:
                break
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
