"""The real series the harness replays (benchmarks/series/): each parses, its periods run
without a gap, its source is named, and its documented change points lie inside it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from benchmarks.detection_scoring import WARMUP, as_good, best_baseline
from benchmarks.evaluate_detection import (
    SERIES_DIR,
    evaluate,
    load_series,
    period_file,
    real_series,
    replay_direct,
    write_initiative,
)
from ci_pipeline.model.initiative import Unit
from ci_pipeline.model.periods import parse_period, shift


def test_there_are_real_series_covering_recession_policy_and_epidemic() -> None:
    names = real_series()
    assert len(names) >= 4
    text = " ".join((SERIES_DIR / f"{n}.yaml").read_text(encoding="utf-8") for n in names)
    for word in ("recession", "law", "epidemic"):
        assert word in text


@pytest.mark.parametrize("name", real_series())
def test_a_real_series_parses_and_its_change_points_lie_inside_it(name: str) -> None:
    meta = yaml.safe_load((SERIES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    for field in ("package", "dataset", "original", "licence"):
        assert meta["source"][field], field
    s = load_series(name)
    n = len(s.periods)
    assert n >= 60
    assert s.periods == [shift(parse_period(s.periods[0]), i).label for i in range(n)]
    assert np.isfinite(s.value).all()
    for change, raw in zip(s.changes, meta["changes"], strict=True):
        assert raw["citation"].strip()
        start, end = change.episode
        # The turning point and the episode's start are periods of the series; the end may
        # run past its last period (a recession still going on when the series stops).
        assert 0 <= start <= change.turning_point < n
        assert change.turning_point <= end
    assert any(c.regression for c in s.changes) or name == "uk-driver-deaths"


@pytest.mark.parametrize(
    "name", [n for n in real_series() if load_series(n).unit is Unit.proportion]
)
def test_a_rate_made_a_proportion_keeps_the_published_rate(name: str) -> None:
    s = load_series(name)
    with (SERIES_DIR / f"{name}.csv").open(encoding="utf-8") as f:
        published = np.array([float(r["rate_percent"]) for r in csv.DictReader(f)]) / 100
    # numerator = round(rate x denominator): off by at most half a person.
    assert s.denominator is not None
    assert np.abs(s.value - published).max() <= 0.5 / s.denominator.min()


def test_the_partner_file_of_a_period_holds_that_period_alone(tmp_path: Path) -> None:
    s = load_series("german-unemployment-sa")
    text = period_file(s, 0, tmp_path).read_text(encoding="utf-8")
    assert text == (
        "measure_id,geo_code,period,numerator,denominator\n"
        "german-unemployment-sa,area,1962-Q1,162000,27000000\n"
    )  # 0.6% of 27,000,000


def test_winters_are_seasons_and_the_epidemic_winter_is_the_alarm(tmp_path: Path) -> None:
    """UK lung deaths, 1974-79, with default settings: every winter climbs from autumn (by
    half again), which is the season, not a regression; the 1975-76 influenza winter (3,891
    deaths in February 1976 against 2,889 and 2,294 in the Februaries either side) is one. The
    first winter after the warm-up is judged on one year of history (no seasonal model yet)
    and the later ones on the seasons; none of them alarms, the epidemic does."""
    s = load_series("uk-lung-deaths")
    kinds = replay_direct(s, write_initiative(tmp_path / "lung", s))
    alarmed = [s.periods[i] for i, k in enumerate(kinds) if k and i >= WARMUP]
    assert alarmed == ["1976-02"]


@pytest.mark.parametrize("scale", [1.0, 0.001])
def test_every_real_series_meets_the_targets_with_default_settings(
    tmp_path: Path, scale: float
) -> None:
    """The done-when of issue 10, replayed by ``detect()`` on the growing series (direct mode,
    which the slow ``test_modes_agree`` ties to the pipeline): on every real series at least
    90% of the turning points alerted within 3 periods, at most 0.2 false alarms per stable
    year, and at least as good as the best baseline rule on both at once — with the rates'
    denominators as given (persons) and in thousands of persons."""
    for name in real_series():
        s = load_series(name, denominator_scale=scale)
        scores, _kinds = evaluate(s, "direct", tmp_path / f"{name}-{scale}")
        ours = scores["pipeline"]
        best = scores[best_baseline(scores)]
        assert np.isnan(ours.recall) or ours.recall >= 0.9, (name, ours)
        assert ours.false_per_year <= 0.2, (name, ours)
        assert as_good(ours, best), (name, ours, best_baseline(scores), best)
