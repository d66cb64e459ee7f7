"""Detection rate and false-alarm rate of :func:`ci_pipeline.detect.detect`, by fixed-seed simulation.

Usage::

    .venv/bin/python benchmarks/detection_rates.py [--series 2000] [--seed 20251125] [--run-size 1]

For one measure of each unit in the bundled Beit HaKerem initiative it simulates series of
indicator cells and judges their last period with ``detect()`` and each measure's own ``alert``
parameters:

- ``null``  — noise only around a flat level: binomial numerators over a fixed denominator for
  proportions, Poisson counts, normal noise for amounts and scores. Any step/drift finding is a
  false alarm.
- ``step``  — the same noise, with the judged period moved by a known amount in the bad direction.
- ``drift`` — the same noise, with the last ``drift_periods`` periods worsening along a straight
  line (a steady slide of a stated size per period).

A series is *flagged* when ``detect()`` returns any regression finding for it (``step``,
``seasonal_step``, ``sustained`` or ``drift``: ``detect.REGRESSIONS``). By default the series are judged as production judges them: as many to a
``detect()`` call as the measure has series in one run of the initiative (its geographies ×
breakdown codes), so the run-wide Benjamini–Hochberg adjustment sees what it sees in production;
a regressed series is judged among noise-only companions and only it is counted.
``--run-size 1`` judges each series alone: each test's own size and power, the worst case for
false alarms. Prints one line per measure and scenario, the seed and counts, and the command
that repeats the run; asserts nothing (``tests/detect/test_detect_simulation.py`` does, with fewer
series).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from ci_pipeline.aggregate import expected_partners
from ci_pipeline.config import DEFAULT_INITIATIVE
from ci_pipeline.detect import REGRESSIONS, detect
from ci_pipeline.model.initiative import Direction, Initiative, Measure, Unit
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.periods import Period, parse_period, shift

SEED = 20251125
Scenario = Literal["null", "step", "drift"]
SCENARIOS: tuple[Scenario, ...] = ("null", "step", "drift")
#: Every kind that says a series regressed (``sustained`` included).
REGRESSION_KINDS = REGRESSIONS


@dataclass(frozen=True)
class Design:
    """One simulated measure: its noise and the size of the regressions injected into it.

    ``level`` is the flat value (a rate, a Poisson mean, an amount, a score); ``spread`` is the
    denominator for proportions and the noise's standard deviation for amounts and scores
    (unused for counts, whose noise is Poisson). ``step`` is the move of the judged period and
    ``drift`` the change per period over the drift window, both in the bad direction and in
    the measure's unit.
    """

    measure_id: str
    judged: str
    periods: int
    level: float
    spread: float
    step: float
    drift: float


#: One measure per unit (two for proportions: a locality's scale, where alpha decides, and the
#: cluster's, where min_change does), with noise of a realistic size. "SD" below is the standard
#: deviation of a period-on-period change of the noise-only series.
DESIGNS: tuple[Design, ...] = (
    # Arab women aged 25-64 in a locality (~3,000), quarterly: SD 1.2 points. A 6-point fall
    # (5 SD); a slide of 2.4 points a quarter (2 SD).
    Design("arab-women-lfp", "2025-Q4", 12, 0.30, 3000, 0.06, 0.024),
    # Employed residents of the cluster (~20,000), quarterly: SD 0.5 points. A 3-point rise
    # (6 SD, 2 SD past min_change); a slide of 1 point a quarter (2 SD, under min_change).
    Design("below-min-wage-share", "2025-Q4", 12, 0.47, 20000, 0.03, 0.01),
    # Students trained per month, Poisson around 150: SD 17. A fall by half; a slide of 20 a
    # month (about 1.4 SD at the mean of the slide).
    Design("starter-students-trained", "2025-12", 12, 150.0, 0.0, 75.0, 20.0),
    # New money per quarter since 2024 (8 quarters): 2M NIS with noise SD 100k (SD 141k).
    # A 600k fall (4.2 SD); a slide of 200k a quarter (1.4 SD).
    Design("new-resources-nis", "2025-Q4", 8, 2_000_000.0, 100_000.0, 600_000.0, 200_000.0),
    # A yearly FSG survey score on 1-5 over 8 years, the mean of ~50 answers (noise SD 0.1;
    # SD 0.14). A fall of 0.6 (4.2 SD); a slide of 0.2 a year (1.4 SD).
    Design("fsg-vision-work-aligns", "2025", 8, 3.8, 0.1, 0.6, 0.2),
)


@dataclass(frozen=True)
class Rate:
    """How often ``detect()`` flagged the series of one measure and scenario."""

    measure_id: str
    unit: str
    scenario: Scenario
    series: int
    runs: int  # detect() calls
    flagged: int  # series with any regression finding (detect.REGRESSIONS)
    by_kind: dict[str, int]  # series with a finding of each kind
    alpha: float
    run_size: int
    periods: int

    @property
    def rate(self) -> float:
        return self.flagged / self.series if self.series else math.nan


def _bad(measure: Measure) -> float:
    """+1 where a rise is a regression, -1 where a fall is."""
    return -1.0 if measure.direction is Direction.higher_is_better else 1.0


def expected_values(measure: Measure, design: Design, scenario: Scenario) -> np.ndarray:
    """The noise-free series: flat, with a step at the end, or a straight slide at the end."""
    values = np.full(design.periods, design.level)
    if scenario == "step":
        values[-1] += _bad(measure) * design.step
    elif scenario == "drift":
        window = measure.alert.drift_periods
        values[-window:] += _bad(measure) * design.drift * np.arange(window)
    return values


def simulate_series(
    measure: Measure, design: Design, scenario: Scenario, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One noisy series: value, numerator and denominator per period (oldest first)."""
    mean = expected_values(measure, design, scenario)
    n = design.periods
    if measure.unit is Unit.proportion:
        denominator = np.full(n, float(design.spread))
        numerator = rng.binomial(int(design.spread), np.clip(mean, 0.0, 1.0)).astype(float)
        return {
            "value": numerator / denominator,
            "numerator": numerator,
            "denominator": denominator,
        }
    if measure.unit is Unit.count:
        value = rng.poisson(np.clip(mean, 0.0, None)).astype(float)
        return {"value": value, "numerator": np.full(n, np.nan), "denominator": np.full(n, np.nan)}
    value = mean + rng.normal(0.0, design.spread, n)
    if measure.valid_range.min is not None or measure.valid_range.max is not None:
        value = np.clip(value, measure.valid_range.min, measure.valid_range.max)
    denominator = np.full(n, 50.0) if measure.unit is Unit.score else np.full(n, np.nan)
    return {"value": value, "numerator": np.full(n, np.nan), "denominator": denominator}


def indicator_frame(
    measure: Measure, judged: Period, series: list[dict[str, np.ndarray]]
) -> pl.DataFrame:
    """Indicator rows (the detect() input) for several series, one synthetic geography each."""
    n = len(series[0]["value"])
    labels = [shift(judged, k - n + 1).label for k in range(n)]
    cells = len(series) * n
    frame = pl.DataFrame(
        {
            "measure_id": [measure.id] * cells,
            "geo_code": [_geo(i) for i in range(len(series)) for _ in range(n)],
            "period": labels * len(series),
            "disaggregation": [measure.total_key] * cells,
            "value": np.concatenate([s["value"] for s in series]),
            "numerator": np.concatenate([s["numerator"] for s in series]),
            "denominator": np.concatenate([s["denominator"] for s in series]),
            "partners_reported": [1] * cells,
            "partners_expected": [1] * cells,
            "coverage": [1.0] * cells,
            "suppressed": [False] * cells,
            "suppression": pl.Series([None] * cells, dtype=pl.Utf8),
            "lineage": ["1"] * cells,
        }
    )
    return frame.with_columns(pl.col("numerator", "denominator").fill_nan(None))


def series_per_run(initiative: Initiative, measure: Measure) -> int:
    """How many series of a measure one production run judges: each geography expecting it
    (its localities and the cluster) times each combination of breakdown codes."""
    geos = expected_partners(initiative).filter(pl.col("measure_id") == measure.id)
    return max(geos["geo_code"].n_unique(), 1) * math.prod(
        len(codes) for codes in measure.dimensions.values()
    )


def _runs(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def measure_rate(
    initiative: Initiative,
    design: Design,
    scenario: Scenario,
    *,
    series: int,
    seed: int = SEED,
    run_size: int | None = None,
) -> Rate:
    """Simulate ``series`` series of one design and scenario; count those ``detect()`` flags.

    Series are judged ``run_size`` to a ``detect()`` call (by default as many as the measure
    has in a production run, :func:`series_per_run`), so the run-wide adjustment sees what it
    sees in production. Noise-only series fill whole runs; a regressed series is judged with
    ``run_size - 1`` noise-only companions (one locality regresses, the others do not), and only
    it is counted.
    """
    measure = initiative.measures[design.measure_id]
    judged = parse_period(design.judged)
    size = run_size or series_per_run(initiative, measure)
    # One stream per (measure, scenario), so adding a design does not change the others.
    rng = np.random.default_rng(
        [seed, list(initiative.measures).index(measure.id), SCENARIOS.index(scenario)]
    )
    flagged = 0
    by_kind = dict.fromkeys(REGRESSION_KINDS, 0)
    counted = (
        list(_runs(series, size)) if scenario == "null" else [1] * series
    )  # series counted per run
    for n_counted in counted:
        run = [simulate_series(measure, design, scenario, rng) for _ in range(n_counted)]
        run += [simulate_series(measure, design, "null", rng) for _ in range(size - n_counted)]
        findings = detect(indicator_frame(measure, judged, run), initiative, {measure.id: judged})
        hits = findings.filter(
            pl.col("kind").is_in(REGRESSION_KINDS)
            & pl.col("geo_code").is_in([_geo(i) for i in range(n_counted)])
        )
        flagged += hits["geo_code"].n_unique()
        for kind in REGRESSION_KINDS:
            by_kind[kind] += hits.filter(pl.col("kind") == kind)["geo_code"].n_unique()
    return Rate(
        measure_id=measure.id,
        unit=str(measure.unit),
        scenario=scenario,
        series=series,
        runs=len(counted),
        flagged=flagged,
        by_kind=by_kind,
        alpha=measure.alert.alpha,
        run_size=size,
        periods=design.periods,
    )


def detection_rates(
    initiative: Initiative,
    *,
    series: int,
    seed: int = SEED,
    run_size: int | None = None,
    designs: tuple[Design, ...] = DESIGNS,
    scenarios: tuple[Scenario, ...] = SCENARIOS,
) -> list[Rate]:
    """Every design × scenario: the share of series ``detect()`` flags."""
    return [
        measure_rate(initiative, d, s, series=series, seed=seed, run_size=run_size)
        for d in designs
        for s in scenarios
    ]


def format_rates(rates: list[Rate]) -> str:
    """One line per design and scenario: false-alarm rate (null) or detection rate."""
    lines = [
        f"{'measure':26} {'unit':10} {'periods':>7} {'run':>4} {'scenario':8} {'series':>6} "
        f"{'flagged':>7} {'rate':>7} {'alpha':>5}  flagged by kind"
    ]
    for r in rates:
        kinds = ", ".join(f"{k}={v}" for k, v in r.by_kind.items() if v)
        lines.append(
            f"{r.measure_id:26} {r.unit:10} {r.periods:>7} {r.run_size:>4} {r.scenario:8} "
            f"{r.series:>6} {r.flagged:>7} {r.rate:>7.4f} {r.alpha:>5g}  {kinds or '-'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=2000, help="series per measure and scenario")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--run-size",
        type=int,
        default=None,
        help="series per detect() call (default: as many as the measure has in a production "
        "run; 1 judges each series alone, the worst case for false alarms)",
    )
    args = parser.parse_args()
    initiative = load_initiative(DEFAULT_INITIATIVE)
    started = time.perf_counter()
    rates = detection_rates(initiative, series=args.series, seed=args.seed, run_size=args.run_size)
    print(format_rates(rates))
    runs = "production-size runs" if args.run_size is None else f"runs of {args.run_size}"
    print(
        f"\nseed {args.seed}; {args.series} series per measure and scenario, judged in {runs}; "
        f"null: false-alarm rate, step/drift: detection rate; {time.perf_counter() - started:.0f} s"
    )
    command = (
        f".venv/bin/python benchmarks/detection_rates.py --series {args.series} --seed {args.seed}"
    )
    if args.run_size is not None:
        command += f" --run-size {args.run_size}"
    print(f"repeat: {command}")


def _geo(i: int) -> str:
    return f"sim-{i:05d}"


if __name__ == "__main__":
    main()
