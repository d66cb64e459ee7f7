"""What the report card says, before any page is drawn: for each geography (the cluster, then
each locality) and each shared measure, its published series (suppressed cells as suppressed,
never their values), its latest value and coverage, the straight path from baseline to target
where the measure has one, and the open alerts on it. Pure: frames and definitions in, plain
data out."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

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
    points: Sequence[Point]
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
    #: A digest of every headline cell of the place (:func:`pages`), standing for its cards'
    #: points in the page's key (:mod:`.kept`) so a kept page's points are never made; None:
    #: its cards' points themselves.
    series_key: str | None = None

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


class _Totals:
    """The headline cells, by place: sorted by place, measure and period, each place's rows
    made into points when a card of it is first read. A rebuild keeps all but the pages that
    changed (:mod:`.kept`), and making the points of a national card's 276,000 cells took
    longer than writing the pages that had."""

    def __init__(self, totals: pl.DataFrame) -> None:
        self._rows = totals  # sorted by place, measure and period (:func:`pages`)
        at = self._rows.with_row_index("_at").group_by("geo_code")
        self._spans = {
            g: (int(a), int(n)) for g, a, n in at.agg(pl.col("_at").min(), pl.len()).iter_rows()
        }
        self._made: dict[str, dict[str, list[Point]]] = {}

    def points(self, geo: str, measure: str) -> list[Point]:
        """One series' points, in period order."""
        made = self._made.get(geo)
        if made is None:
            made = {}  # kept only once whole
            start, n = self._spans.get(geo, (0, 0))
            columns = ["measure_id", "period", "value", "suppressed"]
            for m, period, value, suppressed, reported, expected in (
                self._rows.slice(start, n)
                .select(*columns, "partners_reported", "partners_expected")
                .iter_rows()
            ):
                made.setdefault(m, []).append(
                    Point(
                        period=period,
                        value=None if suppressed else value,
                        suppressed=bool(suppressed),
                        reported=int(reported or 0),
                        expected=int(expected or 0),
                    )
                )
            self._made[geo] = made
        return made.get(measure, [])


class _Points(Sequence[Point]):
    """A card's points, made when first read (:class:`_Totals`); a list in all else."""

    def __init__(self, totals: _Totals, geo: str, measure: str, n: int) -> None:
        self._totals, self._geo, self._measure, self._n = totals, geo, measure, n

    def _list(self) -> list[Point]:
        return self._totals.points(self._geo, self._measure)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Point: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Point]: ...
    def __getitem__(self, i: int | slice) -> Point | Sequence[Point]:
        return self._list()[i]

    def __iter__(self) -> Iterator[Point]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._list() == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like the list it stands for

    def __repr__(self) -> str:
        return repr(self._list())


def _series_keys(totals: pl.DataFrame) -> dict[str, str]:
    """Each place's digest of its headline cells as the cards publish them (a suppressed
    cell's value left out), in one pass: the shortest text that reads back as each value
    (polars writes floats so), the cells in measure and period order."""
    if totals.is_empty():
        return {}
    # Every part as the points read it (a missing flag is no suppression, missing partners
    # none), never missing: concat_str would make the whole cell missing, and the join drop it.
    hidden = pl.col("suppressed").fill_null(False)
    shown = pl.when(hidden).then(None).otherwise(pl.col("value"))
    text = pl.concat_str(
        pl.col("measure_id"),
        pl.col("period"),
        shown.cast(pl.Utf8).fill_null("-"),
        hidden.cast(pl.Int8).cast(pl.Utf8),
        pl.col("partners_reported").fill_null(0).cast(pl.Utf8),
        pl.col("partners_expected").fill_null(0).cast(pl.Utf8),
        separator="\x1f",
    )
    # In the rows' order within each place (sorted by place, measure and period: :func:`pages`).
    per_place = totals.group_by("geo_code").agg(text.str.join("\x1e"))
    return {
        geo: hashlib.sha256(joined.encode()).hexdigest() for geo, joined in per_place.iter_rows()
    }


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
    headline = pl.DataFrame(
        {
            "measure_id": list(initiative.measures),
            "disaggregation": [m.total_key for m in initiative.measures.values()],
        },
        schema={"measure_id": pl.Utf8, "disaggregation": pl.Utf8},
    )
    # Sorted once, for the points (:class:`_Totals`) and the digests (:func:`_series_keys`).
    totals = indicators.join(headline, on=["measure_id", "disaggregation"], how="semi").sort(
        "geo_code", "measure_id", "period"
    )
    rows = _Totals(totals)
    lengths = {
        (m, g): int(n) for m, g, n in totals.group_by("measure_id", "geo_code").len().iter_rows()
    }
    keys = _series_keys(totals)
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
            n = lengths.get((m.id, geo.code), 0)
            points: Sequence[Point] = _Points(rows, geo.code, m.id, n) if n else []
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
            out.append(Page(geo, cards, keys.get(geo.code, "")))
    return out
