"""The exact privacy audit: can any hidden cell of a table be worked out from the rest?

A table's cells are tied by additive equations (a total is the sum of its codes, a cluster of
its children), held as a sparse matrix with a row per equation (+1 for a part, -1 for the
total). A hidden cell is *determined* when the published cells and the equations fix its value
(:func:`determined`), or when it must be 0 because no count is negative (:func:`forced_zeros`).
:func:`audit_table` hides more cells until no hidden cell is either.

Why it scales with the table: hidden cells fall apart into *blocks* that share no equation (a
table's localities, its breakdowns under one place), and whether a cell is determined depends
on its block alone. Each block is solved once (one SVD, one linear program) and remembered;
when a cell is hidden, only the block it joins is solved again. Every leaking block gets its
extra hidden cell in the same round. A block can only lose determined cells when a cell joins
it (a null vector of the old system, extended by 0, is one of the new), so hiding cells in
several blocks at once never makes another block's earlier answer wrong in the unsafe direction.
Blocks over :data:`MAX_BLOCK` hidden cells are not solved (a dense SVD of that size takes
seconds, again each time a cell joins the block): the table is then reported, never passed
silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.sparse import csgraph
from threadpoolctl import threadpool_limits

#: The most hidden cells one block may hold for the exact audit: one dense SVD of 3,000
#: columns took 16 s here (one BLAS thread). Beyond it, the table keeps the equation-by-equation
#: guarantee only, and is named (see :class:`Audited`).
MAX_BLOCK = 3000


@dataclass(frozen=True)
class Audited:
    """A table's hidden cells after the audit, and its largest block left unsolved (0 when
    every block was solved exactly)."""

    hidden: np.ndarray
    unsolved_block: int = 0


def _as_sparse(matrix: np.ndarray | sparse.sparray | sparse.spmatrix) -> sparse.csc_array:
    return sparse.csc_array(matrix, dtype=float)


def blocks(matrix: sparse.csc_array, hidden: np.ndarray) -> list[np.ndarray]:
    """The hidden cells (column indexes, ascending) in groups that share no equation."""
    if len(hidden) == 0:
        return []
    linked = (matrix[:, hidden] != 0).astype(np.int8)
    n_blocks, label = csgraph.connected_components(linked.T @ linked, directed=False)
    order = np.argsort(label, kind="stable")
    bounds = np.flatnonzero(np.diff(label[order])) + 1
    return [hidden[part] for part in np.split(order, bounds)] if n_blocks else []


def _rows_of(matrix: sparse.csc_array, cols: np.ndarray) -> np.ndarray:
    """The equations (row indexes) any of these cells takes part in: read from the CSC
    arrays directly (a block is audited thousands of times a national run, and scipy's
    column slicing cost 0.1 ms each)."""
    starts = matrix.indptr[cols]
    lengths = matrix.indptr[cols + 1] - starts
    # Each column's run of positions in ``indices``: its start, then one step per entry.
    first = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.unique(matrix.indices[first + np.arange(int(lengths.sum()))])


def _fixed(system: np.ndarray) -> np.ndarray:
    """Columns of a linear system whose unknown it fixes: those where its null space is 0
    (the rank threshold is numpy's ``matrix_rank`` default)."""
    if system.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    # vt must span every column (k x k); U need not be square when there are more equations
    # than unknowns, and computing it square is most of the cost for tall blocks.
    _, s, vt = np.linalg.svd(system, full_matrices=system.shape[0] < system.shape[1])
    tol = (s.max() if len(s) else 0.0) * max(system.shape) * np.finfo(float).eps
    rank = int(np.sum(s > tol))
    null = vt[rank:]
    if null.shape[0] == 0:
        return np.arange(system.shape[1])
    return np.flatnonzero(np.linalg.norm(null, axis=0) <= 1e-8)


def determined(
    matrix: np.ndarray | sparse.sparray | sparse.spmatrix,
    hidden: list[int],
    zeros: list[int] | None = None,
) -> list[int]:
    """Hidden cells (column indexes) whose value the equations fix, given every other cell.

    ``zeros`` are hidden cells known to be 0 (see :func:`forced_zeros`): they are determined,
    and may determine others. A hidden cell is fixed exactly when its unit vector lies in the
    row space of the equations restricted to the hidden cells, that is when the null space of
    that system is 0 at the cell; each block's null space comes from one SVD.
    """
    m = _as_sparse(matrix)
    pinned = set(zeros or []) & set(hidden)
    out: list[int] = []
    for cols in blocks(m, np.asarray(sorted(hidden), dtype=np.intp)):
        out += [int(c) for c in cols[_block_fixed(m, cols, pinned)]]
    return sorted(out, key=hidden.index)


def _block_fixed(m: sparse.csc_array, cols: np.ndarray, pinned: set[int]) -> np.ndarray:
    """Positions in ``cols`` (one block) that its equations, with ``pinned`` cells at 0, fix."""
    return _pinned_fixed(m[_rows_of(m, cols)][:, cols].toarray(), cols, pinned)


def _pinned_fixed(system: np.ndarray, cols: np.ndarray, pinned: set[int]) -> np.ndarray:
    """Positions in ``cols`` that ``system`` (the block's equations on its cells), with
    ``pinned`` cells at 0, fixes."""
    pins = [i for i, c in enumerate(cols) if int(c) in pinned]
    if pins:
        system = np.vstack([system, np.eye(len(cols))[pins]])
    return _fixed(system)


def forced_zeros(
    matrix: np.ndarray | sparse.sparray | sparse.spmatrix, hidden: list[int], values: np.ndarray
) -> list[int]:
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
    if np.isnan(values).any():
        return []
    m = sparse.csr_array(matrix, dtype=float)
    cols = np.asarray(hidden, dtype=np.intp)
    is_zero = values[cols] == 0
    if not is_zero.any():
        return []
    shown_values = values.copy()
    shown_values[cols] = 0.0
    exact = np.abs(m @ values) <= 1e-9 * (1.0 + abs(m) @ np.abs(values))
    a = m[exact][:, cols]
    b = -(m[exact] @ shown_values)
    n, k = len(cols), int(is_zero.sum())
    # Variables: x (the hidden cells), t (the candidates), λ.
    pick = sparse.csr_array((np.ones(k), (np.arange(k), np.flatnonzero(is_zero))), shape=(k, n))
    a_ub = sparse.hstack([-pick, sparse.eye_array(k), sparse.csr_array((k, 1))])
    a_eq = sparse.hstack([a, sparse.csr_array((a.shape[0], k)), sparse.csr_array(-b[:, None])])
    lp = linprog(
        np.concatenate([np.zeros(n), -np.ones(k), [0.0]]),
        A_ub=a_ub,
        b_ub=np.zeros(k),
        A_eq=a_eq if a.shape[0] else None,
        b_eq=np.zeros(a.shape[0]) if a.shape[0] else None,
        bounds=[(0, None)] * n + [(0, 1)] * k + [(1, None)],
        method="highs",
    )
    if lp.status != 0:  # not expected (the true values are feasible): assume nothing is forced
        return []
    t = lp.x[n : n + k]
    return [int(j) for j, tj in zip(cols[is_zero], t, strict=True) if tj < 0.5]


def _leaks(
    m: sparse.csc_array, cols: np.ndarray, quantities: list[np.ndarray], by_row: sparse.csr_array
) -> list[int]:
    """The cells of one block that can be worked out: fixed by the equations, or by them once
    the cells that cannot be negative are pinned at 0, for any additive quantity. ``by_row``
    is ``m`` by rows (picking rows from it is cheap; from ``m``, by columns, it is not)."""
    local = by_row[_rows_of(m, cols)]  # the block's equations: all else shown
    system = local[:, cols].toarray()  # built once for every pinning below
    out = [int(c) for c in cols[_pinned_fixed(system, cols, set())]]
    for values in quantities:
        zeros = forced_zeros(local, list(cols), values)
        if zeros:
            pinned = [int(c) for c in cols[_pinned_fixed(system, cols, set(zeros))]]
            out += [c for c in pinned if c not in out]
    return out


def nearest_visible(
    rows_of: sparse.csc_array, cells_of: sparse.csr_array, cell: int, hidden: np.ndarray
) -> np.ndarray:
    """The visible cells fewest equations away from ``cell``, going through hidden cells
    (``rows_of`` and ``cells_of``: the table's equations by column and by row)."""
    seen_rows = np.zeros(rows_of.shape[0], dtype=bool)
    seen = np.zeros(rows_of.shape[1], dtype=bool)
    seen[cell] = True
    frontier = np.array([cell])
    while len(frontier):
        rows = np.unique(rows_of[:, frontier].tocoo().row)
        rows = rows[~seen_rows[rows]]
        seen_rows[rows] = True
        reached = np.unique(cells_of[rows].tocoo().col) if len(rows) else rows
        reached = reached[~seen[reached]]
        seen[reached] = True
        visible = reached[~hidden[reached]]
        if len(visible):
            return visible
        frontier = reached
    return frontier


def audit_table(
    matrix: sparse.csc_array,
    hidden: np.ndarray,
    quantities: list[np.ndarray],
    size: np.ndarray,
    *,
    max_block: int | None = None,
) -> Audited:
    """Hide more cells of one table until none hidden can be worked out.

    ``hidden`` is the mask after the per-equation rule; ``quantities`` the additive values
    the equations hold for (a count's value; a proportion's numerator and denominator);
    ``size`` what a cell would give away (the smallest visible cell nearest a leak is hidden,
    in an equation with it, else in one with a hidden cell linked to it). Blocks over
    ``max_block`` (:data:`MAX_BLOCK` unless given) hidden cells are left unsolved and the
    largest is reported.
    """
    limit = MAX_BLOCK if max_block is None else max_block
    # Blocks are small (tens to hundreds of cells): BLAS threads cost more than they save there.
    with threadpool_limits(limits=1, user_api="blas"):
        return _audit(_as_sparse(matrix), hidden.copy(), quantities, size, limit)


def _audit(
    m: sparse.csc_array,
    mask: np.ndarray,
    quantities: list[np.ndarray],
    size: np.ndarray,
    limit: int,
) -> Audited:
    """:func:`audit_table`'s rounds: solve the blocks not solved before, hide a cell beside a
    leak in every leaking block, until no block leaks."""
    by_row = m.tocsr()
    solved: dict[bytes, list[int]] = {}
    unsolved = 0
    while True:
        picks: set[int] = set()
        unsolved = 0
        for cols in blocks(m, np.flatnonzero(mask)):
            if len(cols) > limit:
                unsolved = max(unsolved, len(cols))
                continue
            key = cols.tobytes()
            if key not in solved:
                solved[key] = _leaks(m, cols, quantities, by_row)
            for leak in solved[key]:
                near = nearest_visible(m, by_row, leak, mask)
                if len(near):
                    picks.add(int(min(near, key=lambda j: (size[j], j))))
                    break
        if not picks:
            return Audited(mask, unsolved)
        mask[list(picks)] = True
