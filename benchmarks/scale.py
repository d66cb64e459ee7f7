"""Issue 11's table at national scale: each step's project seconds, its floor's seconds and their
ratio, measured in the same run, on SQLite and PostgreSQL.

Usage::

    .venv/bin/python benchmarks/scale.py [--rows 1000000] [--postgres URL] [--cli] [--latency]
        [--skip-sqlite] [--repeats K] [--profile DIR] [--keep DIR]

``--rows`` (R) sets the size; everything scales with it. The synthetic national initiative
has a national root (a ``cluster``), 10 districts, R/4,000 localities and R/400 statistical
areas (at R = 1,000,000: 250 and 2,500; districts and the areas below them are ``locality``
geographies: the model has no other levels), 100 partners (a national office reporting every
measure for every area, and 99 regional ones each reporting one measure for half a district)
and 20 quarterly measures broken down by sex (2 codes) and age band (4): 15 of counts, every
fourth a proportion. A measure's quarter is one table of (areas + localities + districts + 1)
x 3 x 5 indicator cells (41,415 at R = 1M) from areas x 8 observations (20,000). A tiny run
(``--rows 4000 --areas 20 --no-report-card``, what the test runs) takes about half a minute;
at 1M rows a run took 70 minutes on a loaded 2-core machine, most of it the report card (a
cold build of it is now 43 s at 1M).

Each case runs in a child process of its own (a fresh interpreter, so peaks do not mix and
imports are not timed), through the core functions the flows call (``intake.take`` and
``intake.ingest``: what the ingest flow's tasks call; ``aggregate.refresh_indicators``,
``detect.judge``, ``alert.record_alerts``, ``alert.deliver`` and ``report.build_report``: the
process flow's). The rows printed:

- **ingest R rows / R/10 rows** (SQLite; R rows on PostgreSQL): one CSV of the national
  office's figures for 2025 into an empty database, received and ingested. Floor: polars
  ``read_csv`` of the same file shaped into observation rows, and a bulk insert into the same,
  empty observation table (ADBC ``adbc_ingest`` if the driver is installed, else the store's
  ``executemany`` / ``COPY``; the row says which). Both sides start warm: pandera, pyarrow
  and the ADBC driver are imported before the clock starts, as in ``serve`` or the daemon
  (``_warm_imports``). The scaling exponent is log(t_R / t_R/10) / log(10): 1 is linear.
  ``--repeats K`` runs project and floor K times in turn and prints each one's median run.
- **submit a 10-row file** (``--cli``): ``ci-pipeline submit`` as a user runs it, five times —
  the first command starts the command line's local Prefect daemon, the next four find it
  running (their median; the daemon then runs each ingest: ``serve/handoff.py``) — against the
  same steps in a warm process (take + ingest, median of two after one untimed file). The
  daemon is stopped afterwards. Without ``--cli`` the row is skipped (it costs 30-60 s of Prefect
  start-up per backend).
- **full rebuild**: the history of R rows (the national office's files for five quarters,
  2024-Q4 to 2025-Q4, of R/100,000 measures: 10 at R = 1M) ingested untimed, then every
  indicator slice recomputed (``refresh_indicators(full=True)``: read, roll up, privacy,
  write). Floor: the observations read through ADBC, one lazy polars group-by per kept
  breakdown over the geography roll-up, and an ADBC write of as many cells into the same
  indicator table (sums and partner counts; no privacy, no coverage).
- **process after a 1k-row file**, with histories of R and R/10 rows: the history is
  rebuilt, judged, its alerts recorded and its report card built (untimed: every chart drawn,
  the first build's seconds in the notes); then a regional partner's file of R/1,000
  rows (one measure, one quarter, half a district) is ingested, and ``process`` as a run
  after new files does it is timed: the stale slices recomputed, the changed measures of each
  recomputed period judged, alerts recorded and delivered, the report card rebuilt. Both
  histories hold the touched measure's five quarters alike (at R/10 that measure is the whole
  history), so the work the change asks for is the same; the floor is the R/10 run, and the
  issue asks for a ratio of at most 1.2 (exponent ~0).
  The report card's rebuild is timed in a row of its own, and both together in a third:
  what a ``process`` run after the file takes.
- **peak RSS of the R-row ingest** (SQLite; PostgreSQL in its own row): the child process's
  high-water mark against the Arrow size of the observation rows it stores.
- **privacy audit of the national tables**: ``privacy.suppress`` timed on the R-row history's
  indicator cells (every measure-quarter table), with how many tables had a hidden cell, how
  many of those were audited exactly, and how many ``privacy.protect`` names as unaudited instead.
- **inbox to alert** (``--latency``): runs ``benchmarks/latency.py --repeats 5`` and prints its
  summary; otherwise the row points to it.

``--profile DIR`` writes a cProfile of each child case to DIR (``<case>.prof``). PostgreSQL
cases use databases of their own, created and dropped on the server ``--postgres`` names
(default: ``CI_PIPELINE_TEST_POSTGRES_URL``). Prints the table; asserts nothing but that the
rows stored are the rows written.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from benchmarks import floors

SEXES = ["female", "male"]
AGES = ["0-17", "18-44", "45-64", "65plus"]
DIMS = ["age_band", "sex"]
LEAVES = len(SEXES) * len(AGES)  # observations per area, measure and quarter
MEASURES = [f"m{i:02d}" for i in range(20)]
NATIONAL = "national-office"
REGIONAL = [f"regional-{i:02d}" for i in range(1, 100)]
HISTORY = ["2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
YEAR = ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
#: The 10-row files' quarters: one warm-up and two timed in the warm process, then one
#: command that starts the daemon and four that find it running.
TEN_ROWS = [*YEAR, "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
ROOT = "il"
RESULT = "RESULT "


def is_proportion(measure_id: str) -> bool:
    return int(measure_id[1:]) % 4 == 3


@dataclass(frozen=True)
class Geography:
    """The codes of the synthetic national geography."""

    districts: list[str]
    localities: dict[str, str]  # locality -> district
    areas: dict[str, str]  # statistical area -> locality

    @classmethod
    def of(cls, areas: int) -> Geography:
        n_localities = max(1, areas // 10)
        n_districts = min(10, n_localities)
        districts = [f"d{i:02d}" for i in range(n_districts)]
        localities = {
            f"l{i:04d}": districts[i * n_districts // n_localities] for i in range(n_localities)
        }
        names = list(localities)
        return cls(
            districts,
            localities,
            {f"s{i:05d}": names[i * n_localities // areas] for i in range(areas)},
        )

    def regional_areas(self, index: int) -> list[str]:
        """The areas of regional partner ``index`` (1-99): one half of one district."""
        district = self.districts[(index - 1) % len(self.districts)]
        mine = [a for a, loc in self.areas.items() if self.localities[loc] == district]
        half = len(mine) // 2
        return mine[:half] if ((index - 1) // len(self.districts)) % 2 == 0 else mine[half:]

    @property
    def cells_per_table(self) -> int:
        count = 1 + len(self.districts) + len(self.localities) + len(self.areas)
        return count * (len(SEXES) + 1) * (len(AGES) + 1)


def write_initiative(folder: Path, geo: Geography) -> None:
    """The initiative folder: geographies, partners and measures, as YAML."""
    (folder / "measures").mkdir(parents=True)
    info = {
        "id": "national",
        "name": {"en": "National"},
        "description": "synthetic",
        "version": "1",
    }
    (folder / "initiative.yaml").write_text(yaml.safe_dump(info))
    geos: list[dict[str, Any]] = [{"code": ROOT, "level": "cluster", "name": {"en": "Israel"}}]
    geos += [
        {"code": d, "level": "locality", "parent": ROOT, "name": {"en": d}} for d in geo.districts
    ]
    geos += [
        {"code": c, "level": "locality", "parent": p, "name": {"en": c}}
        for c, p in [*geo.localities.items(), *geo.areas.items()]
    ]
    (folder / "geographies.yaml").write_text(yaml.safe_dump(geos, sort_keys=False))
    contact = {"name": "x", "email": "x@example.org"}
    partners = [
        {
            "id": NATIONAL,
            "name": "National office",
            "sector": "central_government",
            "localities": list(geo.areas),
            "measures": MEASURES,
            "submits_every": "quarter",
            "contact": contact,
        }
    ] + [
        {
            "id": pid,
            "name": pid,
            "sector": "civil_society",
            "localities": geo.regional_areas(i),
            "measures": [MEASURES[(i - 1) % len(MEASURES)]],
            "submits_every": "quarter",
            "contact": contact,
        }
        for i, pid in enumerate(REGIONAL, start=1)
    ]
    (folder / "partners.yaml").write_text(yaml.safe_dump(partners, sort_keys=False))
    for m in MEASURES:
        proportion = is_proportion(m)
        measure: dict[str, Any] = {
            "id": m,
            "version": 1,
            "title": f"Measure {m}",
            "description": "synthetic",
            "unit": "proportion" if proportion else "count",
            "unit_label": "%" if proportion else "people",
            "combine": "ratio_of_sums" if proportion else "sum",
            "direction": "higher_is_better",
            "dimensions": {"age_band": ["total", *AGES], "sex": ["total", *SEXES]},
            "valid_range": {"min": 0, "max": 1} if proportion else {"min": 0, "max": 100000},
            "periodicity": "quarter",
            "deadline_days": 30,
        }
        if proportion:
            measure |= {"numerator": "people who did", "denominator": "people asked"}
        (folder / "measures" / f"{m}.yaml").write_text(yaml.safe_dump(measure))


def figures(
    areas: list[str], measures: list[str], quarters: list[str], seed: int = 0
) -> pl.DataFrame:
    """Leaf rows (every area x sex x age band) in quarter, measure, area order: counts of 5-44
    (some below the minimum cell size of 10), and proportions' numerators and denominators."""
    frame = (
        pl.DataFrame({"period": quarters})
        .join(pl.DataFrame({"measure_id": measures}), how="cross")
        .join(pl.DataFrame({"geo_code": areas}), how="cross")
        .join(pl.DataFrame({"sex": SEXES}), how="cross")
        .join(pl.DataFrame({"age_band": AGES}), how="cross")
    )
    key = pl.int_range(pl.len(), dtype=pl.Int64) % (len(areas) * LEAVES)
    noise = (key * 7919 + pl.col("period").rank("dense").cast(pl.Int64) * 104729 + seed * 31) % 40
    proportion = pl.col("measure_id").is_in([m for m in measures if is_proportion(m)])
    denominator = 20 + (key * 613) % 60
    return frame.select(
        "measure_id",
        "geo_code",
        "period",
        "sex",
        "age_band",
        pl.when(proportion).then(None).otherwise(5 + noise).alias("value"),
        pl.when(proportion).then(denominator * 3 // 10 + noise % 5).alias("numerator"),
        pl.when(proportion).then(denominator).alias("denominator"),
    )


def get(result: dict[str, Any] | None, key: str) -> float | None:
    """A figure of a case's result; None when the case failed."""
    return float(result[key]) if result else None


def ratio(project: float | None, floor: float | None) -> str:
    return f"{project / floor:.2f}x" if project and floor else "—"


def exponent(big: float | None, small: float | None) -> str:
    return f"{math.log(big / small) / math.log(10):.2f}" if big and small else "—"


# --- the cases, each run in a child process -----------------------------------------------


def _context(args: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Settings, initiative and engine of a case, its database prepared."""
    os.environ["CI_PIPELINE_HOME"] = args["home"]
    os.environ["CI_PIPELINE_INITIATIVE"] = args["initiative"]
    os.environ["CI_PIPELINE_DATABASE_URL"] = args["url"]
    from ci_pipeline import store
    from ci_pipeline.config import get_settings
    from ci_pipeline.model.load import load_initiative
    from ci_pipeline.receive import intake

    settings = get_settings(max_file_bytes=2**31)
    initiative = load_initiative(Path(args["initiative"]))
    engine = store.make_engine(args["url"])
    intake.prepare_database(initiative, engine=engine)
    return settings, initiative, engine


def _ingest(
    path: Path, partner: str, period: str, settings: Any, initiative: Any, engine: Any
) -> Any:
    """A file received and ingested as the ingest flow's tasks do it; the receipt."""
    from ci_pipeline.receive import intake

    row = intake.take(
        path, partner, period, initiative=initiative, settings=settings, engine=engine
    )
    assert row.id is not None
    receipt, _ = intake.ingest(row.id, initiative=initiative, settings=settings, engine=engine)
    assert receipt.status == "accepted", receipt.message
    return receipt


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run of median seconds (the lower middle of an even count), or None without any."""
    ordered = sorted(results, key=lambda r: r["seconds"])
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def _count(engine: Any, sql: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def _warm_imports() -> None:
    """What a long-lived process (``serve``, the command line's daemon) has imported before a
    large file lands, imported before the clock starts on either side: the contract's pandera
    (imported on first use, its backends registered as ``flows.runtime.warm_up`` does),
    pyarrow and the ADBC driver."""
    import importlib

    for module in (
        "pyarrow",
        "adbc_driver_sqlite.dbapi",
        "ci_pipeline.validate.issues",
        "ci_pipeline.validate.observations",
    ):
        with contextlib.suppress(ImportError):  # the floor's ADBC driver may be absent
            importlib.import_module(module)
    from ci_pipeline.validate.contract import warm  # the contract, and with it pandera

    warm()  # pandera's backends, registered on the first validate (as warm_up does)


def case_ingest(args: dict[str, Any]) -> dict[str, Any]:
    settings, initiative, engine = _context(args)
    _warm_imports()
    before = floors.peak_rss_mib()
    start = time.perf_counter()
    receipt = _ingest(Path(args["csv"]), NATIONAL, "2025", settings, initiative, engine)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "accepted": receipt.rows_accepted,
        "stored": _count(engine, "SELECT count(*) FROM observation"),
        "peak_mib": floors.peak_rss_mib(),
        "before_mib": before,
    }


def case_ingest_floor(args: dict[str, Any]) -> dict[str, Any]:
    _, _, engine = _context(args)
    _warm_imports()
    submission = {
        "initiative_id": "national",
        "partner_id": NATIONAL,
        "period": "2025",
        "status": "accepted",
    }
    seconds, how, frame, _ = floors.ingest_floor(
        args["url"], engine, Path(args["csv"]), submission, DIMS
    )
    return {
        "seconds": seconds,
        "how": how,
        "stored": _count(engine, "SELECT count(*) FROM observation"),
        "arrow_mib": frame.estimated_size() / 2**20,
        "peak_mib": floors.peak_rss_mib(),
    }


def floor_rebuild(url: str, initiative: Any, computed_at: Any) -> tuple[int, str]:
    """Observations read as Arrow, rolled up by one lazy polars plan (every geography towards
    itself and its ancestors; each subset of the breakdowns kept, the others at total), and
    written in bulk into the indicator table: cells written, and how."""
    from ci_pipeline.model.initiative import TOTAL

    pairs = [
        (code, target)
        for code in initiative.geographies
        for target in [code, *initiative.ancestors(code)]
    ]
    rollup = pl.LazyFrame(pairs, schema={"geo_code": pl.Utf8, "target": pl.Utf8}, orient="row")
    sql = (
        "SELECT o.submission_id, o.partner_id, o.measure_id, o.geo_code, o.period, "
        "o.disaggregation, o.value, o.numerator, o.denominator FROM observation o "
        "JOIN submission s ON s.id = o.submission_id WHERE s.status = 'accepted'"
    )
    adbc = floors.has_adbc(url)
    if adbc:
        observations = floors.adbc_read(url, sql)
    else:
        from sqlalchemy import text

        from ci_pipeline import store

        numbers = {c: pl.Float64 for c in ("value", "numerator", "denominator")}
        with store.make_engine(url).connect() as conn:  # typed: SQLite's first rows may be ints
            observations = pl.read_database(text(sql), conn, schema_overrides=numbers)
    base = (
        observations.lazy()
        .with_columns(
            pl.col("disaggregation").str.extract(rf"(?:^|;){d}=([^;]+)", 1).alias(d) for d in DIMS
        )
        .join(rollup, on="geo_code")
    )
    parts = []
    for kept in ([], ["age_band"], ["sex"], ["age_band", "sex"]):
        parts.append(
            base.group_by("measure_id", "target", "period", *kept)
            .agg(
                pl.col("value").sum(),
                pl.col("numerator").sum(),
                pl.col("denominator").sum(),
                pl.col("partner_id").n_unique().cast(pl.Int32).alias("partners_reported"),
                pl.col("submission_id")
                .unique()
                .sort()
                .cast(pl.Utf8)
                .str.join(",")
                .alias("lineage"),
            )
            .with_columns(pl.lit(TOTAL).alias(d) for d in DIMS if d not in kept)
        )
    cells = (
        pl.concat(parts, how="diagonal")
        .select(
            pl.lit("national").alias("initiative_id"),
            "measure_id",
            pl.col("target").alias("geo_code"),
            "period",
            pl.concat_str([pl.lit(f"{d}=") + pl.col(d) for d in DIMS], separator=";").alias(
                "disaggregation"
            ),
            "value",
            "numerator",
            "denominator",
            "partners_reported",
            pl.col("partners_reported").alias("partners_expected"),
            pl.lit(1.0).alias("coverage"),
            pl.lit(False).alias("suppressed"),
            pl.lit(None, pl.Utf8).alias("suppression"),
            "lineage",
            computed_at,
        )
        .collect()
    )
    if adbc:
        floors.adbc_ingest(url, "indicator_value", cells)
        return cells.height, "ADBC read + polars group-by + ADBC write"
    from ci_pipeline import store
    from ci_pipeline.store.db import bulk_insert

    with store.make_engine(url).begin() as conn:
        bulk_insert(conn, "indicator_value", cells)
    return cells.height, "SQLAlchemy read + polars group-by + executemany/COPY"


def case_history(args: dict[str, Any]) -> dict[str, Any]:
    """Rebuild (project and floor), then ``process`` after a small file; the privacy audit."""
    from sqlalchemy import text

    from ci_pipeline import aggregate, alert, detect, store
    from ci_pipeline.aggregate import privacy
    from ci_pipeline.clock import utcnow
    from ci_pipeline.report.build import build_report

    settings, initiative, engine = _context(args)
    out: dict[str, Any] = {}
    for path in sorted(Path(args["history"]).glob("*.csv")):
        _ingest(path, NATIONAL, path.stem, settings, initiative, engine)
    out["observations"] = _count(engine, "SELECT count(*) FROM observation")

    now = utcnow()
    computed_at = (
        pl.lit(now.strftime("%Y-%m-%d %H:%M:%S.%f")).alias("computed_at")
        if "sqlite" in args["url"]
        else pl.lit(now.replace(tzinfo=None)).alias("computed_at")
    )
    engine.dispose()  # no pooled connection beside ADBC's (SQLite: a stale WAL index)
    start = time.perf_counter()
    out["floor_cells"], out["floor_how"] = floor_rebuild(args["url"], initiative, computed_at)
    out["floor_seconds"] = time.perf_counter() - start
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM indicator_value"))
    if engine.dialect.name == "postgresql":
        # The floor wrote into a fresh table; so does the project. PostgreSQL keeps the
        # floor's 2M deleted rows as dead tuples until a vacuum, and writing beside them cost
        # the rebuild 5 s (17.5 s against 22.3 s, measured).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM indicator_value"))

    start = time.perf_counter()
    refreshed = aggregate.refresh_indicators(initiative, engine=engine, full=True)
    out["rebuild_seconds"] = time.perf_counter() - start
    out["cells"] = refreshed.rows
    out["rebuild_unaudited"] = len(refreshed.unaudited)

    if args.get("privacy"):
        stored = store.read_indicators("national", engine=engine).drop("suppressed", "suppression")
        start = time.perf_counter()
        suppressed, unaudited = privacy.protect(stored, initiative)
        out["privacy_seconds"] = time.perf_counter() - start
        tables = suppressed.group_by("measure_id", "period").agg(pl.col("suppressed").any())
        out["privacy_tables"] = tables.height
        out["privacy_hidden_tables"] = int(tables["suppressed"].sum())
        out["privacy_unaudited"] = len(unaudited)
        out["privacy_hidden_cells"] = int(suppressed["suppressed"].sum())
        out["privacy_cells"] = suppressed.height

    # The state a pipeline driven by files is in: each measure the history holds judged, its
    # alerts recorded (untimed). Not every measure: on PostgreSQL a missing-data alert of a
    # partner of 2,500 areas (its geo_code lists them) does not fit the alert table's unique
    # index, and recording it fails; the run says so, and judges the measures with data.
    from datetime import date

    today = date.fromisoformat(args["as_of"])
    start = time.perf_counter()
    try:
        judgement = detect.judge(initiative, engine=engine, settings=settings, as_of=today)
        alert.record_alerts(judgement, initiative, settings=settings, engine=engine)
    except Exception as exc:  # reported in the table, not hidden
        out["judge_everything_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        judgement = detect.judge(
            initiative,
            engine=engine,
            settings=settings,
            as_of=today,
            measures=sorted({m for m, _ in refreshed.slices}),
        )
        alert.record_alerts(judgement, initiative, settings=settings, engine=engine)
    alert.deliver(engine=engine)
    out["first_judge_seconds"] = time.perf_counter() - start
    if args.get("report_card", True):  # the card as the last run left it (its charts drawn)
        start = time.perf_counter()
        build_report(initiative, settings.report_card_dir, engine=engine, today=today)
        out["first_report_seconds"] = time.perf_counter() - start

    small = Path(args["small_file"])
    _ingest(small, args["small_partner"], HISTORY[-1], settings, initiative, engine)
    out["small_rows"] = pl.read_csv(small).height

    profile = cProfile.Profile() if args.get("profile_process") else None
    if profile:
        profile.enable()
    steps: dict[str, float] = {}
    t = time.perf_counter()
    refreshed = aggregate.refresh_indicators(initiative, engine=engine)
    steps["recompute stale slices"] = time.perf_counter() - t
    t = time.perf_counter()
    judged = [
        detect.judge(
            initiative, engine=engine, settings=settings, period=p, as_of=today, measures=ms
        )
        for p, ms in aggregate.refreshed_by_period(refreshed.slices).items()
    ]
    steps["gate + detect"] = time.perf_counter() - t
    t = time.perf_counter()
    for j in judged:
        alert.record_alerts(j, initiative, settings=settings, engine=engine)
    steps["record alerts"] = time.perf_counter() - t
    t = time.perf_counter()
    alert.deliver(engine=engine)
    steps["deliver"] = time.perf_counter() - t
    if args.get("report_card", True):
        t = time.perf_counter()
        build_report(initiative, settings.report_card_dir, engine=engine, today=today)
        steps["report card"] = time.perf_counter() - t
    if profile:
        profile.disable()
        profile.dump_stats(args["profile_process"])
    out["report_seconds"] = steps.pop("report card", None)
    out["process_steps"] = steps
    out["process_seconds"] = sum(steps.values())
    out["process_slices"] = len(refreshed.slices)
    return out


def case_submit(args: dict[str, Any]) -> dict[str, Any]:
    """10-row files through ``ci-pipeline submit`` (first: the daemon starts; then four that
    find it running, median) against take + ingest in this warm process (median of two, after
    one untimed file)."""
    os.environ["CI_PIPELINE_PREFECT_PORT"] = str(_free_port())
    settings, initiative, engine = _context(args)
    from ci_pipeline.serve import daemon

    files = [Path(f) for f in args["files"]]
    period = [f.stem.split("_")[-1] for f in files]
    _ingest(files[0], args["partner"], period[0], settings, initiative, engine)  # warm-up
    warm = []
    for f, p in zip(files[1:3], period[1:3], strict=True):
        start = time.perf_counter()
        _ingest(f, args["partner"], p, settings, initiative, engine)
        warm.append(time.perf_counter() - start)
    cli = []
    command = Path(sys.executable).parent / "ci-pipeline"
    try:
        for f, p in zip(files[3:], period[3:], strict=True):
            start = time.perf_counter()
            done = subprocess.run(
                [str(command), "submit", str(f), "--partner", args["partner"], "--period", p],
                capture_output=True,
                text=True,
                env=os.environ | {"PREFECT_API_URL": ""},
            )
            cli.append(time.perf_counter() - start)
            assert done.returncode == 0, done.stdout + done.stderr
    finally:
        daemon.stop(settings)
    return {
        "warm": statistics.median(warm),
        "cli_first": cli[0],
        "cli_running": statistics.median(cli[1:]),
        "cli_running_each": cli[1:],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ingest": case_ingest,
    "ingest_floor": case_ingest_floor,
    "history": case_history,
    "submit": case_submit,
}


def child(name: str, args: dict[str, Any]) -> None:
    """Run one case in this process and print its result as one JSON line."""
    profile = cProfile.Profile() if args.get("profile") else None
    if profile:
        profile.enable()
    result = CASES[name](args)
    if profile:
        profile.disable()
        profile.dump_stats(args["profile"])
    print(RESULT + json.dumps(result), flush=True)


# --- the parent: data, databases, children, the table ----------------------------------------


class Run:
    def __init__(self, base: Path, postgres: str | None, profile: Path | None) -> None:
        self.base, self.postgres, self.profile = base, postgres, profile
        self.databases: list[str] = []

    def database(self, backend: str, name: str) -> str:
        """A new, empty database's URL: a SQLite file, or a PostgreSQL database of its own."""
        if backend == "sqlite":
            return f"sqlite:///{self.base / f'{name}.db'}"
        assert self.postgres is not None
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        db = f"ci_scale_{os.getpid()}_{name}"
        admin = create_engine(self.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {db}"))
            conn.execute(text(f"CREATE DATABASE {db}"))
        admin.dispose()
        self.databases.append(db)
        return make_url(self.postgres).set(database=db).render_as_string(hide_password=False)

    def drop_databases(self) -> None:
        if not self.databases:
            return
        from sqlalchemy import create_engine, text

        admin = create_engine(self.postgres or "", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for db in self.databases:
                conn.execute(text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        admin.dispose()

    def case(self, name: str, label: str, backend: str, **args: Any) -> dict[str, Any] | None:
        """Run a case in a child process; its result, or None (and why) when it failed."""
        args |= {
            "url": self.database(backend, label),
            "home": str(self.base / f"home-{label}"),
            "initiative": str(self.base / "initiative"),
        }
        if self.profile:
            args["profile"] = str(self.profile / f"{label}.prof")
            if name == "history":
                args["profile_process"] = str(self.profile / f"{label}-process.prof")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--case", name, "--case-args", json.dumps(args)],
            capture_output=True,
            text=True,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
        took = time.perf_counter() - started
        if done.returncode != 0 or not lines:
            print(f"  {label}: FAILED after {took:.0f} s\n{done.stderr[-3000:]}", file=sys.stderr)
            return None
        print(f"  {label}: {took:.0f} s", file=sys.stderr, flush=True)
        result: dict[str, Any] = json.loads(lines[-1][len(RESULT) :])
        return result


def write_data(base: Path, rows: int, areas: int) -> dict[str, Any]:
    """The initiative, the ingest files, the histories and the small files; what they hold."""
    geo = Geography.of(areas)
    write_initiative(base / "initiative", geo)
    codes = list(geo.areas)
    year = figures(codes, MEASURES, YEAR)
    assert year.height >= rows, f"--rows {rows} is more than a year of figures ({year.height})"
    out: dict[str, Any] = {"geo": geo}
    for n in (rows, rows // 10):
        year.head(n).write_csv(base / f"ingest-{n}.csv")
    per_measure = len(HISTORY) * len(codes) * LEAVES
    for n in (rows, rows // 10):
        folder = base / f"history-{n}"
        folder.mkdir()
        measures = MEASURES[: max(1, n // per_measure)]
        history = figures(codes, measures, HISTORY)
        for (quarter,), part in history.group_by("period"):
            part.write_csv(folder / f"{quarter}.csv")
        out[f"history-{n}"] = history.height
    # A late regional file: the first measure's last quarter for half of the first district.
    small = figures(geo.regional_areas(1), MEASURES[:1], HISTORY[-1:], seed=7)
    small.write_csv(base / "small.csv")
    out["small"] = small.height
    # 10-row files of the same regional partner, one per quarter.
    tiny = figures(geo.regional_areas(1), MEASURES[:1], TEN_ROWS)
    for (quarter,), part in tiny.group_by("period"):
        part.head(10).write_csv(base / f"ten_{quarter}.csv")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--areas", type=int, help="statistical areas (default: rows / 400)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CI_PIPELINE_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL (default: CI_PIPELINE_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--only",
        choices=["ingest", "history"],
        help="run only the ingest cases or the history ones",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run each ingest case (project, then floor) this many times in turn and print the "
        "median of each: single runs vary by up to 2x on a shared machine",
    )
    parser.add_argument("--cli", action="store_true", help="also time `ci-pipeline submit`")
    parser.add_argument("--latency", action="store_true", help="also run benchmarks/latency.py")
    parser.add_argument(
        "--no-report-card",
        action="store_true",
        help="leave the report card out of `process` (it draws a chart per geography and "
        "measure: minutes at 1M rows)",
    )
    parser.add_argument("--profile", type=Path, help="write each case's cProfile here")
    parser.add_argument("--keep", type=Path, help="keep the data here")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--case-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.case:
        child(args.case, json.loads(args.case_args))
        return
    print(scale_table(args))


@contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="ci-scale-") as tmp:
        yield Path(tmp)


def scale_table(args: argparse.Namespace) -> str:
    """Run every case; the table as text."""
    rows, small_rows = args.rows, args.rows // 10
    areas = args.areas or max(100, rows // 400)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    backends = ([] if args.skip_sqlite else ["sqlite"]) + (["postgresql"] if args.postgres else [])
    lines: list[str] = []
    with _folder(args.keep) as base:
        if args.keep:
            shutil.rmtree(base)
            base.mkdir(parents=True)
        data = write_data(base, rows, areas)
        geo: Geography = data["geo"]
        run = Run(base, args.postgres, args.profile.resolve() if args.profile else None)
        as_of = "2026-06-30"
        lines += [
            f"national initiative: 1 + {len(geo.districts)} districts + {len(geo.localities):,} "
            f"localities + {len(geo.areas):,} statistical areas, {1 + len(REGIONAL)} partners, "
            f"{len(MEASURES)} measures by sex x age band; {geo.cells_per_table:,} cells a "
            f"measure-quarter table",
            "",
            "| step | db | ci-pipeline | floor | ratio | 10x exponent | notes |",
            "|---|---|---|---|---|---|---|",
        ]

        def row(step: str, db: str, project: str, floor: str, r: str, exp: str, note: str) -> None:
            lines.append(f"| {step} | {db} | {project} | {floor} | {r} | {exp} | {note} |")
            print(lines[-1], file=sys.stderr, flush=True)

        try:
            for backend in backends:
                db = "SQLite" if backend == "sqlite" else "PostgreSQL"
                sizes = (rows, small_rows) if backend == "sqlite" else (rows,)
                ingested = {}
                spread: dict[int, str] = {}
                for n in sizes if args.only != "history" else ():
                    csv = str(base / f"ingest-{n}.csv")
                    runs = []
                    for i in range(args.repeats):  # project and floor in turn, each in a new db
                        p = run.case("ingest", f"{backend}_ingest_{n}_{i}", backend, csv=csv)
                        f = run.case("ingest_floor", f"{backend}_floor_{n}_{i}", backend, csv=csv)
                        if p and f:
                            assert p["accepted"] == p["stored"] == f["stored"] == n, (p, f)
                        runs.append((p, f))
                    ps, fs = [p for p, _ in runs if p], [f for _, f in runs if f]
                    ingested[n] = (_median_run(ps), _median_run(fs))
                    if args.repeats > 1 and ps and fs:
                        spread[n] = (
                            f"; median of {args.repeats} runs in turn (ci-pipeline "
                            f"{min(r['seconds'] for r in ps):.2f}-{max(r['seconds'] for r in ps):.2f} s, "
                            f"floor {min(r['seconds'] for r in fs):.2f}-{max(r['seconds'] for r in fs):.2f} s)"
                        )
                for n, (p, f) in ingested.items():
                    little = ingested.get(small_rows, (None, None))[0] if n == rows else None
                    row(
                        f"ingest {n:,} rows, in-process",
                        db,
                        f"{p['seconds']:.2f} s" if p else "failed",
                        f"{f['seconds']:.2f} s" if f else "failed",
                        ratio(get(p, "seconds"), get(f, "seconds")),
                        exponent(get(p, "seconds"), get(little, "seconds")),
                        f"floor: {f['how']}; {n:,} rows stored by each{spread.get(n, '')}"
                        if f
                        else "",
                    )
                p, f = ingested.get(rows, (None, None))
                if p and f:
                    row(
                        f"peak RSS, {rows:,}-row ingest",
                        db,
                        f"{p['peak_mib']:,.0f} MiB",
                        f"{f['arrow_mib']:,.0f} MiB",
                        f"{p['peak_mib'] / f['arrow_mib']:.1f}x",
                        "",
                        f"the child's peak RSS ({p['before_mib']:,.0f} MiB before the file: "
                        f"imports, definitions) vs the Arrow size of the observation rows; the "
                        f"floor child's peak {f['peak_mib']:,.0f} MiB",
                    )
                if args.cli and not args.only:
                    files = [str(base / f"ten_{q}.csv") for q in TEN_ROWS]
                    s = run.case(
                        "submit", f"{backend}_submit", backend, files=files, partner=REGIONAL[0]
                    )
                    for key, what in (
                        ("cli_first", "daemon starts"),
                        ("cli_running", "daemon running"),
                    ):
                        row(
                            f"`ci-pipeline submit` of a 10-row file ({what})",
                            db,
                            f"{s[key]:.2f} s" if s else "failed",
                            f"{s['warm']:.2f} s" if s else "—",
                            ratio(get(s, key), get(s, "warm")),
                            "",
                            "floor: take + ingest in a warm process"
                            + (
                                f"; median of {', '.join(f'{x:.2f}' for x in s['cli_running_each'])} s"
                                if s and key == "cli_running"
                                else ""
                            ),
                        )
                elif not args.only:
                    row(
                        "`ci-pipeline submit` of a 10-row file",
                        db,
                        "—",
                        "—",
                        "—",
                        "",
                        "skipped: --cli",
                    )
                histories: dict[int, dict[str, Any] | None] = {}
                for n in (rows, small_rows) if args.only != "ingest" else ():
                    histories[n] = run.case(
                        "history",
                        f"{backend}_history_{n}",
                        backend,
                        history=str(base / f"history-{n}"),
                        small_file=str(base / "small.csv"),
                        small_partner=REGIONAL[0],
                        as_of=as_of,
                        privacy=n == rows,
                        report_card=not args.no_report_card,
                    )
                big, little = histories.get(rows), histories.get(small_rows)
                for n, h in histories.items():
                    if h:
                        assert h["observations"] == data[f"history-{n}"], h
                        assert h["floor_cells"] == h["cells"], (h["floor_cells"], h["cells"])
                    row(
                        f"full rebuild, {h['observations']:,} observations → {h['cells']:,} cells"
                        if h
                        else "full rebuild",
                        db,
                        f"{h['rebuild_seconds']:.2f} s" if h else "failed",
                        f"{h['floor_seconds']:.2f} s" if h else "—",
                        ratio(get(h, "rebuild_seconds"), get(h, "floor_seconds")),
                        exponent(get(big, "rebuild_seconds"), get(little, "rebuild_seconds"))
                        if n == rows
                        else "",
                        f"floor: {h['floor_how']}; same cell count" if h else "",
                    )
                if big and little:
                    steps = ", ".join(
                        f"{k} {big['process_steps'][k]:.1f}/{little['process_steps'][k]:.1f}"
                        for k in big["process_steps"]
                    )
                    row(
                        f"`process` after a {big['small_rows']:,}-row file, "
                        f"{big['observations']:,} vs {little['observations']:,} history",
                        db,
                        f"{big['process_seconds']:.2f} s",
                        f"{little['process_seconds']:.2f} s",
                        ratio(big["process_seconds"], little["process_seconds"]),
                        exponent(big["process_seconds"], little["process_seconds"]),
                        f"floor: the same after the smaller history; s (larger/smaller): {steps}; untimed set-up, judging every measure "
                        f"first: {big['first_judge_seconds']:.0f}/"
                        f"{little['first_judge_seconds']:.0f} s"
                        + "".join(
                            f"; judging every measure of the {which} history FAILED "
                            f"({h['judge_everything_error']}), so only the measures with data "
                            "were judged first"
                            for which, h in (("larger", big), ("smaller", little))
                            if "judge_everything_error" in h
                        ),
                    )
                if big and little and big["report_seconds"] and little["report_seconds"]:
                    row(
                        "report card rebuilt after that `process`",
                        db,
                        f"{big['report_seconds']:.2f} s",
                        f"{little['report_seconds']:.2f} s",
                        ratio(big["report_seconds"], little["report_seconds"]),
                        exponent(big["report_seconds"], little["report_seconds"]),
                        "part of the same run (process_period's report_card task), the charts "
                        "of the card the set-up built drawn already; larger vs smaller history; "
                        f"that first build (untimed set-up, every chart drawn): "
                        f"{big['first_report_seconds']:.0f}/{little['first_report_seconds']:.0f} s",
                    )
                    whole = [h["process_seconds"] + h["report_seconds"] for h in (big, little)]
                    row(
                        f"`process` with its report card, {big['observations']:,} vs "
                        f"{little['observations']:,} history",
                        db,
                        f"{whole[0]:.2f} s",
                        f"{whole[1]:.2f} s",
                        ratio(*whole),
                        exponent(*whole),
                        "the two rows above added: what a `process` run after the file takes",
                    )
                if big and "privacy_seconds" in big:
                    audited = big["privacy_hidden_tables"] - big["privacy_unaudited"]
                    row(
                        f"privacy.suppress on {big['privacy_tables']} national tables "
                        f"({big['privacy_cells']:,} cells)",
                        db,
                        f"{big['privacy_seconds']:.2f} s",
                        "—",
                        "—",
                        "",
                        f"{big['privacy_hidden_tables']} tables with a hidden cell "
                        f"({big['privacy_hidden_cells']:,} cells): {audited} audited exactly, "
                        f"{big['privacy_unaudited']} named as unaudited (privacy.Unaudited)",
                    )
            if args.latency:
                done = subprocess.run(
                    [sys.executable, str(Path(__file__).with_name("latency.py")), "--repeats", "5"],
                    capture_output=True,
                    text=True,
                )
                summary = [
                    line
                    for line in done.stdout.splitlines()
                    if line.startswith(("direct", "event-driven (", "ratio"))
                ]
                lines += ["", "inbox → alert (benchmarks/latency.py --repeats 5):", *summary]
            else:
                lines += ["", "inbox → alert: run benchmarks/latency.py --repeats 5 (or --latency)"]
        finally:
            run.drop_databases()
    return "\n".join(lines)


if __name__ == "__main__":
    main()
