"""The overlap rule: when two observations count some of the same people (or money) twice.

The aggregate sums a partner's rows into every cell they belong to: the total of a measure,
place and period is the sum of all of its rows, and a breakdown cell (``sex=female``) the sum
of the rows with that code. A set of rows is therefore counted once exactly when no two of
them describe overlapping parts of the population. Two observations overlap when they have

- the same measure and geography,
- periods that share a month (``2025-01`` lies inside ``2025-Q1`` and ``2025``), and
- breakdowns that share people: for every dimension, their codes are equal or one of them is
  ``total``. So the total overlaps every breakdown of its cell; ``sex=female`` overlaps
  ``sex=female;age_band=25-44`` (a subset) and ``age_band=25-44`` (the women aged 25-44 are in
  both: a split along another dimension); ``sex=female`` and ``sex=male`` do not, nor do
  ``sex=female;age_band=25-44`` and ``sex=female;age_band=45-64``.

A breakdown key lists ``dimension=code`` pairs joined by ``;`` (``age_band=25-44;sex=total``);
a dimension the key does not name counts as ``total`` (the key ``total`` names none).
Pure polars: no database, no initiative.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from ci_pipeline.model.initiative import TOTAL
from ci_pipeline.model.periods import period_end, period_start

#: The columns :func:`overlapping` reads from both frames.
KEY = ["measure_id", "geo_code", "period", "disaggregation"]


def dimensions_in(*keys: pl.Series) -> list[str]:
    """The dimensions named in any of the breakdown keys, sorted."""
    if not keys:
        return []
    found = (
        pl.concat([k.cast(pl.Utf8) for k in keys])
        .unique()
        .str.split(";")
        .explode()
        .str.extract(r"^([^=]+)=", 1)
        .drop_nulls()
        .unique()
        .sort()
    )
    return found.to_list()


def _code(dimension: str, key: str) -> pl.Expr:
    """The code ``key`` gives ``dimension``: ``total`` when it names none."""
    pattern = rf"(?:^|;){re.escape(dimension)}=([^;]+)"
    return pl.col(key).str.extract(pattern, 1).fill_null(TOTAL)


def breakdowns_overlap(left: str, right: str, dimensions: Sequence[str]) -> pl.Expr:
    """True where the breakdown keys in columns ``left`` and ``right`` share people: for every
    dimension, equal codes or a ``total`` on either side."""
    return pl.all_horizontal(
        [pl.lit(True)]
        + [
            (_code(d, left) == TOTAL)
            | (_code(d, right) == TOTAL)
            | (_code(d, left) == _code(d, right))
            for d in dimensions
        ]
    )


def periods_overlap(left: str, right: str) -> pl.Expr:
    """True where the canonical periods in columns ``left`` and ``right`` share a month."""
    return (period_start(pl.col(left)) <= period_end(pl.col(right))) & (
        period_start(pl.col(right)) <= period_end(pl.col(left))
    )


def overlapping(new: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """Each row of ``new`` paired with each row of ``held`` it overlaps (see the module).

    Both frames have :data:`KEY`; ``held``'s other columns (who holds the figure) come along,
    and its period and breakdown as ``held_period`` and ``held_disaggregation``. Which rows are
    compared (the same partner's, other partners') is the caller's choice.
    """
    held = held.rename({"period": "held_period", "disaggregation": "held_disaggregation"})
    dims = dimensions_in(new["disaggregation"], held["held_disaggregation"])
    return new.join(held, on=["measure_id", "geo_code"], how="inner").filter(
        periods_overlap("period", "held_period"),
        breakdowns_overlap("disaggregation", "held_disaggregation", dims),
    )
