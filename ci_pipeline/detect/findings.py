"""What a detector finds, and folding: one alert for the cells one regression explains
(the breakdown codes of a locality whose total regressed, a cluster whose locality did).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ci_pipeline.model.initiative import Initiative

GAP_PREFIX = "gap:"  # the breakdown key of an equity gap series (ci_pipeline.detect.gaps)


def is_gap(disaggregation: str | None) -> bool:
    """Whether a breakdown key is an equity gap series' (``gap:<pair id>``), never a real cell's."""
    return bool(disaggregation) and str(disaggregation).startswith(GAP_PREFIX)


FINDING_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "kind": pl.Utf8,
    "measure_id": pl.Utf8,
    "geo_code": pl.Utf8,
    "disaggregation": pl.Utf8,
    "period": pl.Utf8,
    "subject": pl.Utf8,  # the late partner, for missing data; "" otherwise
    "value": pl.Float64,
    "reference": pl.Float64,  # what the value is compared with
    "reference_period": pl.Utf8,
    "change": pl.Float64,
    "statistic": pl.Float64,
    "p_value": pl.Float64,  # adjusted across the run where the test's are
    "raw_p": pl.Float64,  # the test's own p-value: how often a move like it comes by chance
    "test": pl.Utf8,  # the test and expectation behind the finding, for the evidence
    "span": pl.Int64,  # periods the change spans (1: this period against the one expected)
    "partners_reported": pl.Int64,
    "partners_expected": pl.Int64,
    "coverage_note": pl.Utf8,
    "folded": pl.Int64,  # related cells this finding explains
    "message": pl.Utf8,
}


KINDS = ("step", "seasonal_step", "sustained", "drift", "off_track", "missing")

#: Alert kinds as the backbone reads them, most severe first (the order digests and alert
#: messages list them in).
KIND_LABELS = {
    "quality": "quality gate",
    "step": "regression",
    "seasonal_step": "regression (vs a year before)",
    "sustained": "sustained regression",
    "drift": "sustained drift",
    "off_track": "off track",
    "missing": "missing data",
}

#: The kinds that say a series regressed (one episode of a series, whatever finds it).
REGRESSIONS = ("step", "seasonal_step", "sustained", "drift")


@dataclass(frozen=True)
class Candidate:
    """One test's outcome before the run-wide adjustment."""

    kind: str
    measure_id: str
    geo_code: str
    disaggregation: str
    period: str
    value: float
    reference: float
    reference_period: str
    statistic: float
    p_value: float
    test: str
    span: int
    practical: bool  # the change is at least the measure's min_change, in the bad direction
    partners_reported: int
    partners_expected: int
    usual_reported: float
    adjusted: bool = True  # shares alpha with the series' other tests, adjusted across the run


def fold(findings: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """Keep the alert that explains the others: a locality's total over its breakdown codes,
    a locality over the cluster it belongs to."""
    if findings.is_empty():
        return findings
    totals = {m.id: m.total_key for m in initiative.measures.values()}
    parent = {g.code: g.parent for g in initiative.geographies.values()}
    keys = set(
        findings.select("kind", "measure_id", "geo_code", "disaggregation", "period").iter_rows()
    )
    explains: dict[tuple[str, ...], tuple[str, ...]] = {}  # folded finding -> the one above it
    for row in findings.iter_rows(named=True):
        k, m, g, d, p = (
            row["kind"],
            row["measure_id"],
            row["geo_code"],
            row["disaggregation"],
            row["period"],
        )
        explained_by = None
        if k == "off_track":  # a regression below the headline explains why it is off track
            # Only a headline-level regression: the cluster's or one of its localities' total.
            causes = [
                key
                for key in keys
                if key[0] in REGRESSIONS
                and key[1] == m
                and key[4] == p
                and key[3] == totals[m]
                and (key[2] == g or parent.get(key[2]) == g)
            ]
            if causes:
                explained_by = sorted(causes)[0]
        elif k in REGRESSIONS and (
            above := next(
                (
                    (s, m, g, d, p)
                    for s in REGRESSIONS[: REGRESSIONS.index(k)]
                    if (s, m, g, d, p) in keys
                ),
                None,
            )
        ):
            # The same series regressed this period by another test too: one finding says it,
            # the first of REGRESSIONS (a step's evidence is the most direct).
            explained_by = above
        elif d != totals[m] and not is_gap(d) and (k, m, g, totals[m], p) in keys:
            # (A gap is not explained by its geography's total moving: both groups can.)
            explained_by = (k, m, g, totals[m], p)
        else:
            children = [c for c, par in parent.items() if par == g]
            hits = [(k, m, c, d, p) for c in children if (k, m, c, d, p) in keys]
            if hits:
                explained_by = hits[0]
        if explained_by is not None:
            explains[(k, m, g, d, p)] = explained_by
    # Count each folded finding once, on the finding that is kept at the end of its chain (a
    # cluster's breakdown folds into the cluster, which folds into the locality).
    folded_into: dict[tuple[str, ...], int] = {}
    for key in explains:
        top, seen = key, {key}
        while top in explains and explains[top] not in seen:
            top = explains[top]
            seen.add(top)
        folded_into[top] = folded_into.get(top, 0) + 1
    keep = [
        key not in explains
        for key in findings.select(
            "kind", "measure_id", "geo_code", "disaggregation", "period"
        ).iter_rows()
    ]
    kept = findings.filter(pl.Series(keep))
    counts = [
        folded_into.get(key, 0)
        for key in kept.select(
            "kind", "measure_id", "geo_code", "disaggregation", "period"
        ).iter_rows()
    ]
    return kept.with_columns(pl.Series("folded", counts, dtype=pl.Int64))
