"""Rows per second for a 1,000,000-row CSV submission, stage by stage, on SQLite and PostgreSQL.

Usage::

    .venv/bin/python benchmarks/ingest_rows.py [--rows 1000000] [--postgres URL]

It writes a synthetic initiative (500 localities; one quarterly count measure broken down by
125 age bands and 4 sexes) and a CSV of that many valid rows to a temporary folder, then times
read → validate → store through the same core functions the ingest flow calls. For scale it
also times SQLModel's ``session.add_all`` on a sample, the per-object ORM path the store avoids.

The floor, measured in the same run on the same (empty) observation table: polars
``read_csv`` of the file, the observation columns made from it, and a bulk insert — ADBC's
``adbc_ingest`` when ``adbc-driver-sqlite`` / ``adbc-driver-postgresql`` are importable (they
are not dependencies of the project: install them to measure against them), else the store's
own set-based path (``executemany`` / ``COPY``). The ratio end to end / floor is what the
checks, the duplicate and overlap look-ups and the one transaction cost on top of moving the
bytes. Peak RSS is the process's high-water mark so far. Prints figures and ratios; asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl
import yaml
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from benchmarks import floors
from ci_pipeline import store
from ci_pipeline.clock import utcnow
from ci_pipeline.config import get_settings
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import intake

T = TypeVar("T")
AGES = [f"a{i:03d}" for i in range(125)]
SEXES = ["female", "male", "other", "unknown"]
QUARTERS = ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]


def write_geographies(folder: Path, codes: list[str]) -> list[dict[str, object]]:
    """A synthetic cluster ("region") of localities with these codes, as geographies.yaml."""
    geos: list[dict[str, object]] = [
        {"code": "region", "level": "cluster", "name": {"en": "Region"}}
    ]
    geos += [
        {"code": code, "level": "locality", "parent": "region", "name": {"en": code}}
        for code in codes
    ]
    (folder / "geographies.yaml").write_text(yaml.safe_dump(geos))
    return geos


def write_initiative(folder: Path, localities: int) -> None:
    (folder / "measures").mkdir(parents=True)
    (folder / "initiative.yaml").write_text(
        yaml.safe_dump(
            {"id": "bench", "name": {"en": "Benchmark"}, "description": "synthetic", "version": "1"}
        )
    )
    geos = write_geographies(folder, [f"loc{i:04d}" for i in range(localities)])
    partner = {
        "id": "bench-partner",
        "name": "Bench",
        "sector": "central_government",
        "localities": [g["code"] for g in geos[1:]],
        "measures": ["people-served"],
        "submits_every": "year",
        "contact": {"name": "x", "email": "x@example.org"},
    }
    (folder / "partners.yaml").write_text(yaml.safe_dump([partner]))
    measure = {
        "id": "people-served",
        "version": 1,
        "title": "People served",
        "description": "synthetic",
        "unit": "count",
        "unit_label": "people",
        "combine": "sum",
        "direction": "higher_is_better",
        "dimensions": {"age_band": ["total", *AGES], "sex": ["total", *SEXES]},
        "valid_range": {"min": 0, "max": 100000},
        "periodicity": "quarter",
        "deadline_days": 30,
    }
    (folder / "measures" / "people-served.yaml").write_text(yaml.safe_dump(measure))


def write_csv(path: Path, rows: int) -> int:
    per_geo = len(QUARTERS) * len(AGES) * len(SEXES)
    localities = -(-rows // per_geo)
    combos = (
        pl.DataFrame({"geo_code": [f"loc{i:04d}" for i in range(localities)]})
        .join(pl.DataFrame({"period": QUARTERS}), how="cross")
        .join(pl.DataFrame({"age_band": AGES}), how="cross")
        .join(pl.DataFrame({"sex": SEXES}), how="cross")
        .head(rows)
    )
    frame = combos.select(
        pl.lit("people-served").alias("measure_id"),
        "geo_code",
        "period",
        "age_band",
        "sex",
        (pl.int_range(pl.len()) % 97).alias("value"),
    )
    frame.write_csv(path)
    return localities


def timed(label: str, fn: Callable[[], T], rows: int, results: dict[str, float]) -> T:
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    results[label] = seconds
    print(f"  {label:<28} {seconds:8.2f} s  {rows / seconds:>12,.0f} rows/s")
    return value


BENCH_SCHEMA = "ci_pipeline_bench"


def _engine(url: str) -> Engine:
    """SQLite as configured; PostgreSQL inside a schema of the benchmark's own, so running it
    against a shared database never touches that database's tables."""
    if not url.startswith("postgresql"):
        return store.make_engine(url)
    admin = store.make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {BENCH_SCHEMA}"))
    admin.dispose()
    return create_engine(url, connect_args={"options": f"-csearch_path={BENCH_SCHEMA}"})


def floor(database_url: str, engine: Engine, csv: Path, rows: int) -> tuple[float, str]:
    """Seconds to read the CSV with polars and bulk-insert it into the empty observation table,
    and how it was inserted; the rows are deleted again (untimed)."""
    postgres = database_url.startswith("postgresql")
    seconds, how, _, submission_id = floors.ingest_floor(
        database_url,
        engine,
        csv,
        {
            "initiative_id": "bench",
            "partner_id": "bench-partner",
            "period": "floor",
            "status": "rejected",
        },
        ["age_band", "sex"],
        schema=BENCH_SCHEMA if postgres else None,
    )
    with engine.begin() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM observation WHERE submission_id = :id"),
            {"id": submission_id},
        ).scalar()
        assert stored == rows, stored
        conn.execute(
            text("DELETE FROM observation WHERE submission_id = :id"), {"id": submission_id}
        )
        conn.execute(text("DELETE FROM submission WHERE id = :id"), {"id": submission_id})
    return seconds, how


def run(
    database_url: str, home: Path, initiative_dir: Path, csv: Path, rows: int
) -> dict[str, float]:
    os.environ["CI_PIPELINE_HOME"] = str(home)
    settings = get_settings(
        database_url=database_url, initiative=initiative_dir, max_file_bytes=2**31
    )
    initiative = load_initiative(initiative_dir)
    engine = _engine(settings.resolved_database_url)
    store.drop_schema(engine=engine)
    intake.prepare_database(initiative, engine=engine)
    results: dict[str, float] = {}
    floor_seconds, how = floor(settings.resolved_database_url, engine, csv, rows)
    results["floor"] = floor_seconds
    print(f"  {'floor: ' + how:<28} {floor_seconds:8.2f} s  {rows / floor_seconds:>12,.0f} rows/s")
    total = time.perf_counter()
    received = timed(
        "receive (hash, bytes into the database)",
        lambda: intake.take(
            csv, "bench-partner", "2025", initiative=initiative, settings=settings, engine=engine
        ),
        rows,
        results,
    )
    assert received.id is not None
    loaded = timed(
        "load (archive copy from the database)",
        lambda: intake.load(received.id or 0, settings=settings, engine=engine),
        rows,
        results,
    )
    assert isinstance(loaded, store.Submission)
    new = loaded
    parsed = timed(
        "read + to_long_frame",
        lambda: intake.parse(new, initiative=initiative, settings=settings),
        rows,
        results,
    )
    assert isinstance(parsed, intake.Parsed), parsed
    result = timed(
        "validate (pandera) + conflicts",
        lambda: intake.check(parsed, new, initiative=initiative, engine=engine),
        rows,
        results,
    )
    assert result.accepted, result.issues.head()
    receipt = timed(
        "store (one transaction)",
        lambda: intake.record(new, result, encoding=None, settings=settings, engine=engine),
        rows,
        results,
    )
    results["total"] = time.perf_counter() - total
    assert receipt.rows_accepted == rows, receipt
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM observation")).scalar()
    assert stored == rows
    print(
        f"  {'end to end':<28} {results['total']:8.2f} s  {rows / results['total']:>12,.0f} rows/s"
    )
    pipeline = sum(
        results[k]
        for k in (
            "read + to_long_frame",
            "validate (pandera) + conflicts",
            "store (one transaction)",
        )
    )
    print(
        f"  vs floor: end to end {results['total'] / floor_seconds:.1f}x, "
        f"read + validate + store {pipeline / floor_seconds:.1f}x"
    )
    assert result.observations is not None
    print(
        f"  peak RSS so far {floors.peak_rss_mib():,.0f} MiB; the observations' Arrow size "
        f"{result.observations.estimated_size() / 2**20:,.0f} MiB"
    )
    results["orm_rows_per_s"] = orm_baseline(engine)
    print(f"  {'ORM add_all (sample)':<28} {'':8}    {results['orm_rows_per_s']:>12,.0f} rows/s")
    print(
        f"  bulk store vs ORM add_all: {rows / results['store (one transaction)'] / results['orm_rows_per_s']:.1f}x"
    )
    store.drop_schema(engine=engine)
    engine.dispose()
    return results


def orm_baseline(engine: Engine, sample: int = 20_000) -> float:
    """Rows/s of per-object ORM inserts, the path the store does not take."""
    with Session(engine) as session:
        sub = store.Submission(
            initiative_id="bench",
            partner_id="orm",
            period="2025",
            content_hash="x",
            file_name="x",
            file_format="csv",
            status="rejected",
            received_at=utcnow(),
        )
        session.add(sub)
        session.flush()
        assert sub.id is not None
        objs = [
            store.Observation(
                submission_id=sub.id,
                partner_id="orm",
                measure_id="people-served",
                measure_version=1,
                geo_code="loc0000",
                period="2025-Q1",
                disaggregation=f"k{i}",
                value=float(i),
                source_row=i,
            )
            for i in range(sample)
        ]
        start = time.perf_counter()
        session.add_all(objs)
        session.commit()
        return sample / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CI_PIPELINE_TEST_POSTGRES_URL"),
        help="PostgreSQL URL (default: CI_PIPELINE_TEST_POSTGRES_URL)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_initiative(
            base / "initiative",
            localities=-(-args.rows // (len(QUARTERS) * len(AGES) * len(SEXES))),
        )
        csv = base / "submission.csv"
        write_csv(csv, args.rows)
        print(f"{args.rows:,} rows, {csv.stat().st_size / 2**20:.0f} MiB CSV")
        print("SQLite:")
        lite = run(
            f"sqlite:///{base / 'bench.db'}",
            base / "home-sqlite",
            base / "initiative",
            csv,
            args.rows,
        )
        if args.postgres:
            print("PostgreSQL:")
            pg = run(args.postgres, base / "home-pg", base / "initiative", csv, args.rows)
            print(f"end to end, PostgreSQL vs SQLite: {lite['total'] / pg['total']:.2f}x")
        else:
            print("PostgreSQL: skipped (no --postgres URL and CI_PIPELINE_TEST_POSTGRES_URL unset)")


if __name__ == "__main__":
    main()
