"""Bring the stored indicators up to date: recompute the slices that new or superseded
submissions touched (or all of them), with small cells suppressed, in one step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.aggregate import privacy
from ci_pipeline.aggregate.rollup import aggregate
from ci_pipeline.model.initiative import Initiative


@dataclass(frozen=True)
class Refreshed:
    slices: list[tuple[str, str]]
    rows: int
    #: Tables the exact privacy audit could not solve (see privacy.Unaudited): reported,
    #: never skipped silently.
    unaudited: list[privacy.Unaudited] = field(default_factory=list)


def refresh_indicators(initiative: Initiative, *, engine: Engine, full: bool = False) -> Refreshed:
    """Recompute the indicator slices that new or superseded submissions touched (or all).

    Every slice is recomputed when asked (``full``) and when the definitions changed since the
    stored indicators were computed (a cell size, a partner's localities, a measure).
    """
    ini = initiative.info.id
    full = full or store.indicators_digest(ini, engine=engine) != initiative.digest
    slices = (
        store.all_slices(ini, engine=engine) if full else store.stale_slices(ini, engine=engine)
    )
    rows = 0
    unaudited: list[privacy.Unaudited] = []
    if slices:
        observations = store.slice_observations(ini, slices, engine=engine)
        indicators, unaudited = privacy.protect(aggregate(observations, initiative), initiative)
        rows = store.replace_indicators(ini, slices, indicators, engine=engine)
    store.set_indicators_digest(ini, initiative.digest, engine=engine)
    return Refreshed(slices, rows, unaudited)


def refreshed_by_period(slices: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The measures of recomputed ``(measure, period)`` slices, by period label, in order: what
    a run after new files judges (each period its slices were recomputed for, on those
    measures)."""
    out: dict[str, set[str]] = {}
    for measure_id, period in slices:
        out.setdefault(period, set()).add(measure_id)
    return {p: sorted(out[p]) for p in sorted(out)}
