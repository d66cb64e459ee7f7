"""Seasons a series' history is too short to show: judging a monthly or quarterly series
against the same period a year before, until two years allow a seasonal model.

In its second year a seasonal series' first winter is a step against its summer, yet no worse
than the winter before, which stood out just as much. Pure numpy; :mod:`.stats` calls it.
"""

from __future__ import annotations

import numpy as np

#: How far (standard deviations) the same period a year before must have stood out from what
#: is expected now, the same way, to be taken for a season where two years cannot yet show one.
SEASON_LIKE = 2.0


def seasons_unknown(y: np.ndarray, per_year: int, seasonal: bool | None, model: str) -> bool:
    """Whether the series may have seasons its history is too short to show: monthly or
    quarterly, not declared without seasons, judged on a model that is not seasonal, and with
    less than the two earlier years a seasonal expectation needs."""
    if per_year == 1 or seasonal is False or model.startswith("seasonal"):
        return False
    return int(np.sum(~np.isnan(y[:-1]))) < 2 * per_year


def nearer_a_year_ago(
    y: np.ndarray,
    e: np.ndarray,
    pred: np.ndarray,
    year_ago: np.ndarray,
    *,
    spread: tuple[np.ndarray, np.ndarray],
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Errors and predictions against the same period a year before (``year_ago``, aligned
    with ``y``), where that period stood out from the model's prediction ``pred`` the same way
    as the value (by :data:`SEASON_LIKE` standard deviations or more) and lies nearer the value
    than the prediction does.

    ``e`` are the model's standardised errors, ``spread`` the sampling shape at the prediction
    and at the year-before value (errors are differences divided by it), ``scale`` the model's
    error scale. Until two years show whether the series has seasons, such a period is unusual
    only if it is far from both; a period whose year-before was ordinary is judged on the model
    alone. The scale stays the model's (its baseline errors are not touched): this only takes
    away alarms.
    """
    at_pred, at_year_ago = spread
    with np.errstate(invalid="ignore"):
        then = (year_ago - pred) / at_pred  # last year's departure, by today's expectation
        season_like = (np.sign(then) == np.sign(e)) & (np.abs(then) >= SEASON_LIKE * scale)
        alt = (y - year_ago) / at_year_ago
        nearer = ~np.isnan(alt) & season_like & (np.abs(alt) < np.abs(e))
    return np.where(nearer, alt, e), np.where(nearer, year_ago, pred)
