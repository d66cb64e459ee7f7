"""Step, drift and off-track detection over the indicator table, for the judged period of each
measure (see the package docstring for the rules).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from ci_pipeline.detect import gaps
from ci_pipeline.detect.describe import described
from ci_pipeline.detect.findings import FINDING_SCHEMA, Candidate, fold
from ci_pipeline.detect.stats import (
    benjamini_hochberg,
    mann_kendall,
    poisson_p,
    prediction_p,
    robust_z,
    two_proportion_p,
    worse,
)
from ci_pipeline.model.initiative import Direction, Initiative, Measure, Unit
from ci_pipeline.model.periods import Period, parse_period, shift


def _series_tests(measure: Measure, series: pl.DataFrame, judged: Period) -> list[Candidate]:
    """Every test for one series (rows of one measure × geography × breakdown, by period)."""
    by_period = {row["period"]: row for row in series.iter_rows(named=True)}
    now = by_period.get(judged.label)
    if now is None or now["suppressed"] or now["value"] is None:
        return []
    a = measure.alert
    direction = measure.direction
    lagged = [  # (periods back, row) of the usable trailing history
        (k, by_period[p.label])
        for k, p in ((k, shift(judged, -k)) for k in range(1, 13))
        if p.label in by_period
        and not by_period[p.label]["suppressed"]
        and by_period[p.label]["value"] is not None
    ]
    history = [row for _, row in lagged]
    usual = (
        float(np.median([h["partners_reported"] for h in history]))
        if history
        else now["partners_reported"]
    )
    base = {
        "measure_id": measure.id,
        "geo_code": now["geo_code"],
        "disaggregation": now["disaggregation"],
        "period": judged.label,
        "partners_reported": now["partners_reported"],
        "partners_expected": now["partners_expected"],
        "usual_reported": usual,
    }
    out: list[Candidate] = []
    if len(history) < a.min_history:
        return out
    per_year = {"month": 12, "quarter": 4, "year": 1}[str(measure.periodicity)]
    comparisons = [("step", shift(judged, -1))]
    if a.seasonal and per_year > 1:  # for a yearly measure a year before is the step itself
        comparisons.append(("seasonal_step", shift(judged, -per_year)))
    for kind, ref_period in comparisons:
        ref = by_period.get(ref_period.label)
        if ref is None or ref["suppressed"] or ref["value"] is None:
            continue
        change = now["value"] - ref["value"]
        practical = worse(direction, change) and abs(change) >= a.min_change
        if measure.unit is Unit.proportion:
            z, p = two_proportion_p(
                ref["numerator"],
                ref["denominator"],
                now["numerator"],
                now["denominator"],
                direction,
            )
        elif measure.unit is Unit.count:
            z, p = poisson_p(ref["value"], now["value"], direction)
        else:
            # The step against the trailing history; the seasonal step against the same
            # period of the earlier years in it (not the same history again).
            pool = history if kind == "step" else [h for k, h in lagged if k % per_year == 0]
            values = np.array([h["value"] for h in pool], dtype=float)
            rz = robust_z(values, now["value"])
            if rz is None:
                continue
            z = rz
            # Beyond the robust control limit is necessary; the p-value the run-wide adjustment
            # and alpha act on is the prediction t-test's (a bare p = 0 beyond the limit would
            # escape both: with a few periods of history the limit alone fires far more often
            # than alpha, and more series would mean more false alarms).
            beyond = abs(rz) >= a.robust_z and worse(direction, rz)
            p = prediction_p(values, now["value"], direction) if beyond else 1.0
            change = now["value"] - float(np.median(values))
            practical = worse(direction, change) and abs(change) >= a.min_change
            out.append(
                Candidate(
                    kind=kind,
                    value=now["value"],
                    reference=float(np.median(values)),
                    reference_period=(
                        f"median of {len(values)} periods"
                        if kind == "step"
                        else f"median of the same {measure.periodicity} in {len(values)} earlier years"
                    ),
                    statistic=z,
                    p_value=p,
                    practical=practical,
                    **base,
                )
            )
            continue
        out.append(
            Candidate(
                kind=kind,
                value=now["value"],
                reference=ref["value"],
                reference_period=ref_period.label,
                statistic=z,
                p_value=p,
                practical=practical,
                **base,
            )
        )
    window = [shift(judged, -k) for k in range(a.drift_periods - 1, -1, -1)]
    if all(
        p.label in by_period
        and not by_period[p.label]["suppressed"]
        and by_period[p.label]["value"] is not None
        for p in window
    ):
        values = np.array([by_period[p.label]["value"] for p in window], dtype=float)
        z, slope = mann_kendall(values)
        total_change = slope * (len(values) - 1)
        p = stats.norm.cdf(z) if direction is Direction.higher_is_better else stats.norm.sf(z)
        out.append(
            Candidate(
                kind="drift",
                value=now["value"],
                reference=float(values[0]),
                reference_period=window[0].label,
                statistic=z,
                p_value=float(p),
                practical=worse(direction, total_change) and abs(total_change) >= a.min_change,
                **base,
            )
        )
    return out


def judged_periods(
    indicators: pl.DataFrame, initiative: Initiative, period: str | None = None
) -> dict[str, Period]:
    """The period judged for each measure: the latest period of its periodicity that any
    measure has data for (so a measure nobody reported is still judged, and found missing),
    or the latest inside ``period`` when given."""
    span = parse_period(period) if period else None
    latest: dict[str, Period] = {}
    for label in indicators["period"].unique().to_list():
        p = parse_period(label)
        if (span is None or span.contains(p)) and (
            p.periodicity not in latest or latest[p.periodicity] < p
        ):
            latest[p.periodicity] = p
    return {
        m.id: latest[m.periodicity] for m in initiative.measures.values() if m.periodicity in latest
    }


def detect(
    indicators: pl.DataFrame, initiative: Initiative, periods: dict[str, Period]
) -> pl.DataFrame:
    """Step, drift and off-track findings for the judged period of each measure, on every
    indicator series and every equity gap series."""
    candidates: list[Candidate] = []
    for (measure_id, _geo, _disagg), series in indicators.group_by(
        ["measure_id", "geo_code", "disaggregation"]
    ):
        m = initiative.measures.get(str(measure_id))
        if m is None or str(measure_id) not in periods:
            continue
        candidates += _series_tests(m, series, periods[str(measure_id)])
    # --- equity gaps (ci_pipeline.detect.gaps): the gap series between the groups the
    # initiative tracks, judged by the same per-series tests and adjusted with the rest; their
    # sentences name both groups and both values.
    gap_rows = gaps.gap_series(indicators, initiative)
    candidates += gaps.judge_gaps(gap_rows, initiative, periods, _series_tests)
    findings = gaps.describe_gaps(_significant(candidates, initiative), gap_rows, initiative)
    # --- end of equity gaps
    off = off_track(indicators, initiative, periods)
    return fold(pl.concat([findings, off], how="diagonal_relaxed"), initiative)


def _significant(candidates: list[Candidate], initiative: Initiative) -> pl.DataFrame:
    if not candidates:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    # Steps are adjusted across the run (Benjamini–Hochberg); Mann–Kendall over a short window
    # is already conservative (six periods need a perfectly monotone run to reach p < 0.01).
    p = np.array([c.p_value for c in candidates])
    steps = np.array([c.kind != "drift" for c in candidates])
    q = p.copy()
    q[steps] = benjamini_hochberg(p[steps])
    rows = []
    for c, qv in zip(candidates, q, strict=True):
        m = initiative.measures[c.measure_id]
        if not c.practical or qv >= m.alert.alpha:
            continue
        rows.append(
            {
                "kind": c.kind,
                "measure_id": c.measure_id,
                "geo_code": c.geo_code,
                "disaggregation": c.disaggregation,
                "period": c.period,
                "subject": "",
                "value": c.value,
                "reference": c.reference,
                "reference_period": c.reference_period,
                "change": c.value - c.reference,
                "statistic": c.statistic,
                "p_value": float(qv),
                "partners_reported": c.partners_reported,
                "partners_expected": c.partners_expected,
                "coverage_note": (
                    f"judged on lower coverage than usual ({c.partners_reported} partners; usually {c.usual_reported:g})"
                    if c.partners_reported < c.usual_reported
                    else ""
                ),
                "folded": 0,
                "message": "",
            }
        )
    return described(rows, initiative)


def off_track(
    indicators: pl.DataFrame, initiative: Initiative, periods: dict[str, Period]
) -> pl.DataFrame:
    """The headline (root geography, all totals) behind the baseline → target path."""
    roots = [g.code for g in initiative.geographies.values() if g.parent is None]
    rows = []
    for measure_id, judged in periods.items():
        m = initiative.measures[measure_id]
        if m.baseline is None or m.target is None:
            continue
        b, t = parse_period(m.baseline.period), parse_period(m.target.period)
        if not (b < judged <= t):
            continue
        planned = m.target.value - m.baseline.value
        expected = m.baseline.value + planned * (judged.start - b.start) / (t.start - b.start)
        for geo in roots:
            cell = indicators.filter(
                (pl.col("measure_id") == measure_id)
                & (pl.col("geo_code") == geo)
                & (pl.col("period") == judged.label)
                & (pl.col("disaggregation") == m.total_key)
            )
            if cell.is_empty() or cell["suppressed"][0] or cell["value"][0] is None:
                continue
            value = float(cell["value"][0])
            gap = (
                (expected - value)
                if m.direction is Direction.higher_is_better
                else (value - expected)
            )
            if gap <= m.alert.off_track_tolerance * abs(planned):
                continue
            progress = (
                (value - m.baseline.value) / (expected - m.baseline.value)
                if expected != m.baseline.value
                else float("nan")
            )
            rows.append(
                {
                    "kind": "off_track",
                    "measure_id": measure_id,
                    "geo_code": geo,
                    "disaggregation": m.total_key,
                    "period": judged.label,
                    "subject": "",
                    "value": value,
                    "reference": expected,
                    "reference_period": f"path {m.baseline.period}→{m.target.period}",
                    "change": value - expected,
                    "statistic": progress,
                    "p_value": None,
                    "partners_reported": int(cell["partners_reported"][0]),
                    "partners_expected": int(cell["partners_expected"][0]),
                    "coverage_note": "",
                    "folded": 0,
                    "message": "",
                }
            )
    return described(rows, initiative)
