"""Reporting periods: months (``2025-09``), quarters (``2025-Q3``) and years (``2025``).

A period is compared by its span of months, counted as ``year * 12 + month - 1``. The scalar
functions serve the caller's ``--period``; the polars expressions serve a submission's rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from ci_pipeline.errors import InvalidPeriod


class Periodicity(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


_MONTHS = {Periodicity.month: 1, Periodicity.quarter: 3, Periodicity.year: 12}
CANONICAL_PATTERNS = {
    Periodicity.month: r"^\d{4}-(0[1-9]|1[0-2])$",
    Periodicity.quarter: r"^\d{4}-Q[1-4]$",
    Periodicity.year: r"^\d{4}$",
}


@dataclass(frozen=True, order=True)
class Period:
    """A canonical period and the span of months it covers (inclusive)."""

    start: int
    end: int
    label: str
    periodicity: Periodicity

    def contains(self, other: Period) -> bool:
        return self.start <= other.start and other.end <= self.end


def _from_start(start: int, periodicity: Periodicity) -> Period:
    year, month0 = divmod(start, 12)
    if periodicity is Periodicity.month:
        label = f"{year:04d}-{month0 + 1:02d}"
    elif periodicity is Periodicity.quarter:
        label = f"{year:04d}-Q{month0 // 3 + 1}"
    else:
        label = f"{year:04d}"
    return Period(start, start + _MONTHS[periodicity] - 1, label, periodicity)


def parse_period(text: str) -> Period:
    """Parse a month, quarter or year as a user types it (``2025-09``, ``2025-Q3``, ``2025``)."""
    s = text.strip().upper()
    if m := re.fullmatch(r"(\d{4})-?Q([1-4])", s):
        start = int(m[1]) * 12 + (int(m[2]) - 1) * 3
        return _from_start(start, Periodicity.quarter)
    if (m := re.fullmatch(r"(\d{4})-(\d{1,2})", s)) and 1 <= int(m[2]) <= 12:
        return _from_start(int(m[1]) * 12 + int(m[2]) - 1, Periodicity.month)
    if re.fullmatch(r"\d{4}", s):
        return _from_start(int(s) * 12, Periodicity.year)
    raise InvalidPeriod(
        f"{text!r} is not a period: write a month (2025-09), quarter (2025-Q3) or year (2025)"
    )


def is_period(text: str) -> bool:
    """Whether ``text`` is a period label :func:`parse_period` reads (a finding's reference may
    be a period or words such as "the usual level of ...")."""
    try:
        parse_period(text)
    except InvalidPeriod:
        return False
    return True


def periods_in(span: Period, periodicity: Periodicity) -> list[Period]:
    """The periods of ``periodicity`` that lie wholly inside ``span``, in order."""
    step = _MONTHS[periodicity]
    first = -(-span.start // step) * step  # round the start up to a period boundary
    return [
        _from_start(s, periodicity)
        for s in range(first, span.end + 1, step)
        if s + step - 1 <= span.end
    ]


def period_containing(month_index: int, periodicity: Periodicity) -> Period:
    """The period of ``periodicity`` that contains the given month."""
    step = _MONTHS[periodicity]
    return _from_start(month_index - month_index % step, periodicity)


def per_year(periodicity: Periodicity | str) -> int:
    """How many periods of ``periodicity`` make a year: 12, 4 or 1."""
    return 12 // _MONTHS[Periodicity(periodicity)]


def shift(period: Period, n: int) -> Period:
    """The period ``n`` steps after (or before, for negative ``n``) ``period``."""
    return _from_start(period.start + n * _MONTHS[period.periodicity], period.periodicity)


# --- polars expressions over a column of period text -------------------------------------------


def canonical_period(raw: pl.Expr, periodicity: pl.Expr) -> pl.Expr:
    """Rewrite what partners write as a period into its canonical label.

    Accepts ``2025-09``, ``2025/9``, ``09/2025``, ``2025-Q3``, ``Q3 2025``, ``2025``, and dates
    (ISO ``2025-09-30``, Excel date cells, ``30/09/2025``) which become the period of the row's
    measure that contains them. Anything else is left as written, so the contract can report it.
    """
    s = raw.str.strip_chars().str.to_uppercase()
    iso_date = s.str.extract_groups(r"^(?<y>\d{4})-(?<m>\d{1,2})-(?<d>\d{1,2})(?:[ T].*)?$")
    dmy_date = s.str.extract_groups(r"^(?<d>\d{1,2})[/.](?<m>\d{1,2})[/.](?<y>\d{4})$")
    year_month = s.str.extract_groups(r"^(?<y>\d{4})[-/.](?<m>\d{1,2})$")
    month_year = s.str.extract_groups(r"^(?<m>\d{1,2})[-/.](?<y>\d{4})$")
    quarter = pl.coalesce(
        s.str.extract(r"^(\d{4})\s*-?\s*Q([1-4])$", 1)
        + "-Q"
        + s.str.extract(r"^(\d{4})\s*-?\s*Q([1-4])$", 2),
        s.str.extract(r"^Q([1-4])[\s/-]*(\d{4})$", 2)
        + "-Q"
        + s.str.extract(r"^Q([1-4])[\s/-]*(\d{4})$", 1),
    )
    year = pl.coalesce(iso_date.struct["y"], dmy_date.struct["y"]).cast(pl.Int32, strict=False)
    month = pl.coalesce(iso_date.struct["m"], dmy_date.struct["m"]).cast(pl.Int32, strict=False)
    day = pl.coalesce(iso_date.struct["d"], dmy_date.struct["d"]).cast(pl.Int32, strict=False)
    # A date that does not exist (2025-02-31) is not rounded into a month: it stays as written.
    real_date = pl.concat_str(
        year.cast(pl.Utf8),
        month.cast(pl.Utf8).str.zfill(2),
        day.cast(pl.Utf8).str.zfill(2),
        separator="-",
    ).str.to_date("%Y-%m-%d", strict=False)
    from_date = (
        pl.when(month.is_between(1, 12).not_() | real_date.is_null())
        .then(None)
        .when(periodicity == Periodicity.month)
        .then(year.cast(pl.Utf8) + "-" + month.cast(pl.Utf8).str.zfill(2))
        .when(periodicity == Periodicity.quarter)
        .then(year.cast(pl.Utf8) + "-Q" + ((month - 1) // 3 + 1).cast(pl.Utf8))
        .when(periodicity == Periodicity.year)
        .then(year.cast(pl.Utf8))
    )
    ym_y = pl.coalesce(year_month.struct["y"], month_year.struct["y"])
    ym_m = pl.coalesce(year_month.struct["m"], month_year.struct["m"]).cast(pl.Int32, strict=False)
    from_month = pl.when(ym_m.is_between(1, 12)).then(ym_y + "-" + ym_m.cast(pl.Utf8).str.zfill(2))
    plain_year = pl.when(s.str.contains(r"^\d{4}$")).then(s)
    return pl.coalesce(quarter, from_month, plain_year, from_date, raw)


def period_start(label: pl.Expr) -> pl.Expr:
    """First month index of a canonical period label (null where the label is not canonical)."""
    year = label.str.slice(0, 4).cast(pl.Int32, strict=False)
    month = label.str.extract(r"^\d{4}-(0[1-9]|1[0-2])$", 1).cast(pl.Int32, strict=False)
    quarter = label.str.extract(r"^\d{4}-Q([1-4])$", 1).cast(pl.Int32, strict=False)
    return (
        pl.when(label.str.contains(r"^\d{4}$"))
        .then(year * 12)
        .when(month.is_not_null())
        .then(year * 12 + month - 1)
        .when(quarter.is_not_null())
        .then(year * 12 + (quarter - 1) * 3)
    )


def period_end(label: pl.Expr) -> pl.Expr:
    """Last month index of a canonical period label (null where the label is not canonical)."""
    length = (
        pl.when(label.str.contains(r"^\d{4}$"))
        .then(12)
        .when(label.str.contains("Q"))
        .then(3)
        .otherwise(1)
    )
    return period_start(label) + length - 1


def labels_within(period: Period) -> list[str]:
    """Every month, quarter and year label whose whole span lies within ``period``, sorted: the
    periods a submission for ``period`` may report (a year's 12 months, 4 quarters and itself;
    a quarter's 3 months and itself; a month itself)."""
    return sorted(
        {
            p.label
            for periodicity in Periodicity
            for month in range(period.start, period.end + 1)
            if (p := period_containing(month, periodicity)).start >= period.start
            and p.end <= period.end
        }
    )


def overlapping_labels(period: Period) -> list[str]:
    """Every month, quarter and year label whose span shares a month with ``period``, sorted:
    a quarter's three months, itself and its year; a month, its quarter and its year."""
    return sorted(
        {
            period_containing(month, periodicity).label
            for periodicity in Periodicity
            for month in range(period.start, period.end + 1)
        }
    )
