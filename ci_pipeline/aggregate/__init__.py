"""Aggregation: partners' observations rolled up into population-level indicators, small cells
suppressed before anyone sees them.

The modules: ``rollup`` (the roll-up itself, pure polars), ``privacy`` (primary and
complementary suppression with an exact audit), ``refresh`` (which stored slices to recompute,
and recomputing them) and ``summary`` (the judged period's headline table). This namespace
re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.aggregate.refresh import Refreshed, refresh_indicators, refreshed_by_period
from ci_pipeline.aggregate.rollup import (
    KEY,
    SLICE,
    aggregate,
    expected_partners,
    geography_rollup,
    join_disaggregation,
    mark_counted,
    split_disaggregation,
)
from ci_pipeline.aggregate.summary import headline

__all__ = [
    "KEY",
    "SLICE",
    "Refreshed",
    "aggregate",
    "expected_partners",
    "geography_rollup",
    "headline",
    "join_disaggregation",
    "mark_counted",
    "refresh_indicators",
    "refreshed_by_period",
    "split_disaggregation",
]
