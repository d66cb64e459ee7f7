"""The evaluation harness's scoring and baseline rules (benchmarks/detection_scoring.py), on
hand-worked series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.detection_scoring import (
    Change,
    Score,
    any_worse,
    as_good,
    best_baseline,
    collapse,
    cusum,
    ma3_vs_min12,
    score,
    tabular_cusum,
    z3_trailing12,
)


def test_consecutive_alarm_periods_are_one_alarm_at_the_first_after_the_warm_up() -> None:
    flags = np.zeros(22, dtype=bool)
    flags[[5, 11, 12, 13, 15, 18, 19, 20]] = True
    # 5 is in the warm-up (0..11): gone. 11 is too, so the run 11-13 starts at 12, the first
    # judged period. Then 15 alone, and the run 18-20 once, at 18.
    assert collapse(flags) == [12, 15, 18]
    assert collapse(flags, warmup=0) == [5, 11, 15, 18]


def test_recall_lag_and_false_alarms_per_stable_year() -> None:
    changes = [
        Change("recession", True, turning_point=20, episode=(18, 25)),
        # Its recall window 38..41 runs past the last period (39): not scored for recall,
        # but its window still keeps alarms in 36..39 from counting as false.
        Change("late", True, turning_point=38, episode=(36, 39)),
        # An improvement is no turning point, and its window exempts nothing.
        Change("policy", False, turning_point=30, episode=(30, 32)),
    ]
    s = score([14, 19, 23, 30, 37], changes, n=40, per_year=4)
    # Turning point 20: alarms 19 and 23 start within 18..23 (episode start .. tp + 3):
    # detected. The first alarm in its window 18..25 is 19: a lead of one period.
    assert (s.turning_points, s.detected, s.lags) == (1, 1, [-1])
    # Outside the windows 18..25 and 36..39: 14 and 30.
    assert s.false_alarms == 2
    # Judged periods 12..39 are 28; 8 + 4 are inside windows; 16 stable quarters = 4 years.
    assert s.stable_years == 4.0
    assert s.false_per_year == 0.5
    assert s.alarms == 5
    assert s.recall == 1.0


def test_an_alarm_in_the_episode_but_past_three_periods_is_a_lag_not_a_detection() -> None:
    shift = [Change("shift", True, 20, (19, 30))]
    s = score([25], shift, n=40, per_year=4)
    assert (s.detected, s.turning_points, s.lags, s.false_alarms) == (0, 1, [5], 0)
    # Within 3 periods: 20 + 3 = 23 is the last that counts.
    assert score([23], shift, n=40, per_year=4).detected == 1
    assert score([24], shift, n=40, per_year=4).detected == 0
    # A turning point inside the warm-up (0..11) is not scored at all.
    early = score([], [Change("early", True, 10, (9, 13))], n=40, per_year=4)
    assert early.turning_points == 0 and math.isnan(early.recall)


def test_any_move_the_wrong_way() -> None:
    assert any_worse(np.array([1.0, 2.0, 2.0, 1.0, 3.0])).tolist() == [
        False, True, False, False, True,
    ]  # fmt: skip


ALTERNATING = np.array([0.0, 1.0] * 6)  # mean 0.5, sd sqrt(12 * 0.25 / 11) = 0.5222


def test_z_against_the_trailing_twelve() -> None:
    # (2.1 - 0.5) / 0.5222 = 3.06: an alarm; (2.0 - 0.5) / 0.5222 = 2.87: none.
    assert z3_trailing12(np.append(ALTERNATING, 2.1))[12]
    assert not z3_trailing12(np.append(ALTERNATING, 2.0))[12]
    assert not z3_trailing12(np.append(ALTERNATING, 2.1))[:12].any()  # no history: no alarm


def test_cusum_accumulates_z_less_half_and_alarms_past_five() -> None:
    # z = (1.5 - 0.5) / 0.5222 = 1.915: S = 1.415, under h = 5.
    assert not cusum(np.append(ALTERNATING, 1.5))[12]
    # z = 9.5 / 0.5222 = 18.2: S = 17.7 > 5.
    assert cusum(np.append(ALTERNATING, 10.0))[12]


def test_tabular_cusum_with_k_half_and_h_five() -> None:
    # z = 1 each period adds 1 - 0.5 = 0.5: S = 0.5, 1.0, ..., 5.0 after ten (not past 5),
    # 5.5 at the eleventh (index 10): an alarm, and S restarts; ten more to the next.
    z = np.ones(22)
    assert np.flatnonzero(tabular_cusum(z)).tolist() == [10, 21]
    # A NaN (no history, no spread) is skipped, not a reset; z = 0.5 never accumulates.
    assert np.flatnonzero(tabular_cusum(np.array([np.nan, *[1.0] * 11]))).tolist() == [11]
    assert not tabular_cusum(np.full(50, 0.5)).any()


def test_three_period_average_against_its_twelve_period_low() -> None:
    y = np.array([0.0, 1.0] * 7)  # y[13] = 1; moving averages alternate 1/3 and 2/3
    # At t = 14 the trailing 12 changes alternate -1, +1: median 0, MAD 1, robust sd 1.4826,
    # threshold 3 x 1.4826 = 4.448. MA = (0 + 1 + y14) / 3 against the low 1/3.
    assert not ma3_vs_min12(np.append(y, 13.0))[14]  # 14/3 - 1/3 = 4.333
    assert ma3_vs_min12(np.append(y, 14.0))[14]  # 15/3 - 1/3 = 4.667


def _score(recall: float, fa: float) -> Score:
    # 10 turning points and 10 stable years, so recall and false alarms per year are exact.
    return Score(10, round(recall * 10), [], round(fa * 10), 10.0, 0)


@pytest.mark.parametrize(
    ("pipeline", "other", "expected"),
    [
        ((0.9, 0.1), (0.9, 0.1), True),  # ties are as good
        ((1.0, 0.0), (0.9, 0.1), True),
        ((1.0, 0.2), (0.9, 0.1), False),  # better recall, more false alarms: not at once
        ((0.8, 0.0), (0.9, 0.1), False),
    ],
)
def test_as_good_on_both_numbers_at_once(
    pipeline: tuple[float, float], other: tuple[float, float], expected: bool
) -> None:
    assert as_good(_score(*pipeline), _score(*other)) is expected


def test_the_best_baseline_has_the_highest_recall_then_fewest_false_alarms() -> None:
    scores = {
        "pipeline": _score(1.0, 0.0),
        "any_worse": _score(1.0, 0.9),
        "cusum": _score(1.0, 0.2),
        "z3_trailing12": _score(0.5, 0.0),
    }
    assert best_baseline(scores) == "cusum"
