"""The raw columns as a typed long frame: numbers parsed, periods made canonical, localities
resolved to codes.
"""

from __future__ import annotations

import polars as pl

from ci_pipeline.model.initiative import TOTAL, Initiative, normalise_name
from ci_pipeline.model.periods import canonical_period
from ci_pipeline.read.columns import KEY_COLUMNS, NUMBER_COLUMNS, PARTNER_COLUMN, ROW
from ci_pipeline.read.files import RawSubmission


def parse_number(text: pl.Expr) -> pl.Expr:
    """Numbers as partners write them: ``1,234.5``, ``0,26`` (decimal comma), ``1.234,5``
    (dots grouping thousands, a decimal comma), `` 12 ``, ``26%``.

    Commas grouping thousands (``1,234,567.5``) are dropped; a single comma between digits
    (``0,26``, ``0,260``: no thousands group starts with 0) is a decimal comma. Dots group
    thousands only where they cannot be a decimal point: before a decimal comma (``1.234,5``) or
    more than one of them (``1.234.567``). Text that is still not a number becomes null, and the
    validate stage reports it.
    """
    s = text.str.strip_chars().str.replace_all(r"[\s\u00a0\u202f]", "")
    percent = s.str.ends_with("%")
    s = s.str.strip_chars_end("%")
    s = (
        pl.when(s.str.contains(r"^-?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$"))
        .then(s.str.replace_all(",", ""))
        .when(s.str.contains(r"^-?[1-9]\d{0,2}(\.\d{3})+,\d+$|^-?[1-9]\d{0,2}(\.\d{3}){2,}$"))
        .then(s.str.replace_all(r"\.", "").str.replace(",", "."))
        .when(s.str.contains(r"^-?\d+,\d+$"))
        .then(s.str.replace(",", "."))
        .otherwise(s)
    )
    number = s.cast(pl.Float64, strict=False)
    number = pl.when(number.is_finite()).then(number)  # 'NaN', 'inf' are not numbers
    return pl.when(percent).then(number / 100).otherwise(number)


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
        written = raw.headers.get(name, name)
        if name not in known and written not in raw.ignored_columns:
            raw.ignored_columns.append(written)
    for name in [*KEY_COLUMNS, *NUMBER_COLUMNS, *initiative.dimension_names]:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name))

    periodicity = {m.id: str(m.periodicity) for m in initiative.measures.values()}
    frame = frame.with_columns(
        pl.col("measure_id").str.strip_chars().str.to_lowercase(),
        pl.col("geo_code").replace_strict(resolve_geographies(frame["geo_code"], initiative)),
        *(pl.col(c).alias(f"{c}_text") for c in NUMBER_COLUMNS),
        *(parse_number(pl.col(c)).alias(c) for c in NUMBER_COLUMNS),
        *(
            pl.col(d).str.strip_chars().str.to_lowercase().fill_null(TOTAL).replace("", TOTAL)
            for d in initiative.dimension_names
        ),
    )
    frame = frame.with_columns(
        canonical_period(
            pl.col("period"), pl.col("measure_id").replace_strict(periodicity, default=None)
        ).alias("period")
    )
    columns = [ROW, *KEY_COLUMNS, *initiative.dimension_names, *NUMBER_COLUMNS]
    columns += [f"{c}_text" for c in NUMBER_COLUMNS]
    if PARTNER_COLUMN in frame.columns:
        columns.append(PARTNER_COLUMN)
    return frame.select(columns)
