"""The statistical tests the detectors use: pure functions of numbers, no frames, no measures
beyond a direction.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ci_pipeline.model.initiative import Direction

MAD_SCALE = 0.6745  # modified z-score (Iglewicz & Hoaglin)


MEAN_AD_SCALE = 1.253314  # their fallback when the MAD is zero


def worse(direction: Direction, change: float) -> bool:
    """Whether a change is in the wrong direction for the measure."""
    return change < 0 if direction is Direction.higher_is_better else change > 0


def two_proportion_p(
    n1: float, d1: float, n2: float, d2: float, direction: Direction
) -> tuple[float, float]:
    """One-sided p-value that proportion 2 is worse than proportion 1, and the z statistic."""
    pooled = (n1 + n2) / (d1 + d2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / d1 + 1 / d2))
    if se == 0:
        return 0.0, 1.0
    z = (n2 / d2 - n1 / d1) / se
    p = stats.norm.cdf(z) if direction is Direction.higher_is_better else stats.norm.sf(z)
    return z, float(p)


def poisson_p(c1: float, c2: float, direction: Direction) -> tuple[float, float]:
    """Exact conditional test for two Poisson counts: given c1 + c2, c2 ~ Binomial(n, 1/2)."""
    n = round(c1 + c2)
    k = round(c2)
    if n == 0:
        return 0.0, 1.0
    if direction is Direction.higher_is_better:
        p = stats.binom.cdf(k, n, 0.5)
    else:
        p = stats.binom.sf(k - 1, n, 0.5)
    z = (k - n / 2) / math.sqrt(n / 4)
    return z, float(p)


def robust_z(history: np.ndarray, x: float) -> float | None:
    """Modified z-score of ``x`` against history; None where history has no spread."""
    median = float(np.median(history))
    mad = float(np.median(np.abs(history - median)))
    if mad > 0:
        return MAD_SCALE * (x - median) / mad
    mean_ad = float(np.mean(np.abs(history - median)))
    if mean_ad > 0:
        return (x - median) / (MEAN_AD_SCALE * mean_ad)
    return None


def prediction_p(history: np.ndarray, x: float, direction: Direction) -> float:
    """One-sided p-value that ``x`` is worse than a new draw from the history's population:
    the prediction-interval t-test, exact for normal noise (``t = (x - mean) / (s * sqrt(1 +
    1/n))`` on ``n - 1`` degrees of freedom)."""
    n = len(history)
    sd = float(np.std(history, ddof=1)) if n > 1 else 0.0
    if sd == 0:
        return 0.0 if worse(direction, x - float(np.mean(history))) else 1.0
    t = (x - float(np.mean(history))) / (sd * math.sqrt(1 + 1 / n))
    tail = stats.t.cdf if direction is Direction.higher_is_better else stats.t.sf
    return float(tail(t, n - 1))


def mann_kendall(values: np.ndarray) -> tuple[float, float]:
    """Mann–Kendall S statistic's z-score and Sen's slope, for a short series without ties
    correction (ties only lower |z|)."""
    n = len(values)
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(values[j] - values[i]).sum())
    var = n * (n - 1) * (2 * n + 5) / 18
    z = (s - np.sign(s)) / math.sqrt(var) if s != 0 else 0.0
    slope = float(np.median((values[j] - values[i]) / (j - i)))
    return z, slope


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values)."""
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out
