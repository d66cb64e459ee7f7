"""The judged period's headline table: each measure's total per geography, masked."""

from __future__ import annotations

import polars as pl

from ci_pipeline.aggregate import privacy
from ci_pipeline.model.initiative import Initiative


def headline(
    indicators: pl.DataFrame, initiative: Initiative, judged: dict[str, str]
) -> pl.DataFrame:
    """The judged period's totals per geography, masked: the table a run shows."""
    totals = {m.id: m.total_key for m in initiative.measures.values()}
    wanted = pl.DataFrame(
        {
            "measure_id": list(judged),
            "period": list(judged.values()),
            "disaggregation": [totals[m] for m in judged],
        },
        schema={"measure_id": pl.Utf8, "period": pl.Utf8, "disaggregation": pl.Utf8},
    )
    rows = indicators.join(wanted, on=["measure_id", "period", "disaggregation"], how="semi")
    return (
        privacy.mask(rows)
        .select(
            "measure_id",
            "geo_code",
            "period",
            "value",
            "numerator",
            "denominator",
            "partners_reported",
            "partners_expected",
            "suppressed",
        )
        .sort("measure_id", "geo_code")
    )
