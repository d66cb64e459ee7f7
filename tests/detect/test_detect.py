"""Regression detection on synthetic series whose answers are known by hand."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

from benchmarks.evaluate_detection import Series, indicator_frame, write_initiative
from ci_pipeline import detect
from ci_pipeline.detect import (
    benjamini_hochberg,
    due_date,
    judged_periods,
    mann_kendall,
    missing_data,
    worse,
)
from ci_pipeline.detect.detectors import SERIES, _series_tests, series_rows
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import Direction, Initiative, Measure, Unit
from ci_pipeline.model.periods import Period, parse_period, shift

HIGHER = Direction.higher_is_better
LOWER = Direction.lower_is_better
LFP = "arab-women-lfp"  # proportion, quarterly, higher is better, age_band breakdown
WAGE = "below-min-wage-share"  # proportion, quarterly, lower is better, sex breakdown
STUDENTS = "starter-students-trained"  # count, monthly, min_history 6
MONEY = "new-resources-nis"  # amount, quarterly, cluster only, no baseline
SCORE = "fsg-vision-work-aligns"  # score 1-5, yearly, min_history 2
KURKUM = "kurkum-women-employed"  # count, monthly, reported by kurkum only
CLUSTER = "beit-hakerem"
Q4 = "2025-Q4"

INDICATOR_SCHEMA = frames.STORED_INDICATOR_SCHEMA  # the stored indicator table's columns


def phi(z: float) -> float:
    return NormalDist().cdf(z)


def binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), by hand."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


# --- building indicator frames ------------------------------------------------------------------


def series(
    initiative: Initiative,
    measure_id: str,
    values: list[float],
    *,
    geo: str = "nahf",
    end: str | None = None,
    disaggregation: str | None = None,
    denominator: float = 1000.0,
    reported: list[int] | None = None,
    expected: int | None = None,
    suppressed: dict[int, bool] | None = None,
) -> list[dict[str, Any]]:
    """Indicator rows of one series, oldest first, ending at ``end`` (the judged period)."""
    m = initiative.measures[measure_id]
    last = parse_period(end or {"month": "2025-12", "quarter": Q4, "year": "2025"}[m.periodicity])
    n = len(values)
    rows = []
    for i, value in enumerate(values):
        partners = reported[i] if reported else 1
        proportion = str(m.unit) == "proportion"
        rows.append(
            {
                "measure_id": measure_id,
                "geo_code": geo,
                "period": shift(last, i - n + 1).label,
                "disaggregation": disaggregation or m.total_key,
                "value": value,
                "numerator": value * denominator if proportion else None,
                "denominator": denominator if proportion or str(m.unit) == "score" else None,
                "partners_reported": partners,
                "partners_expected": expected or max(partners, 1),
                "coverage": partners / (expected or max(partners, 1)),
                "suppressed": bool((suppressed or {}).get(i - n + 1, False)),
                "suppression": "primary" if (suppressed or {}).get(i - n + 1) else None,
                "lineage": "1",
            }
        )
    return rows


def frame(*parts: list[dict[str, Any]]) -> pl.DataFrame:
    rows = [row for part in parts for row in part]
    return pl.DataFrame(rows, schema=INDICATOR_SCHEMA, orient="row")


def judged(initiative: Initiative, *measure_ids: str) -> dict[str, Period]:
    default = {"month": "2025-12", "quarter": Q4, "year": "2025"}
    return {m: parse_period(default[initiative.measures[m].periodicity]) for m in measure_ids}


def run(initiative: Initiative, indicators: pl.DataFrame, *measure_ids: str) -> pl.DataFrame:
    return detect.detect(indicators, initiative, judged(initiative, *measure_ids))


def kinds(findings: pl.DataFrame) -> list[tuple[str, str, str]]:
    return sorted(findings.select("kind", "geo_code", "disaggregation").iter_rows())


def with_measure(initiative: Initiative, measure_id: str, **changes: Any) -> Initiative:
    """The initiative with one measure's fields (``alert`` fields as ``alert_<name>``) changed."""
    m = initiative.measures[measure_id]
    alert = {k.removeprefix("alert_"): v for k, v in changes.items() if k.startswith("alert_")}
    fields = {k: v for k, v in changes.items() if not k.startswith("alert_")}
    if alert:
        fields["alert"] = m.alert.model_copy(update=alert)
    measures = {**initiative.measures, measure_id: m.model_copy(update=fields)}
    return initiative.model_copy(update={"measures": measures})


FLAT = [0.312] * 7  # seven quarters of history at 31.2%
STEP = 0.25  # from FLAT: z = -3.0 against sampling noise, p = 0.0014 (doubled: 0.0028)


# --- the pure tests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "z", "slope"),
    [
        # monotone over six periods: S = 15, var = 6*5*17/18, z = (15 - 1) / sqrt(var)
        ([1, 3, 5, 7, 9, 11], 14 / math.sqrt(85 / 3), 2.0),
        ([11, 9, 7, 5, 3, 1], -14 / math.sqrt(85 / 3), -2.0),
        # one discordant pair: S = 13; pairwise slopes' median is 1
        ([1, 2, 4, 3, 5, 6], 12 / math.sqrt(85 / 3), 1.0),
        # noise: S = 0; slopes -3 -0.5 -0.5 1/3 2 2, median -1/12
        ([2, 4, 1, 3], 0.0, -1 / 12),
        # S = 1 is within the continuity correction; slopes 2, 0.5, -1
        ([1, 3, 2], 0.0, 0.5),
        # flat: no trend at all
        ([5, 5, 5, 5, 5, 5], 0.0, 0.0),
    ],
)
def test_mann_kendall(values: list[float], z: float, slope: float) -> None:
    got_z, got_slope = mann_kendall(np.array(values, dtype=float))
    assert got_z == pytest.approx(z)
    assert got_slope == pytest.approx(slope)


def test_mann_kendall_monotone_run_of_six_is_the_only_way_below_one_percent() -> None:
    """What the unadjusted drift test relies on: at six periods only S = 15 reaches p < 0.01."""
    assert 1 - phi(mann_kendall(np.arange(6.0))[0]) < 0.01
    assert 1 - phi(mann_kendall(np.array([0, 1, 3, 2, 4, 5.0]))[0]) > 0.01


@pytest.mark.parametrize(
    ("p", "q"),
    [
        # ranks 1..4 of 0.005 0.01 0.03 0.04: p*4/rank = .02 .02 .04 .04
        ([0.01, 0.04, 0.03, 0.005], [0.02, 0.04, 0.04, 0.02]),
        # the step-up: 0.02*3/1 = .06 is lowered to the next rank's .03*3/2 = .045
        ([0.02, 0.03, 0.9], [0.045, 0.045, 0.9]),
        ([0.5, 0.8], [0.8, 0.8]),
        ([0.6], [0.6]),
        ([], []),
    ],
)
def test_benjamini_hochberg_by_hand(p: list[float], q: list[float]) -> None:
    assert benjamini_hochberg(np.array(p, dtype=float)).tolist() == pytest.approx(q)


def test_benjamini_hochberg_agrees_with_scipy() -> None:
    p = np.random.default_rng(7).uniform(0, 0.2, 50) ** 2
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p))


@pytest.mark.parametrize(
    ("direction", "change", "bad"),
    [
        (HIGHER, -0.1, True),
        (HIGHER, 0.1, False),
        (LOWER, 0.1, True),
        (LOWER, -0.1, False),
        (HIGHER, 0.0, False),
        (LOWER, 0.0, False),
    ],
)
def test_worse(direction: Direction, change: float, bad: bool) -> None:
    assert worse(direction, change) is bad


# --- steps --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure_id", "after", "flagged"),
    [
        (LFP, STEP, True),  # higher is better: a fall is a regression
        (LFP, 0.374, False),  # the same step, up
        (WAGE, 0.374, True),  # lower is better: a rise is a regression
        (WAGE, STEP, False),
    ],
)
def test_a_step_counts_only_in_the_bad_direction(
    initiative: Initiative, measure_id: str, after: float, flagged: bool
) -> None:
    found = run(initiative, frame(series(initiative, measure_id, [*FLAT, after])), measure_id)
    assert found["kind"].to_list() == (["step"] if flagged else [])


@pytest.mark.parametrize(
    ("measure_id", "level", "fall", "min_history"),
    [(LFP, 0.312, 0.26, 4), (STUDENTS, 40.0, 10.0, 6), (MONEY, 1e6, 2e5, 4), (SCORE, 4.0, 3.0, 2)],
)
@pytest.mark.parametrize("extra", [-1, 0])
def test_a_series_shorter_than_min_history_is_not_judged(
    initiative: Initiative,
    measure_id: str,
    level: float,
    fall: float,
    min_history: int,
    extra: int,
) -> None:
    assert initiative.measures[measure_id].alert.min_history == min_history
    wobble = [level * (1 + 0.001 * ((i % 3) - 1)) for i in range(min_history + extra)]
    geo = CLUSTER if measure_id in (MONEY, SCORE) else "nahf"
    found = run(
        initiative, frame(series(initiative, measure_id, [*wobble, fall], geo=geo)), measure_id
    )
    assert found["kind"].to_list() == ([] if extra < 0 else ["step"])


@pytest.mark.parametrize(("judged_hidden", "previous_hidden"), [(True, False), (False, True)])
def test_suppressed_cells_are_not_judged(
    initiative: Initiative, judged_hidden: bool, previous_hidden: bool
) -> None:
    rows = series(
        initiative, LFP, [*FLAT, STEP], suppressed={0: judged_hidden, -1: previous_hidden}
    )
    found = run(initiative, frame(rows), LFP)
    if judged_hidden:
        assert found.is_empty()
    else:  # judged against the usual level of the periods that are shown, never the hidden one
        assert found["reference_period"].to_list() == ["the usual level of the 6 quarters before"]
    assert not run(initiative, frame(series(initiative, LFP, [*FLAT, STEP])), LFP).is_empty()


def test_step_p_values_are_adjusted_across_the_run(initiative: Initiative) -> None:
    """A step at p ~ 0.005 is an alert alone, and not among 19 quiet series (q ~ 0.1)."""
    step = series(initiative, LFP, [*FLAT, STEP])
    alone = run(initiative, frame(step), LFP)
    assert alone["kind"].to_list() == ["step"]
    quiet = [series(initiative, LFP, [*FLAT, 0.312], geo=f"x{i}") for i in range(19)]
    assert run(initiative, frame(step, *quiet), LFP).is_empty()


# --- drift --------------------------------------------------------------------------------------


def test_drift_is_found_on_a_monotone_slide_no_step_flags(initiative: Initiative) -> None:
    """One point a quarter for six quarters: each step is under min_change (2 points), the
    run is perfectly monotone (p = 0.0043) and the total change is 5 points."""
    # Before the window the series swung by 6 points a quarter, so a point a quarter is well
    # within its usual moves: neither a step nor a sustained change (the CUSUM's errors of
    # about a third of a standard deviation stay under its allowance of half of one).
    values = [0.37, 0.43, 0.37, 0.43, 0.40, 0.41, 0.42, 0.43, 0.44, 0.45]
    found = run(initiative, frame(series(initiative, WAGE, values, denominator=100_000)), WAGE)
    assert kinds(found) == [("drift", "nahf", "sex=total")]
    f = found.row(0, named=True)
    assert (f["reference"], f["reference_period"], f["value"]) == (0.40, "2024-Q3", 0.45)
    assert f["p_value"] == pytest.approx(1 - phi(14 / math.sqrt(85 / 3)))  # 0.0043: 1 in 230
    assert f["message"] == (
        "Employed earning below the minimum wage in Nahf has worsened steadily from 40.0% in "
        "2024-Q3 to 45.0% in 2025-Q4, over 5 quarters (a run this steady is seen in about 1 of "
        "230 comparable periods). Evidence: Mann–Kendall trend test over 6 periods, z = 2.63; "
        "p = 0.0043; 1 of 1 partners reported"
    )


def test_a_slide_after_a_flat_history_is_judged_against_the_level_before_it(
    initiative: Initiative,
) -> None:
    """The same slide after three flat years. The expectation comes from the baseline before
    the latest periods (Farrington's pastWeeksNotIncluded), so the slide is not learnt as
    normal: 45% is far above the 40% of every quarter before (judged against sampling noise,
    the history never moved). The CUSUM and the drift find it too and fold into the step."""
    values = [0.40] * 12 + [0.41, 0.42, 0.43, 0.44, 0.45]
    found = run(initiative, frame(series(initiative, WAGE, values, denominator=100_000)), WAGE)
    assert kinds(found) == [("step", "nahf", "sex=total")]
    f = found.row(0, named=True)
    assert (f["reference"], f["value"]) == (0.40, 0.45)
    assert f["reference_period"] == "the usual level of the 12 quarters before"
    assert f["folded"] == 2  # the sustained change and the drift of the same series
    assert f["message"].startswith(
        "Employed earning below the minimum wage in Nahf rose to 45.0% in 2025-Q4 against "
        "40.0% expected from the usual level of the 12 quarters before"
    )


def test_a_wandering_series_falling_period_after_period_is_a_sustained_change(
    initiative: Initiative,
) -> None:
    """A series that wanders (best predicted by its period before: a random walk of 10,000 a
    quarter) then falls by 15,000 five quarters running: each fall is 1.8 standard deviations
    of its usual moves at most, not a step at alpha/2, but the CUSUM adds them up (about 1 a
    quarter over its allowance of half a standard deviation)."""
    ini = with_measure(initiative, MONEY, alert_min_change=0.0)
    walk = 1e6 + np.cumsum(np.random.default_rng(3).normal(0, 1e4, 30))
    values = [*walk, *(walk[-1] - 1.5e4 * np.arange(1, 6))]
    ex = detect.expectation(np.array(values), unit=Unit.amount, per_year=4)
    assert ex is not None
    assert ex.model == "previous"
    assert detect.step_p(ex, HIGHER) * 2 > ini.measures[MONEY].alert.alpha  # no step
    found = run(ini, frame(series(ini, MONEY, values, geo=CLUSTER)), MONEY)
    assert kinds(found) == [("sustained", CLUSTER, "total")]
    f = found.row(0, named=True)
    # The CUSUM's run began with the first fall: it is measured from the quarter before.
    assert (f["reference_period"], f["span"]) == ("2024-Q3", 5)
    assert f["reference"] == pytest.approx(walk[-1])
    assert f["message"].startswith(
        "New resources mobilised for the initiative in Beit HaKerem cluster fell from "
    )
    assert "over 5 quarters: a sustained move" in f["message"]


@pytest.mark.parametrize(
    "values",
    [
        [0.40, 0.40, 0.45, 0.44, 0.43, 0.42, 0.41, 0.40],  # improving (lower is better)
        [0.40, 0.40, 0.40, 0.41, 0.43, 0.42, 0.44, 0.45],  # one reversal: S = 13, p = 0.012
        [0.40, 0.40, 0.400, 0.402, 0.404, 0.406, 0.408, 0.41],  # monotone, 1 point in total
    ],
)
def test_no_drift_without_a_monotone_worsening_of_min_change(
    initiative: Initiative, values: list[float]
) -> None:
    found = run(initiative, frame(series(initiative, WAGE, values, denominator=100_000)), WAGE)
    assert found.is_empty()


def test_drift_needs_every_period_of_its_window(initiative: Initiative) -> None:
    values = [0.40, 0.40, 0.40, 0.41, 0.42, 0.43, 0.44, 0.45]
    rows = series(initiative, WAGE, values, denominator=100_000, suppressed={-3: True})
    assert run(initiative, frame(rows), WAGE).is_empty()


# --- off track ----------------------------------------------------------------------------------


# arab-women-lfp: 26% in 2024-Q1 to 40% in 2030-Q4; 2025-Q4 is 21 of 81 months along, so the
# path expects 0.26 + 0.14 * 21/81 = 29.63%, and 10% of the 14-point change is 1.4 points.
LFP_PATH = 0.26 + 0.14 * 21 / 81
# below-min-wage-share: 47% to 35%, expects 0.47 - 0.12 * 21/81 = 43.89%, tolerance 1.2 points
WAGE_PATH = 0.47 - 0.12 * 21 / 81


@pytest.mark.parametrize(
    ("measure_id", "value", "off"),
    [
        (LFP, 0.27, True),
        (LFP, LFP_PATH - 0.0145, True),
        (LFP, LFP_PATH - 0.0135, False),
        (LFP, 0.29, False),
        (LFP, 0.33, False),  # ahead of the path
        (WAGE, 0.46, True),
        (WAGE, WAGE_PATH + 0.0125, True),
        (WAGE, WAGE_PATH + 0.0115, False),
        (WAGE, 0.40, False),
    ],
)
def test_off_track_when_the_cluster_is_behind_the_path_beyond_tolerance(
    initiative: Initiative, measure_id: str, value: float, off: bool
) -> None:
    rows = series(initiative, measure_id, [value] * 8, geo=CLUSTER, denominator=10_000)
    found = run(initiative, frame(rows), measure_id)
    assert found["kind"].to_list() == (["off_track"] if off else [])
    if off:
        f = found.row(0, named=True)
        path = LFP_PATH if measure_id == LFP else WAGE_PATH
        assert f["reference"] == pytest.approx(path)
        assert f["reference_period"] == "path 2024-Q1→2030-Q4"
        m = initiative.measures[measure_id]
        assert m.baseline is not None
        assert f["statistic"] == pytest.approx(
            (value - m.baseline.value) / (path - m.baseline.value)
        )


def test_off_track_is_the_cluster_headline_only(initiative: Initiative) -> None:
    """A locality, or a breakdown of the cluster, below the path is not off track."""
    rows = [
        series(initiative, LFP, [0.27] * 8, geo="nahf"),
        series(initiative, LFP, [0.27] * 8, geo=CLUSTER, disaggregation="age_band=25-44"),
    ]
    assert run(initiative, frame(*rows), LFP).is_empty()


@pytest.mark.parametrize("end", ["2024-Q1", "2031-Q1"])
def test_no_off_track_outside_baseline_to_target(initiative: Initiative, end: str) -> None:
    rows = series(initiative, LFP, [0.20] * 8, geo=CLUSTER, end=end)
    found = detect.detect(frame(rows), initiative, {LFP: parse_period(end)})
    assert found.is_empty()


# --- folding ------------------------------------------------------------------------------------


def test_a_localitys_breakdown_cells_fold_into_its_total(initiative: Initiative) -> None:
    rows = [
        series(initiative, LFP, [*FLAT, STEP], disaggregation=d)
        for d in ("age_band=total", "age_band=25-44", "age_band=45-64")
    ]
    found = run(initiative, frame(*rows), LFP)
    assert kinds(found) == [("step", "nahf", "age_band=total")]
    assert found["folded"].to_list() == [2]


def test_a_breakdown_alone_is_kept(initiative: Initiative) -> None:
    rows = [
        series(initiative, LFP, [*FLAT, 0.312]),
        series(initiative, LFP, [*FLAT, STEP], disaggregation="age_band=25-44"),
    ]
    found = run(initiative, frame(*rows), LFP)
    assert kinds(found) == [("step", "nahf", "age_band=25-44")]
    assert found["message"][0].startswith(
        "Arab women's labour-force participation in Nahf (age_band=25-44) fell"
    )


def test_the_cluster_folds_into_the_locality_that_regressed(initiative: Initiative) -> None:
    rows = [
        series(initiative, LFP, [*FLAT, STEP], geo="nahf"),
        series(initiative, LFP, [*FLAT, 0.312], geo="rameh"),
        series(initiative, LFP, [0.312] * 7 + [0.29], geo=CLUSTER, denominator=20_000),
    ]
    found = run(initiative, frame(*rows), LFP)
    assert kinds(found) == [("step", "nahf", "age_band=total")]
    assert found["folded"].to_list() == [1]


def test_off_track_folds_into_the_step_that_explains_it(initiative: Initiative) -> None:
    rows = [
        series(initiative, LFP, [*FLAT, STEP], geo="nahf"),
        series(initiative, LFP, [0.27] * 8, geo=CLUSTER),  # behind the path, but no step
    ]
    assert run(initiative, frame(rows[1]), LFP)["kind"].to_list() == ["off_track"]
    found = run(initiative, frame(*rows), LFP)
    assert kinds(found) == [("step", "nahf", "age_band=total")]
    assert found["folded"].to_list() == [1]


def test_off_track_folds_into_a_drift(initiative: Initiative) -> None:
    slide = [0.43, 0.49, 0.43, 0.49, 0.46, 0.47, 0.48, 0.49, 0.50, 0.51]
    rows = [series(initiative, WAGE, slide, geo=CLUSTER, denominator=100_000)]
    found = run(initiative, frame(*rows), WAGE)
    assert kinds(found) == [("drift", CLUSTER, "sex=total")]
    assert found["folded"].to_list() == [1]


def test_folding_counts_everything_the_kept_finding_explains(initiative: Initiative) -> None:
    """Nahf's total explains its breakdown, the cluster's step (whose own breakdown folds into
    it first) and the cluster being off track: four findings, one alert."""
    rows = [
        series(initiative, LFP, [*FLAT, STEP], geo="nahf"),
        series(initiative, LFP, [*FLAT, STEP], geo="nahf", disaggregation="age_band=25-44"),
        series(initiative, LFP, [0.312] * 7 + [0.27], geo=CLUSTER, denominator=20_000),
        series(
            initiative,
            LFP,
            [0.312] * 7 + [0.27],
            geo=CLUSTER,
            disaggregation="age_band=25-44",
            denominator=20_000,
        ),
    ]
    found = run(initiative, frame(*rows), LFP)
    assert kinds(found) == [("step", "nahf", "age_band=total")]
    assert found["folded"].to_list() == [4]


def test_different_measures_do_not_fold_into_each_other(initiative: Initiative) -> None:
    rows = [
        series(initiative, LFP, [*FLAT, STEP], geo="nahf"),
        series(initiative, WAGE, [0.47] * 8, geo=CLUSTER, denominator=10_000),  # off track
    ]
    found = run(initiative, frame(*rows), LFP, WAGE)
    assert sorted(found["kind"].to_list()) == ["off_track", "step"]
    assert found["folded"].to_list() == [0, 0]


# --- coverage -----------------------------------------------------------------------------------


def test_lower_coverage_than_usual_is_noted(initiative: Initiative) -> None:
    rows = series(initiative, LFP, [*FLAT, STEP], reported=[5] * 7 + [3], expected=5)
    f = run(initiative, frame(rows), LFP).row(0, named=True)
    assert f["coverage_note"] == "judged on lower coverage than usual (3 partners; usually 5)"
    assert f["message"].endswith(
        "; 3 of 5 partners reported; judged on lower coverage than usual (3 partners; usually 5)"
    )


@pytest.mark.parametrize("reported", [[5] * 8, [4] * 7 + [5], [4, 4, 4, 5, 5, 5, 5, 5]])
def test_no_coverage_note_at_the_usual_coverage(
    initiative: Initiative, reported: list[int]
) -> None:
    rows = series(initiative, LFP, [*FLAT, STEP], reported=reported, expected=5)
    assert run(initiative, frame(rows), LFP)["coverage_note"].to_list() == [""]


# --- names in three languages -------------------------------------------------------------------


def test_hebrew_and_arabic_names_survive_in_the_sentences(initiative: Initiative) -> None:
    geos = dict(initiative.geographies)
    nahf = geos["nahf"]
    geos["nahf"] = nahf.model_copy(
        update={"name": nahf.name.model_copy(update={"en": "נחף / نحف"})}
    )
    partners = dict(initiative.partners)
    partners["kurkum"] = partners["kurkum"].model_copy(update={"name": "مطبخ كركم — קורכום"})
    named = with_measure(initiative, LFP, title="השתתפות نساء")
    named = named.model_copy(update={"geographies": geos, "partners": partners})
    step = run(named, frame(series(named, LFP, [*FLAT, STEP])), LFP)
    assert step["message"][0].startswith(
        "השתתפות نساء in נחף / نحف fell to 25.0% in 2025-Q4 against 31.2% expected"
    )
    missing = missing_data(
        pl.DataFrame(schema={"partner_id": pl.Utf8, "measure_id": pl.Utf8, "period": pl.Utf8}),
        named,
        {KURKUM: parse_period("2025-11")},
        date(2026, 1, 1),
    )
    assert missing["message"][0].startswith("مطبخ كركم — קורכום has not reported")


# --- missing data -------------------------------------------------------------------------------

REPORTED_SCHEMA = {"partner_id": pl.Utf8, "measure_id": pl.Utf8, "period": pl.Utf8}


@pytest.mark.parametrize(
    ("as_of", "reported", "late"),
    [
        (date(2025, 12, 16), [], True),  # the day after the due date
        (date(2026, 3, 1), [], True),
        (date(2025, 12, 15), [], False),  # due today: not late yet
        (date(2025, 12, 1), [], False),
        (date(2026, 3, 1), [("kurkum", KURKUM, "2025-11")], False),
        (date(2026, 3, 1), [("kurkum", KURKUM, "2025-10")], True),  # an earlier month only
        (date(2026, 3, 1), [("braude-college", KURKUM, "2025-11")], True),  # someone else
    ],
)
def test_missing_data_after_the_due_date(
    initiative: Initiative, as_of: date, reported: list[tuple[str, str, str]], late: bool
) -> None:
    seen = pl.DataFrame(reported, schema=REPORTED_SCHEMA, orient="row")
    found = missing_data(seen, initiative, {KURKUM: parse_period("2025-11")}, as_of)
    if not late:
        assert found.is_empty()
        return
    f = found.row(0, named=True)
    assert found.height == 1
    assert (f["kind"], f["subject"], f["measure_id"], f["geo_code"], f["period"]) == (
        "missing",
        "kurkum",
        KURKUM,
        "majd-al-krum",
        "2025-11",
    )
    days = (as_of - date(2025, 12, 15)).days
    assert (f["reference_period"], f["statistic"]) == ("2025-12-15", float(days))
    assert f["message"] == (
        "Kurkum social catering has not reported Women employed by Kurkum catering for "
        f"2025-11; it was due on 2025-12-15 ({days} day{'' if days == 1 else 's'} ago)"
    )


def test_missing_data_names_every_late_partner_of_a_measure(initiative: Initiative) -> None:
    seen = pl.DataFrame(
        [("employment-service", "fsg-vision-work-aligns", "2025")],
        schema=REPORTED_SCHEMA,
        orient="row",
    )
    found = missing_data(seen, initiative, {SCORE: parse_period("2025")}, date(2026, 6, 1))
    late = set(found["subject"].to_list())
    assert late == set(initiative.partners) - {"employment-service"}
    assert found.filter(pl.col("subject") == "national-insurance")["geo_code"].to_list() == [
        "karmiel,misgav,majd-al-krum,biina,deir-al-asad,nahf,rameh"
    ]


def test_a_partner_of_very_many_places_is_missing_in_their_common_ancestor(
    initiative: Initiative, monkeypatch: pytest.MonkeyPatch
) -> None:
    """National Insurance's seven localities (57 characters listed) are one key at the
    default limit; a national partner's thousands of areas would overflow PostgreSQL's index
    on the alert key (8,191 bytes), so past the limit (here 20 characters) the alert is keyed,
    and worded, by the geography they all lie in: the cluster."""
    places = initiative.partners["national-insurance"].localities
    assert detect.missing.where_missing(initiative, places) == ",".join(places)
    monkeypatch.setattr(detect.missing, "MAX_PLACES_CHARS", 20)
    assert detect.missing.where_missing(initiative, places) == "beit-hakerem"
    seen = pl.DataFrame([], schema=REPORTED_SCHEMA, orient="row")
    found = missing_data(seen, initiative, {SCORE: parse_period("2025")}, date(2026, 6, 1))
    row = found.filter(pl.col("subject") == "national-insurance").row(0, named=True)
    assert row["geo_code"] == "beit-hakerem"


@pytest.mark.parametrize(
    ("measure_id", "deadline", "period", "due"),
    [
        (LFP, 45, "2025-Q4", date(2026, 2, 14)),
        (LFP, 45, "2025-Q1", date(2025, 5, 15)),
        (KURKUM, 15, "2025-11", date(2025, 12, 15)),
        (KURKUM, 15, "2024-02", date(2024, 3, 15)),  # a leap February ends on the 29th
        (KURKUM, 0, "2025-12", date(2025, 12, 31)),
        (SCORE, 60, "2025", date(2026, 3, 1)),
        (KURKUM, 30, "2024-01", date(2024, 3, 1)),
    ],
)
def test_due_date(
    initiative: Initiative, measure_id: str, deadline: int, period: str, due: date
) -> None:
    m: Measure = initiative.measures[measure_id].model_copy(update={"deadline_days": deadline})
    assert due_date(m, parse_period(period)) == due


# --- judged periods -----------------------------------------------------------------------------


def test_judged_periods(initiative: Initiative) -> None:
    rows = [
        *series(initiative, LFP, [0.3, 0.3, 0.3], end="2025-Q4"),
        *series(initiative, STUDENTS, [5.0, 5.0, 5.0, 5.0, 5.0], end="2025-12"),
        *series(initiative, SCORE, [4.0, 4.0], geo=CLUSTER, end="2025"),
    ]
    indicators = frame(rows)
    latest = judged_periods(indicators, initiative)
    labels = {m: p.label for m, p in latest.items()}
    assert labels[LFP] == labels[WAGE] == "2025-Q4"  # nobody reported WAGE: still judged
    assert labels[STUDENTS] == labels[KURKUM] == "2025-12"
    assert labels[SCORE] == "2025"
    assert set(labels) == set(initiative.measures)
    inside = {m: p.label for m, p in judged_periods(indicators, initiative, "2025-Q3").items()}
    assert inside[LFP] == "2025-Q3"
    assert inside[STUDENTS] == "2025-09"
    assert SCORE not in inside  # no year lies inside a quarter
    year = {m: p.label for m, p in judged_periods(indicators, initiative, "2025").items()}
    assert (year[LFP], year[STUDENTS], year[SCORE]) == ("2025-Q4", "2025-12", "2025")
    assert judged_periods(indicators, initiative, "2023") == {}


def test_detect_on_nothing_finds_nothing(initiative: Initiative) -> None:
    assert detect.detect(frame([]), initiative, judged(initiative, LFP)).is_empty()


def test_a_seasonal_run_is_measured_from_the_same_quarter_before_it_began(tmp_path: Path) -> None:
    """A quarterly series with seasons (+10, 0, -5, 0) and a little noise, 2 units worse for its
    last 7 quarters (higher is worse). Its CUSUM run covers the last 6 or 7 quarters, so the
    same quarter a year before lies inside the run; the sustained finding is measured from the
    same quarter two years before — the last one before the run began — not from inside it."""
    rng = np.random.default_rng(3)
    n = 64
    y = 100 + np.tile([10.0, 0.0, -5.0, 0.0], n // 4) + rng.normal(0, 1.0, n)
    y[-7:] += 2.0
    y = np.round(y, 2)
    periods = [f"{1990 + i // 4}-Q{i % 4 + 1}" for i in range(n)]
    s = Series(
        "x", "x", Unit.amount, "quarter", Direction.lower_is_better, periods, y, None, None, []
    )
    ini = write_initiative(tmp_path / "initiative", s)
    found = detect.detect(indicator_frame(s, n - 1), ini, {"x": parse_period(periods[-1])})
    candidates = _series_tests(
        ini.measures["x"], indicator_frame(s, n - 1), parse_period(periods[-1])
    )
    [sustained] = [c for c in candidates if c.kind == "sustained"]
    run = int(sustained.test.split("last ")[1].split(" ")[0])
    assert 4 < run <= 8  # longer than a year: a year before is inside the run
    assert sustained.reference_period == periods[-9]  # two years before: before the run
    assert sustained.reference == pytest.approx(y[-9])
    assert sustained.practical
    assert not found.is_empty()


def test_the_cusum_waits_until_two_years_show_the_seasons(initiative: Initiative) -> None:
    """A monthly count (students trained: higher is better) in its second year: 100 a month
    (±3) for ten months, then 40-odd for the four months to January. Against the usual level
    the last four are a run of errors of many SDs — a CUSUM far past its limit — but one year
    of history cannot show whether that is the series' winter: until two can, the sustained
    test waits. The step is still judged (the January before, 103, did not stand out, so it is
    no season). Without the wait the CUSUM flags the run (checked by removing it)."""
    values = [100 + e for e in [3.0, -3.0] * 5] + [40.0, 37.0, 40.0, 37.0]
    rows = series(initiative, STUDENTS, values, end="2025-01")
    found = _series_tests(initiative.measures[STUDENTS], frame(rows), parse_period("2025-01"))
    assert "sustained" not in {c.kind for c in found}
    assert "step" in {c.kind for c in found}


def test_series_rows_split_the_indicators_by_series_in_order() -> None:
    """Worked by hand: rows of three series interleaved (a/x, b/x, a/y, then a/x and b/x
    again). The series come out in the order they first appear (a/x, b/x, a/y), each with its
    rows in the frame's order; the same split as polars' ``partition_by``."""
    frame = pl.DataFrame(
        {
            "measure_id": ["m", "m", "m", "m", "m"],
            "geo_code": ["a", "b", "a", "a", "b"],
            "disaggregation": ["x", "x", "y", "x", "x"],
            "period": ["2025-Q1", "2025-Q1", "2025-Q1", "2025-Q2", "2025-Q2"],
            "value": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    split = [
        (measure, [(r["geo_code"], r["disaggregation"], r["value"]) for r in rows])
        for measure, rows in series_rows(frame)
    ]
    assert split == [
        ("m", [("a", "x", 1.0), ("a", "x", 4.0)]),
        ("m", [("b", "x", 2.0), ("b", "x", 5.0)]),
        ("m", [("a", "y", 3.0)]),
    ]
    partitioned = frame.partition_by(list(SERIES), as_dict=True)
    assert [rows for _, rows in series_rows(frame)] == [
        part.to_dicts() for part in partitioned.values()
    ]
    assert list(series_rows(frame.clear())) == []
