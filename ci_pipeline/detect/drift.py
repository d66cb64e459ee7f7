"""Drift: a series worsening steadily over its last periods, each move perhaps too small to be
a step. Which test depends on how the series is expected to move (see :func:`drift`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ci_pipeline.detect.stats import Expectation, bad_sign, mann_kendall, worse
from ci_pipeline.detect.tails import normal_sf
from ci_pipeline.model.initiative import Direction


@dataclass(frozen=True)
class Drift:
    """A drift test's outcome: its statistic and one-sided p-value (bad direction), the total
    change it measured (in the value's unit), whether it shares a series' alpha with the step
    and CUSUM (``adjusted``), and whether it was judged against the seasons."""

    statistic: float
    p_value: float
    total_change: float
    adjusted: bool
    against_seasons: bool
    _test: str

    def test(self, reference: str) -> str:
        """The evidence, naming what the departures were measured from."""
        return self._test.format(reference=reference)


def drift(values: np.ndarray, ex: Expectation | None, direction: Direction) -> Drift:
    """The drift test of the last ``values`` (oldest first, the judged period last).

    - On a seasonal series (expected from the same period of earlier years) a climb into
      winter is its season: the trend is tested in its departures from the seasons, and the
      change that matters is how far it now is from them.
    - A series that wanders makes monotone runs by chance (five moves the same way one time in
      32), so Mann–Kendall would cry wolf: its drift is its recent moves averaging the wrong
      way beyond their usual spread — over the last 2 to ``n - 1`` moves, whichever window
      shows it most, paying for the choice of window (Bonferroni).
    - Otherwise Mann–Kendall on the levels, the total change from Sen's slope.
    """
    n = len(values)
    sign = bad_sign(direction)
    if ex is not None and ex.model == "seasonal_usual" and len(ex.errors) >= n:
        departures = ex.errors[-n:]
        if not np.isnan(departures).any():
            z, _slope = mann_kendall(departures)
            text = f"Mann–Kendall trend test of the last {n} departures from {{reference}}, "
            return Drift(
                z,
                float(normal_sf(z * sign)),
                float(values[-1] - ex.expected),
                adjusted=False,
                against_seasons=True,
                _test=text + f"z = {z:.2f}",
            )
    if ex is not None and ex.model.endswith("previous"):
        # The strongest mean of the last m moves, m = 2 .. n - 1 (a window-limited scan): a
        # turn that began two or three periods ago is not diluted by the calm moves before
        # it, as a fixed window would dilute it. Bonferroni over the windows.
        moves = ex.normal_scores()[-(n - 1) :] * sign  # the bad direction positive
        means = np.cumsum(moves[::-1])[1:] / np.sqrt(np.arange(2, len(moves) + 1))
        # A window reaching an unknown move is no window (nor any longer one): not counted.
        windows = int(np.sum(~np.isnan(means)))
        best = int(np.nanargmax(means)) if windows else 0
        m = best + 2
        z = float(means[best]) * sign if windows else 0.0
        return Drift(
            z,
            min(1.0, float(normal_sf(z * sign)) * windows) if windows else 1.0,
            float(values[-1] - values[-1 - m]),
            adjusted=True,
            against_seasons=False,
            _test=f"mean of the last {m} moves against their usual spread, z = {z:.2f}",
        )
    z, slope = mann_kendall(values)
    return Drift(
        z,
        float(normal_sf(z * sign)),
        slope * (n - 1),
        adjusted=False,
        against_seasons=False,
        _test=f"Mann–Kendall trend test over {n} periods, z = {z:.2f}",
    )


def worse_than_a_year_ago(
    direction: Direction, y: np.ndarray, per_year: int, ex: Expectation | None
) -> bool:
    """Whether a rise over the last periods can be more than the season, as far as is known:
    where two years cannot yet show the seasons (``ex.year_ago``), only if the judged period
    (``y[-1]``) is also worse than the same period a year before (a first winter climbs out of
    its summer, as it did the year before); always otherwise, or where that period is unknown."""
    if ex is None or not ex.year_ago or len(y) <= per_year or np.isnan(y[-1 - per_year]):
        return True
    return worse(direction, float(y[-1] - y[-1 - per_year]))
