"""Reporting periods: parsing what users type, spans, and the polars expressions over rows."""

from __future__ import annotations

import polars as pl
import pytest

from ci_pipeline.errors import InvalidPeriod
from ci_pipeline.model.periods import (
    CANONICAL_PATTERNS,
    Period,
    Periodicity,
    canonical_period,
    parse_period,
    period_containing,
    period_end,
    period_start,
    periods_in,
    shift,
)

M, Q, Y = Periodicity.month, Periodicity.quarter, Periodicity.year
SEP_2025 = 2025 * 12 + 8  # month index of 2025-09


# --- parse_period -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "periodicity", "start", "end"),
    [
        ("2025-09", "2025-09", M, SEP_2025, SEP_2025),
        ("2025-9", "2025-09", M, SEP_2025, SEP_2025),
        ("2025-01", "2025-01", M, 2025 * 12, 2025 * 12),
        ("2025-12", "2025-12", M, 2025 * 12 + 11, 2025 * 12 + 11),
        (" 2025-09 ", "2025-09", M, SEP_2025, SEP_2025),
        ("2025-Q3", "2025-Q3", Q, 2025 * 12 + 6, SEP_2025),
        ("2025q3", "2025-Q3", Q, 2025 * 12 + 6, SEP_2025),
        ("2025Q1", "2025-Q1", Q, 2025 * 12, 2025 * 12 + 2),
        ("2025-q4", "2025-Q4", Q, 2025 * 12 + 9, 2025 * 12 + 11),
        ("2025", "2025", Y, 2025 * 12, 2025 * 12 + 11),
    ],
)
def test_parse_period(
    text: str, label: str, periodicity: Periodicity, start: int, end: int
) -> None:
    assert parse_period(text) == Period(start, end, label, periodicity)


@pytest.mark.parametrize(
    "text",
    ["", "  ", "2025-13", "2025-00", "2025-Q5", "2025-Q0", "25-09", "09/2025", "2025/09", "abcd",
     "Q3 2025", "2025-09-30", "20250"],
)  # fmt: skip
def test_parse_period_refuses_what_is_not_a_period(text: str) -> None:
    with pytest.raises(InvalidPeriod) as exc:
        parse_period(text)
    assert repr(text) in str(exc.value)
    assert "2025-Q3" in str(exc.value)  # says how to write one


def test_periods_order_by_their_span() -> None:
    assert parse_period("2024-Q4") < parse_period("2025-01") < parse_period("2025-Q1")
    assert parse_period("2025").contains(parse_period("2025-Q3"))
    assert parse_period("2025-Q3").contains(parse_period("2025-09"))
    assert not parse_period("2025-Q3").contains(parse_period("2025-10"))
    assert not parse_period("2025-09").contains(parse_period("2025-Q3"))


# --- periods_in, period_containing, shift -------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "periodicity", "labels"),
    [
        ("2025-Q3", M, ["2025-07", "2025-08", "2025-09"]),
        ("2025", Q, ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]),
        ("2025", Y, ["2025"]),
        ("2025-09", M, ["2025-09"]),
        ("2025-Q3", Q, ["2025-Q3"]),
        ("2025-09", Q, []),  # a quarter does not fit in a month
        ("2025-Q3", Y, []),
    ],
)
def test_periods_in(span: str, periodicity: Periodicity, labels: list[str]) -> None:
    periods = periods_in(parse_period(span), periodicity)
    assert [p.label for p in periods] == labels
    assert all(p.periodicity is periodicity for p in periods)


@pytest.mark.parametrize(
    ("month", "periodicity", "label"),
    [
        ("2025-09", M, "2025-09"),
        ("2025-09", Q, "2025-Q3"),
        ("2025-07", Q, "2025-Q3"),
        ("2025-10", Q, "2025-Q4"),
        ("2025-01", Q, "2025-Q1"),
        ("2025-09", Y, "2025"),
        ("2025-12", Y, "2025"),
    ],
)
def test_period_containing(month: str, periodicity: Periodicity, label: str) -> None:
    period = period_containing(parse_period(month).start, periodicity)
    assert period.label == label
    assert period.contains(parse_period(month))


@pytest.mark.parametrize(
    ("period", "n", "label"),
    [
        ("2025-09", 1, "2025-10"),
        ("2025-12", 1, "2026-01"),
        ("2025-01", -1, "2024-12"),
        ("2025-09", -12, "2024-09"),
        ("2025-Q4", 1, "2026-Q1"),
        ("2025-Q1", -1, "2024-Q4"),
        ("2025-Q3", -4, "2024-Q3"),
        ("2025", -2, "2023"),
        ("2025-Q3", 0, "2025-Q3"),
    ],
)
def test_shift(period: str, n: int, label: str) -> None:
    shifted = shift(parse_period(period), n)
    assert shifted == parse_period(label)


# --- canonical_period over a column -------------------------------------------------------------

# What partners write -> the label for a month, quarter and year measure.
WRITTEN = [
    ("2025-09", "2025-09", "2025-09", "2025-09"),  # a month stays a month, whatever the measure
    ("2025/9", "2025-09", "2025-09", "2025-09"),
    ("09/2025", "2025-09", "2025-09", "2025-09"),
    ("9.2025", "2025-09", "2025-09", "2025-09"),
    (" 2025-09 ", "2025-09", "2025-09", "2025-09"),
    ("2025-Q3", "2025-Q3", "2025-Q3", "2025-Q3"),
    ("Q3 2025", "2025-Q3", "2025-Q3", "2025-Q3"),
    ("2025q3", "2025-Q3", "2025-Q3", "2025-Q3"),
    ("q3-2025", "2025-Q3", "2025-Q3", "2025-Q3"),
    ("2025", "2025", "2025", "2025"),
    # dates become the period of the row's measure that contains them
    ("2025-09-30", "2025-09", "2025-Q3", "2025"),
    ("2025-9-1", "2025-09", "2025-Q3", "2025"),
    ("2025-09-30 00:00:00", "2025-09", "2025-Q3", "2025"),  # an Excel date cell
    ("2025-12-31T00:00:00", "2025-12", "2025-Q4", "2025"),
    ("30/09/2025", "2025-09", "2025-Q3", "2025"),
    ("01.02.2025", "2025-02", "2025-Q1", "2025"),
    # anything else is left as written, for the contract to report
    ("garbage", "garbage", "garbage", "garbage"),
    ("2025-13", "2025-13", "2025-13", "2025-13"),
    ("13/2025", "13/2025", "13/2025", "13/2025"),
    ("2025-Q5", "2025-Q5", "2025-Q5", "2025-Q5"),
    ("2025-13-01", "2025-13-01", "2025-13-01", "2025-13-01"),
    ("31/13/2025", "31/13/2025", "31/13/2025", "31/13/2025"),
    # a day the month does not have is not rounded into the month
    ("2025-02-31", "2025-02-31", "2025-02-31", "2025-02-31"),
    ("31/04/2025", "31/04/2025", "31/04/2025", "31/04/2025"),
    ("2025-02-29", "2025-02-29", "2025-02-29", "2025-02-29"),  # 2025 is not a leap year
    ("2024-02-29", "2024-02", "2024-Q1", "2024"),  # 2024 is
    ("2025-04-00", "2025-04-00", "2025-04-00", "2025-04-00"),
    ("Sept 2025", "Sept 2025", "Sept 2025", "Sept 2025"),
    ("", "", "", ""),
]


@pytest.mark.parametrize("periodicity", [M, Q, Y])
@pytest.mark.parametrize(("written", "as_month", "as_quarter", "as_year"), WRITTEN)
def test_canonical_period(
    written: str, as_month: str, as_quarter: str, as_year: str, periodicity: Periodicity
) -> None:
    expected = {M: as_month, Q: as_quarter, Y: as_year}[periodicity]
    frame = pl.DataFrame({"raw": [written], "every": [str(periodicity)]})
    out = frame.select(canonical_period(pl.col("raw"), pl.col("every")).alias("period"))
    assert out["period"].to_list() == [expected]


def test_canonical_period_row_by_row_and_nulls() -> None:
    """Each row takes its own measure's periodicity; a date without one is left as written."""
    frame = pl.DataFrame(
        {
            "raw": ["30/09/2025", "30/09/2025", "30/09/2025", "30/09/2025", None],
            "every": ["month", "quarter", "year", None, "month"],
        },
        schema={"raw": pl.Utf8, "every": pl.Utf8},
    )
    out = frame.select(canonical_period(pl.col("raw"), pl.col("every")))
    assert out.to_series().to_list() == ["2025-09", "2025-Q3", "2025", "30/09/2025", None]


def test_canonical_labels_match_the_canonical_patterns() -> None:
    frame = pl.DataFrame({"raw": [w for w, *_ in WRITTEN[:16]], "every": "quarter"})
    out = frame.select(canonical_period(pl.col("raw"), pl.col("every")).alias("p"))
    pattern = "|".join(CANONICAL_PATTERNS.values())
    assert out["p"].str.contains(pattern).all()


# --- period_start / period_end ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "start", "end"),
    [
        ("2025-09", SEP_2025, SEP_2025),
        ("2025-01", 2025 * 12, 2025 * 12),
        ("2025-12", 2025 * 12 + 11, 2025 * 12 + 11),
        ("2025-Q1", 2025 * 12, 2025 * 12 + 2),
        ("2025-Q3", 2025 * 12 + 6, SEP_2025),
        ("2025", 2025 * 12, 2025 * 12 + 11),
        # not canonical: null, so no rule can mistake it for a real span
        ("2025-13", None, None),
        ("2025-00", None, None),
        ("2025-Q5", None, None),
        ("2025-9", None, None),
        ("garbage", None, None),
        ("Q3", None, None),
        (None, None, None),
    ],
)
def test_period_start_and_end(label: str | None, start: int | None, end: int | None) -> None:
    frame = pl.DataFrame({"label": [label]}, schema={"label": pl.Utf8})
    out = frame.select(
        period_start(pl.col("label")).alias("start"), period_end(pl.col("label")).alias("end")
    )
    assert out.row(0) == (start, end)


@pytest.mark.parametrize("label", ["2025-09", "2025-Q3", "2025", "2024-Q1", "2030-12"])
def test_period_start_and_end_agree_with_parse_period(label: str) -> None:
    period = parse_period(label)
    out = pl.DataFrame({"label": [label]}).select(
        period_start(pl.col("label")), period_end(pl.col("label")).alias("end")
    )
    assert out.row(0) == (period.start, period.end)
