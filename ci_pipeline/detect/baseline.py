"""The scale of a series' usual prediction errors, estimated from its baseline: what counts
as an ordinary move for that series (see :mod:`.stats`, which predicts and tests).

Robust where a history is not ordinary: past episodes (a recession) are left out, errors far
out are trimmed, a trend in the errors is found, and figures rounded to a resolution never
make the scale smaller than their rounding. Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

from ci_pipeline.detect.tails import t_ppf

#: The fewest errors a baseline keeps (fewer: the past episodes stay in it).
MIN_BASELINE = 8
#: Normal-consistency factor of the median absolute deviation.
MAD_SCALE = 1.4826
#: Normal-consistency factor of the mean absolute deviation, where the median one is 0.
MEAN_AD_SCALE = 1.2533
#: Past prediction errors beyond this many robust standard deviations are left out of the
#: scale (a past outbreak must not make the next one look ordinary; Farrington down-weights
#: them for the same reason).
TRIM = 3.5
#: Significance (two-sided) at which the usual level's errors show a trend to correct for.
TREND_ALPHA = 0.2
#: The limit of the two-sided CUSUM (reference value ``k``, errors in robust standard
#: deviations) beyond which a past run of errors is an episode left out of the baseline: a
#: stable series crosses it once in about 19,000 periods (``cusum_arl(8.0)``), a recession in
#: the history within a few quarters.
EPISODE_H = 8.0


def scale_of(errors: np.ndarray) -> tuple[float, int]:
    """Root-mean-square of the errors (about 0: a model that drifts is penalised, not
    excused), leaving out those beyond :data:`TRIM` robust standard deviations."""
    robust = MAD_SCALE * float(np.median(np.abs(errors)))
    if robust == 0:  # mostly exact predictions: the mean absolute error (Iglewicz & Hoaglin)
        robust = MEAN_AD_SCALE * float(np.mean(np.abs(errors)))
    kept = errors if robust == 0 else errors[np.abs(errors) <= TRIM * robust]
    return float(np.sqrt(np.mean(kept**2))), len(kept)


def trend(errors: np.ndarray) -> float | None:
    """The median of a model's past errors where their mean differs from 0 at the
    :data:`TREND_ALPHA` level (Student's t, two-sided: Farrington keeps a trend only where it is
    significant; a lenient level, because a missed trend widens the scale and silences the
    series, while a spurious one costs a degree of freedom);
    None otherwise, or with fewer than four errors."""
    n = len(errors)
    if n < 4:
        return None
    sd = float(np.std(errors, ddof=1))
    mean = float(np.mean(errors))
    if sd == 0:
        return mean if mean != 0 else None
    t = mean / (sd / math.sqrt(n))
    return float(np.median(errors)) if abs(t) > t_ppf(1 - TREND_ALPHA / 2, n - 1) else None


def resolution(y: np.ndarray) -> float:
    """The smallest move between known consecutive values of a history: the figures'
    rounding unit where they are rounded (0 where the series never moved)."""
    moves = np.abs(np.diff(y[~np.isnan(y)]))
    moves = moves[moves > 0]
    return float(moves.min()) if len(moves) else 0.0


def without_episodes(errors: np.ndarray, *, k: float, clip: float) -> np.ndarray:
    """The baseline errors without past episodes: the runs of a two-sided CUSUM of the errors
    (in robust standard deviations) that crossed :data:`EPISODE_H`, as Farrington down-weights
    past outbreaks; all of them where fewer than :data:`MIN_BASELINE` would remain."""
    robust = MAD_SCALE * float(np.median(np.abs(errors - np.median(errors))))
    if robust == 0:
        return errors
    z = np.clip((errors - np.median(errors)) / robust, -clip, clip)
    marked = np.zeros(len(z), dtype=bool)
    for sign in (1.0, -1.0):
        # Each run that crossed the limit is marked from its start to its peak: the periods
        # that drove it up (the slow return to 0 afterwards is the series back to normal).
        s, start, peak, top = 0.0, 0, -1, 0.0
        for i, zi in enumerate(sign * z):
            s = max(0.0, s + float(zi) - k)
            if s > top:
                peak, top = i, s
            if s == 0.0 or i == len(z) - 1:
                if top > EPISODE_H:
                    marked[start : peak + 1] = True
                start, peak, top = i + 1, -1, 0.0
    kept = errors[~marked]
    return kept if len(kept) >= MIN_BASELINE else errors
