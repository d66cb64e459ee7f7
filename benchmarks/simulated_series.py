"""False alarms and recall on simulated series, by denominator, through the same harness.

Usage::

    .venv/bin/python benchmarks/simulated_series.py [--series 10] [--seed 20251130]
        [--pipeline-check 2]

Quarterly series of 60 periods (15 years; the first 12 periods are warm-up, as for the real
series), in the bad direction upward (``lower_is_better``), for proportions at denominators
10^2 .. 10^8 and counts at means 10^2 .. 10^8:

- proportions: beta-binomial, a true rate around 0.30 drawn each period from a beta with
  intra-class correlation ``RHO`` (sd of the true rate about 1.4 points), so the binomial
  noise dominates at small denominators and the over-dispersion at large ones;
- counts: negative binomial, variance ``mu + mu^2 / R`` (a true level varying about 5%).

Variants, ``--series`` of each per unit and denominator: ``noise`` (over-dispersion only),
``seasonal`` (+ a quarterly cycle of +-1 sd), ``outliers`` (+ one-period glitches of +-4 sd in
either direction, 3% of periods), ``shift`` (a sustained step of 3 sd in the bad direction at
period 36) and ``drift`` (0.5 sd a period in the bad direction over periods 30..37, then
level). "sd" is the noise's total sd at that denominator. Turning points: the shift (episode
window 35..39) and the drift's start (window 29..40).

The many series are replayed in ``--mode direct`` (``detect()`` on the growing indicator
frame: no database), for runtime (the pipeline takes about 2 s a period); ``--pipeline-check
K`` also replays the first K ``shift`` series at 10^2, 10^4 and 10^8 of each unit through the
real pipeline and prints whether their alarm starts (after collapsing) equal direct mode's. Fixed seeds: each (unit, denominator, variant) has its own stream.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.detection_scoring import BASELINES, Change, Score, collapse, score
from benchmarks.evaluate_detection import Series, replay_direct, replay_pipeline, write_initiative
from ci_pipeline.model.initiative import Direction, Unit
from ci_pipeline.model.periods import parse_period, shift

SEED = 20251130
PERIODS = 60
DENOMINATORS = [10**k for k in range(2, 9)]
VARIANTS = ("noise", "seasonal", "outliers", "shift", "drift")
RATE = 0.30
RHO = 0.001  # beta-binomial intra-class correlation
R = 400.0  # negative-binomial size: a 5% coefficient of variation of the true level
SHIFT_AT, DRIFT_FROM, DRIFT_LEN = 36, 30, 8


def noise_sd(unit: Unit, size: float) -> float:
    """The total sd of one period's value: sampling noise plus over-dispersion."""
    if unit is Unit.proportion:
        return math.sqrt(RATE * (1 - RATE) * (1 / size + RHO))
    return math.sqrt(size + size**2 / R)


def expected(unit: Unit, size: float, variant: str, rng: np.random.Generator) -> np.ndarray:
    """The level each period before sampling noise: a rate, or a count's mean."""
    base = RATE if unit is Unit.proportion else float(size)
    sd = noise_sd(unit, size)
    t = np.arange(PERIODS)
    level = np.full(PERIODS, base)
    if variant == "seasonal":
        level += sd * np.sin(2 * np.pi * t / 4 + 0.5)
    elif variant == "outliers":
        glitch = rng.random(PERIODS) < 0.03
        level += glitch * rng.choice([-4.0, 4.0], PERIODS) * sd
    elif variant == "shift":
        level[SHIFT_AT:] += 3 * sd
    elif variant == "drift":
        level += 0.5 * sd * np.clip(t - DRIFT_FROM + 1, 0, DRIFT_LEN)
    return level


def simulate(unit: Unit, size: int, variant: str, rng: np.random.Generator, k: int) -> Series:
    level = expected(unit, size, variant, rng)
    numerator = denominator = None
    if unit is Unit.proportion:
        p = np.clip(level, 1e-6, 1 - 1e-6)
        phi = 1 / RHO - 1  # beta precision: var(true rate) = p (1 - p) rho
        true = rng.beta(p * phi, (1 - p) * phi)
        numerator = rng.binomial(size, true).astype(float)
        denominator = np.full(PERIODS, float(size))
        value = numerator / denominator
    else:
        mu = np.clip(level, 1e-6, None)
        value = rng.negative_binomial(R, R / (R + mu)).astype(float)
    first = parse_period("2000-Q1")
    changes = []
    if variant == "shift":
        changes = [Change("shift", True, SHIFT_AT, (SHIFT_AT - 1, SHIFT_AT + 3))]
    elif variant == "drift":
        changes = [Change("drift", True, DRIFT_FROM, (DRIFT_FROM - 1, DRIFT_FROM + DRIFT_LEN + 2))]
    return Series(
        name=f"sim-{unit}-{size}-{variant}-{k}".replace("proportion", "p").replace("count", "c"),
        title=f"simulated {unit} at {size:g}, {variant}",
        unit=unit,
        periodicity="quarter",
        direction=Direction.lower_is_better,
        periods=[shift(first, i).label for i in range(PERIODS)],
        value=value,
        numerator=numerator,
        denominator=denominator,
        changes=changes,
    )


def rules_flags(s: Series, pipeline: list[set[str]]) -> dict[str, np.ndarray]:
    flags = {"pipeline": np.array([bool(k) for k in pipeline])}
    for rule, fn in BASELINES.items():
        flags[rule] = fn(s.value)  # lower is better: y is the value itself
    return flags


def pooled(scores: list[Score]) -> Score:
    return Score(
        turning_points=sum(s.turning_points for s in scores),
        detected=sum(s.detected for s in scores),
        lags=[lag for s in scores for lag in s.lags],
        false_alarms=sum(s.false_alarms for s in scores),
        stable_years=sum(s.stable_years for s in scores),
        alarms=sum(s.alarms for s in scores),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10, help="series per variant and size")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pipeline-check", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ci-simulated-"))
    rules = ["pipeline", *BASELINES]
    started = time.perf_counter()
    print(
        "| unit | size | rule | false alarms / stable years | per stable year "
        "| shift recall | shift median lag | drift recall | drift median lag |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    checked = agreed = 0
    pipeline_seconds = 0.0
    try:
        for unit in (Unit.proportion, Unit.count):
            # One measure per unit serves every series of it (renamed to it by ``_as``).
            sample = simulate(unit, 100, "noise", np.random.default_rng(0), 0)
            initiative = write_initiative(work / f"initiative-{unit}", _as(sample))
            for size in DENOMINATORS:
                by_rule: dict[str, dict[str, list[Score]]] = {
                    r: {v: [] for v in VARIANTS} for r in rules
                }
                for vi, variant in enumerate(VARIANTS):
                    rng = np.random.default_rng(
                        [args.seed, list(Unit).index(unit), int(math.log10(size)), vi]
                    )
                    for k in range(args.series):
                        s = simulate(unit, size, variant, rng, k)
                        kinds = replay_direct(_as(s), initiative)
                        if (
                            k < args.pipeline_check
                            and variant == "shift"
                            and size in (10**2, 10**4, 10**8)
                        ):
                            t = time.perf_counter()
                            through = replay_pipeline(_as(s), work / s.name)
                            pipeline_seconds += time.perf_counter() - t
                            checked += 1
                            # Alarm starts, as scored: with one alert per episode the
                            # pipeline opens one where detect() finds every period of it.
                            agreed += collapse(np.array([bool(x) for x in through])) == collapse(
                                np.array([bool(x) for x in kinds])
                            )
                        for rule, flags in rules_flags(s, kinds).items():
                            by_rule[rule][variant].append(
                                score(collapse(flags), s.changes, PERIODS, 4)
                            )
                for rule in rules:
                    every = pooled([x for v in VARIANTS for x in by_rule[rule][v]])
                    sh, dr = pooled(by_rule[rule]["shift"]), pooled(by_rule[rule]["drift"])
                    print(
                        f"| {unit} | {size:.0e} | {rule} | {every.false_alarms} / "
                        f"{every.stable_years:.0f} | {every.false_per_year:.2f} | "
                        f"{sh.recall:.0%} | {_median(sh.lags)} | {dr.recall:.0%} | "
                        f"{_median(dr.lags)} |"
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\nseed {args.seed}; {args.series} series per unit, size and variant "
        f"({', '.join(VARIANTS)}); direct mode; {time.perf_counter() - started:.0f} s"
    )
    if checked:
        print(
            f"pipeline mode agrees with direct mode on {agreed} of {checked} series "
            f"(alarm starts equal); {pipeline_seconds:.0f} s in pipeline mode"
        )
    command = (
        f".venv/bin/python benchmarks/simulated_series.py --series {args.series} --seed {args.seed}"
    )
    if args.pipeline_check:
        command += f" --pipeline-check {args.pipeline_check}"
    print(f"repeat: {command}")


def _as(s: Series) -> Series:
    """The series under its unit's one measure id (one initiative serves them all)."""
    from dataclasses import replace

    return replace(s, name=f"sim-{s.unit}")


def _median(lags: list[int]) -> str:
    return f"{np.median(lags):+.1f}" if lags else "-"


if __name__ == "__main__":
    main()
