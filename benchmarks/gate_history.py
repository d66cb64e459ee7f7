"""How long the quality gate takes after many stored runs, with and without a bounded history.

Usage::

    .venv/bin/python benchmarks/gate_history.py [--stored 478] [--repeats 3]

GX's Data Docs index page reads every stored validation result on each run, so before the
history was bounded a judgement's gate grew slower with every run (issue 11: 6.7 of 8.9 s after
478 runs). On one measure of the sample initiative (a small indicator frame) this times the gate:

- **one stored run** — a fresh project after one warm-up run;
- **many stored, unbounded** — ``--stored`` earlier results (copies of the warm-up's result and
  Data Docs page under earlier run times, as GX names them), nothing pruned: the former cost;
- **many stored, bounded** — the same project with the default history
  (:data:`ci_pipeline.detect.gate.KEEP_RUNS`); the first such run prunes the surplus, the timed
  ones after it are the steady state.

Prints the median seconds of ``--repeats`` runs each and the ratios to one stored run. Asserts
nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from ci_pipeline.aggregate.rollup import expected_partners
from ci_pipeline.config import DEFAULT_INITIATIVE
from ci_pipeline.detect import gate
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.periods import Period, parse_period, shift

MEASURE, PERIOD = "below-min-wage-share", "2025-Q4"  # a proportion, judged quarterly
UNBOUNDED = 10**9


def frame(initiative: Initiative) -> tuple[pl.DataFrame, dict[str, Period]]:
    """Every expected cell of one measure, this quarter and the one before, all at 0.3."""
    now = parse_period(PERIOD)
    m = initiative.measures[MEASURE]
    partners = expected_partners(initiative).filter(pl.col("measure_id") == MEASURE)
    rows = []
    for geo in sorted(set(partners["geo_code"].to_list())):
        expected = partners.filter(pl.col("geo_code") == geo).height
        for p in (shift(now, -1), now):
            rows.append(
                {
                    "measure_id": MEASURE,
                    "geo_code": geo,
                    "period": p.label,
                    "disaggregation": m.total_key,
                    "value": 0.3,
                    "numerator": 300.0,
                    "denominator": 1000.0,
                    "partners_reported": expected,
                    "partners_expected": expected,
                    "coverage": 1.0,
                    "suppressed": False,
                    "suppression": None,
                    "lineage": "1",
                }
            )
    return pl.DataFrame(rows, schema=frames.STORED_INDICATOR_SCHEMA, orient="row"), {MEASURE: now}


def fake_history(project: Path, count: int) -> None:
    """Copy the one stored result and its page under ``count`` earlier run times."""
    [result] = project.rglob("uncommitted/validations/**/*.json")
    [page] = project.rglob("data_docs/local_site/validations/**/*.html")
    start = datetime.now(UTC) - timedelta(days=count + 1)
    for i in range(count):
        run = (start + timedelta(days=i)).strftime("%Y%m%dT%H%M%S.%fZ")
        for source in (result, page):
            target = source.parent.parent / run / source.name
            target.parent.mkdir(parents=True)
            shutil.copyfile(source, target)


def timed(run: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stored", type=int, default=478)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    initiative = load_initiative(DEFAULT_INITIATIVE)
    indicators, periods = frame(initiative)
    with tempfile.TemporaryDirectory() as folder:
        fresh, crowded = Path(folder) / "fresh", Path(folder) / "crowded"

        def run(project: Path, keep: int) -> None:
            gate.run_gate(indicators, initiative, periods, project_dir=project, keep=keep)

        run(fresh, 1)  # warm-up: imports, the project's files
        one = timed(lambda: run(fresh, 1), args.repeats)
        shutil.copytree(fresh, crowded)
        fake_history(crowded, args.stored)
        unbounded = timed(lambda: run(crowded, UNBOUNDED), args.repeats)
        run(crowded, gate.KEEP_RUNS)  # prunes the surplus
        bounded = timed(lambda: run(crowded, gate.KEEP_RUNS), args.repeats)
        kept = len(list(crowded.rglob("uncommitted/validations/**/*.json")))

    rows = [
        ("one stored run", one),
        (f"{args.stored} stored runs, unbounded", unbounded),
        (f"{args.stored} stored runs, keeping {gate.KEEP_RUNS} ({kept} kept)", bounded),
    ]
    for label, seconds in rows:
        print(f"gate, {label:<40} {seconds:6.2f} s  ({seconds / one:.1f}x one stored run)")


if __name__ == "__main__":
    main()
