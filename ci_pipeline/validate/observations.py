"""A validated frame as the observations the store keeps."""

from __future__ import annotations

import polars as pl

from ci_pipeline.model.initiative import TOTAL, Initiative, Unit
from ci_pipeline.read import ROW, in_batches


def to_observations(frame: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """A validated long frame as observations: proportions get their value, rows a breakdown key.

    The ``disaggregation`` key names the measure's own dimensions in order, ``sex=female`` or
    ``age_band=25-44;sex=total``; a measure without dimensions has the key ``total``.
    """
    dims = initiative.dimension_names
    uses = {d: [m.id for m in initiative.measures.values() if d in m.dimensions] for d in dims}
    versions = {m.id: m.version for m in initiative.measures.values()}
    units = {m.id: str(m.unit) for m in initiative.measures.values()}
    parts = [
        pl.when(pl.col("measure_id").is_in(uses[d])).then(pl.lit(f"{d}=") + pl.col(d)) for d in dims
    ]
    key = pl.concat_str(parts, separator=";", ignore_nulls=True) if parts else pl.lit("")
    unit = pl.col("measure_id").replace_strict(units)
    columns = [
        pl.col(ROW).alias("source_row"),
        "measure_id",
        pl.col("measure_id")
        .replace_strict(versions, return_dtype=pl.Int64)
        .alias("measure_version"),
        "geo_code",
        "period",
        pl.when(key == "").then(pl.lit(TOTAL)).otherwise(key).alias("disaggregation"),
        "numerator",
        "denominator",
        pl.when(unit == Unit.proportion)
        .then(pl.coalesce(pl.col("value"), pl.col("numerator") / pl.col("denominator")))
        .otherwise(pl.col("value"))
        .alias("value"),
    ]
    # A batch of rows at a time: the texts the key is built from exist for one batch at once.
    return in_batches(frame, lambda rows: rows.select(columns))
