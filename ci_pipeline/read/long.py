"""The raw columns as a typed long frame: numbers parsed (in the partner's locale, see
:mod:`ci_pipeline.read.numbers`), periods made canonical, localities resolved to codes.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ci_pipeline.model.initiative import TOTAL, Initiative, normalise_name
from ci_pipeline.model.periods import canonical_period
from ci_pipeline.read.columns import KEY_COLUMNS, NUMBER_COLUMNS, PARTNER_COLUMN, ROW, TYPED_PREFIX
from ci_pipeline.read.files import RawSubmission
from ci_pipeline.read.numbers import NumberFormat, parse_number, parse_plain_number


def resolve_geographies(written: pl.Series, initiative: Initiative) -> dict[str, str]:
    """Map each distinct way a file writes a place (כרמיאל, كرميئيل, Karmiel) to its code.

    Works on the distinct values only, so a million rows cost as much as their few localities.
    Unknown names map to themselves (stripped), for the contract to report.
    """
    aliases = initiative.geo_aliases()
    return {
        text: aliases.get(normalise_name(text), text.strip())
        for text in written.drop_nulls().unique().to_list()
    }


def _distinct(frame: pl.DataFrame, column: str, parse: pl.Expr) -> pl.Expr:
    """``parse`` (an expression over ``column``) worked out once per distinct text and mapped
    back onto the rows: a file repeats its numbers and periods, so a million rows cost as much
    as their distinct values, and the value of a text is the same wherever it is written."""
    texts = frame.select(pl.col(column).unique().drop_nulls())
    values = texts.select(column, parse.alias("_parsed"))
    return pl.col(column).replace_strict(
        values[column], values["_parsed"], default=None, return_dtype=values["_parsed"].dtype
    )


def number(frame: pl.DataFrame, column: str, numbers: NumberFormat) -> pl.Expr:
    """A number column's values: cells the file stored as numbers read as they are, text read
    in the partner's locale (each distinct text parsed once)."""
    text, typed = pl.col(column), f"{TYPED_PREFIX}{column}"
    in_locale = _distinct(frame, column, parse_number(text, numbers))
    if typed not in frame.columns:
        return in_locale
    return (
        pl.when(pl.col(typed))
        .then(_distinct(frame, column, parse_plain_number(text)))
        .otherwise(in_locale)
    )


def _canonical_periods(frame: pl.DataFrame, periodicity: dict[str, str]) -> pl.DataFrame:
    """Each distinct (period, measure) pair's canonical period (the measure's periodicity
    places a date), worked out once per pair: what :func:`_with_canonical_periods` joins."""
    pairs = frame.select("period", "measure_id").unique()
    return pairs.with_columns(
        canonical_period(
            pl.col("period"), pl.col("measure_id").replace_strict(periodicity, default=None)
        ).alias("_period")
    )


def _with_canonical_periods(frame: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """The period column made canonical: only the two key columns are joined, and the result
    set beside the frame, so the frame itself is not copied by the join."""
    canonical = frame.select("period", "measure_id").join(
        pairs, on=["period", "measure_id"], how="left", nulls_equal=True, maintain_order="left"
    )
    return frame.with_columns(canonical.get_column("_period").alias("period"))


#: Rows mapped at once (:func:`in_batches`): the texts a step makes on its way (stripped,
#: lower-cased, joined) exist for this many rows at a time, however large the file.
LONG_BATCH_ROWS = 100_000


def in_batches(frame: pl.DataFrame, step: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    """``step`` (a row-by-row mapping) applied :data:`LONG_BATCH_ROWS` rows at a time, the
    batches set end to end, not copied; an empty frame is mapped as it is."""
    batches = [step(rows) for rows in frame.iter_slices(LONG_BATCH_ROWS)] or [step(frame)]
    return pl.concat(batches, rechunk=False)


def to_long_frame(raw: RawSubmission, initiative: Initiative) -> pl.DataFrame:
    """Map text cells onto the canonical long frame, resolving names and parsing numbers.

    Keeps each number's text as ``<column>_text`` so the report can echo what was written.
    Missing dimension columns and blank dimension cells mean ``total``. Columns the format does
    not have (a partner's ``Notes``) are dropped and added to ``raw.ignored_columns``, as the
    partner wrote them, so validation warns about them.
    """
    frame = raw.rows
    known = {ROW, PARTNER_COLUMN, *KEY_COLUMNS, *NUMBER_COLUMNS, *initiative.dimension_names}
    for name in frame.columns:
        if name.startswith(TYPED_PREFIX):
            continue
        written = raw.headers.get(name, name)
        if name not in known and written not in raw.ignored_columns:
            raw.ignored_columns.append(written)
    for name in [*KEY_COLUMNS, *NUMBER_COLUMNS, *initiative.dimension_names]:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name))

    periodicity = {m.id: str(m.periodicity) for m in initiative.measures.values()}
    # What each distinct text means is worked out on the whole file (places, numbers); it is
    # then applied a batch of rows at a time.
    mapped = [
        pl.col("measure_id").str.strip_chars().str.to_lowercase(),
        pl.col("geo_code").replace_strict(resolve_geographies(frame["geo_code"], initiative)),
        *(pl.col(c).alias(f"{c}_text") for c in NUMBER_COLUMNS),
        *(number(frame, c, raw.numbers).alias(c) for c in NUMBER_COLUMNS),
        *(
            pl.col(d).str.strip_chars().str.to_lowercase().fill_null(TOTAL).replace("", TOTAL)
            for d in initiative.dimension_names
        ),
    ]
    columns = [ROW, *KEY_COLUMNS, *initiative.dimension_names, *NUMBER_COLUMNS]
    columns += [f"{c}_text" for c in NUMBER_COLUMNS]
    if PARTNER_COLUMN in frame.columns:
        columns.append(PARTNER_COLUMN)

    def batch(rows: pl.DataFrame) -> pl.DataFrame:
        rows = rows.with_columns(mapped)
        pairs = _canonical_periods(rows, periodicity)
        return _with_canonical_periods(rows, pairs).select(columns)

    return in_batches(frame, batch)
