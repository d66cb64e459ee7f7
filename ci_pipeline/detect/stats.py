"""The statistical tests the detectors use: pure functions of numbers, no frames, no measures
beyond a direction and a unit.

The model behind every test (see the package docstring): a series' expected value for a period
comes from its own past (the period before, the usual level, or the same period of earlier
years, whichever has predicted this series best), and what counts as an unusual move is
estimated from the series' own past prediction errors — over-dispersion included. Sampling
theory (binomial for proportions, Poisson for counts) gives only the *shape* of the variance
(how it changes with the level and the denominator); its *scale* is estimated from the history,
as quasi-binomial / quasi-Poisson models do. So a proportion of millions of people is not judged
more severely than the same proportion reported in thousands: both are judged against how much
the series itself moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ci_pipeline.detect.baseline import (
    MIN_BASELINE,
    resolution,
    scale_of,
    trend,
    without_episodes,
)
from ci_pipeline.detect.seasons import nearer_a_year_ago, seasons_unknown
from ci_pipeline.detect.tails import normal_ppf, normal_sf, t_cdf, t_sf
from ci_pipeline.model.initiative import Direction, Unit

#: Standardised errors are clipped here before they enter the CUSUM, so one outlier is a step,
#: not a sustained change.
CLIP = 3.0
#: CUSUM reference value (half a standard deviation): tuned to detect sustained shifts of about
#: one standard deviation.
CUSUM_K = 0.5
#: Siegmund's correction for the overshoot of a Gaussian CUSUM (0.583 per side, times 2).
SIEGMUND = 1.166
#: Periods of standardised errors a CUSUM accumulates at most.
CUSUM_WINDOW = 12
#: Years of the same period used for a seasonal expectation, at most (Farrington's b).
SEASON_YEARS = 5
#: The usual level: the median of at most this many periods before.
USUAL_WINDOW = 12

#: How much smaller the period before's typical error must be than the usual level's for it
#: to be chosen.
MODEL_GAIN = 1.0
#: ... and a seasonal model's, which has more to fit.
SEASONAL_GAIN = 0.8
#: The most a measure's other series count for, in errors, when a series' scale is
#: estimated (empirical Bayes, as limma's moderated t: Smyth 2004).
PRIOR_DF = 10
#: The most recent periods left out of the baseline (Farrington's pastWeeksNotIncluded),
#: where at least :data:`MIN_BASELINE` earlier errors remain.
RECENT = 5
#: Lag-1 autocorrelation of the usual level's errors from which a series wanders.
WANDERS = 0.5
#: Past periods two models must both have predicted before one can be preferred.
MIN_COMPARE = 8
#: The models whose predictions are corrected for a trend in their past errors (a seasonal
#: level from five years of the same period would chase its own trend).
TREND_MODELS = ("usual", "previous", "seasonal_previous")

#: The models, simplest first.
MODELS = ("usual", "previous", "seasonal_usual", "seasonal_previous")


def worse(direction: Direction, change: float) -> bool:
    """Whether a change is in the wrong direction for the measure."""
    return change < 0 if direction is Direction.higher_is_better else change > 0


def bad_sign(direction: Direction) -> float:
    """+1 where a rise is the regression, -1 where a fall is."""
    return -1.0 if direction is Direction.higher_is_better else 1.0


def _lag(y: np.ndarray, k: int) -> np.ndarray:
    """``y`` shifted ``k`` periods later (NaN where the past is unknown)."""
    out = np.full_like(y, np.nan)
    if k < len(y):
        out[k:] = y[: len(y) - k]
    return out


def _nanmedian(stack: np.ndarray) -> np.ndarray:
    """Column medians ignoring NaN; NaN where a column has nothing. The same numbers as
    ``np.nanmedian(stack, axis=0)`` (the middle value, or the mean of the two middle ones), but
    from one sort: numpy's own goes through masked arrays for small stacks, and this runs for
    every model of every series of a run (half of detection's time at national scale)."""
    ordered = np.sort(stack, axis=0)  # NaN sort last
    n = np.sum(~np.isnan(stack), axis=0)
    columns = np.arange(stack.shape[1])
    low = ordered[np.maximum((n - 1) // 2, 0), columns]
    high = ordered[np.maximum(n // 2, 0), columns]
    return np.where(n > 0, (low + high) / 2, np.nan)


def predictions(y: np.ndarray, per_year: int) -> dict[str, np.ndarray]:
    """Each model's prediction of every period from the periods before it (no look-ahead).

    - ``previous``: the period before (a random walk: a series that wanders, like an
      unemployment rate);
    - ``usual``: the median of up to :data:`USUAL_WINDOW` periods before (a stable level with
      noise around it); at least two;
    - ``seasonal_previous``: the period before plus the usual move into this period in earlier
      years (a wandering series with seasons);
    - ``seasonal_usual``: the median of the same period (±1 month) in up to
      :data:`SEASON_YEARS` earlier years, as Farrington's algorithm does; at least two years.
    """
    n = len(y)
    out: dict[str, np.ndarray] = {"previous": _lag(y, 1)}
    usual_lags = np.stack([_lag(y, k) for k in range(1, USUAL_WINDOW + 1)])
    usual = _nanmedian(usual_lags)
    usual[np.sum(~np.isnan(usual_lags), axis=0) < 2] = np.nan
    out["usual"] = usual
    if per_year > 1 and n > 2 * per_year:
        years = range(1, SEASON_YEARS + 1)
        moves = np.stack([_lag(y, j * per_year) - _lag(y, j * per_year + 1) for j in years])
        move = _nanmedian(moves)
        move[np.sum(~np.isnan(moves), axis=0) < 2] = np.nan
        out["seasonal_previous"] = _lag(y, 1) + move
        window = (-1, 0, 1) if per_year >= 12 else (0,)
        same = np.stack([_lag(y, j * per_year + d) for j in years for d in window])
        seen = np.stack([_lag(y, j * per_year) for j in years])
        level = _nanmedian(same)
        level[np.sum(~np.isnan(seen), axis=0) < 2] = np.nan
        out["seasonal_usual"] = level
    return out


def shape(unit: Unit, expected: np.ndarray, denominator: np.ndarray | None) -> np.ndarray:
    """The sampling theory's standard deviation of a value around its expectation, up to the
    scale the history estimates: ``sqrt(p(1-p)/n)`` for proportions, ``sqrt(mu)`` for counts,
    1 for scores and amounts. A level at 0 (or 1) still has some spread."""
    if unit is Unit.proportion and denominator is not None:
        n = np.maximum(denominator, 1e-300)
        p = np.clip(expected, 0.5 / n, 1 - 0.5 / n)
        return np.sqrt(p * (1 - p) / n)
    if unit is Unit.count:
        return np.sqrt(np.maximum(expected, 0.5))
    return np.ones_like(expected)


@dataclass(frozen=True)
class Expectation:
    """What a series was expected to do in its last period, and how unusual what it did is.

    ``errors`` are the standardised prediction errors ``(y - expected) / shape`` of the last
    periods, aligned with them (NaN where a period is unknown), the judged period last;
    ``scale`` is the standard deviation of the ``baseline`` errors — the history before the
    most recent periods (over-dispersion: 1 would be pure sampling noise), on ``df`` degrees of
    freedom.
    """

    model: str
    expected: float
    errors: np.ndarray
    scale: float
    df: int
    sampling: bool  # the baseline had no spread at all: the scale is sampling theory's
    baseline: np.ndarray = field(default_factory=lambda: np.empty(0))
    # Seasons unknown (see _nearer_a_year_ago): errors against the model or a year before.
    year_ago: bool = False

    def moderated(self, prior_scale: float, prior_df: int) -> Expectation:
        """The scale shrunk towards a prior worth ``prior_df`` errors (limma's moderated t:
        ``s² = (d0 s0² + d s²) / (d0 + d)`` on ``d0 + d`` degrees of freedom)."""
        if prior_df <= 0 or prior_scale <= 0:
            return self
        own = 0 if self.sampling else self.df
        scale = math.sqrt((prior_df * prior_scale**2 + own * self.scale**2) / (prior_df + own))
        return replace(self, scale=scale, df=prior_df + own, sampling=False)

    def normal_scores(self) -> np.ndarray:
        """The errors in standard deviations, each mapped to the normal score of the same
        tail probability under Student's t on ``df`` degrees of freedom (the normal itself
        where the scale is sampling theory's)."""
        t = self.errors / self.scale
        if self.df == 0:
            return t
        return normal_ppf(t_cdf(t, self.df))

    @property
    def z(self) -> float:
        """The judged period's error in standard deviations of the history's errors."""
        return float(self.errors[-1] / self.scale)


def expectation(
    y: np.ndarray,
    *,
    unit: Unit,
    per_year: int,
    denominator: np.ndarray | None = None,
    seasonal: bool | None = None,
    window: int = 24,
) -> Expectation | None:
    """The best-predicting model's expectation of ``y[-1]`` and the history's error scale.

    ``y`` holds consecutive periods, oldest first, NaN where a period is unknown or suppressed;
    the last is the judged one. The models compete on the same past periods (at most
    ``window``) by the robust size of their errors; seasonal ones take part where two years of
    history exist (``seasonal=False`` never, ``True`` only them when they can). None when no
    model can predict the judged period or its history.
    """
    preds = predictions(y, per_year)
    if seasonal is False:
        preds = {k: v for k, v in preds.items() if not k.startswith("seasonal")}
    elif seasonal is True and any(k.startswith("seasonal") for k in preds):
        seasonal_ok = {
            k: v for k, v in preds.items() if k.startswith("seasonal") and not np.isnan(v[-1])
        }
        preds = seasonal_ok or preds
    errors: dict[str, np.ndarray] = {}
    for name, pred in preds.items():
        if np.isnan(pred[-1]) or np.isnan(y[-1]):
            continue
        e = (y - pred) / shape(unit, pred, denominator)
        errors[name] = e
    if not errors:
        return None
    # The model is chosen on the history before the RECENT latest periods, as Farrington's
    # pastWeeksNotIncluded: a change going on now must not choose the model it is judged by
    # (on a shorter history the simplest model stays). The scale and the trend come from a
    # baseline that leaves out as many of those periods as keep MIN_BASELINE errors: they
    # must not be widened by the change either, but need errors to be estimated from.
    chosen_on = len(y) - 1 - RECENT
    simplest = next(errors[k] for k in MODELS if k in errors)
    known = np.flatnonzero(~np.isnan(simplest[:-1]))
    left_out = min(RECENT, max(0, len(known) - MIN_BASELINE))
    cut = int(known[-left_out]) if left_out else len(y) - 1
    # Only models with a baseline error to estimate their scale from take part.
    errors = {k: e for k, e in errors.items() if np.any(~np.isnan(e[:cut]))} or errors
    # The simplest model that predicts well wins: the usual level, unless following the period
    # before predicts clearly better (a series that wanders); seasons only where they predict
    # clearly better again. Each challenger is compared on the periods both predicted before
    # the latest, and only on enough of them: a model with more to fit wins on noise otherwise,
    # and the scale of a model chosen on noise is too small.
    order = [k for k in MODELS if k in errors]
    name = order[0]
    for other in order[1:]:
        both = ~np.isnan(errors[name][:chosen_on]) & ~np.isnan(errors[other][:chosen_on])
        common = np.flatnonzero(both)[-window:]
        if len(common) < MIN_COMPARE:
            continue
        # Mean absolute errors: a median would not see a season that is one period in four.
        size = float(np.mean(np.abs(errors[other][common])))
        gain = SEASONAL_GAIN if other.startswith("seasonal") else MODEL_GAIN
        if size < gain * float(np.mean(np.abs(errors[name][common]))) or (
            name == "usual" and other == "previous" and _wanders(errors[name][common])
        ):
            name = other
    e, pred = errors[name], preds[name]
    baseline = e[:cut][~np.isnan(e[:cut])][-window:]
    if len(baseline) == 0:
        return None
    # Past episodes (a recession in the history) are not the series' usual noise: left out,
    # as Farrington down-weights past outbreaks, or they would hide the next one.
    baseline = without_episodes(baseline, k=CUSUM_K, clip=CLIP)
    bias = trend(baseline) if name in TREND_MODELS else None
    if bias is not None:
        # A median lags a series with a trend by the same amount each period, and a series
        # that wanders may wander one way (an unemployment rate falling a tenth a quarter for
        # years): where the baseline errors say so (significantly), the prediction is corrected
        # by their median, which costs them a degree of freedom. A rise after such a fall is
        # then judged against the fall that was expected, not against no move at all.
        e, baseline = e - bias, baseline - bias
        pred = pred + bias * shape(unit, pred, denominator)
    scale, df = scale_of(baseline)
    if bias is not None and df > 1:  # the sum of squares over its degrees of freedom
        scale, df = scale * math.sqrt(df / (df - 1)), df - 1
    # Figures reported to a resolution (a rate to a tenth of a point) predict each other
    # exactly for a while: errors of exactly 0 say how the figures were rounded, not that the
    # series never moves. The scale is never below the rounding noise of a move, q / sqrt(6)
    # for a resolution q (the smallest move seen), so a move of one unit is not a step of
    # thousands of standard deviations.
    at = shape(unit, pred[-1:], None if denominator is None else denominator[-1:])[0]
    scale = max(scale, resolution(y[:-1]) / math.sqrt(6.0) / at)
    sampling = scale == 0
    if sampling:
        if unit not in (Unit.proportion, Unit.count):
            return None  # a score or amount that never moved: nothing says how much it may
        # A history without a single move (rounded figures, a constant): fall back to sampling
        # noise, the variance of a difference of two independent draws.
        scale, df = math.sqrt(2.0), 0
    year_ago = seasons_unknown(y, per_year, seasonal, name)
    if year_ago:
        last = _lag(y, per_year)
        e, pred = nearer_a_year_ago(
            y,
            e,
            pred,
            last,
            spread=(shape(unit, pred, denominator), shape(unit, last, denominator)),
            scale=scale,
        )
    return Expectation(
        name, float(pred[-1]), e[-(window + 1) :], scale, df, sampling, baseline, year_ago
    )


def _wanders(errors: np.ndarray) -> bool:
    """Whether a level's errors follow each other (lag-1 autocorrelation of at least
    :data:`WANDERS`): the series wanders away from any level, as a random walk does, even
    where the period before has not yet predicted it better on a short history."""
    a, b = errors[:-1] - errors.mean(), errors[1:] - errors.mean()
    denominator = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return denominator > 0 and float(np.sum(a * b)) / denominator >= WANDERS


def pooled_scale(expectations: list[Expectation]) -> tuple[float, int] | None:
    """The prior scale of a measure's series: the median of their own scales (robust to a
    few series with a different noise), worth at most :data:`PRIOR_DF` errors, and only from
    two series with their own estimates up (a lone series is judged on its own history)."""
    own = [e for e in expectations if not e.sampling and e.df >= 2]
    if len(own) < 2:
        return None
    scale = float(np.median([e.scale for e in own]))
    return scale, min(PRIOR_DF, sum(e.df for e in own) - 1)


def step_p(ex: Expectation, direction: Direction) -> float:
    """One-sided p-value that the judged period is this much worse than expected: Student's t
    on ``df`` degrees of freedom (the scale is estimated from that many errors), the normal
    when the scale is sampling theory's."""
    t = ex.z * bad_sign(direction)
    return float(normal_sf(t)) if ex.df == 0 else t_sf(t, ex.df)


def cusum(z: np.ndarray, k: float = CUSUM_K) -> tuple[float, int]:
    """Page's one-sided CUSUM of standardised errors (bad direction positive; NaN for an
    unknown period), clipped at :data:`CLIP`: the last value and the index where its current run began (the first period
    after the last zero; ``len(z)`` when it is zero now)."""
    s, start = 0.0, 0
    for i, zi in enumerate(np.clip(z, -CLIP, CLIP)):
        if np.isnan(zi):  # an unknown period adds nothing
            continue
        s = max(0.0, s + float(zi) - k)
        if s == 0.0:
            start = i + 1
    return s, start


def cusum_arl(h: float, k: float = CUSUM_K) -> float:
    """In-control average run length of a CUSUM with limit ``h`` on N(0, 1) errors, by
    Siegmund's approximation: ``(exp(2kb) - 2kb - 1) / (2k^2)`` with ``b = h + 1.166``."""
    b = h + SIEGMUND
    return (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)


def cusum_p(s: float, k: float = CUSUM_K) -> float:
    """A CUSUM value as a false-alarm probability per period: the share of a stable series'
    periods whose CUSUM is at least ``s``. In control, a CUSUM of N(0, 1) errors is a random
    walk with drift ``-k`` held at 0, whose stationary law is close to exponential with rate
    ``2k``, shifted by the overshoot of a discrete step (0.583): ``exp(-2k(s + 0.583))``
    (checked against a simulation in the tests). With ``k = 0.5``, a third of alpha = 0.01
    (the CUSUM's share beside a step) is a limit of 5.12 standard deviations, where a stable
    series' first false alarm comes after ``cusum_arl(5.12)`` = 1,060 periods on average."""
    return min(1.0, math.exp(-2 * k * (s + SIEGMUND / 2))) if s > 0 else 1.0


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
