"""The overlap rule (ci_pipeline.model.overlap): which two figures count the same people."""

from __future__ import annotations

import polars as pl
import pytest

from ci_pipeline.model.overlap import dimensions_in, overlapping
from ci_pipeline.model.periods import labels_within, overlapping_labels, parse_period

M = "starter-students-trained"


def frame(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["measure_id", "geo_code", "period", "disaggregation"], orient="row"
    )


def overlaps(new: tuple[str, str, str, str], held: tuple[str, str, str, str]) -> bool:
    found = overlapping(frame(new), frame(held).with_columns(pl.lit(7).alias("held_by")))
    return not found.is_empty()


@pytest.mark.parametrize(
    ("new", "held", "expected"),
    [
        # The case: January's total, then January's female figure.
        ((M, "karmiel", "2025-01", "sex=female"), (M, "karmiel", "2025-01", "sex=total"), True),
        ((M, "karmiel", "2025-01", "sex=total"), (M, "karmiel", "2025-01", "sex=male"), True),
        # The key "total" names no dimension: every dimension at total.
        ((M, "karmiel", "2025-01", "total"), (M, "karmiel", "2025-01", "sex=male"), True),
        # Two codes of one dimension are different people.
        ((M, "karmiel", "2025-01", "sex=female"), (M, "karmiel", "2025-01", "sex=male"), False),
        # A subset: women aged 25-44 are among the women.
        (
            (M, "karmiel", "2025-01", "age_band=25-44;sex=female"),
            (M, "karmiel", "2025-01", "age_band=total;sex=female"),
            True,
        ),
        # Split along different dimensions: the women aged 25-44 are in both.
        (
            (M, "karmiel", "2025-01", "age_band=total;sex=female"),
            (M, "karmiel", "2025-01", "age_band=25-44;sex=total"),
            True,
        ),
        # Women of every age and men aged 25-44: nobody in both.
        (
            (M, "karmiel", "2025-01", "age_band=total;sex=female"),
            (M, "karmiel", "2025-01", "age_band=25-44;sex=male"),
            False,
        ),
        (
            (M, "karmiel", "2025-01", "age_band=25-44;sex=female"),
            (M, "karmiel", "2025-01", "age_band=45-64;sex=female"),
            False,
        ),
        # Periods: a month inside a quarter and a year; a quarter inside a year; not its neighbour.
        ((M, "karmiel", "2025-02", "sex=total"), (M, "karmiel", "2025-Q1", "sex=total"), True),
        ((M, "karmiel", "2025", "sex=female"), (M, "karmiel", "2025-12", "sex=total"), True),
        ((M, "karmiel", "2025-Q4", "sex=total"), (M, "karmiel", "2025", "sex=total"), True),
        ((M, "karmiel", "2025-04", "sex=total"), (M, "karmiel", "2025-Q1", "sex=total"), False),
        ((M, "karmiel", "2025-01", "sex=total"), (M, "karmiel", "2024", "sex=total"), False),
        # Another place or another measure is another figure.
        ((M, "karmiel", "2025-01", "sex=total"), (M, "misgav", "2025-01", "sex=total"), False),
        ((M, "karmiel", "2025-01", "total"), ("other", "karmiel", "2025-01", "total"), False),
    ],
)
def test_two_figures_overlap_when_they_count_the_same_people(
    new: tuple[str, str, str, str], held: tuple[str, str, str, str], expected: bool
) -> None:
    assert overlaps(new, held) is expected
    assert overlaps(held, new) is expected  # the rule is symmetric


def test_overlapping_pairs_each_new_row_with_the_figures_it_overlaps() -> None:
    new = frame(
        (M, "karmiel", "2025-01", "sex=female"),
        (M, "karmiel", "2025-02", "sex=female"),
        (M, "misgav", "2025-01", "sex=total"),
    ).with_row_index("source_row")
    held = frame(
        (M, "karmiel", "2025-Q1", "sex=female"),  # held by #1: overlaps rows 0 and 1
        (M, "karmiel", "2025-01", "sex=male"),  # held by #2: overlaps nothing
        (M, "misgav", "2025-01", "sex=male"),  # held by #3: overlaps row 2
    ).with_columns(pl.Series("held_by", [1, 2, 3]))

    pairs = overlapping(new, held).sort("source_row")

    assert pairs.select("source_row", "held_by", "held_period", "held_disaggregation").rows() == [
        (0, 1, "2025-Q1", "sex=female"),
        (1, 1, "2025-Q1", "sex=female"),
        (2, 3, "2025-01", "sex=male"),
    ]


def test_the_dimensions_come_from_the_keys() -> None:
    keys = pl.Series(["total", "age_band=25-44;sex=total", "sex=female", "region=north"])
    assert dimensions_in(keys) == ["age_band", "region", "sex"]
    assert dimensions_in(pl.Series(["total"], dtype=pl.Utf8)) == []


def test_the_labels_a_period_overlaps() -> None:
    # 2025-Q1 spans months 0-2 of 2025: its months, itself and its year.
    assert overlapping_labels(parse_period("2025-Q1")) == [
        "2025",
        "2025-01",
        "2025-02",
        "2025-03",
        "2025-Q1",
    ]
    assert overlapping_labels(parse_period("2025-05")) == ["2025", "2025-05", "2025-Q2"]
    # A year: its 12 months, 4 quarters and itself.
    assert len(overlapping_labels(parse_period("2024"))) == 17


def test_the_labels_within_a_period() -> None:
    # A year holds its 12 months, its 4 quarters and itself: 17 labels, no other year's.
    year = labels_within(parse_period("2025"))
    assert len(year) == 17
    assert {"2025", "2025-01", "2025-12", "2025-Q1", "2025-Q4"} <= set(year)
    assert all(label.startswith("2025") for label in year)
    # A quarter holds its three months and itself, not its year (which spans more).
    assert labels_within(parse_period("2025-Q3")) == ["2025-07", "2025-08", "2025-09", "2025-Q3"]
    # A month holds only itself.
    assert labels_within(parse_period("2025-05")) == ["2025-05"]
