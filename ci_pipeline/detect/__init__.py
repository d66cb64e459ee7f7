"""Regression detection: is an indicator moving the wrong way beyond noise?

Pure functions over the indicator table (one row per measure × geography × breakdown ×
period). For each series, direction-aware and with each measure's own ``alert`` parameters:

- **step** — the judged period against the one before (and, for seasonal measures, against
  the same period a year before), by a test that fits the unit: a two-proportion z-test for
  proportions; an exact conditional (binomial) test for counts, which are Poisson; robust
  control limits (median and MAD, modified z-score) over trailing history for scores and
  amounts, where a value beyond the limit also needs the prediction t-test's p-value (so alpha
  and the run-wide adjustment apply to them too). A minimum history comes first, and a minimum
  practical change keeps significant-but-trivial moves quiet.
- **drift** — a sustained worsening over the last ``drift_periods`` periods that no single step
  flags: Mann–Kendall's trend test with Sen's slope.
- **off_track** — the cluster's headline value is behind the straight path from the measure's
  baseline to its target by more than ``off_track_tolerance`` of the whole planned change.
- **missing** — an expected partner has not reported by the measure's deadline
  (:func:`missing_data`).

Step p-values are adjusted across every step test of a run (Benjamini–Hochberg), so the
number of series does not multiply false alarms; drift needs a run that is monotone or nearly. Suppressed cells are not judged (their values
are never shown). Findings on cells that one alert explains — the breakdown codes of a
locality whose total regressed, a cluster whose locality regressed — are folded into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import stats

from ci_pipeline.model.initiative import TOTAL, Direction, Initiative, Measure, Unit
from ci_pipeline.model.periods import Period, parse_period, shift

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
    "p_value": pl.Float64,
    "partners_reported": pl.Int64,
    "partners_expected": pl.Int64,
    "coverage_note": pl.Utf8,
    "folded": pl.Int64,  # related cells this finding explains
    "message": pl.Utf8,
}
KINDS = ("step", "seasonal_step", "drift", "off_track", "missing")
MAD_SCALE = 0.6745  # modified z-score (Iglewicz & Hoaglin)
MEAN_AD_SCALE = 1.253314  # their fallback when the MAD is zero


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
    practical: bool  # the change is at least the measure's min_change, in the bad direction
    partners_reported: int
    partners_expected: int
    usual_reported: float


# --- the tests ----------------------------------------------------------------------------------


def worse(direction: Direction, change: float) -> bool:
    """Whether a change is in the wrong direction for the measure."""
    return change < 0 if direction is Direction.higher_is_better else change > 0


def two_proportion_p(
    n1: float, d1: float, n2: float, d2: float, direction: Direction
) -> tuple[float, float]:
    """One-sided p-value that proportion 2 is worse than proportion 1, and the z statistic."""
    pooled = (n1 + n2) / (d1 + d2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / d1 + 1 / d2))
    if se == 0:
        return 0.0, 1.0
    z = (n2 / d2 - n1 / d1) / se
    p = stats.norm.cdf(z) if direction is Direction.higher_is_better else stats.norm.sf(z)
    return z, float(p)


def poisson_p(c1: float, c2: float, direction: Direction) -> tuple[float, float]:
    """Exact conditional test for two Poisson counts: given c1 + c2, c2 ~ Binomial(n, 1/2)."""
    n = round(c1 + c2)
    k = round(c2)
    if n == 0:
        return 0.0, 1.0
    if direction is Direction.higher_is_better:
        p = stats.binom.cdf(k, n, 0.5)
    else:
        p = stats.binom.sf(k - 1, n, 0.5)
    z = (k - n / 2) / math.sqrt(n / 4)
    return z, float(p)


def robust_z(history: np.ndarray, x: float) -> float | None:
    """Modified z-score of ``x`` against history; None where history has no spread."""
    median = float(np.median(history))
    mad = float(np.median(np.abs(history - median)))
    if mad > 0:
        return MAD_SCALE * (x - median) / mad
    mean_ad = float(np.mean(np.abs(history - median)))
    if mean_ad > 0:
        return (x - median) / (MEAN_AD_SCALE * mean_ad)
    return None


def prediction_p(history: np.ndarray, x: float, direction: Direction) -> float:
    """One-sided p-value that ``x`` is worse than a new draw from the history's population:
    the prediction-interval t-test, exact for normal noise (``t = (x - mean) / (s * sqrt(1 +
    1/n))`` on ``n - 1`` degrees of freedom)."""
    n = len(history)
    sd = float(np.std(history, ddof=1)) if n > 1 else 0.0
    if sd == 0:
        return 0.0 if worse(direction, x - float(np.mean(history))) else 1.0
    t = (x - float(np.mean(history))) / (sd * math.sqrt(1 + 1 / n))
    tail = stats.t.cdf if direction is Direction.higher_is_better else stats.t.sf
    return float(tail(t, n - 1))


def mann_kendall(values: np.ndarray) -> tuple[float, float]:
    """Mann–Kendall S statistic's z-score and Sen's slope, for a short series without ties
    correction (ties only lower |z|)."""
    n = len(values)
    i, j = np.triu_indices(n, k=1)
    s = float(np.sign(values[j] - values[i]).sum())
    var = n * (n - 1) * (2 * n + 5) / 18
    z = (s - np.sign(s)) / math.sqrt(var) if s != 0 else 0.0
    slope = float(np.median((values[j] - values[i]) / (j - i)))
    return z, slope


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values)."""
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


# --- series -------------------------------------------------------------------------------------


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
    """Step, drift and off-track findings for the judged period of each measure."""
    candidates: list[Candidate] = []
    for (measure_id, _geo, _disagg), series in indicators.group_by(
        ["measure_id", "geo_code", "disaggregation"]
    ):
        m = initiative.measures.get(str(measure_id))
        if m is None or str(measure_id) not in periods:
            continue
        candidates += _series_tests(m, series, periods[str(measure_id)])
    findings = _significant(candidates, initiative)
    off = off_track(indicators, initiative, periods)
    return _fold(pl.concat([findings, off], how="diagonal_relaxed"), initiative)


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
    frame = (
        pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else pl.DataFrame(schema=FINDING_SCHEMA)
    )
    return frame.with_columns(message=describe(frame, initiative))


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
    frame = (
        pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else pl.DataFrame(schema=FINDING_SCHEMA)
    )
    return frame.with_columns(message=describe(frame, initiative))


def _fold(findings: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
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
                if key[0] in ("step", "seasonal_step", "drift")
                and key[1] == m
                and key[4] == p
                and key[3] == totals[m]
                and (key[2] == g or parent.get(key[2]) == g)
            ]
            if causes:
                explained_by = sorted(causes)[0]
        elif k == "drift" and any((s, m, g, d, p) in keys for s in ("step", "seasonal_step")):
            # The same series stepped this period: the step says it, with its evidence.
            explained_by = next(
                (s, m, g, d, p) for s in ("step", "seasonal_step") if (s, m, g, d, p) in keys
            )
        elif d != totals[m] and (k, m, g, totals[m], p) in keys:
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


# --- missing data -------------------------------------------------------------------------------


def due_date(measure: Measure, period: Period) -> date:
    """The day a period's data is due: the period's last day plus the measure's deadline."""
    year, month0 = divmod(period.end + 1, 12)
    return date(year, month0 + 1, 1) - timedelta(days=1) + timedelta(days=measure.deadline_days)


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
                    "geo_code": ",".join(p.localities),
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
    frame = (
        pl.DataFrame(rows, schema=FINDING_SCHEMA) if rows else pl.DataFrame(schema=FINDING_SCHEMA)
    )
    return frame.with_columns(message=describe(frame, initiative))


# --- words --------------------------------------------------------------------------------------


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
