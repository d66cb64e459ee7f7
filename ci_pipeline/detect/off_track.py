"""Off track: the initiative's headline behind the straight path from a measure's baseline to
its target (the one finding judged against a plan rather than against the series' history)."""

from __future__ import annotations

import polars as pl

from ci_pipeline.detect.describe import described
from ci_pipeline.model.initiative import Direction, Initiative
from ci_pipeline.model.periods import Period, parse_period


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
        expected = m.on_path(judged)
        assert expected is not None  # b < judged <= t
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
