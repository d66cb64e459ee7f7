"""Missing data: when a period's data is due, and which expected partners have not reported by
then.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from ci_pipeline.detect.describe import described
from ci_pipeline.model.initiative import Initiative, Measure
from ci_pipeline.model.periods import Period


def due_date(measure: Measure, period: Period) -> date:
    """The day a period's data is due: the period's last day plus the measure's deadline."""
    year, month0 = divmod(period.end + 1, 12)
    return date(year, month0 + 1, 1) - timedelta(days=1) + timedelta(days=measure.deadline_days)


#: The longest list of a partner's places a missing-data alert is keyed by; a longer one (a
#: national partner's thousands of areas) would overflow a database index (PostgreSQL refuses
#: an index row over 8,191 bytes), so the alert names the places' nearest common ancestor.
MAX_PLACES_CHARS = 300


def where_missing(initiative: Initiative, localities: list[str]) -> str:
    """Where a partner's missing figures are: its places, comma-separated, or, when that list
    is longer than :data:`MAX_PLACES_CHARS`, the nearest geography they all lie in (their
    count when they share none)."""
    listed = ",".join(localities)
    if len(listed) <= MAX_PLACES_CHARS:
        return listed
    chains = [[code, *initiative.ancestors(code)] for code in localities]
    others = [set(chain) for chain in chains[1:]]
    common = next((g for g in chains[0] if all(g in o for o in others)), None)
    return common or f"{len(localities)} places"


def missing_data(
    reported: pl.DataFrame, initiative: Initiative, periods: dict[str, Period], as_of: date
) -> pl.DataFrame:
    """Expected partners with nothing accepted for a measure's judged period by its deadline.

    ``reported`` holds (partner_id, measure_id, period) of observations that count.
    """
    rows = []
    seen = set(reported.select("partner_id", "measure_id", "period").unique().iter_rows())
    for p in initiative.partners.values():
        for measure_id in p.measures:
            judged = periods.get(measure_id)
            if judged is None:
                continue
            m = initiative.measures[measure_id]
            due = due_date(m, judged)
            if as_of <= due or (p.id, measure_id, judged.label) in seen:
                continue
            rows.append(
                {
                    "kind": "missing",
                    "measure_id": measure_id,
                    "geo_code": where_missing(initiative, p.localities),
                    "disaggregation": m.total_key,
                    "period": judged.label,
                    "subject": p.id,
                    "value": None,
                    "reference": None,
                    "reference_period": due.isoformat(),
                    "change": None,
                    "statistic": float((as_of - due).days),
                    "p_value": None,
                    "partners_reported": None,
                    "partners_expected": None,
                    "coverage_note": "",
                    "folded": 0,
                    "message": "",
                }
            )
    return described(rows, initiative)
