"""A period's processing, step by step: aggregate → gate and detect → alert → deliver.

Each function is one step with its I/O at the edge (settings, initiative and engine passed in),
for the flows in ``ci_pipeline/flows/process.py`` to wire and for tests to call directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import aggregate, alert, detect, store
from ci_pipeline.aggregate import privacy
from ci_pipeline.config import Settings
from ci_pipeline.detect import gate
from ci_pipeline.model.initiative import Initiative


@dataclass(frozen=True)
class Refreshed:
    slices: list[tuple[str, str]]
    rows: int


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
    if slices:
        observations = store.slice_observations(ini, slices, engine=engine)
        indicators = privacy.suppress(aggregate.aggregate(observations, initiative), initiative)
        rows = store.replace_indicators(ini, slices, indicators, engine=engine)
    store.set_indicators_digest(ini, initiative.digest, engine=engine)
    return Refreshed(slices, rows)


@dataclass(frozen=True)
class Judgement:
    judged: dict[str, str]  # measure -> period judged
    findings: pl.DataFrame
    gate: gate.GateResult
    # What the judgement was made on, read once and reused by the steps after it.
    indicators: pl.DataFrame
    reported: pl.DataFrame  # (partner_id, measure_id, period) that count


def judge(
    initiative: Initiative,
    *,
    engine: Engine,
    settings: Settings,
    period: str | None = None,
    as_of: date | None = None,
) -> Judgement:
    """Run the quality gate and every detector on the judged period of each measure."""
    ini = initiative.info.id
    indicators = store.read_indicators(ini, engine=engine)
    reported = store.reported_cells(ini, engine=engine)
    periods = detect.judged_periods(indicators, initiative, period)
    if not periods:  # no indicators yet, or none inside ``period``: nothing to judge
        return Judgement(
            {},
            pl.DataFrame(schema=detect.FINDING_SCHEMA),
            gate.GateResult(True, set()),
            indicators,
            reported,
        )
    result = gate.run_gate(indicators, initiative, periods, project_dir=settings.gx_dir)
    findings = detect.detect(indicators, initiative, periods)
    today = as_of or date.today()
    missing = detect.missing_data(reported, initiative, periods, today)
    # Cells absent because a partner is late (a missing-data alert already) or not yet due are
    # not a data fault.
    not_due = {m for m, p in periods.items() if today <= detect.due_date(initiative.measures[m], p)}
    result = gate.explain_missing(result, set(missing["measure_id"].to_list()) | not_due)
    quality = gate.findings(result, initiative, periods)
    return Judgement(
        {m: p.label for m, p in periods.items()},
        pl.concat([findings, missing, quality], how="diagonal_relaxed"),
        result,
        indicators,
        reported,
    )


def routing(settings: Settings) -> alert.Routing:
    return alert.Routing(
        backbone=settings.alert_urls or [alert.file_channel(settings.alerts_file)],
        engineers=settings.engineer_urls or [alert.file_channel(settings.engineers_file)],
        routes=settings.alert_routes,
    )


def record_alerts(
    judgement: Judgement, initiative: Initiative, *, settings: Settings, engine: Engine
) -> tuple[alert.Recorded, int]:
    """Store the findings as alerts and queue what is due for delivery."""
    recorded = alert.record_findings(
        judgement.findings,
        initiative,
        judgement.judged,
        unverified_measures=judgement.gate.failed_measures,
        engine=engine,
        current=judgement.indicators,
        reported=judgement.reported,
    )
    queued = alert.enqueue(
        routing(settings),
        repeat_interval=timedelta(hours=settings.alert_repeat_hours),
        engine=engine,
    )
    return recorded, queued


def headline(
    indicators: pl.DataFrame, initiative: Initiative, judged: dict[str, str]
) -> pl.DataFrame:
    """The judged period's totals per geography, masked: the table a run shows."""
    totals = {m.id: m.total_key for m in initiative.measures.values()}
    wanted = pl.DataFrame(
        {
            "measure_id": list(judged),
            "period": list(judged.values()),
            "disaggregation": [totals[m] for m in judged],
        },
        schema={"measure_id": pl.Utf8, "period": pl.Utf8, "disaggregation": pl.Utf8},
    )
    rows = indicators.join(wanted, on=["measure_id", "period", "disaggregation"], how="semi")
    return (
        privacy.mask(rows)
        .select(
            "measure_id",
            "geo_code",
            "period",
            "value",
            "numerator",
            "denominator",
            "partners_reported",
            "partners_expected",
            "suppressed",
        )
        .sort("measure_id", "geo_code")
    )
