"""Equity gaps: the gap between two groups the initiative tracks (Arab and Jewish localities,
women and men, age bands) is an indicator too, and it widening is a regression even when every
group improves.

For each pair in ``initiative.yaml``'s ``equity_gaps`` and each proportion or score it applies
to, :func:`gap_series` derives a series shaped like indicator rows:

- a **group of localities** (``geographies.yaml``: ``groups``) is one figure per geography above
  its members: for proportions the ratio of sums (Σ numerators / Σ denominators over the
  group's localities, never an average of rates), for scores the respondent-weighted mean; a
  **breakdown pair** compares two codes of one dimension (the others at ``total``) in each
  geography, cell by cell.
- the gap is **oriented** so that larger is a wider gap the bad way: ``ahead - behind`` for a
  measure where higher is better, ``behind - ahead`` where lower is better. Its rows carry
  ``direction = lower_is_better`` semantics (see :func:`gap_measure`).
- its **sampling variance** is a column: ``var_ahead + var_behind``, each ``p (1 - p) / n`` for a
  proportion (``n`` the group's denominator); null for scores, whose cells carry no spread.
  The tests that use it as a shape can; those of today judge the series against its history.
- a gap is **suppressed** when either side is: a breakdown cell that is suppressed, or a group
  with any member locality's cell suppressed or absent in that period (a group summed without
  a suppressed member would let the cluster's total minus the groups reveal it; a group missing
  a member would move because its membership did). A suppressed gap has no values at all.
- rows are keyed ``disaggregation = "gap:<pair id>"`` — a key no real cell has (real keys are
  ``total`` or ``dim=code``) — and ``geo_code`` the geography the gap is measured in, so alerts
  are keyed stably, by the id the initiative gave the pair.

:func:`judge_gaps` runs the per-series tests :func:`~ci_pipeline.detect.detectors.detect` uses on
every gap series; the findings keep the regression kinds (``step``, ``drift``…) because a
widening gap *is* a regression of the initiative's agenda: alerts, events, digests and the
lifecycle treat it as one, and the ``gap:`` key tells it apart. :func:`describe_gaps` words
their sentences, naming both groups and both values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from ci_pipeline.detect.describe import format_p, format_value, how_often
from ci_pipeline.detect.findings import GAP_PREFIX, Candidate, is_gap
from ci_pipeline.model.initiative import (
    TOTAL,
    Direction,
    EquityGap,
    Initiative,
    Measure,
    Unit,
)
from ci_pipeline.model.periods import Period, is_period

#: The units a gap is derived for: rates. A difference of counts or amounts between groups of
#: different sizes says how big the groups are, not how far apart.
GAP_UNITS = (Unit.proportion, Unit.score)

#: The gap series' columns: the indicator columns the per-series tests read, and the gap's own.
GAP_SCHEMA: dict[str, Any] = {
    "measure_id": pl.Utf8,
    "geo_code": pl.Utf8,
    "period": pl.Utf8,
    "disaggregation": pl.Utf8,  # gap:<pair id>
    "value": pl.Float64,  # the oriented gap: larger is wider the bad way
    "numerator": pl.Float64,  # always null: a difference of rates has none
    "denominator": pl.Float64,
    "suppressed": pl.Boolean,
    "partners_reported": pl.Int64,  # the fewer of the two sides'
    "partners_expected": pl.Int64,  # the more of the two sides'
    "variance": pl.Float64,  # sampling variance of the gap (var_ahead + var_behind), or null
    "ahead_value": pl.Float64,
    "behind_value": pl.Float64,
}

_SIDE_SCHEMA: dict[str, Any] = {
    "measure_id": pl.Utf8,
    "geo_code": pl.Utf8,
    "period": pl.Utf8,
    "gap_id": pl.Utf8,
    "side": pl.Utf8,
    "value": pl.Float64,
    "denominator": pl.Float64,
    "usable": pl.Boolean,
    "partners_reported": pl.Int64,
    "partners_expected": pl.Int64,
}


def gap_key(gap_id: str) -> str:
    """The breakdown key of a pair's gap series."""
    return f"{GAP_PREFIX}{gap_id}"


def applies(gap: EquityGap, measure: Measure) -> bool:
    """Whether the pair's gap is tracked on this measure."""
    if measure.unit not in GAP_UNITS or (gap.measures and measure.id not in gap.measures):
        return False
    if gap.dimension is None:
        return True
    codes = measure.dimensions.get(gap.dimension, [])
    return gap.ahead.group in codes and gap.behind.group in codes


def breakdown_key(measure: Measure, dimension: str, code: str) -> str:
    """The key of the cell with ``dimension`` at ``code`` and every other dimension at total
    (the shape :func:`ci_pipeline.aggregate.rollup.join_disaggregation` writes)."""
    return ";".join(f"{d}={code if d == dimension else TOTAL}" for d in sorted(measure.dimensions))


def gap_measure(measure: Measure) -> Measure:
    """The measure as the per-series tests see one of its gap series.

    Lower is better (a wider gap is worse), and it is judged as scores are, against its own
    trailing history (robust limits and the prediction test; Mann–Kendall for drift): a
    difference of two rates has no numerator and denominator for a two-proportion test. The
    alert parameters (``min_change``, ``alpha``, windows) are the measure's, in its unit — a
    gap of proportions moves in proportion points. Not validated again: the copy is only ever
    handed to the tests.
    """
    return measure.model_copy(update={"unit": Unit.score, "direction": Direction.lower_is_better})


def _usable(unit: pl.Expr) -> pl.Expr:
    """A cell that may be counted in a gap: published, with a value and (for rates) a base."""
    return (
        ~pl.col("suppressed").fill_null(True)
        & pl.col("value").is_not_null()
        & pl.col("denominator").fill_null(0).gt(0)
        & (unit.ne(Unit.proportion.value) | pl.col("numerator").is_not_null())
    )


def _pairs_table(initiative: Initiative) -> pl.DataFrame:
    """(measure_id, gap_id, side, group, disaggregation, dimension?): which cells feed which side."""
    rows = []
    for gap in initiative.info.equity_gaps:
        for m in initiative.measures.values():
            if not applies(gap, m):
                continue
            for side, group in (("ahead", gap.ahead.group), ("behind", gap.behind.group)):
                key = (
                    m.total_key if gap.dimension is None else breakdown_key(m, gap.dimension, group)
                )
                rows.append((m.id, gap.id, side, group, key, gap.dimension is None))
    return pl.DataFrame(
        rows,
        schema={
            "measure_id": pl.Utf8,
            "gap_id": pl.Utf8,
            "side": pl.Utf8,
            "group": pl.Utf8,
            "disaggregation": pl.Utf8,
            "of_localities": pl.Boolean,
        },
        orient="row",
    )


def _members(initiative: Initiative) -> pl.DataFrame:
    """(geo_code, group, target_geo): each grouped locality counts towards its groups in every
    geography above it."""
    rows = [
        (g.code, group, above)
        for g in initiative.geographies.values()
        for group in g.groups
        for above in initiative.ancestors(g.code)
    ]
    return pl.DataFrame(
        rows,
        schema={"geo_code": pl.Utf8, "group": pl.Utf8, "target_geo": pl.Utf8},
        orient="row",
    )


def _side_cells(indicators: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """One row per measure × geography × period × pair × side: the side's figure, its base,
    and whether it may be used."""
    pairs = _pairs_table(initiative)
    if pairs.is_empty() or indicators.is_empty():
        return pl.DataFrame(schema=_SIDE_SCHEMA)
    units = {m.id: m.unit.value for m in initiative.measures.values()}
    cells = indicators.join(pairs, on=["measure_id", "disaggregation"], how="inner").with_columns(
        unit=pl.col("measure_id").replace_strict(units, return_dtype=pl.Utf8)
    )
    cells = cells.with_columns(usable=_usable(pl.col("unit")))

    # Breakdown pairs: the cell is the side's figure, in the geography it belongs to.
    coded = cells.filter(~pl.col("of_localities")).select(list(_SIDE_SCHEMA))

    # Groups of localities: sums over the members, in each geography above them. A group is
    # usable in a period only if every locality that ever reported the measure in it is there
    # and published that period.
    grouped = cells.filter(pl.col("of_localities")).join(
        _members(initiative), on=["geo_code", "group"], how="inner"
    )
    key = ["measure_id", "target_geo", "gap_id", "side"]
    ever = grouped.group_by(key).agg(pl.col("geo_code").n_unique().alias("members"))
    use = pl.col("usable")
    summed = (
        grouped.group_by([*key, "period"])
        .agg(
            pl.col("unit").first(),
            use.sum().alias("used"),
            pl.col("numerator").filter(use).sum().alias("numerator"),
            pl.col("denominator").filter(use).sum().alias("denominator"),
            (pl.col("value") * pl.col("denominator")).filter(use).sum().alias("weighted"),
            pl.col("partners_reported").min(),
            pl.col("partners_expected").max(),
        )
        .join(ever, on=key, how="inner")
    )
    groups = summed.select(
        "measure_id",
        pl.col("target_geo").alias("geo_code"),
        "period",
        "gap_id",
        "side",
        pl.when(pl.col("unit") == Unit.proportion.value)
        .then(pl.col("numerator") / pl.col("denominator"))
        .otherwise(pl.col("weighted") / pl.col("denominator"))
        .alias("value"),
        "denominator",
        (pl.col("used") == pl.col("members")).alias("usable"),
        "partners_reported",
        "partners_expected",
    )
    return pl.concat([coded, groups]).cast(_SIDE_SCHEMA)  # type: ignore[arg-type]


def gap_series(indicators: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """Every gap series of the initiative's ``equity_gaps``, in :data:`GAP_SCHEMA` (see the
    module docstring for the rules). ``indicators`` is the stored indicator table."""
    sides = _side_cells(indicators, initiative)
    if sides.is_empty():
        return pl.DataFrame(schema=GAP_SCHEMA)
    units = {m.id: m.unit.value for m in initiative.measures.values()}
    sign = {
        m.id: 1.0 if m.direction is Direction.higher_is_better else -1.0
        for m in initiative.measures.values()
    }
    key = ["measure_id", "geo_code", "period", "gap_id"]
    variance = pl.when(pl.col("measure_id").replace_strict(units) == Unit.proportion.value).then(
        pl.col("value") * (1 - pl.col("value")) / pl.col("denominator")
    )
    per_side = sides.with_columns(variance.alias("variance"))
    ahead = per_side.filter(pl.col("side") == "ahead").drop("side")
    behind = per_side.filter(pl.col("side") == "behind").drop("side")
    both = ahead.join(behind, on=key, how="inner", suffix="_behind")
    ok = pl.col("usable") & pl.col("usable_behind")

    def hidden(expr: pl.Expr) -> pl.Expr:  # nothing of a suppressed gap shows
        return pl.when(ok).then(expr)

    return (
        both.select(
            "measure_id",
            "geo_code",
            "period",
            (pl.lit(GAP_PREFIX) + pl.col("gap_id")).alias("disaggregation"),
            hidden(
                pl.col("measure_id").replace_strict(sign, return_dtype=pl.Float64)
                * (pl.col("value") - pl.col("value_behind"))
            ).alias("value"),
            pl.lit(None, pl.Float64).alias("numerator"),
            pl.lit(None, pl.Float64).alias("denominator"),
            (~ok).alias("suppressed"),
            pl.min_horizontal("partners_reported", "partners_reported_behind").alias(
                "partners_reported"
            ),
            pl.max_horizontal("partners_expected", "partners_expected_behind").alias(
                "partners_expected"
            ),
            hidden(pl.col("variance") + pl.col("variance_behind")).alias("variance"),
            hidden(pl.col("value")).alias("ahead_value"),
            hidden(pl.col("value_behind")).alias("behind_value"),
        )
        .cast(GAP_SCHEMA)  # type: ignore[arg-type]
        .sort("measure_id", "geo_code", "disaggregation", "period")
    )


#: The per-series test :func:`judge_gaps` runs: (measure, one series' rows, judged period) →
#: candidates. ``detect()`` hands in its own, so gaps are judged exactly as cells are.
SeriesTest = Callable[[Measure, pl.DataFrame, Period], list[Candidate]]


def judge_gaps(
    gaps: pl.DataFrame,
    initiative: Initiative,
    periods: dict[str, Period],
    test: SeriesTest,
) -> list[Candidate]:
    """``test`` on every gap series of a judged measure, each as :func:`gap_measure` sees it."""
    out: list[Candidate] = []
    for (measure_id, _geo, _key), series in gaps.group_by(
        ["measure_id", "geo_code", "disaggregation"]
    ):
        if str(measure_id) in periods:
            m = initiative.measures[str(measure_id)]
            out += test(gap_measure(m), series, periods[str(measure_id)])
    return out


def _gap_of(initiative: Initiative, key: str) -> EquityGap:
    return next(g for g in initiative.info.equity_gaps if gap_key(g.id) == key)


def _points(measure: Measure, gap: float | None) -> str:
    """A gap as a coordinator reads it: 12.0 points (proportions), 0.40 (scores)."""
    if gap is None:
        return "—"
    return f"{gap * 100:.1f} points" if measure.unit is Unit.proportion else f"{gap:.2f}"


def gap_sentence(
    finding: dict[str, Any],
    initiative: Initiative,
    now: tuple[float | None, float | None],
    then: tuple[float | None, float | None] | None,
) -> str:
    """One gap finding in words, naming both groups and both values.

    ``now`` is (ahead, behind) in the judged period; ``then`` the same in the reference period
    when the finding compares with one (None when it compares with a median of history).
    """
    m = initiative.measures[finding["measure_id"]]
    gap = _gap_of(initiative, finding["disaggregation"])
    names = {g.code: g.name.en for g in initiative.geographies.values()}
    where = names.get(finding["geo_code"], finding["geo_code"])
    a, b = gap.ahead.name.en, gap.behind.name.en

    def group(name: str, value: float | None, before: float | None) -> str:
        was = f" (from {format_value(m, before)})" if then is not None else ""
        return f"{name} {format_value(m, value)}{was}"

    values = (
        f"{group(a, now[0], then[0] if then else None)}, "
        f"{group(b, now[1], then[1] if then else None)}"
    )
    coverage = (
        f"; {finding['partners_reported']} of {finding['partners_expected']} partners reported"
        if finding["partners_expected"]
        else ""
    )
    note = f"; {finding['coverage_note']}" if finding["coverage_note"] else ""
    subject = f"The gap in {m.title} between {a} and {b} in {where}"
    chance = how_often(
        finding.get("raw_p") if finding.get("raw_p") is not None else finding["p_value"]
    )
    test = finding.get("test") or f"z = {finding['statistic']:.2f}"
    # People first (what widened, from what to what, both groups' values), the test after.
    if finding["kind"] == "drift":
        return (
            f"{subject} has widened steadily from {_points(m, finding['reference'])} in "
            f"{finding['reference_period']} to {_points(m, finding['value'])} in "
            f"{finding['period']}: {values} (a run this steady is {chance}). "
            f"Evidence: {test}; {format_p(finding['p_value'])}{coverage}{note}"
        )
    against = (
        finding["reference_period"] if then is not None else f"the {finding['reference_period']}"
    )
    return (
        f"{subject} widened from {'' if then is not None else 'a usual '}"
        f"{_points(m, finding['reference'])} to {_points(m, finding['value'])} in "
        f"{finding['period']}: {values}; more than this gap usually moves ({chance}). "
        f"Evidence: {test}, against {against}; adjusted {format_p(finding['p_value'])}"
        f"{coverage}{note}"
    )


def describe_gaps(
    findings: pl.DataFrame, gaps: pl.DataFrame, initiative: Initiative
) -> pl.DataFrame:
    """The findings, with each gap finding's sentence (:func:`gap_sentence`) in ``message``;
    other findings as they were. ``gaps`` is :func:`gap_series`'s frame the findings came from."""
    if findings.is_empty() or not findings["disaggregation"].str.starts_with(GAP_PREFIX).any():
        return findings
    values = {
        (r["measure_id"], r["geo_code"], r["disaggregation"], r["period"]): (
            r["ahead_value"],
            r["behind_value"],
        )
        for r in gaps.filter(~pl.col("suppressed")).iter_rows(named=True)
    }
    messages = []
    for f in findings.iter_rows(named=True):
        if not is_gap(f["disaggregation"]):
            messages.append(f["message"])
            continue
        series = (f["measure_id"], f["geo_code"], f["disaggregation"])
        now = values.get((*series, f["period"]), (None, None))
        then = (
            values.get((*series, f["reference_period"]))
            if is_period(str(f["reference_period"]))
            else None
        )
        messages.append(gap_sentence(f, initiative, now, then))
    return findings.with_columns(pl.Series("message", messages, dtype=pl.Utf8))
