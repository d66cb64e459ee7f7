"""False alarms and detections of detect() on simulated series, fixed seed.

The simulation lives in ``benchmarks/detection_rates.py`` (which prints the full-size figures:
``.venv/bin/python benchmarks/detection_rates.py``); this runs it with fewer series.

**False alarms.** 1,000 noise-only series per measure, judged as production judges them (as
many series to a ``detect()`` run as the measure has in the bundled initiative; the cluster-only
amount and score are judged alone, so nothing is adjusted away for them). The bound asserted
is the measure's ``alert.alpha``: each step test is one-sided at level alpha, the run-wide
Benjamini-Hochberg adjustment and ``min_change`` only lower that, and six-period drift needs a
perfectly monotone run (1 in 720 by chance). It is asserted with the simulation's own error
allowed for: the count of flagged series must not exceed the 99.9th percentile of
Binomial(series, alpha) (21 of 1,000 for alpha = 0.01), so the test fails when the simulation
shows at the 0.1% level that the rate is above alpha. Control limits alone (a bare modified z
of 3.5, p = 0) flagged 3.4% of the eight-quarter amount series: this test caught that.

**Detections.** 150 series per measure with a regression injected in the bad direction (one
regressed series per run, the others noise-only). The levels asserted follow from the designs'
sizes: a step of 4-6 SD of a period-on-period change is past the BH threshold of one test in
18-24 about 19 times in 20, so at least 85% (measured at full size: 92-98%); a slide of about
2 SD a period makes all five consecutive changes worse about 0.98^5 ~ 0.9 of the time, so at
least 80% (measured 90-95%), and of about 1.4 SD a period 0.92^5 ~ 0.66, so at least 50%
(measured 65-71%). Detection counts the finding of the injected kind only.
"""

from __future__ import annotations

import pytest
from scipy import stats

from benchmarks.detection_rates import DESIGNS, SEED, Rate, Scenario, detection_rates
from ci_pipeline.model.initiative import Initiative

NULL_SERIES = 1000
REGRESSED_SERIES = 150
#: The least share of regressed series that must be flagged, by measure and scenario.
LEAST: dict[tuple[str, Scenario], float] = {
    ("arab-women-lfp", "step"): 0.85,
    ("arab-women-lfp", "drift"): 0.80,
    ("below-min-wage-share", "step"): 0.85,
    ("below-min-wage-share", "drift"): 0.80,
    ("starter-students-trained", "step"): 0.85,
    ("starter-students-trained", "drift"): 0.50,
    ("new-resources-nis", "step"): 0.85,
    ("new-resources-nis", "drift"): 0.50,
    ("fsg-vision-work-aligns", "step"): 0.85,
    ("fsg-vision-work-aligns", "drift"): 0.50,
}
MEASURES = [d.measure_id for d in DESIGNS]


@pytest.fixture(scope="module")
def rates(initiative: Initiative) -> dict[tuple[str, Scenario], Rate]:
    null = detection_rates(initiative, series=NULL_SERIES, seed=SEED, scenarios=("null",))
    regressed = detection_rates(
        initiative, series=REGRESSED_SERIES, seed=SEED, scenarios=("step", "drift")
    )
    return {(r.measure_id, r.scenario): r for r in null + regressed}


def test_every_unit_is_simulated(initiative: Initiative) -> None:
    units = {str(initiative.measures[m].unit) for m in MEASURES}
    assert units == {"proportion", "count", "amount", "score"}
    assert set(LEAST) == {(m, s) for m in MEASURES for s in ("step", "drift")}


@pytest.mark.parametrize("measure_id", MEASURES)
def test_false_alarm_rate_stays_under_alpha(
    rates: dict[tuple[str, Scenario], Rate], measure_id: str
) -> None:
    r = rates[measure_id, "null"]
    allowed = int(stats.binom.ppf(0.999, r.series, r.alpha))
    assert r.series == NULL_SERIES
    assert r.flagged <= allowed, (
        f"{measure_id}: {r.flagged} of {r.series} noise-only series flagged ({r.rate:.2%}), "
        f"more than alpha = {r.alpha:g} allows ({allowed}); by kind {r.by_kind}"
    )


@pytest.mark.parametrize(("measure_id", "scenario"), list(LEAST))
def test_injected_regressions_are_detected(
    rates: dict[tuple[str, Scenario], Rate], measure_id: str, scenario: Scenario
) -> None:
    r = rates[measure_id, scenario]
    # A drifting series whose last period also steps is alerted once, as the step (the drift
    # is folded into it): the backbone is told either way.
    caught = r.flagged / r.series
    assert r.series == REGRESSED_SERIES
    assert caught >= LEAST[measure_id, scenario], (
        f"{measure_id}: {scenario} found in {caught:.1%} of {r.series} regressed series, "
        f"below {LEAST[measure_id, scenario]:.0%}; by kind {r.by_kind}"
    )
