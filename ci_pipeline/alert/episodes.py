"""Regression episodes: a fall that goes on for several periods is one alert, not one a period.

A series (measure, geography, breakdown) is *in an episode* from the first period a regression
detector (any of :data:`REGRESSION_KINDS`) flags it until it recovers. The episode keeps where
it started — the first flagged period and the value the fall is measured from (that finding's
``reference``, the level before it) — and follows the latest finding. It recovers when a later
judged value is no longer worse than that starting reference by the measure's
``alert.min_change`` (:func:`back_to_start`), not merely when one period has no finding. It
also ends, *settled*, when a period a year or more (two periods at least) after its latest
finding is judged without any regression finding on the series (:func:`settled`; calendar
periods, so a series unreported for a year settles at the first period judged after the gap):
the level stopped worsening, though it did not come back (unemployment after a recession), and
the next regression is a new alert — not a silent update of an episode that would otherwise
never end.

Pure functions over plain values: :mod:`ci_pipeline.alert.lifecycle` stores the episode in the
alert's evidence (key ``"episode"``, :meth:`Episode.as_evidence`) and uses these to decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from ci_pipeline.detect import REGRESSIONS, format_pair, worse
from ci_pipeline.model.initiative import Measure
from ci_pipeline.model.periods import parse_period, per_year

#: The regression detectors' kinds (:data:`ci_pipeline.detect.REGRESSIONS`, in the order in
#: which one explains the others): one family, one episode per series across them.
REGRESSION_KINDS = frozenset(REGRESSIONS)


@dataclass(frozen=True)
class Episode:
    """Where a regression episode started, where it is now, and (once over) where it ended.

    ``periods`` counts the periods from ``start_period`` to ``latest_period``, both included;
    ``change`` is ``latest_value - start_reference`` (the whole fall so far).
    ``resolved_period`` is the judged period in which it resolved, None while it is open.
    """

    start_period: str
    start_kind: str
    start_value: float | None
    start_reference: float | None
    start_reference_period: str
    latest_period: str
    latest_kind: str
    latest_value: float | None
    latest_reference: float | None
    latest_reference_period: str
    periods: int
    change: float | None
    resolved_period: str | None = None
    #: How it ended: "recovered" (back to the start), "settled" (stopped worsening) or
    #: "withdrawn" (its first period judged again without its finding: data revised).
    ended: str | None = None

    def as_evidence(self) -> dict[str, Any]:
        return asdict(self)


def periods_between(first: str, last: str) -> int:
    """How many periods from ``first`` to ``last``, both included (1 for the same period)."""
    a, b = parse_period(first), parse_period(last)
    length = a.end - a.start + 1
    return (b.start - a.start) // length + 1


def _change(value: float | None, reference: float | None) -> float | None:
    return None if value is None or reference is None else value - reference


def begin(finding: Mapping[str, Any]) -> Episode:
    """The episode a first regression finding opens."""
    return Episode(
        start_period=finding["period"],
        start_kind=finding["kind"],
        start_value=finding["value"],
        start_reference=finding["reference"],
        start_reference_period=finding["reference_period"] or "",
        latest_period=finding["period"],
        latest_kind=finding["kind"],
        latest_value=finding["value"],
        latest_reference=finding["reference"],
        latest_reference_period=finding["reference_period"] or "",
        periods=1,
        change=_change(finding["value"], finding["reference"]),
    )


def extend(episode: Episode, finding: Mapping[str, Any]) -> Episode:
    """The episode followed to a finding of the same or a later period (its start is kept)."""
    return replace(
        episode,
        latest_period=finding["period"],
        latest_kind=finding["kind"],
        latest_value=finding["value"],
        latest_reference=finding["reference"],
        latest_reference_period=finding["reference_period"] or "",
        periods=periods_between(episode.start_period, finding["period"]),
        change=_change(finding["value"], episode.start_reference),
        resolved_period=None,
        ended=None,
    )


def from_evidence(evidence: Mapping[str, Any], kind: str, period: str) -> Episode:
    """The episode stored in an alert's evidence; for an alert recorded before episodes
    existed, the one its own finding (the evidence's columns) opened."""
    stored = evidence.get("episode")
    if isinstance(stored, Mapping):
        fields: dict[str, Any] = {k: stored.get(k) for k in Episode.__dataclass_fields__}
        return Episode(**fields)
    return begin(
        {
            "kind": kind,
            "period": period,
            "value": evidence.get("value"),
            "reference": evidence.get("reference"),
            "reference_period": evidence.get("reference_period"),
        }
    )


def back_to_start(measure: Measure, episode: Episode, value: float) -> bool:
    """Whether ``value`` is no longer worse than the episode's starting reference by at least
    the measure's ``alert.min_change``: the series has recovered."""
    if episode.start_reference is None:
        return False
    gap = value - episode.start_reference
    return not (worse(measure.direction, gap) and abs(gap) >= measure.alert.min_change)


def settled(episode: Episode, period: str) -> bool:
    """Whether ``period`` (judged without a regression finding) is a year or more (two
    periods at least) after the episode's latest finding: it stopped worsening."""
    year = per_year(parse_period(episode.latest_period).periodicity)
    return periods_between(episode.latest_period, period) - 1 >= max(year, 2)


def episode_message(message: str, episode: Episode, measure: Measure) -> str:
    """The latest finding's sentence, led by the episode's when it has lasted more than one
    period: *"Worsening since 2025-03 (3 months): from 4.6% to 5.1%. <the latest sentence>"*.
    """
    if episode.periods <= 1:
        return message
    unit = str(parse_period(episode.start_period).periodicity)
    # With the digits that show the two differ, as the finding's own sentence has them.
    start, latest = format_pair(measure, episode.start_reference, episode.latest_value)
    return (
        f"Worsening since {episode.start_period} ({episode.periods} {unit}s): from {start} to "
        f"{latest}. {message}"
    )
