"""Findings in words: a value as a coordinator reads it, and one sentence per finding with its
evidence.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from ci_pipeline.detect.findings import FINDING_SCHEMA, REGRESSIONS
from ci_pipeline.model.initiative import TOTAL, Initiative, Measure, Unit
from ci_pipeline.model.periods import is_period


def format_value(measure: Measure, value: float | None, digits: int = 0) -> str:
    """A value as a coordinator reads it: 31.2%, 1,250 people, 3.80, 250,000 NIS (``digits``
    more decimals where two values would otherwise read the same)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if measure.unit is Unit.proportion:
        return f"{value * 100:.{1 + digits}f}%"
    if measure.unit is Unit.score:
        return f"{value:.{2 + digits}f}"
    return f"{value:,.{digits}f} {measure.unit_label}"


def readable_headline(table: list[dict[str, Any]], initiative: Initiative) -> list[dict[str, Any]]:
    """The headline as an operator reads it: each value formatted with its measure's unit
    (31.2%, 1,250 people; a suppressed one —), counts without float noise."""
    return [
        {
            **row,
            "value": format_value(initiative.measures[row["measure_id"]], row["value"]),
            "numerator": _count(row["numerator"]),
            "denominator": _count(row["denominator"]),
        }
        for row in table
    ]


def _count(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def format_pair(measure: Measure, before: float | None, after: float | None) -> tuple[str, str]:
    """Two values with enough digits to show that they differ (never "from 2.3% to 2.3%")."""
    for digits in range(4):
        a, b = format_value(measure, before, digits), format_value(measure, after, digits)
        if a != b:
            break
    return a, b


def format_p(p: float | None) -> str:
    """A p-value as evidence: a bound below 0.0001, never "p = 0"."""
    if p is None or math.isnan(p):
        return "p unknown"
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.2g}"


def how_often(p: float | None) -> str:
    """A one-sided p-value in words: how often the series moves like this by chance."""
    if p is None or math.isnan(p) or p <= 0 or p < 0.0001:
        return "seen in fewer than 1 of 10,000 comparable periods"
    odds = 1 / p
    rounded = float(f"{odds:.2g}") if odds >= 10 else round(odds)
    return f"seen in about 1 of {rounded:,.0f} comparable periods"


def _span(measure: Measure, n: int) -> str:
    unit = str(measure.periodicity)
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _regression(f: dict[str, Any], m: Measure, subject: str, evidence: str) -> str:
    """The sentence of a step, sustained change or drift: what happened, then the evidence."""
    verb = "rose" if (f["change"] or 0) > 0 else "fell"
    ref, val = format_pair(m, f["reference"], f["value"])
    chance = how_often(f["raw_p"] if f.get("raw_p") is not None else f["p_value"])
    if f["kind"] == "drift" and not is_period(str(f["reference_period"])):
        text = (
            f"{subject} has drifted steadily away from what is usual for the time of year: "
            f"{val} in {f['period']} against {ref} expected from {f['reference_period']} "
            f"(a run this steady is {chance})"
        )
    elif f["kind"] == "drift":
        text = (
            f"{subject} has worsened steadily from {ref} in {f['reference_period']} to {val} in "
            f"{f['period']}, over {_span(m, f['span'] or 1)} (a run this steady is {chance})"
        )
    elif f["kind"] == "sustained":
        text = (
            f"{subject} {verb} from {ref} in {f['reference_period']} to {val} in {f['period']}, "
            f"over {_span(m, f['span'] or 1)}: a sustained move, more than this series usually "
            f"moves ({chance})"
        )
    elif is_period(str(f["reference_period"])):
        text = (
            f"{subject} {verb} from {ref} in {f['reference_period']} to {val} in {f['period']}: "
            f"more than this series usually moves ({chance})"
        )
    else:
        text = (
            f"{subject} {verb} to {val} in {f['period']} against {ref} expected from "
            f"{f['reference_period']}: more than this series usually moves ({chance})"
        )
    return f"{text}. Evidence: {evidence}"


def describe(findings: pl.DataFrame, initiative: Initiative) -> pl.Series:
    """One sentence per finding, for people: what moved, from what to what, over how long and
    how unusual that is; the test, its statistic and p-value follow as the evidence."""
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
        if f["kind"] in REGRESSIONS:
            adjusted = "" if f["kind"] == "drift" else "adjusted "
            evidence = f"{f['test']}; {adjusted}{format_p(f['p_value'])}; {coverage}{note}"
            out.append(_regression(f, m, f"{m.title} in {where}{breakdown}", evidence))
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
