"""Findings in words: a value as a coordinator reads it, and one sentence per finding with its
evidence.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from ci_pipeline.detect.findings import FINDING_SCHEMA
from ci_pipeline.model.initiative import TOTAL, Initiative, Measure, Unit


def format_value(measure: Measure, value: float | None) -> str:
    """A value as a coordinator reads it: 31.2%, 1,250 people, 3.8 of 5, 250,000 NIS."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if measure.unit is Unit.proportion:
        return f"{value * 100:.1f}%"
    if measure.unit is Unit.score:
        return f"{value:.2f}"
    if measure.unit is Unit.amount:
        return f"{value:,.0f} {measure.unit_label}"
    return f"{value:,.0f}"


def describe(findings: pl.DataFrame, initiative: Initiative) -> pl.Series:
    """One sentence per finding, with its evidence."""
    names = {g.code: g.name.en for g in initiative.geographies.values()}
    out = []
    for f in findings.iter_rows(named=True):
        m = initiative.measures[f["measure_id"]]
        where = names.get(f["geo_code"], f["geo_code"])
        breakdown = (
            ""
            if f["disaggregation"] in (TOTAL, m.total_key)
            else f" ({f['disaggregation'].replace(';', ', ')})"
        )
        coverage = (
            f"{f['partners_reported']} of {f['partners_expected']} partners reported"
            if f["partners_expected"]
            else ""
        )
        note = f"; {f['coverage_note']}" if f["coverage_note"] else ""
        verb = "rose" if (f["change"] or 0) > 0 else "fell"
        if f["kind"] in ("step", "seasonal_step"):
            if f["reference_period"].startswith("median"):
                evidence = f"{f['period']} vs the {f['reference_period']}, modified z = {f['statistic']:.1f}, limit {m.alert.robust_z:g}, adjusted p = {f['p_value']:.2g}"
                text = f"{m.title} in {where}{breakdown} {verb} to {format_value(m, f['value'])} from a usual {format_value(m, f['reference'])}"
            else:
                evidence = (
                    f"{f['period']} vs {f['reference_period']}, adjusted p = {f['p_value']:.2g}"
                )
                text = f"{m.title} in {where}{breakdown} {verb} from {format_value(m, f['reference'])} to {format_value(m, f['value'])}"
            out.append(f"{text} ({evidence}; {coverage}{note})")
        elif f["kind"] == "drift":
            out.append(
                f"{m.title} in {where}{breakdown} has worsened steadily from {format_value(m, f['reference'])} "
                f"({f['reference_period']}) to {format_value(m, f['value'])} ({f['period']}) "
                f"(Mann–Kendall z = {f['statistic']:.2f}, p = {f['p_value']:.2g}; {coverage}{note})"
            )
        elif f["kind"] == "off_track":
            out.append(
                f"{m.title} in {where} is off track: {format_value(m, f['value'])} in {f['period']} against "
                f"{format_value(m, f['reference'])} expected on the way from {format_value(m, m.baseline.value if m.baseline else None)} "
                f"({m.baseline.period if m.baseline else ''}) to the target {format_value(m, m.target.value if m.target else None)} "
                f"({m.target.period if m.target else ''})"
            )
        else:
            partner = initiative.partners[f["subject"]]
            out.append(
                f"{partner.name} has not reported {m.title} for {f['period']}; it was due on "
                f"{f['reference_period']} ({int(f['statistic'])} day{'' if int(f['statistic']) == 1 else 's'} ago)"
            )
    return pl.Series("message", out, dtype=pl.Utf8)


def described(rows: list[dict[str, Any]], initiative: Initiative) -> pl.DataFrame:
    """Findings (rows in :data:`FINDING_SCHEMA`'s columns) as a frame, each with its sentence."""
    frame = (
        pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else pl.DataFrame(schema=FINDING_SCHEMA)
    )
    return frame.with_columns(message=describe(frame, initiative))
