"""Judge a period: the quality gate and every detector, on indicators read once."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import links, store
from ci_pipeline.config import Settings
from ci_pipeline.detect import gate
from ci_pipeline.detect.detectors import detect, judged_periods, window_labels
from ci_pipeline.detect.findings import FINDING_SCHEMA
from ci_pipeline.detect.memo import Memo
from ci_pipeline.detect.missing import due_date, missing_data
from ci_pipeline.model.initiative import Initiative


@dataclass(frozen=True)
class Judgement:
    judged: dict[str, str]  # measure -> period judged
    findings: pl.DataFrame
    gate: gate.GateResult
    # What the judgement was made on, read once and reused by the steps after it.
    indicators: pl.DataFrame
    reported: pl.DataFrame  # (partner_id, measure_id, period) that count


#: The order findings are recorded (and alerts numbered) in.
FINDING_ORDER = ["measure_id", "geo_code", "disaggregation", "period", "kind", "subject"]


def judge(
    initiative: Initiative,
    *,
    engine: Engine,
    settings: Settings,
    period: str | None = None,
    as_of: date | None = None,
    measures: Collection[str] | None = None,
) -> Judgement:
    """Run the quality gate and every detector on the judged period of each measure.

    ``measures``: judge only these (a run after new files judges the measures whose indicators
    it recomputed; every other measure's verdicts stand as the last run left them, since only
    the calendar changes them, and the daily run judges everything). Only their indicators
    are read; the alerts of the others are neither resolved nor touched (the alert lifecycle
    acts on judged measures only)."""
    ini = initiative.info.id
    reported = store.reported_cells(ini, engine=engine)
    # The judged period of a measure is the latest any measure has data for (a measure whose
    # partners are late is still judged, and found missing): from every measure's periods.
    every = pl.DataFrame(
        {"period": store.indicator_periods(ini, engine=engine)}, schema={"period": pl.Utf8}
    )
    wanted = set(initiative.measures if measures is None else measures)
    periods = {m: p for m, p in judged_periods(every, initiative, period).items() if m in wanted}
    # Only each judged measure's window: the periods its detectors read, not its history.
    indicators = store.read_indicators(
        ini,
        engine=engine,
        windows={m: window_labels(initiative.measures[m], p) for m, p in periods.items()},
    )
    if not periods:  # no indicators yet, or none inside ``period``: nothing to judge
        return Judgement(
            {},
            pl.DataFrame(schema=FINDING_SCHEMA),
            gate.GateResult(True, set()),
            indicators,
            reported,
        )
    today = as_of or date.today()
    missing = missing_data(reported, initiative, periods, today)
    # Cells absent, or coverage short, because a partner is late (a missing-data alert already)
    # or the data is not yet due, are not a data fault: excused before GX judges, so GX's own
    # verdict (and Data Docs) is the gate's.
    excused = {
        m: gate.NOT_DUE for m, p in periods.items() if today <= due_date(initiative.measures[m], p)
    }
    excused |= dict.fromkeys(missing["measure_id"].unique().to_list(), gate.LATE)
    result = gate.run_gate(
        indicators, initiative, periods, project_dir=settings.gx_dir, excused=excused
    )
    memo = Memo(settings.expectations_dir, periods)
    findings = detect(indicators, initiative, periods, memo=memo)
    memo.save()
    quality = gate.findings(
        result, initiative, periods, docs_url=links.gx_url(settings, result.docs_path)
    )
    return Judgement(
        {m: p.label for m, p in periods.items()},
        # In a stable order (group_by's is not), so the alerts they become are numbered alike
        # in every run.
        pl.concat([findings, missing, quality], how="diagonal_relaxed").sort(FINDING_ORDER),
        result,
        indicators,
        reported,
    )
