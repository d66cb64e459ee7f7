"""Scoring alarms against known change points, and the baseline rules a detector must beat.

Pure functions of arrays (no pipeline): :mod:`benchmarks.evaluate_detection` and
:mod:`benchmarks.simulated_series` feed them alarm flags from the pipeline (or ``detect()``)
and apply the same baselines to the same values.

Definitions (periods are positions in the series, oldest 0):

- **Warm-up**: the first ``WARMUP`` (12) periods are history only: no alarm there counts, and
  a turning point there is not scored. The same for every rule.
- **Alarm**: consecutive alarm periods are one alarm, at the first (:func:`collapse`), as one
  alert per episode.
- **Recall within 3 periods**: a regression turning point ``tp`` (whose recall window
  ``tp .. tp+3`` lies inside the judged series) is detected when an alarm starts between its
  episode window's start and ``tp + 3``.
- **Lead/lag**: the first alarm starting inside the episode window, minus ``tp`` (negative: a
  lead). Reported for every scored turning point that has one.
- **False alarms per stable year**: alarms starting outside every regression episode window,
  divided by the judged periods outside those windows, in years.

Baselines, on ``y`` oriented so that higher is worse (the value, or minus it):

- ``any_worse``: any move the wrong way (``y[t] > y[t-1]``).
- ``z3_trailing12``: ``(y[t] - mean) / sd >= 3`` against the trailing 12 periods.
- ``ma3_vs_min12``: Sahm-style: the 3-period moving average exceeds its lowest value over the
  previous 12 periods by at least ``3 x`` the robust sd (1.4826 x MAD) of the period-to-period
  changes over the trailing 12 (a scale-free stand-in for Sahm's 0.5 points, which is about 3
  sd of monthly changes of the US unemployment rate).
- ``cusum``: a one-sided tabular CUSUM, ``S = max(0, S + z - 0.5)`` with ``z`` as in
  ``z3_trailing12``; alarm when ``S > 5`` (k = 0.5, h = 5), then ``S`` restarts at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

WARMUP = 12
RECALL_WINDOW = 3
TRAILING = 12


@dataclass(frozen=True)
class Change:
    """A documented change point: a position, and its episode window (inclusive positions)."""

    name: str
    regression: bool  # only changes in the bad direction are turning points to detect
    turning_point: int
    episode: tuple[int, int]


@dataclass(frozen=True)
class Score:
    turning_points: int  # scored
    detected: int
    lags: list[int]  # first alarm in the episode window minus the turning point
    false_alarms: int
    stable_years: float
    alarms: int  # every alarm after the warm-up

    @property
    def recall(self) -> float:
        return self.detected / self.turning_points if self.turning_points else math.nan

    @property
    def false_per_year(self) -> float:
        return self.false_alarms / self.stable_years if self.stable_years else math.nan


def collapse(flags: np.ndarray, warmup: int = WARMUP) -> list[int]:
    """Where alarms start: the first of each run of alarm periods after the warm-up."""
    f = np.asarray(flags, dtype=bool).copy()
    f[:warmup] = False
    prev = np.concatenate([[False], f[:-1]])
    return [int(i) for i in np.flatnonzero(f & ~prev)]


def score(
    onsets: list[int], changes: list[Change], n: int, per_year: int, warmup: int = WARMUP
) -> Score:
    """Score alarm starts ``onsets`` on a series of ``n`` periods (see the module docstring)."""
    regressions = [c for c in changes if c.regression]
    windows = [(max(c.episode[0], 0), min(c.episode[1], n - 1)) for c in regressions]
    scored = detected = 0
    lags: list[int] = []
    for c, (start, end) in zip(regressions, windows, strict=True):
        if c.turning_point < warmup or c.turning_point + RECALL_WINDOW > n - 1:
            continue
        scored += 1
        inside = [o for o in onsets if start <= o <= end]
        if inside:
            lags.append(inside[0] - c.turning_point)
        if any(start <= o <= c.turning_point + RECALL_WINDOW for o in onsets):
            detected += 1

    def in_window(i: int) -> bool:
        return any(a <= i <= b for a, b in windows)

    judged = [i for i in onsets if i >= warmup]
    stable = sum(1 for i in range(warmup, n) if not in_window(i))
    return Score(
        turning_points=scored,
        detected=detected,
        lags=lags,
        false_alarms=sum(1 for i in judged if not in_window(i)),
        stable_years=stable / per_year,
        alarms=len(judged),
    )


# --- baselines ----------------------------------------------------------------------------------


def any_worse(y: np.ndarray) -> np.ndarray:
    out = np.zeros(len(y), dtype=bool)
    out[1:] = y[1:] > y[:-1]
    return out


def trailing_z(y: np.ndarray, window: int = TRAILING) -> np.ndarray:
    """z of each value against the ``window`` before it (NaN without history or spread)."""
    z = np.full(len(y), np.nan)
    for t in range(window, len(y)):
        past = y[t - window : t]
        sd = float(np.std(past, ddof=1))
        if sd > 0:
            z[t] = (y[t] - float(np.mean(past))) / sd
    return z


def z3_trailing12(y: np.ndarray) -> np.ndarray:
    return np.nan_to_num(trailing_z(y), nan=-np.inf) >= 3.0


def ma3_vs_min12(y: np.ndarray, k: float = 3.0) -> np.ndarray:
    out = np.zeros(len(y), dtype=bool)
    ma = np.full(len(y), np.nan)
    ma[2:] = (y[2:] + y[1:-1] + y[:-2]) / 3
    for t in range(TRAILING + 2, len(y)):
        changes = np.diff(y[t - TRAILING - 1 : t])  # the trailing 12 changes
        mad = float(np.median(np.abs(changes - np.median(changes))))
        spread = 1.4826 * mad or float(np.std(changes, ddof=1))
        if spread > 0:
            out[t] = ma[t] - float(np.min(ma[t - TRAILING : t])) >= k * spread
    return out


def tabular_cusum(z: np.ndarray, k: float = 0.5, h: float = 5.0) -> np.ndarray:
    """One-sided tabular CUSUM of ``z`` (NaN: no statistic, skipped): ``S = max(0, S + z - k)``,
    an alarm when ``S > h``, after which ``S`` restarts at 0."""
    out = np.zeros(len(z), dtype=bool)
    s = 0.0
    for t, zt in enumerate(z):
        if math.isnan(zt):
            continue
        s = max(0.0, s + zt - k)
        if s > h:
            out[t] = True
            s = 0.0
    return out


def cusum(y: np.ndarray) -> np.ndarray:
    return tabular_cusum(trailing_z(y))


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "any_worse": any_worse,
    "z3_trailing12": z3_trailing12,
    "ma3_vs_min12": ma3_vs_min12,
    "cusum": cusum,
}


def best_baseline(scores: dict[str, Score]) -> str:
    """The baseline with the highest recall, then the fewest false alarms per stable year."""

    def key(rule: str) -> tuple[float, float]:
        s = scores[rule]
        recall = 0.0 if math.isnan(s.recall) else s.recall
        return (-recall, s.false_per_year)

    return min((r for r in scores if r in BASELINES), key=key)


def as_good(pipeline: Score, other: Score) -> bool:
    """At least as good on recall and on false alarms per stable year, at once."""
    recall_ok = math.isnan(pipeline.recall) or pipeline.recall >= other.recall
    return recall_ok and pipeline.false_per_year <= other.false_per_year


def format_table(results: dict[str, dict[str, Score]]) -> str:
    """A Markdown table, series x rule, and the done-when verdict on each pipeline row."""
    lines = [
        "| series | rule | turning points detected (recall) | lead/lag | false alarms / stable years | per stable year | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, scores in results.items():
        best = best_baseline(scores)
        for rule, s in scores.items():
            recall = "n/a" if math.isnan(s.recall) else f"{s.recall:.0%}"
            verdict = ""
            if rule == "pipeline":
                verdict = ", ".join(
                    [
                        "recall n/a"
                        if math.isnan(s.recall)
                        else ("recall ok" if s.recall >= 0.9 else "recall LOW"),
                        "FA ok" if s.false_per_year <= 0.2 else "FA HIGH",
                        f"{'>=' if as_good(s, scores[best]) else 'worse than'} {best}",
                    ]
                )
            lags = ", ".join(f"{lag:+d}" for lag in s.lags) or "-"
            lines.append(
                f"| {name} | {rule} | {s.detected}/{s.turning_points} ({recall}) | {lags} | "
                f"{s.false_alarms} / {s.stable_years:.1f} | {s.false_per_year:.2f} | {verdict} |"
            )
    return "\n".join(lines)
