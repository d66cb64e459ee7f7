"""What ``process`` costs after one small file: judging what changed against judging everything.

Usage::

    .venv/bin/python benchmarks/process_change.py [--measures 20] [--localities 60] [--quarters 8]

It writes a synthetic initiative (``--measures`` quarterly count measures over ``--localities``
localities, each broken down by sex) and one partner's history (every measure, every locality,
``--quarters`` quarters; the first measure is a second partner's, whose last quarter is not in
yet), stores and processes it, and snapshots the database. Then that partner's late file
arrives: the first measure's figures for the last quarter (as partners' files for a quarter
arrive one after another). From the same snapshot, timed in this process (no Prefect):

- **changed only** — what a run after new files does (``process_period(changed_only=True)``):
  recompute the stale slices, judge the one period recomputed on the one measure recomputed,
  record alerts;
- **everything** — the floor this is measured against: the same recompute, then judging every
  measure of that period (what every run did before), record alerts.

Prints each step's time, the two totals and their ratio (the ratio falls as measures are
added: the changed run's cost follows the change, the other's the initiative). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

from benchmarks.ingest_rows import write_geographies

LOCALITY = "loc{:03d}"
FIRST, REST = "first-partner", "main-partner"


def write_initiative(folder: Path, measures: int, localities: int) -> list[str]:
    (folder / "measures").mkdir(parents=True)
    (folder / "initiative.yaml").write_text(
        yaml.safe_dump(
            {"id": "bench", "name": {"en": "Benchmark"}, "description": "synthetic", "version": "1"}
        )
    )
    geos = write_geographies(folder, [LOCALITY.format(i) for i in range(localities)])
    ids = [f"m{i:02d}" for i in range(measures)]
    # The first measure is another partner's: its file for a quarter arrives on its own.
    partners = [
        {
            "id": partner_id,
            "name": partner_id,
            "sector": "central_government",
            "localities": [g["code"] for g in geos[1:]],
            "measures": reported,
            "submits_every": "quarter",
            "contact": {"name": "x", "email": "x@example.org"},
        }
        for partner_id, reported in ((FIRST, ids[:1]), (REST, ids[1:]))
    ]
    (folder / "partners.yaml").write_text(yaml.safe_dump(partners))
    for measure_id in ids:
        measure = {
            "id": measure_id,
            "version": 1,
            "title": f"Measure {measure_id}",
            "description": "synthetic",
            "unit": "count",
            "unit_label": "people",
            "combine": "sum",
            "direction": "higher_is_better",
            "dimensions": {"sex": ["total", "female", "male"]},
            "valid_range": {"min": 0, "max": 100000},
            "periodicity": "quarter",
            "deadline_days": 30,
        }
        (folder / "measures" / f"{measure_id}.yaml").write_text(yaml.safe_dump(measure))
    return ids


def write_quarter(
    path: Path, measures: list[str], localities: int, quarter: str, seed: int
) -> None:
    frame = (
        pl.DataFrame({"measure_id": measures})
        .join(
            pl.DataFrame({"geo_code": [LOCALITY.format(i) for i in range(localities)]}), how="cross"
        )
        .join(pl.DataFrame({"sex": ["female", "male"]}), how="cross")
        .with_columns(pl.lit(quarter).alias("period"))
    )
    # Stable counts around 500 with a little noise: nothing regresses.
    noise = (pl.int_range(pl.len()) * 7919 + seed * 104729) % 41
    frame.with_columns((480 + noise).alias("value")).select(
        "measure_id", "geo_code", "period", "sex", "value"
    ).write_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measures", type=int, default=20)
    parser.add_argument("--localities", type=int, default=60)
    parser.add_argument("--quarters", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ci-process-change-"))
    os.environ["CI_PIPELINE_HOME"] = str(work / "home")
    os.environ["CI_PIPELINE_INITIATIVE"] = str(work / "initiative")
    os.environ.pop("CI_PIPELINE_DATABASE_URL", None)

    from ci_pipeline import aggregate, alert, detect, store
    from ci_pipeline.config import get_settings
    from ci_pipeline.model.load import load_initiative
    from ci_pipeline.receive import intake

    measures = write_initiative(work / "initiative", args.measures, args.localities)
    settings = get_settings()
    initiative = load_initiative(settings.initiative)
    engine = store.engine_for(settings.resolved_database_url)
    intake.prepare_database(initiative, engine=engine)
    history = [f"{2024 + q // 4}-Q{q % 4 + 1}" for q in range(args.quarters)]
    new_quarter = history[-1]

    def ingest(path: Path, partner_id: str, period: str) -> None:
        row = intake.take(
            path, partner_id, period, initiative=initiative, settings=settings, engine=engine
        )
        assert row.id is not None
        receipt, _ = intake.ingest(row.id, initiative=initiative, settings=settings, engine=engine)
        assert receipt.status == "accepted", receipt.message

    started = time.perf_counter()
    for i, quarter in enumerate(history):
        path = work / f"{REST}-{quarter}.csv"
        write_quarter(path, measures[1:], args.localities, quarter, i)
        ingest(path, REST, quarter)
        if quarter != new_quarter:  # the first partner's last file comes late
            path = work / f"{FIRST}-{quarter}.csv"
            write_quarter(path, measures[:1], args.localities, quarter, i)
            ingest(path, FIRST, quarter)
    aggregate.refresh_indicators(initiative, engine=engine)
    judgement = detect.judge(initiative, engine=engine, settings=settings, period=history[-1])
    alert.record_alerts(judgement, initiative, settings=settings, engine=engine)
    cells = store.read_indicators(initiative.info.id, engine=engine).height
    print(
        f"history: {args.measures} measures x {args.localities} localities x {len(history)} "
        f"quarters stored and processed ({cells:,} indicator cells) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    new_file = work / "late.csv"
    write_quarter(new_file, measures[:1], args.localities, new_quarter, 99)
    ingest(new_file, FIRST, new_quarter)
    store.dispose_engines()
    db = Path(store.sqlite_file(settings.resolved_database_url) or "")
    snapshot = work / "snapshot.db"
    shutil.copy2(db, snapshot)

    def run(changed_only: bool) -> dict[str, float]:
        store.dispose_engines()
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copy2(snapshot, db)
        engine = store.engine_for(settings.resolved_database_url)
        times: dict[str, float] = {}
        t = time.perf_counter()
        refreshed = aggregate.refresh_indicators(initiative, engine=engine)
        times["recompute stale slices"] = time.perf_counter() - t
        judgements = (
            [(p, ms) for p, ms in aggregate.refreshed_by_period(refreshed.slices).items()]
            if changed_only
            else [(new_quarter, None)]
        )
        t = time.perf_counter()
        found = []
        for period, only in judgements:
            found.append(
                detect.judge(
                    initiative, engine=engine, settings=settings, period=period, measures=only
                )
            )
        times["gate + detect"] = time.perf_counter() - t
        t = time.perf_counter()
        for j in found:
            alert.record_alerts(j, initiative, settings=settings, engine=engine)
        times["record alerts"] = time.perf_counter() - t
        times["judged measures"] = float(sum(len(j.judged) for j in found))
        return times

    print(f"one late file: {measures[0]} for {new_quarter}, {args.localities * 2} rows")
    changed, everything = run(True), run(False)
    for label in ("recompute stale slices", "gate + detect", "record alerts"):
        print(
            f"  {label:<24} changed only {changed[label]:7.2f} s   everything {everything[label]:7.2f} s"
        )
    total_c = sum(v for k, v in changed.items() if k != "judged measures")
    total_e = sum(v for k, v in everything.items() if k != "judged measures")
    print(
        f"  {'total':<24} changed only {total_c:7.2f} s   everything {total_e:7.2f} s   "
        f"ratio {total_c / total_e:.2f}  (measures judged: {changed['judged measures']:.0f} "
        f"vs {everything['judged measures']:.0f})"
    )
    print(
        "repeat: .venv/bin/python benchmarks/process_change.py "
        f"--measures {args.measures} --localities {args.localities} --quarters {args.quarters}"
    )
    store.dispose_engines()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
