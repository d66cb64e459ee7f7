"""Population-level indicators: observations rolled up by geography, period and breakdown.

Pure polars. For each measure × geography (each locality and every ancestor up to the
cluster) × period × disaggregation (each dimension's codes and their ``total``), the value is
combined by the measure's rule — counts and amounts summed; proportions as Σ numerator /
Σ denominator, never averaged rates; scores as means weighted by respondents — over the rows
that count (partners reporting the same population: the measure's ``across_partners``), with
the partners that reported against those expected (coverage) and the submissions behind it
(lineage).
"""

from __future__ import annotations

import itertools

import polars as pl

from ci_pipeline.model.frames import INDICATOR_SCHEMA
from ci_pipeline.model.initiative import TOTAL, AcrossPartners, Combine, GeoLevel, Initiative

SLICE = ["measure_id", "period"]
KEY = ["measure_id", "geo_code", "period", "disaggregation"]


def split_disaggregation(frame: pl.DataFrame, dims: list[str]) -> pl.DataFrame:
    """``age_band=25-44;sex=total`` → columns ``age_band``, ``sex`` (``total`` where absent)."""
    return frame.with_columns(
        pl.col("disaggregation")
        .str.extract(rf"(?:^|;){dim}=([^;]+)", 1)
        .fill_null(TOTAL)
        .alias(dim)
        for dim in dims
    )


def join_disaggregation(dims_of_measure: dict[str, list[str]]) -> pl.Expr:
    """The inverse of :func:`split_disaggregation`, using each row's own measure's dimensions."""
    parts = []
    all_dims = sorted({d for ds in dims_of_measure.values() for d in ds})
    for dim in all_dims:
        uses = [m for m, ds in dims_of_measure.items() if dim in ds]
        parts.append(
            pl.when(pl.col("measure_id").is_in(uses)).then(pl.lit(f"{dim}=") + pl.col(dim))
        )
    if not parts:
        return pl.lit(TOTAL)
    key = pl.concat_str(parts, separator=";", ignore_nulls=True)
    return pl.when(key.is_null() | (key == "")).then(pl.lit(TOTAL)).otherwise(key)


def geography_rollup(initiative: Initiative) -> pl.DataFrame:
    """(geo_code, target_geo): each geography counts towards itself and every ancestor."""
    pairs = [
        (code, target)
        for code in initiative.geographies
        for target in [code, *initiative.ancestors(code)]
    ]
    return pl.DataFrame(pairs, schema={"geo_code": pl.Utf8, "target_geo": pl.Utf8}, orient="row")


def expected_partners(initiative: Initiative) -> pl.DataFrame:
    """(measure_id, geo_code, partner_id): who is expected to report each measure for each
    geography — a locality's own partners, and every partner below a cluster."""
    rows: set[tuple[str, str, str]] = set()
    for p in initiative.partners.values():
        for measure_id in p.measures:
            m = initiative.measures[measure_id]
            for loc in p.localities:
                if GeoLevel.locality in m.geo_levels:
                    rows.update((measure_id, g, p.id) for g in [loc, *initiative.ancestors(loc)])
                if GeoLevel.cluster in m.geo_levels:
                    rows.update((measure_id, g, p.id) for g in initiative.ancestors(loc))
    # Typed, because it may be empty (a measure no partner reports, an initiative without
    # partners yet): an untyped empty frame fails the joins it takes part in.
    return pl.DataFrame(
        sorted(rows),
        schema={"measure_id": pl.Utf8, "geo_code": pl.Utf8, "partner_id": pl.Utf8},
        orient="row",
    )


def mark_counted(observations: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """``observations`` with ``_counts``: whether each row's figure counts.

    Partners' figures for the same measure, geography and period are added up (the measure's
    ``across_partners: sum``, and ``exclusive``, where the intake lets only one partner report
    a cell). With ``prefer``, the partners of ``partner_precedence`` report the same
    population: of those that reported a measure, geography and period, only the first in that
    list counts, all of its rows (its breakdowns are parts of its own account); the others'
    rows for it do not. Partners not listed count as usual.
    """
    ranks = [
        (m.id, partner_id, rank)
        for m in initiative.measures.values()
        if m.across_partners is AcrossPartners.prefer
        for rank, partner_id in enumerate(m.partner_precedence)
    ]
    if not ranks:
        return observations.with_columns(pl.lit(True).alias("_counts"))
    order = pl.DataFrame(
        ranks,
        schema={"measure_id": pl.Utf8, "partner_id": pl.Utf8, "_rank": pl.Int64},
        orient="row",
    )
    rank = pl.col("_rank")
    return (
        observations.join(order, on=["measure_id", "partner_id"], how="left")
        .with_columns(
            (rank.is_null() | (rank == rank.min().over("measure_id", "geo_code", "period"))).alias(
                "_counts"
            )
        )
        .drop("_rank")
    )


def _combine(rule: pl.Expr) -> list[pl.Expr]:
    """A cell's figures from the rows that count (:func:`mark_counted`); its coverage and
    lineage from every row behind it, counted or not (a partner whose figure another's
    replaces has still reported, and a change to its file must still refresh the cell)."""
    counts = pl.col("_counts")
    n, d, v = (pl.col(c).filter(counts) for c in ("numerator", "denominator", "value"))
    ratio = rule == Combine.ratio_of_sums
    weighted = rule == Combine.weighted_mean
    num = n.sum()
    den = d.sum()
    return [
        pl.when(ratio.first())
        .then(num / den)
        .when(weighted.first())
        .then((v * d).sum() / den)
        .otherwise(v.sum())
        .alias("value"),
        pl.when(ratio.first()).then(num).otherwise(None).alias("numerator"),
        pl.when(ratio.first() | weighted.first()).then(den).otherwise(None).alias("denominator"),
        pl.col("partner_id").n_unique().cast(pl.Int64).alias("partners_reported"),
        pl.col("submission_id").unique().sort().cast(pl.Utf8).str.join(",").alias("lineage"),
        counts.any().alias("_counted"),
    ]


def aggregate(observations: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """Roll observations up into indicator values (see the module docstring).

    ``observations`` holds the rows that count (accepted submissions) with ``partner_id``,
    ``submission_id``, ``measure_id``, ``geo_code``, ``period``, ``disaggregation``,
    ``numerator``, ``denominator`` and ``value``. Any subset of (measure, period) slices may be
    passed; each slice's result depends on that slice's rows only.
    """
    if observations.is_empty():
        return pl.DataFrame(schema=INDICATOR_SCHEMA)
    dims = initiative.dimension_names
    rules = pl.DataFrame(
        {
            "measure_id": list(initiative.measures),
            "_combine": [str(m.combine) for m in initiative.measures.values()],
        }
    )
    dims_of = {m.id: sorted(m.dimensions) for m in initiative.measures.values()}
    base = (
        split_disaggregation(mark_counted(observations, initiative), dims)
        .join(geography_rollup(initiative), on="geo_code", how="inner")
        .drop("geo_code")
        .rename({"target_geo": "geo_code"})
        .join(rules, on="measure_id", how="inner")
        .lazy()  # one plan from here: polars runs the roll-ups below side by side
    )
    parts = []
    # Each subset of dimensions kept broken down; the others summed into their total. A row
    # that is a total for a kept dimension cannot say which code it belongs to, so it only
    # counts towards that dimension's total.
    for kept in itertools.chain.from_iterable(
        itertools.combinations(dims, r) for r in range(len(dims) + 1)
    ):
        frame = base.filter(pl.all_horizontal(pl.col(d) != TOTAL for d in kept)) if kept else base
        frame = frame.with_columns(pl.lit(TOTAL).alias(d) for d in dims if d not in kept)
        parts.append(
            frame.group_by(["measure_id", "geo_code", "period", *dims]).agg(
                _combine(pl.col("_combine"))
            )
        )
    # A cell only the rows that do not count reach (another partner's breakdown) is not one.
    grouped = pl.concat(parts).filter(pl.col("_counted")).drop("_counted")
    # A measure without a dimension has only that dimension's total.
    grouped = grouped.filter(
        pl.all_horizontal(
            (pl.col(d) == TOTAL)
            | pl.col("measure_id").is_in([m for m, ds in dims_of.items() if d in ds])
            for d in dims
        )
        if dims
        else pl.lit(True)
    )
    expected = (
        expected_partners(initiative)
        .lazy()
        .group_by("measure_id", "geo_code")
        .agg(pl.len().cast(pl.Int64).alias("partners_expected"))
    )
    return (
        grouped.with_columns(join_disaggregation(dims_of).alias("disaggregation"))
        .join(expected, on=["measure_id", "geo_code"], how="left")
        .with_columns(
            pl.col("partners_expected").fill_null(0),
            (pl.col("partners_reported") / pl.col("partners_expected")).alias("coverage"),
        )
        .select(list(INDICATOR_SCHEMA))
        .cast(INDICATOR_SCHEMA)  # type: ignore[arg-type]
        .sort(KEY)
        .collect()
    )
