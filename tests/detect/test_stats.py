"""The statistics of detection, by hand: expectations, the over-dispersion-aware scale, the
CUSUM and its run lengths, and verdicts that do not depend on the unit a partner counts in."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from ci_pipeline import detect
from ci_pipeline.detect import cusum, cusum_arl, cusum_p, expectation, predictions, step_p, tails
from ci_pipeline.detect.baseline import without_episodes
from ci_pipeline.detect.drift import drift
from ci_pipeline.detect.stats import CLIP, CUSUM_K, Expectation, _nanmedian, pooled_scale
from ci_pipeline.model.initiative import Direction, Initiative, Unit
from ci_pipeline.model.periods import parse_period
from tests.detect.test_detect import LFP, Q4, frame, series, with_measure

NAN = math.nan
HIGHER = Direction.higher_is_better


def test_each_model_predicts_from_the_periods_before_only() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    got = predictions(y, per_year=1)
    # the period before
    assert got["previous"].tolist() == pytest.approx([NAN, 1, 2, 3, 4], nan_ok=True)
    # the median of the periods before, from two of them on: (1+2)/2, median(1,2,3), ...
    assert got["usual"].tolist() == pytest.approx([NAN, NAN, 1.5, 2, 2.5], nan_ok=True)
    assert "seasonal_usual" not in got  # a yearly series has no seasons


def test_the_seasonal_expectation_is_the_same_quarter_of_earlier_years() -> None:
    # Q4 is 10 higher every year; six years. The seasonal models predict from the third year
    # on (two earlier years): 10 baseline quarters (the latest 5 left out) to compare them with
    # the usual level on, 8 being needed.
    year = [10.0, 10.0, 10.0, 20.0]
    y = np.array(year * 6)
    got = predictions(y, per_year=4)
    # the sixth year's Q4 (index 23): median of the Q4s of up to five years before = 20
    assert got["seasonal_usual"][23] == pytest.approx(20.0)
    # the period before (Q3, 10) plus the usual move into Q4 (+10)
    assert got["seasonal_previous"][23] == pytest.approx(20.0)
    assert np.isnan(got["seasonal_usual"][7])  # one earlier year is not enough
    # With a little noise (a series that never moves has no scale), a Q4 of 12 is expected
    # near 20 by the seasons: far below them.
    y = y + np.random.default_rng(3).normal(0, 0.2, 24)
    y[23] = 12.0
    ex = expectation(y, unit=Unit.amount, per_year=4)
    assert ex is not None
    assert ex.model.startswith("seasonal")
    assert ex.expected == pytest.approx(20.0, abs=0.3)
    assert step_p(ex, HIGHER) < 0.001


def test_a_series_that_wanders_is_expected_at_its_last_value() -> None:
    """A random walk: each value is the last plus noise. The usual level lags it; the period
    before predicts it better (its errors are the walk's steps)."""
    rng = np.random.default_rng(3)
    y = 50 + np.cumsum(rng.normal(0, 1, 40))
    ex = expectation(y, unit=Unit.amount, per_year=1)
    assert ex is not None
    assert ex.model == "previous"
    assert ex.expected == pytest.approx(y[-2])


def test_the_scale_is_the_baseline_s_own() -> None:
    """A series swinging 10, 12, 10 ...: the usual level (11 from the third period on) errs by
    -1 or +2 after the first ones, the period before by ±2 always, so the usual level is kept.
    Its eleven past errors lose the latest three to the baseline (up to five are left out, as
    many as leave eight); their mean, 0.5, is no significant trend (t = 0.88), so the scale is
    their root mean square, sqrt((1 + 4) / 2), on eight degrees of freedom."""
    y = np.array([10.0, 12.0] * 6 + [10.0])
    ex = expectation(y, unit=Unit.amount, per_year=1)
    assert ex is not None
    assert ex.model == "usual"
    assert ex.baseline.tolist() == [-1.0, 2.0] * 4
    assert ex.df == 8
    assert ex.scale == pytest.approx(math.sqrt(2.5))


def test_a_significant_trend_corrects_the_usual_level() -> None:
    """A series rising 0.2 a period under noise of ±1 (so the usual level, not the period
    before, predicts it best): the median of the twelve periods before lags the trend, here
    4.5 for the last period, whose trend value is 5.8. The baseline errors' mean is far from 0
    (Student's t), so the usual level is corrected by their median (+0.8 here: the expectation
    5.3), and the correction costs a degree of freedom."""
    y = 0.2 * np.arange(30) + np.tile([1.0, -1.0], 15)
    assert predictions(y, per_year=1)["usual"][-1] == pytest.approx(4.5)
    ex = expectation(y, unit=Unit.amount, per_year=1)
    assert ex is not None
    assert ex.model == "usual"
    assert ex.expected == pytest.approx(5.3)
    assert ex.df == len(ex.baseline) - 1


def test_a_series_falling_steadily_is_expected_to_go_on_falling() -> None:
    """A rate reported to a tenth that falls a tenth a period, pausing every fourth: the period
    before predicts it (its errors are the moves: -0.1, 0, -0.2, -0.1, ...), and their mean is
    far from 0, so the prediction is corrected by their median, -0.1. A rise of 0.2 is then
    0.3 above what was expected: 0.3 / 0.0739 = 4.06 standard deviations of the corrected
    errors (twelve of 0.1 and eleven of 0 among 23, root mean square 0.0722, times
    sqrt(23/22) for the degree of freedom the correction costs) — a step, where against "no
    move" it would be 0.2 / 0.12."""
    y = np.round(10 - 0.1 * np.arange(30) + np.tile([0.0, 0.0, 0.1, 0.0], 8)[:30], 1)
    ex = expectation(y, unit=Unit.amount, per_year=1)
    assert ex is not None
    assert ex.model == "previous"
    assert ex.expected == pytest.approx(y[-2] - 0.1)
    assert ex.df == 22
    assert ex.scale == pytest.approx(math.sqrt(12 * 0.01 / 23) * math.sqrt(23 / 22))
    y[-1] = y[-2] + 0.2
    ex = expectation(y, unit=Unit.amount, per_year=1)
    assert ex is not None
    assert ex.z == pytest.approx(0.3 / (math.sqrt(12 * 0.01 / 23) * math.sqrt(23 / 22)))
    assert step_p(ex, Direction.lower_is_better) < 0.001


def test_a_past_episode_is_left_out_of_the_baseline() -> None:
    """Quarterly moves of a rate over six years, a recession in the middle (+0.2 .. +0.7) and
    calm years around it. Median 0, median absolute deviation 0.2, so a robust SD of 0.2965;
    the upward CUSUM (k = 0.5) of the errors in those SDs runs 0.17, 0.69, 1.54, 2.05, 3.23,
    5.09, 6.95, 8.82, 8.99 from the second error to the tenth, its peak, past the limit of 8:
    those nine are the episode. The first and the fifteen after are the baseline."""
    recession = [0.1, 0.2, 0.3, 0.4, 0.3, 0.5, 0.7, 0.7, 0.7, 0.2]
    calm = [-0.1, -0.2, -0.2, -0.1, -0.1, 0.0, 0.2, 0.0, -0.1, 0.0, -0.1, -0.1, -0.1, -0.2]
    errors = np.array([*recession, *calm])
    assert without_episodes(errors, k=CUSUM_K, clip=CLIP).tolist() == [0.1, *errors[10:].tolist()]
    # A stable series keeps its whole baseline: each side's CUSUM crosses the limit once in
    # about 19,000 periods, so about 2 x 24 / 19,000 = 0.25% of baselines of 24 errors lose
    # any (6 of these 2,000 do; the robust SD is itself estimated): at most 1%.
    rng = np.random.default_rng(11)
    lost = sum(
        len(without_episodes(rng.normal(0, 1, 24), k=CUSUM_K, clip=CLIP)) < 24 for _ in range(2000)
    )
    assert lost <= 20
    # Where fewer than eight errors would remain, the baseline stays whole.
    assert len(without_episodes(errors[:12], k=CUSUM_K, clip=CLIP)) == 12


def test_the_scale_is_never_below_the_figures_rounding() -> None:
    """A rate reported to a tenth that has fallen exactly a tenth every period: corrected for
    that fall, its errors are all 0 (up to floating point) — they show how it was rounded. The
    scale is the rounding noise of a move instead, 0.1 / sqrt(6) = 0.0408, so a rise of a tenth
    (0.2 above the expected fall) is 4.90 standard deviations, not billions."""
    y = np.round(10 - 0.1 * np.arange(30), 1)
    y[-1] = y[-2] + 0.1
    ex = expectation(y, unit=Unit.amount, per_year=1)
    assert ex is not None
    assert ex.scale == pytest.approx(0.1 / math.sqrt(6), rel=1e-6)
    assert ex.z == pytest.approx(0.2 / (0.1 / math.sqrt(6)), rel=1e-6)


def test_a_turn_two_or_three_moves_old_is_not_diluted() -> None:
    """The drift of a wandering series: the last five moves, in standard deviations, are -1,
    -1, 2.5, 2.5, 2.5 (a rise that began three periods ago). The means of the last m moves,
    times sqrt(m): m = 2: 5 / 1.414 = 3.54; m = 3: 7.5 / 1.732 = 4.33; m = 4: 6.5 / 2 = 3.25;
    m = 5: 5.5 / 2.236 = 2.46. The strongest is the last three, p = 4 x P(Z > 4.33) (four
    windows) = 3.0e-5, where the mean of all five alone gives p = 0.0070."""
    moves = np.array([-1.0, -1.0, 2.5, 2.5, 2.5])
    ex = Expectation("previous", 0.0, moves, scale=1.0, df=0, sampling=True)
    values = np.array([5.0, 4.9, 4.8, 5.0, 5.3, 5.6])
    d = drift(values, ex, Direction.lower_is_better)
    assert d.statistic == pytest.approx(7.5 / math.sqrt(3))
    assert d.p_value == pytest.approx(4 * stats.norm.sf(7.5 / math.sqrt(3)))
    assert d.total_change == pytest.approx(5.6 - 4.8)  # over the last three moves
    assert "last 3 moves" in d.test("")
    assert stats.norm.sf(5.5 / math.sqrt(5)) == pytest.approx(0.0070, abs=1e-4)
    # An unknown move three periods back: only the windows of the last 2 moves count (one).
    gap = Expectation("previous", 0.0, np.array([-1.0, -1.0, np.nan, 2.5, 2.5]), 1.0, 0, True)
    d = drift(values, gap, Direction.lower_is_better)
    assert d.statistic == pytest.approx(5 / math.sqrt(2))
    assert d.p_value == pytest.approx(stats.norm.sf(5 / math.sqrt(2)))


# A monthly count with winters: 100 in spring to autumn, 160 in December to February, with a
# little noise so that the history has a scale.
WINTER = np.array([160.0, 160, 100, 100, 100, 100, 100, 100, 100, 100, 100, 160])
NOISE = np.tile([3.0, -3.0], 6)


def test_a_first_winter_is_judged_against_the_last_one_too() -> None:
    """Thirteen months, one year of history: no seasonal model yet (two years are needed). The
    usual level of the twelve months before is 100 (median), so January's 163 errs by +63
    against it; the January before was 163 too (160 + 3), an error of 0: nearer. Judged
    against the nearer of the two, the first winter is no step."""
    y = np.concatenate([WINTER + NOISE, [163.0]])
    ex = expectation(y, unit=Unit.amount, per_year=12)
    assert ex is not None
    assert ex.model == "usual" and ex.year_ago
    assert ex.expected == pytest.approx(163.0)  # the January before
    assert ex.z == pytest.approx(0.0)
    # A January far above both the usual level and the January before is still a step.
    y[-1] = 260.0
    ex = expectation(y, unit=Unit.amount, per_year=12)
    assert ex is not None
    assert ex.expected == pytest.approx(163.0) and step_p(ex, HIGHER) > 0.999


def test_a_year_before_that_was_ordinary_is_no_season() -> None:
    """The same thirteen months without the winter: the January before (103) stood out from
    the usual level (100) by one standard deviation of the history's errors (they are ±3),
    not the two a season needs, so a January of 130 is judged against the usual level alone: a
    step, though it is nearer the January before."""
    y = np.concatenate([100.0 + NOISE, [130.0]])
    ex = expectation(y, unit=Unit.amount, per_year=12)
    assert ex is not None
    assert ex.model == "usual" and ex.year_ago
    assert ex.expected == pytest.approx(100.0)
    assert step_p(ex, Direction.lower_is_better) < 0.001


def test_the_year_before_is_not_consulted_once_seasons_are_known_or_declared_absent() -> None:
    y = np.concatenate([WINTER + NOISE, [163.0]])
    ex = expectation(y, unit=Unit.amount, per_year=12, seasonal=False)
    assert ex is not None
    # The usual level (a summer-like level, about 100; the January before is not consulted).
    assert not ex.year_ago and ex.expected < 110
    # Three years of a smooth season: two years show the seasons (a model that predicts them
    # is chosen where one does), so the year before is not consulted on its own.
    t = np.arange(37)
    y = 100 + 30 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(5).normal(0, 2, 37)
    ex = expectation(y, unit=Unit.amount, per_year=12)
    assert ex is not None
    assert not ex.year_ago


def test_step_p_is_student_t_on_the_history_s_degrees_of_freedom() -> None:
    ex = Expectation("usual", 10.0, np.array([1.0, -1.0, 1.0, -1.0, -4.0]), 1.0, 4, False)
    assert ex.z == -4.0
    assert step_p(ex, HIGHER) == pytest.approx(stats.t.cdf(-4.0, 4))
    assert step_p(ex, Direction.lower_is_better) == pytest.approx(stats.t.sf(-4.0, 4))
    sampling = Expectation("usual", 10.0, np.array([0.0, -4.0]), math.sqrt(2), 0, True)
    assert step_p(sampling, HIGHER) == pytest.approx(stats.norm.cdf(-4 / math.sqrt(2)))


def test_a_series_scale_is_moderated_by_its_measure_s_other_series() -> None:
    """limma's moderated variance: s² = (d0 s0² + d s²) / (d0 + d) = (10·4 + 5·1) / 15 = 3."""
    own = Expectation("usual", 0.3, np.zeros(6), 1.0, 5, False)
    got = own.moderated(2.0, 10)
    assert got.scale == pytest.approx(math.sqrt(3.0))
    assert got.df == 15
    # a series with no move of its own takes the measure's scale
    flat = Expectation("usual", 0.3, np.zeros(6), math.sqrt(2), 0, True)
    assert flat.moderated(2.0, 10).scale == pytest.approx(2.0)
    # the prior: the median of the series' own scales, worth their errors less one (at most 10)
    others = [Expectation("usual", 0, np.zeros(4), s, 3, False) for s in (1.0, 2.0, 4.0)]
    assert pooled_scale(others) == (2.0, 8)
    assert pooled_scale(others[:1]) is None  # a lone series is judged on its own history


def test_cusum_by_hand() -> None:
    # S = max(0, S + z - 0.5): 0.5, 1.0, 1.5, 0 (1.5 - 2 - 0.5 < 0), 1.5, 3.0 (clipped at 3:
    # 1.5 + 3 - 0.5 = 4.0, not 1.5 + 5 - 0.5)
    s, start = cusum(np.array([1.0, 1.0, 1.0, -2.0, 2.0, 5.0]))
    assert s == pytest.approx(4.0)
    assert start == 4  # the run began after the zero at index 3
    assert cusum(np.array([0.2, 0.1]))[0] == 0.0


def test_cusum_run_lengths_and_p() -> None:
    # Siegmund: ARL0 = (exp(2kb) - 2kb - 1) / (2k²), b = h + 1.166; k = 0.5, h = 4:
    # (e^5.166 - 5.166 - 1) / 0.5
    assert cusum_arl(4.0) == pytest.approx((math.exp(5.166) - 6.166) / 0.5)
    # the stationary tail: exp(-(s + 0.583)) for k = 0.5
    assert cusum_p(4.0) == pytest.approx(math.exp(-4.583))
    assert cusum_p(0.0) == 1.0


def test_cusum_in_control_matches_its_stated_false_alarm_rate() -> None:
    """An independent check of cusum_p by simulation: the share of stable periods whose
    CUSUM of N(0, 1) errors (clipped, as the detector does) is at least the limit for
    alpha/2 = 0.005 stays at or below it (clipping only lowers it)."""
    rng = np.random.default_rng(2026)
    z = rng.normal(0, 1, 400_000)
    h = -math.log(0.005) - 0.583  # 4.72
    s, above = 0.0, 0
    for zi in np.clip(z, -3, 3):
        s = max(0.0, s + zi - 0.5)
        above += s >= h
    assert above / len(z) <= 0.005 * 1.1


def _rates(y: np.ndarray, den: float) -> list[float]:
    return list(np.round(y * den) / den)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_persons_or_thousands_of_persons_get_the_same_verdicts(
    initiative: Initiative, seed: int
) -> None:
    """A national rate wandering by 0.1-0.3 points a period, then a jump of about a point: the
    same numerators and denominators in persons and in thousands of persons give the same
    findings (the scale comes from the series, not from the denominator)."""
    ini = with_measure(initiative, LFP, alert_min_change=0.0)
    rng = np.random.default_rng(seed)
    p = 0.30 + np.cumsum(rng.normal(0, 0.002, 24))
    p[-1] -= 0.012
    rows_persons = series(ini, LFP, list(p), denominator=3_000_000, geo="nahf")
    rows_thousands = series(ini, LFP, list(p), denominator=3_000, geo="nahf")
    judged = {LFP: parse_period(Q4)}
    found = [
        detect.detect(frame(rows), ini, judged).select("kind", "value", "reference", "p_value")
        for rows in (rows_persons, rows_thousands)
    ]
    assert found[0]["kind"].to_list() == found[1]["kind"].to_list()
    assert found[0]["p_value"].to_list() == pytest.approx(found[1]["p_value"].to_list())
    assert not found[0].is_empty()  # the jump is found in both: the check is not vacuous


def test_a_large_denominator_alone_does_not_make_a_move_significant(
    initiative: Initiative,
) -> None:
    """With 100 million in the denominator a 0.4-point move is 80 binomial standard errors,
    but this series moves by about 0.5 points a quarter anyway: no finding. Four points is."""
    ini = with_measure(initiative, LFP, alert_min_change=0.0)
    rng = np.random.default_rng(4)
    p = list(0.30 + rng.normal(0, 0.005, 23))
    judged = {LFP: parse_period(Q4)}
    for last, flagged in ((p[-1] - 0.004, False), (0.26, True)):
        rows = series(ini, LFP, [*p, last], denominator=1e8)
        found = detect.detect(frame(rows), ini, judged)
        assert (not found.is_empty()) is flagged, found["message"].to_list()


def test_simulated_false_alarms_stay_within_the_bound_at_every_denominator(
    initiative: Initiative,
) -> None:
    """The stated bound: a stable series is flagged in at most 2·alpha of its judged periods
    (alpha = 0.01 is shared by the step, the CUSUM and the moves; the model choice and the trimmed
    scale cost some of the rest). Simulated over-dispersed series — beta-binomial-like level
    noise of 1 point, a random walk of 0.5 points a quarter, seasons of ±3 points — at every
    denominator from 10² to 10⁸; 150 series each, so the check fails when the rate exceeds the
    bound by more than about two binomial standard errors."""
    ini = with_measure(initiative, LFP, alert_min_change=0.0)
    rng = np.random.default_rng(20261130)
    judged = {LFP: parse_period(Q4)}
    periods = 24
    total_flagged, total = 0, 0
    for den in [10.0**e for e in range(2, 9)]:
        rows = []
        for i in range(150):
            if i % 3 == 0:
                p = 0.3 + rng.normal(0, 0.01, periods)
            elif i % 3 == 1:
                p = 0.3 + np.cumsum(rng.normal(0, 0.005, periods))
            else:
                season = 0.03 * np.sin(np.arange(periods) * np.pi / 2)
                p = 0.3 + season + rng.normal(0, 0.005, periods)
            drawn = rng.binomial(int(den), np.clip(p, 0.01, 0.99)) / den
            rows.append(series(ini, LFP, list(drawn), denominator=den, geo=f"g{i}"))
        # judged one series at a time: no run-wide adjustment helps
        flagged = 0
        for part in rows:
            found = detect.detect(frame(part), ini, judged)
            flagged += int(not found.filter(pl.col("kind").is_in(detect.REGRESSIONS)).is_empty())
        rate = flagged / 150
        assert rate <= 0.02 + 2 * math.sqrt(0.02 * 0.98 / 150), (den, rate)
        total_flagged, total = total_flagged + flagged, total + 150
    assert total_flagged / total <= 0.02, total_flagged / total


@pytest.mark.parametrize("seed", range(20))
def test_column_medians_are_numpys_nanmedian(seed: int) -> None:
    """The one-sort median against numpy's own, on stacks with NaN scattered through them,
    whole columns of NaN, ties and odd and even counts: the same numbers, bit for bit."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 9)), int(rng.integers(1, 30))
    stack = np.round(rng.normal(size=(rows, cols)) * 10, int(rng.integers(0, 3)))
    stack[rng.random((rows, cols)) < 0.3] = np.nan
    stack[:, 0] = np.nan  # a column with nothing
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(stack, axis=0)
    np.testing.assert_array_equal(_nanmedian(stack), expected)


def test_the_tails_are_scipy_stats_own_numbers() -> None:
    """The tail functions detection calls per series are scipy.stats' norm and t, bit for bit,
    across the body and far tails, infinities and NaN, and degrees of freedom from 1 to 60."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(scale=3, size=200), [0.0, -40.0, 40.0, np.inf, -np.inf, np.nan]])
    q = np.concatenate([rng.random(200), [0.0, 1.0, 1e-300, 1 - 1e-16, np.nan]])
    np.testing.assert_array_equal(tails.normal_sf(x), stats.norm.sf(x))
    np.testing.assert_array_equal(tails.normal_ppf(q), stats.norm.ppf(q))
    for df in (1.0, 2.0, 3.5, 7.0, 23.0, 60.0):
        np.testing.assert_array_equal(tails.t_cdf(x, df), stats.t.cdf(x, df))
        assert [tails.t_sf(float(v), df) for v in x[:20]] == list(stats.t.sf(x[:20], df))
        assert [tails.t_ppf(float(v), df) for v in q[:20]] == list(stats.t.ppf(q[:20], df))
    assert tails.normal_sf(1.5) == float(stats.norm.sf(1.5))
