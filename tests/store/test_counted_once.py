"""A figure is counted once: the overlap check and the write are one atomic step.

Concurrent acceptances on SQLite and PostgreSQL, and the cross-partner rule
(``across_partners: exclusive``). Every test takes ``engine``: it runs on both databases.
"""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.config import DEFAULT_INITIATIVE
from ci_pipeline.errors import AlreadyReported
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.model.overlap import overlapping
from ci_pipeline.model.periods import parse_period
from tests import helpers

MEASURE = "starter-students-trained"  # monthly, broken down by sex
PARTNER = "braude-college"
#: A cell's shape: its total, its whole breakdown by sex, or one code of it.
SHAPES = {
    "total": [("sex=total", 4.0)],
    "sex": [("sex=female", 2.0), ("sex=male", 2.0)],
    "female": [("sex=female", 2.0)],
    "male": [("sex=male", 2.0)],
}
K, M = "karmiel", "misgav"
#: Twenty files of one partner: (submission period, [(place, row period, shape)]). Months,
#: quarters and the year, as submissions and as rows; totals and breakdowns of the same cells.
ATTEMPTS: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("2025-01", [(K, "2025-01", "total")]),
    ("2025-01", [(K, "2025-01", "sex"), (M, "2025-01", "total")]),
    ("2025-02", [(K, "2025-02", "total")]),
    ("2025-02", [(M, "2025-02", "female")]),
    ("2025-03", [(M, "2025-03", "sex")]),
    ("2025-03", [(K, "2025-03", "female")]),
    ("2025-Q1", [(K, "2025-01", "sex"), (K, "2025-02", "total"), (K, "2025-03", "total")]),
    ("2025-Q1", [(K, "2025-Q1", "total")]),
    ("2025-Q1", [(M, "2025-02", "female"), (M, "2025-03", "male")]),
    ("2025", [(K, "2025", "sex")]),
    ("2025", [(M, "2025-Q1", "total"), (M, "2025-Q2", "total")]),
    ("2025-Q2", [(K, "2025-04", "total"), (K, "2025-05", "sex")]),
    ("2025-Q2", [(K, "2025-Q2", "female")]),
    ("2025-04", [(K, "2025-04", "female"), (M, "2025-04", "total")]),
    ("2025-05", [(K, "2025-05", "total")]),
    ("2025-06", [(M, "2025-06", "sex")]),
    ("2025-Q2", [(M, "2025-05", "total"), (M, "2025-06", "female")]),
    ("2025-01", [(M, "2025-01", "female")]),
    ("2025-Q1", [(K, "2025-03", "male"), (M, "2025-01", "male")]),
    ("2025", [(K, "2025-Q3", "total"), (M, "2025-Q4", "sex")]),
]


def rows_of(cells: list[tuple[str, str, str]]) -> pl.DataFrame:
    rows = [
        (MEASURE, 1, geo, period, key, None, None, value)
        for geo, period, shape in cells
        for key, value in SHAPES[shape]
    ]
    return pl.DataFrame(
        [(i + 2, *row) for i, row in enumerate(rows)],
        schema=helpers.OBSERVATION_SCHEMA,
        orient="row",
    )


def new_submission(
    period: str, content_hash: str, partner_id: str = PARTNER
) -> store.NewSubmission:
    return helpers.new_submission(
        content_hash,
        partner_id=partner_id,
        period=period,
        file_name=f"{period}.csv",
        received_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    )


def accept(
    engine: Engine, period: str, frame: pl.DataFrame, content_hash: str, partner_id: str = PARTNER
) -> store.Accepted:
    """Receive a file and accept it as the intake does: the overlap check and the write in one
    transaction under the accept lock (raises AlreadyReported, leaving it received)."""
    pending = store.record_received(
        new_submission(period, content_hash, partner_id), content=None, size_bytes=0, engine=engine
    )
    with store.locked_transaction(store.ACCEPT_LOCK, engine=engine) as session:
        outcome = store.accept(session, pending, frame, rows_total=frame.height, encoding="utf-8")
    assert isinstance(outcome, store.Accepted)
    return outcome


@pytest.fixture
def synced(engine: Engine, initiative: Initiative) -> Engine:
    store.sync_initiative(initiative, engine=engine)
    return engine


def counted_twice(current: pl.DataFrame) -> pl.DataFrame:
    """Each (place, month, sex) the partner's current figures cover more than once, worked
    out cell by cell apart from the rule under test: a row covers every month of its period
    and, as a total, both sexes."""
    months = [
        list(range(parse_period(p).start, parse_period(p).end + 1)) for p in current["period"]
    ]
    return (
        current.with_columns(
            pl.Series("month", months),
            pl.col("disaggregation")
            .replace_strict(
                {"sex=total": ["female", "male"], "sex=female": ["female"], "sex=male": ["male"]},
                return_dtype=pl.List(pl.Utf8),
            )
            .alias("sex"),
        )
        .explode("month")
        .explode("sex")
        .group_by("geo_code", "month", "sex")
        .agg(pl.col("submission_id").alias("held_by"), pl.len().alias("n"))
        .filter(pl.col("n") > 1)
    )


def test_counted_twice_finds_a_double_count() -> None:
    """The check below can fail: January's total and, from the quarter, its female figure."""
    current = pl.DataFrame(
        {
            "submission_id": [1, 2, 2],
            "geo_code": [K, K, M],
            "period": ["2025-01", "2025-Q1", "2025-01"],
            "disaggregation": ["sex=total", "sex=female", "sex=total"],
        }
    )
    # Karmiel, month 2025*12 + 0 = 24300, female: in #1 (total) and #2 (the quarter's female).
    assert counted_twice(current).select("geo_code", "month", "sex", "n").rows() == [
        (K, 24300, "female", 2)
    ]


def test_twenty_concurrent_acceptances_count_every_figure_once(synced: Engine) -> None:
    start = threading.Barrier(len(ATTEMPTS))

    def attempt(index: int) -> str:
        period, cells = ATTEMPTS[index]
        frame = rows_of(cells)
        start.wait()  # all at once
        try:
            accept(synced, period, frame, f"{index:064x}")
        except AlreadyReported as exc:
            assert set(exc.conflicts["held_partner"]) == {PARTNER}
            return "rejected"
        return "accepted"

    with ThreadPoolExecutor(max_workers=len(ATTEMPTS)) as pool:
        outcomes = list(pool.map(attempt, range(len(ATTEMPTS))))

    # Exactly one outcome each (an unexpected error would have propagated from map).
    assert len(outcomes) == len(ATTEMPTS)
    assert set(outcomes) <= {"accepted", "rejected"}
    accepted = outcomes.count("accepted")
    assert accepted >= 1
    with synced.connect() as conn:
        result = conn.execute(text("SELECT status, count(*) FROM submission GROUP BY status"))
        statuses: dict[str, int] = {status: n for status, n in result}
    # An accepted file is stored, current or superseded by a later file for its period; a
    # refused one stays received, with nothing written (its rejection is the caller's).
    assert statuses.get("accepted", 0) + statuses.get("superseded", 0) == accepted
    assert statuses.get("received", 0) == len(ATTEMPTS) - accepted
    assert set(statuses) <= {"accepted", "superseded", "received"}

    current = store.current_observations(engine=synced, partner_id=PARTNER).with_columns(
        pl.col("submission_id").cast(pl.Int64)
    )
    assert not current.is_empty()
    assert counted_twice(current).is_empty()
    # And by the rule itself: no current figure overlaps one of another submission.
    held = current.select(
        "measure_id", "geo_code", "period", "disaggregation", pl.col("submission_id").alias("by")
    )
    pairs = overlapping(current, held).filter(pl.col("submission_id") != pl.col("by"))
    assert pairs.is_empty()


def test_the_check_at_the_write_refuses_what_an_earlier_check_allowed(synced: Engine) -> None:
    """Two files checked before either is stored (both pass), then both written: the second
    is refused at the write and stores nothing."""
    january = rows_of([(K, "2025-01", "total")])
    quarter = rows_of([(K, "2025-01", "female"), (M, "2025-02", "total")])
    for period, frame in (("2025-01", january), ("2025-Q1", quarter)):
        found = store.find_conflicts("beit-hakerem", PARTNER, period, frame, engine=synced)
        assert found.is_empty()

    first = accept(synced, "2025-01", january, "1" * 64)
    with pytest.raises(AlreadyReported) as refused:
        accept(synced, "2025-Q1", quarter, "2" * 64)

    clash = refused.value.conflicts.row(0, named=True)
    assert refused.value.conflicts.height == 1
    assert (clash["source_row"], clash["disaggregation"], clash["held_disaggregation"]) == (
        2,
        "sex=female",
        "sex=total",
    )
    assert (clash["held_by"], clash["held_in"]) == (first.submission.id, "2025-01")
    with synced.connect() as conn:
        decided = "SELECT count(*) FROM submission WHERE status <> 'received'"
        assert conn.execute(text(decided)).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM observation")).scalar_one() == 1


def test_a_correction_of_the_same_period_is_not_an_overlap(synced: Engine) -> None:
    """January's total, then January again as a breakdown: it replaces the total."""
    first = accept(synced, "2025-01", rows_of([(K, "2025-01", "total")]), "1" * 64)
    second = accept(synced, "2025-01", rows_of([(K, "2025-01", "sex")]), "2" * 64)

    assert second.superseded is not None and second.superseded.id == first.submission.id
    current = store.current_observations(engine=synced, partner_id=PARTNER)
    assert current.select("disaggregation", "value").rows() == [
        ("sex=female", 2.0),
        ("sex=male", 2.0),
    ]


# --- two partners, the same cell ------------------------------------------------------------------


def exclusive_initiative(tmp_path: Path) -> Initiative:
    """The bundled initiative with the starter measure reported by one partner per cell."""
    folder = tmp_path / "initiative"
    shutil.copytree(DEFAULT_INITIATIVE, folder)
    path = folder / "measures" / f"{MEASURE}.yaml"
    definition = yaml.safe_load(path.read_text(encoding="utf-8"))
    definition["across_partners"] = "exclusive"
    path.write_text(yaml.safe_dump(definition, allow_unicode=True), encoding="utf-8")
    return load_initiative(folder)


def test_an_exclusive_measure_refuses_a_second_partner_for_the_same_people(
    engine: Engine, tmp_path: Path
) -> None:
    store.sync_initiative(exclusive_initiative(tmp_path), engine=engine)
    accept(engine, "2025-Q1", rows_of([(K, "2025-01", "total")]), "1" * 64)
    other = "online-commerce-centre"

    with pytest.raises(AlreadyReported) as refused:
        accept(engine, "2025-01", rows_of([(K, "2025-01", "male"), (M, "2025-01", "total")]), "2" * 64, other)  # fmt: skip

    # Karmiel's January men are in braude-college's January total; Misgav is nobody's yet.
    conflicts = refused.value.conflicts
    assert conflicts.select("source_row", "geo_code", "held_partner", "held_in").rows() == [
        (2, K, PARTNER, "2025-Q1")
    ]
    accept(engine, "2025-01", rows_of([(M, "2025-01", "total")]), "3" * 64, other)


def test_by_default_partners_count_different_people(synced: Engine) -> None:
    """``across_partners: sum`` (every bundled measure): two partners' figures for the same
    cell are both stored; the aggregate adds them up."""
    accept(synced, "2025-01", rows_of([(K, "2025-01", "total")]), "1" * 64)
    accept(
        synced, "2025-01", rows_of([(K, "2025-01", "total")]), "2" * 64, "online-commerce-centre"
    )

    assert store.current_observations(engine=synced, geo_code=K).height == 2
