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

``--national 10`` also audits national tables the way a run does (``privacy.protect``): a
nation of 10 districts of 25 localities of 10 statistical areas (2,761 places), a count and a
proportion broken down by 4 age bands x 2 sexes (41,415 cells a table), each area's cell drawn
around ``--mean`` people, so that many are small. It prints the cells, how many are hidden
(small, then in all), the audit's seconds beside the roll-up's, and the tables left unaudited.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from ci_pipeline import aggregate
from ci_pipeline.aggregate import privacy
from ci_pipeline.aggregate.audit import determined
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative

AGES = ["a0", "a1", "a2", "a3"]
SEXES = ["female", "male"]


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


def national(folder: Path, districts: int) -> tuple[Initiative, list[str]]:
    """A nation of ``districts`` x 25 localities x 10 areas, with a count and a proportion
    measure broken down by age band and sex; returns it and its areas."""
    (folder / "measures").mkdir(parents=True)
    info = {"id": "nation", "name": {"en": "Nation"}, "description": "synthetic", "version": "1"}
    (folder / "initiative.yaml").write_text(yaml.safe_dump(info))
    geos: list[dict[str, object]] = [{"code": "nation", "level": "cluster", "name": {"en": "N"}}]
    areas = []
    for d in range(districts):
        geos.append({"code": f"d{d}", "level": "cluster", "parent": "nation", "name": {"en": "d"}})
        for t in range(25):
            town = f"d{d}t{t}"
            geos.append({"code": town, "level": "cluster", "parent": f"d{d}", "name": {"en": "t"}})
            for a in range(10):
                areas.append(f"{town}a{a}")
                geos.append(
                    {"code": areas[-1], "level": "locality", "parent": town, "name": {"en": "a"}}
                )
    (folder / "geographies.yaml").write_text(yaml.safe_dump(geos))
    for unit in ("count", "proportion"):
        measure: dict[str, object] = {
            "id": unit,
            "version": 1,
            "title": unit,
            "description": "synthetic",
            "unit": unit,
            "unit_label": "people",
            "combine": "sum" if unit == "count" else "ratio_of_sums",
            "direction": "higher_is_better",
            "periodicity": "quarter",
            "deadline_days": 30,
            "min_cell_size": 10,
            "dimensions": {"age_band": ["total", *AGES], "sex": ["total", *SEXES]},
            "geo_levels": ["locality", "cluster"],
        }
        if unit == "proportion":
            measure |= {
                "numerator": "yes",
                "denominator": "asked",
                "valid_range": {"min": 0, "max": 1},
            }
        (folder / "measures" / f"{unit}.yaml").write_text(yaml.safe_dump(measure))
    partner = {
        "id": "p",
        "name": "p",
        "sector": "civil_society",
        "localities": areas,
        "measures": ["count", "proportion"],
        "contact": {"name": "x", "email": "x@example.org"},
    }
    (folder / "partners.yaml").write_text(yaml.safe_dump([partner]))
    return load_initiative(folder), areas


def national_observations(areas: list[str], mean: float) -> pl.DataFrame:
    """Each area's figure per age band and sex: a count around ``mean``, and a proportion
    of a denominator around ``mean`` (seeded)."""
    rng = np.random.default_rng(2)
    cells = (
        pl.DataFrame({"geo_code": areas})
        .join(pl.DataFrame({"age": AGES}), how="cross")
        .join(pl.DataFrame({"sex": SEXES}), how="cross")
    )
    n = cells.height
    den = rng.poisson(mean, n).astype(float) + 1.0
    num = np.floor(den * rng.uniform(0.2, 0.8, n))
    base = cells.select(
        pl.lit("p").alias("partner_id"),
        pl.lit(1, pl.Int64).alias("submission_id"),
        "geo_code",
        pl.lit("2025-Q1").alias("period"),
        pl.format("age_band={};sex={}", "age", "sex").alias("disaggregation"),
    )
    count = base.with_columns(
        measure_id=pl.lit("count"),
        numerator=pl.lit(None, pl.Float64),
        denominator=pl.lit(None, pl.Float64),
        value=pl.Series(den),
    )
    share = base.with_columns(
        measure_id=pl.lit("proportion"),
        numerator=pl.Series(num),
        denominator=pl.Series(den),
        value=pl.Series(num / den),
    )
    return pl.concat([count, share], how="diagonal")


def national_audit(districts: int, mean: float) -> None:
    """Time ``privacy.protect`` on the national tables, beside their roll-up."""
    with tempfile.TemporaryDirectory() as tmp:
        initiative, areas = national(Path(tmp) / "nation", districts)
    observations = national_observations(areas, mean)
    rollup_s, indicators = timed(aggregate.aggregate, observations, initiative)
    assert isinstance(indicators, pl.DataFrame)
    start = time.perf_counter()
    result, unaudited = privacy.protect(indicators, initiative)
    audit_s = time.perf_counter() - start
    print(f"\nnational tables: {len(initiative.geographies):,} places, mean cell {mean:g}")
    print("| measure | cells | small | hidden | unaudited |")
    print("|---|---|---|---|---|")
    for (measure,), table in sorted(result.partition_by("measure_id", as_dict=True).items()):
        small = int((table["suppression"] == privacy.PRIMARY).sum())
        named = [t for t in unaudited if t.measure_id == measure]
        print(
            f"| {measure} | {table.height:,} | {small:,} | {int(table['suppressed'].sum()):,} | {len(named)} |"
        )
    print(f"suppression with the exact audit: {audit_s:.2f} s; roll-up: {rollup_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 30, 45])
    parser.add_argument("--national", type=int, default=0, help="districts (0: no national run)")
    parser.add_argument("--mean", type=float, default=15.0, help="mean people in an area's cell")
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
    if args.national:
        national_audit(args.national, args.mean)
    print(
        "\nrepeat: .venv/bin/python benchmarks/privacy_audit.py --sizes "
        + " ".join(map(str, args.sizes))
        + (f" --national {args.national} --mean {args.mean:g}" if args.national else "")
    )


if __name__ == "__main__":
    main()
