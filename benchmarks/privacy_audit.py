"""How long the exact privacy check takes on a two-way table, against its floor.

Usage::

    .venv/bin/python benchmarks/privacy_audit.py [--sizes 10 20 30 45]

A table of ``n`` localities x ``n`` breakdown codes, with a total per locality, per code and
overall ((n+1)^2 cells; every row and column an equation total = sum of parts) and a fifth of
its cells hidden at random, as small cells are. For each size it times
:func:`ci_pipeline.aggregate.privacy.determined` (which hidden cells the equations fix), the
former cell-by-cell rank test (one rank per hidden cell: what made a 900-cell table run for
minutes), and the floor: one SVD of the whole hidden-cell system, the least an exact check can
do. Prints seconds and ratios; deterministic inputs (seeded).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from ci_pipeline.aggregate.privacy import determined


def two_way(n: int) -> np.ndarray:
    """Equations of an (n+1) x (n+1) table whose last row and column are totals."""
    size = n + 1
    cell = np.arange(size * size).reshape(size, size)
    rows = []
    for i in range(size):  # each row: its total (last column) = sum of its parts
        r = np.zeros(size * size)
        r[cell[i, :n]] = 1.0
        r[cell[i, n]] = -1.0
        rows.append(r)
    for j in range(size):  # each column likewise
        r = np.zeros(size * size)
        r[cell[:n, j]] = 1.0
        r[cell[n, j]] = -1.0
        rows.append(r)
    return np.array(rows)


def by_rank(matrix: np.ndarray, hidden: list[int]) -> list[int]:
    """The former test: one matrix rank per hidden cell."""
    sub = matrix[:, hidden]
    rank = np.linalg.matrix_rank(sub)
    out = []
    for i, c in enumerate(hidden):
        probe = np.zeros((1, len(hidden)))
        probe[0, i] = 1.0
        if np.linalg.matrix_rank(np.vstack([sub, probe])) == rank:
            out.append(c)
    return out


def timed(fn: Callable[..., object], *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 30, 45])
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(
        "| cells | hidden | determined() s | cell-by-cell s | floor (one SVD) s | vs floor | vs before |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        matrix = two_way(n)
        cells = matrix.shape[1]
        hidden = sorted(int(c) for c in rng.choice(cells, size=cells // 5, replace=False))
        new_s, new = timed(determined, matrix, hidden)
        old_s, old = timed(by_rank, matrix, hidden)
        assert new == old, "the two tests disagree"
        floor_s, _ = timed(np.linalg.svd, matrix[:, hidden])
        print(
            f"| {cells} | {len(hidden)} | {new_s:.3f} | {old_s:.3f} | {floor_s:.3f} | "
            f"{new_s / floor_s:.1f}x | {old_s / new_s:.0f}x faster |"
        )
    print(
        "\nrepeat: .venv/bin/python benchmarks/privacy_audit.py --sizes "
        + " ".join(map(str, args.sizes))
    )


if __name__ == "__main__":
    main()
