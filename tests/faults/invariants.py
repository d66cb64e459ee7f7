"""What must hold after any fault, once the pipeline has recovered: the guarantees of README.md
("What the pipeline guarantees"), checked from the database and the disk alone.

- every submission has exactly one final verdict (none left ``received``), and the verdicts
  agree with each other (a duplicate points to an accepted original with its bytes, a
  superseded file to its successor, only accepted files hold counted observations);
- no figure is counted twice: each counted observation is expanded, independently of the
  overlap rule under test, into the people it counts — (measure, place, month, one code per
  dimension) — and no such cell may come from two observations;
- the archive holds a whole copy of every received file (its SHA-256 is the submission's
  content hash) and nothing else (no partial or stray copy);
- every verdict's report exists and names its own submission;
- nothing was written outside ``CI_PIPELINE_HOME``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, text

from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import AcrossPartners, Initiative
from ci_pipeline.model.periods import parse_period

FINAL = {"accepted", "rejected", "duplicate", "superseded"}
#: The code a dimension's total stands for besides the codes seen: the people no code names.
OTHERS = "*others*"


def files_outside(root: Path, home: Path, *, ignore: tuple[Path, ...] = ()) -> set[str]:
    """Every file and folder under ``root`` but outside ``home`` (and ``ignore``), relative."""
    skipped = (home, *ignore)
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not any(p == s or p.is_relative_to(s) for s in skipped)
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submissions(engine: Engine) -> list[dict[str, Any]]:
    """Every submission row, in id order."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM submission ORDER BY id")).mappings().all()
    return [dict(r) for r in rows]


def observations(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored observation with its submission's status, in id order."""
    sql = (
        "SELECT o.id, o.submission_id, s.status, o.partner_id, o.measure_id, o.geo_code, "
        "o.period, o.disaggregation, o.value, o.numerator, o.denominator "
        "FROM observation o JOIN submission s ON s.id = o.submission_id ORDER BY o.id"
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


@dataclass(frozen=True)
class Snapshot:
    """The database's submissions and observations at one moment (to compare two moments)."""

    submissions: list[dict[str, Any]]
    observations: list[tuple[Any, ...]]


def snapshot(engine: Engine) -> Snapshot:
    return Snapshot(submissions(engine), observations(engine))


#: Counted observations as :func:`cells_counted_twice` takes them.
COUNTED_SCHEMA = {
    "id": pl.Int64,
    "submission_id": pl.Int64,
    "partner_id": pl.Utf8,
    "measure_id": pl.Utf8,
    "geo_code": pl.Utf8,
    "period": pl.Utf8,
    "disaggregation": pl.Utf8,
}


def counted_cells(counted: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    """Each counted observation expanded into the cells of people it counts: (who, measure,
    place, month, one code per dimension). ``who`` is the partner, except for a measure whose
    partners report the same people (``across_partners: exclusive``): there any partner's
    figure counts the cell.

    Worked apart from the overlap rule: a period covers each of its months; a code covers
    itself; a dimension's total (or a dimension the key does not name) covers every code seen
    for it and :data:`OTHERS`. A figure counted twice is a cell that appears twice.
    """
    if counted.is_empty():
        return pl.DataFrame()
    exclusive = {
        m.id for m in initiative.measures.values() if m.across_partners is AcrossPartners.exclusive
    }
    pairs = counted["disaggregation"].str.split(";").explode().str.split_exact("=", 1)
    named = pairs.struct.unnest().filter(pl.col("field_1").is_not_null())
    dimensions = sorted(set(named["field_0"]))
    seen = {d: sorted(set(named.filter(pl.col("field_0") == d)["field_1"])) for d in dimensions}
    months = {
        p: list(range(parse_period(p).start, parse_period(p).end + 1))
        for p in counted["period"].unique()
    }
    cells = counted.with_columns(
        pl.when(pl.col("measure_id").is_in(sorted(exclusive)))
        .then(pl.lit("*any*"))
        .otherwise(pl.col("partner_id"))
        .alias("who"),
        pl.col("period").replace_strict(months, return_dtype=pl.List(pl.Int64)).alias("month"),
    ).explode("month")
    for d in dimensions:
        every = [*(c for c in seen[d] if c != "total"), OTHERS]
        code = pl.col("disaggregation").str.extract(rf"(?:^|;){d}=([^;]+)", 1).fill_null("total")
        cells = cells.with_columns(
            pl.when(code == "total")
            .then(pl.lit(every, dtype=pl.List(pl.Utf8)))
            .otherwise(pl.concat_list(code))
            .alias(f"dim_{d}")
        ).explode(f"dim_{d}")
    return cells


def counted_twice(engine: Engine, initiative: Initiative) -> pl.DataFrame:
    """The cells of people that more than one counted observation counts (empty: none)."""
    sql = (
        "SELECT o.id, o.submission_id, o.partner_id, o.measure_id, o.geo_code, o.period, "
        "o.disaggregation FROM observation o JOIN submission s ON s.id = o.submission_id "
        "WHERE s.status = 'accepted'"
    )
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    counted = pl.DataFrame(
        [tuple(r) for r in rows],
        schema=COUNTED_SCHEMA,
        orient="row",
    )
    return cells_counted_twice(counted, initiative)


def cells_counted_twice(counted: pl.DataFrame, initiative: Initiative) -> pl.DataFrame:
    cells = counted_cells(counted, initiative)
    if cells.is_empty():
        return cells
    key = [
        "who",
        "measure_id",
        "geo_code",
        "month",
        *(c for c in cells.columns if c.startswith("dim_")),
    ]
    return (
        cells.group_by(key)
        .agg(pl.col("submission_id").alias("held_by"), pl.len().alias("n"))
        .filter(pl.col("n") > 1)
    )


def check_invariants(
    engine: Engine,
    settings: Settings,
    initiative: Initiative,
    *,
    root: Path,
    outside_before: set[str],
    ignore: tuple[Path, ...] = (),
) -> list[dict[str, Any]]:
    """Assert every guarantee (see the module); the submissions, for further checks.

    ``root``: a folder holding ``settings.home``; ``outside_before`` its
    :func:`files_outside` listing before the faults (``ignore``: what the test itself wrote
    there meanwhile, such as a Prefect server's own files).
    """
    rows = submissions(engine)
    by_id = {r["id"]: r for r in rows}
    assert rows, "no submission at all: nothing was checked"

    # One final verdict each, consistent with the others.
    assert {r["id"]: r["status"] for r in rows if r["status"] not in FINAL} == {}
    for r in rows:
        assert r["validated_at"] is not None, r
        if r["status"] == "duplicate":
            original = by_id[r["duplicate_of"]]
            assert original["status"] in {"accepted", "superseded"}, (r, original)
            assert (original["content_hash"], original["partner_id"], original["period"]) == (
                r["content_hash"],
                r["partner_id"],
                r["period"],
            )
        if r["status"] == "superseded":
            successor = by_id[r["superseded_by"]]
            assert successor["status"] in {"accepted", "superseded"}, (r, successor)
            assert (successor["partner_id"], successor["period"]) == (r["partner_id"], r["period"])
            assert successor["supersedes"] == r["id"], (r, successor)
    current = [(r["partner_id"], r["period"]) for r in rows if r["status"] == "accepted"]
    assert len(current) == len(set(current)), "two accepted submissions for one period"

    # Observations: only accepted (or since superseded) files hold them, all of their rows.
    stored = pl.DataFrame(
        [o[:3] for o in observations(engine)],
        schema={"id": pl.Int64, "submission_id": pl.Int64, "status": pl.Utf8},
        orient="row",
    )
    assert set(stored["status"]) <= {"accepted", "superseded"}
    held = dict(stored.group_by("submission_id").len().iter_rows())
    for r in rows:
        if r["status"] in {"accepted", "superseded"}:
            assert held.get(r["id"], 0) == r["rows_accepted"] > 0, r

    # No figure counted twice.
    twice = counted_twice(engine, initiative)
    assert twice.is_empty(), twice

    # The archive: a whole copy of every received file, and nothing else.
    expected = {Path(r["archive_path"]) for r in rows if r["archive_path"] is not None}
    for r in rows:
        if r["archive_path"] is not None:
            path = Path(r["archive_path"])
            assert path.is_relative_to(settings.archive_dir), path
            assert path.is_file() and sha256(path) == r["content_hash"], r
    present = {p for p in settings.archive_dir.rglob("*") if p.is_file()}
    assert present == expected, present ^ expected

    # Every verdict's report names its own submission (a duplicate's is its original's).
    for r in rows:
        if r["status"] == "duplicate":
            assert r["report_path"] == by_id[r["duplicate_of"]]["report_path"], r
            continue
        assert r["report_path"] is not None, r
        report = json.loads(Path(r["report_path"]).read_text(encoding="utf-8"))
        written = "rejected" if r["status"] == "rejected" else "accepted"
        assert (report["submission_id"], report["status"]) == (r["id"], written), r

    # Nothing written outside CI_PIPELINE_HOME.
    assert settings.home.is_relative_to(root)
    now = files_outside(root, settings.home, ignore=ignore)
    assert now == outside_before, now ^ outside_before
    return rows
