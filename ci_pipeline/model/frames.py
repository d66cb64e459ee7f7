"""The shapes of the frames that pass between stages, declared once.

The aggregate computes indicator cells in :data:`INDICATOR_SCHEMA`; privacy adds the
suppression flags and the store keeps them as :data:`STORED_INDICATOR_SCHEMA`, which is what
detection, the gate and the notices read back.
"""

from __future__ import annotations

from typing import Any

import polars as pl

#: The indicator table's columns, in order, as the aggregate computes them.
INDICATOR_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "measure_id": pl.Utf8,
    "geo_code": pl.Utf8,
    "period": pl.Utf8,
    "disaggregation": pl.Utf8,
    "value": pl.Float64,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "partners_reported": pl.Int64,
    "partners_expected": pl.Int64,
    "coverage": pl.Float64,
    "lineage": pl.Utf8,  # ids of the contributing submissions, comma-separated, ascending
}

#: Indicator cells as stored: the aggregate's columns plus the suppression flags.
STORED_INDICATOR_SCHEMA: dict[str, Any] = {
    **INDICATOR_SCHEMA,
    "suppressed": pl.Boolean,
    "suppression": pl.Utf8,
}
STORED_INDICATOR_COLUMNS = list(STORED_INDICATOR_SCHEMA)
