"""The invariants checker can fail: each guarantee it checks, broken on purpose, is caught."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from tests.faults.files import STARTER, starter_file
from tests.faults.invariants import (
    COUNTED_SCHEMA,
    cells_counted_twice,
    check_invariants,
    files_outside,
)
from tests.helpers import ingest

MEASURE = "starter-students-trained"


def counted(*rows: tuple[int, str, str, str]) -> pl.DataFrame:
    """(submission, place, period, breakdown) rows of one partner and measure."""
    return pl.DataFrame(
        [(i, s, STARTER, MEASURE, g, p, d) for i, (s, g, p, d) in enumerate(rows)],
        schema=COUNTED_SCHEMA,
        orient="row",
    )


def test_a_figure_counted_twice_is_found_cell_by_cell(initiative: Initiative) -> None:
    """#1 Karmiel's January women; #2 Karmiel's Q1 aged 25-44; #3 Karmiel's February men,
    #4 Misgav's January total. Dimensions seen: sex (female, male), age_band (25-44); a total
    covers the codes seen and everyone else. #1 covers (2025-01, female, {25-44, others});
    #2 covers (each of Jan–Mar, {female, male, others}, 25-44). They share one cell:
    Karmiel, January (month 2025*12 + 0 = 24300), female, 25-44. #3 (February, male, any age)
    shares (February, male, 25-44) with #2 as well. #4 is another place."""
    found = cells_counted_twice(
        counted(
            (1, "karmiel", "2025-01", "sex=female"),
            (2, "karmiel", "2025-Q1", "age_band=25-44"),
            (3, "karmiel", "2025-02", "sex=male"),
            (4, "misgav", "2025-01", "total"),
        ),
        initiative,
    )
    assert sorted(
        found.select("geo_code", "month", "dim_sex", "dim_age_band", "held_by").rows()
    ) == [
        ("karmiel", 24300, "female", "25-44", [1, 2]),
        ("karmiel", 24301, "male", "25-44", [2, 3]),
    ]


def test_figures_of_different_people_are_not_counted_twice(initiative: Initiative) -> None:
    """January's women and men, February's total, and another partner's January total."""
    rows = counted(
        (1, "karmiel", "2025-01", "sex=female"),
        (2, "karmiel", "2025-01", "sex=male"),
        (3, "karmiel", "2025-02", "sex=total"),
    )
    other = rows.head(1).with_columns(pl.lit("online-commerce-centre").alias("partner_id"))
    assert cells_counted_twice(pl.concat([rows, other]), initiative).is_empty()


@pytest.fixture
def good(
    sqlite_engine: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> tuple[Engine, set[str]]:
    """One accepted file: every invariant holds; what was outside the home before it."""
    intake.prepare_database(initiative, engine=sqlite_engine)
    path = starter_file(tmp_path / "files" / "jan.csv", ("karmiel", "2025-01", "", 4))
    outside = files_outside(tmp_path, settings.home)
    receipt = ingest(
        path, STARTER, "2025-01", initiative=initiative, settings=settings, engine=sqlite_engine
    )
    assert receipt.status == "accepted"
    check_invariants(sqlite_engine, settings, initiative, root=tmp_path, outside_before=outside)
    return sqlite_engine, outside


def broken(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    engine, outside = good
    with pytest.raises(AssertionError):
        check_invariants(engine, settings, initiative, root=tmp_path, outside_before=outside)


def test_a_submission_left_received_is_caught(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    with good[0].begin() as conn:
        conn.execute(text("UPDATE submission SET status = 'received'"))
    broken(good, settings, initiative, tmp_path)


def test_observations_of_a_rejected_file_are_caught(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    with good[0].begin() as conn:
        conn.execute(text("UPDATE submission SET status = 'rejected'"))
    broken(good, settings, initiative, tmp_path)


def test_an_archive_copy_that_is_not_the_file_is_caught(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    [copy] = [p for p in settings.archive_dir.rglob("*") if p.is_file()]
    copy.write_bytes(copy.read_bytes()[:-3])  # truncated
    broken(good, settings, initiative, tmp_path)


def test_a_stray_partial_copy_in_the_archive_is_caught(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    [copy] = [p for p in settings.archive_dir.rglob("*") if p.is_file()]
    copy.with_name(f".{copy.name}.part").write_bytes(b"measure_id,geo")
    broken(good, settings, initiative, tmp_path)


def test_a_report_naming_another_submission_is_caught(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    [report] = settings.reports_dir.rglob("report.json")
    report.write_text(report.read_text().replace('"submission_id": 1', '"submission_id": 2'))
    broken(good, settings, initiative, tmp_path)


def test_a_file_written_outside_the_home_is_caught(
    good: tuple[Engine, set[str]], settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    (tmp_path / "stray.log").write_text("written where it should not be")
    broken(good, settings, initiative, tmp_path)
