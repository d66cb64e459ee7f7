"""What the report card says, before any page is drawn: for each geography (the cluster, then
each locality) and each shared measure, its published series (suppressed cells as suppressed,
never their values), its latest value and coverage, the straight path from baseline to target
where the measure has one, and the open alerts on it. Pure: frames and definitions in, plain
data out."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ci_pipeline.detect.findings import GAP_PREFIX
from ci_pipeline.model.initiative import EquityGap, Geography, GeoLevel, Initiative, Measure
from ci_pipeline.model.periods import parse_period


@dataclass(frozen=True)
class Point:
    """One period of a series as published: ``value`` is None where the cell is suppressed
    (``suppressed``) or nobody reported."""

    period: str
    value: float | None
    suppressed: bool
    reported: int
    expected: int


@dataclass(frozen=True)
class Flag:
    """An open alert on a series, at the period it is about."""

    id: int
    kind: str
    period: str
    message: str
    geo_code: str
    #: The alert's plain-words headline by language (``alert.headline``), where known.
    headlines: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Gap:
    """A gap between two groups the initiative tracks, on one measure in one geography: each
    period's two values (None where the gap is suppressed: a side's cell is)."""

    gap: EquityGap
    periods: list[tuple[str, float | None, float | None]]  # period, ahead, behind


@dataclass(frozen=True)
class Card:
    """One measure in one geography."""

    measure: Measure
    points: list[Point]
    path: list[tuple[str, float]]  # baseline → target, periods and values (empty: none)
    flags: list[Flag] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def latest(self) -> Point | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True)
class Page:
    """One geography's report card."""

    geography: Geography
    cards: list[Card]

    @property
    def flags(self) -> list[Flag]:
        return [f for c in self.cards for f in c.flags]


def _path(measure: Measure, periods: list[str]) -> list[tuple[str, float]]:
    """The straight line from the baseline to the target, at the baseline, the series' periods
    between them, and the target."""
    if measure.baseline is None or measure.target is None:
        return []
    b, t = parse_period(measure.baseline.period), parse_period(measure.target.period)
    inside = [q for p in periods if b < (q := parse_period(p)) < t]
    return [(p.label, v) for p in [b, *inside, t] if (v := measure.on_path(p)) is not None]


def _by(frame: pl.DataFrame, keys: list[str]) -> dict[tuple[object, ...], pl.DataFrame]:
    """The frame's rows by their ``keys``, split once: a national initiative has 2,761 places
    and 20 measures, and filtering the whole frame for each pair took minutes."""
    return frame.partition_by(keys, as_dict=True, maintain_order=True) if frame.height else {}


def _points(totals: pl.DataFrame) -> dict[tuple[str, str, str], list[Point]]:
    """Each series' points (by measure, place and breakdown), in the rows' order, from one
    pass over the rows: splitting the frame by series first made 27,630 frames of a national
    card's 276,000 cells, and took longer than the points themselves."""
    out: dict[tuple[str, str, str], list[Point]] = {}
    columns = ["measure_id", "geo_code", "disaggregation", "period", "value", "suppressed"]
    for m, geo, key, period, value, suppressed, reported, expected in totals.select(
        *columns, "partners_reported", "partners_expected"
    ).iter_rows():
        out.setdefault((m, geo, key), []).append(
            Point(
                period=period,
                value=None if suppressed else value,
                suppressed=bool(suppressed),
                reported=int(reported or 0),
                expected=int(expected or 0),
            )
        )
    return out


def _gaps(mine: pl.DataFrame | None, initiative: Initiative) -> list[Gap]:
    """A measure's gap series in one geography (``mine``: its rows of
    ``detect.gaps.gap_series``)."""
    if mine is None:
        return []
    by_id = {g.id: g for g in initiative.info.equity_gaps}
    out = []
    for (key,), rows in mine.sort("period").group_by(["disaggregation"], maintain_order=True):
        gap = by_id.get(str(key).removeprefix(GAP_PREFIX))
        if gap is not None:
            out.append(
                Gap(
                    gap,
                    [
                        (r["period"], r["ahead_value"], r["behind_value"])
                        for r in rows.iter_rows(named=True)
                    ],
                )
            )
    return out


def pages(
    indicators: pl.DataFrame,
    alerts: pl.DataFrame,
    initiative: Initiative,
    gaps: pl.DataFrame | None = None,
) -> list[Page]:
    """Every geography's report card: the root geography first (always, even with nothing to
    show yet), then the others that have something, by name.

    ``indicators`` are stored indicator rows, masked already or not: a suppressed cell's value
    is dropped here whatever it holds. ``alerts`` are open alerts (``id``, ``kind``,
    ``measure_id``, ``geo_code``, ``period``, ``message``); ``gaps`` the gap series between
    the groups the initiative tracks (``detect.gaps.gap_series``). Totals only: a breakdown's
    cells are in the downloadable figures.
    """
    totals = indicators.filter(
        pl.col("disaggregation").is_in([m.total_key for m in initiative.measures.values()])
    ).sort("period")
    series = _points(totals)
    on_measure: dict[str, list[Flag]] = {}
    on_place: dict[tuple[str, str], list[Flag]] = {}
    for a in alerts.sort("id").iter_rows(named=True):
        flag = Flag(
            int(a["id"]),
            str(a["kind"]),
            str(a["period"]),
            str(a["message"]),
            str(a["geo_code"]),
            {
                k.removeprefix("headline_"): str(v)
                for k, v in a.items()
                if k.startswith("headline_") and v
            },
        )
        on_measure.setdefault(a["measure_id"], []).append(flag)
        on_place.setdefault((a["measure_id"], a["geo_code"]), []).append(flag)
    gap_rows = _by(gaps, ["measure_id", "geo_code"]) if gaps is not None else {}
    geos = sorted(
        initiative.geographies.values(),
        key=lambda g: (g.level is not GeoLevel.cluster, g.parent is not None, g.name.en),
    )
    out = []
    for geo in geos:
        cards = []
        for m in initiative.measures.values():
            if geo.level not in m.geo_levels and geo.parent is not None:
                continue
            points = series.get((m.id, geo.code, m.total_key), [])
            # The root's card carries every place's alerts on the measure: the cluster's
            # report card is where a backbone team sees them all.
            # (Each card its own list: a card's flags are its own to hold.)
            if geo.parent is None:
                flags = list(on_measure.get(m.id, []))
            else:
                flags = list(on_place.get((m.id, geo.code), []))
            if not points and not flags:
                continue
            path = _path(m, [p.period for p in points]) if geo.parent is None else []
            own = _gaps(gap_rows.get((m.id, geo.code)), initiative)
            cards.append(Card(m, points, path, flags, own))
        if cards or geo.parent is None:  # the root's page even before any data
            out.append(Page(geo, cards))
    return out
