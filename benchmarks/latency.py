"""From a file landing in the inbox to its alert delivered: event-driven vs. direct calls.

Usage::

    .venv/bin/python benchmarks/latency.py [--repeats 5] [--lane warm|queued] [--keep DIR]

It builds the sample initiative's history (every demo file except the Employment Service's
2025-Q4 file, whose Arab women's participation in Nahf drops), processes it once so every alert
already known is recorded and delivered, and snapshots that database. Then, ``--repeats`` times
each, from the same snapshot:

- **event-driven** — the single-machine default as ``ci-pipeline serve`` runs it: a local
  Prefect server (SQLite), every deployment of ``deployments/prefect.yaml`` served by a runner
  polling every second, the inbox watcher, and (``--lane warm``, serve's default) the warm
  lane, which takes what the inbox received through ingest, processing and delivery in this
  process (``--lane queued``: the deployments' triggers start each step as a new process, as
  ``CI_PIPELINE_WARM_LANE=false`` does). The clock starts when the file has been written
  into ``inbox/employment-service/2025-Q4/`` and stops when the Nahf step alert is in the
  backbone's alert file. Hops are read back from the runs' own start and end times.
- **direct** — the same steps called one after another in this process (receive, read,
  validate, store; aggregate; gate and detect; record; deliver): what the work itself costs.

Prints the median of each, every repeat, and their ratio. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

STEP_TEXT = "Nahf"  # the step alert's sentence names the locality
PARTNER, PERIOD = "employment-service", "2025-Q4"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition: Callable[[], Any], what: str, timeout: float = 300.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lane", choices=["warm", "queued"], default="warm")
    parser.add_argument("--keep", type=Path, help="keep the working folder here")
    args = parser.parse_args()

    home = (args.keep or Path(tempfile.mkdtemp(prefix="ci-latency-"))).resolve()
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.environ["CI_PIPELINE_HOME"] = str(home)
    os.environ["CI_PIPELINE_PREFECT_PORT"] = str(_free_port())
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    for name in ("CI_PIPELINE_DATABASE_URL", "CI_PIPELINE_ALERT_URLS", "CI_PIPELINE_ENGINEER_URLS"):
        os.environ.pop(name, None)

    from ci_pipeline import aggregate, alert, demo, detect, store
    from ci_pipeline.config import get_settings
    from ci_pipeline.model.load import load_initiative
    from ci_pipeline.receive import intake

    settings = get_settings()
    initiative = load_initiative(settings.initiative)
    db = home / "ci_pipeline.db"
    snapshot = home / "snapshot.db"
    today = date.today()

    def ingest_direct(path: Path, partner: str, period: str) -> None:
        engine = store.make_engine(settings.resolved_database_url)
        try:
            row = intake.take(
                path, partner, period, initiative=initiative, settings=settings, engine=engine
            )
            assert row.id is not None
            intake.ingest(row.id, initiative=initiative, settings=settings, engine=engine)
        finally:
            engine.dispose()

    def process_direct() -> None:
        engine = store.make_engine(settings.resolved_database_url)
        try:
            aggregate.refresh_indicators(initiative, engine=engine)
            judgement = detect.judge(initiative, engine=engine, settings=settings, as_of=today)
            alert.record_alerts(judgement, initiative, settings=settings, engine=engine)
            alert.deliver(engine=engine)
        finally:
            engine.dispose()

    # --- the history, processed once, snapshotted --------------------------------------------
    t = time.perf_counter()
    files = demo.generate(initiative, home / "demo-files")
    regressing = next(f for f in files if (f.partner_id, f.period) == (PARTNER, PERIOD))
    engine = store.make_engine(settings.resolved_database_url)
    intake.prepare_database(initiative, engine=engine)
    engine.dispose()
    for f in files:
        if f is not regressing:
            ingest_direct(f.path, f.partner_id, f.period)
    process_direct()
    shutil.copy2(db, snapshot)
    print(
        f"history: {len(files) - 1} files stored and processed in {time.perf_counter() - t:.1f} s"
    )

    def restore() -> None:
        shutil.copy2(snapshot, db)
        settings.alerts_file.unlink(missing_ok=True)

    def delivered() -> bool:
        log = settings.alerts_file
        return log.exists() and STEP_TEXT in log.read_text(encoding="utf-8")

    # --- direct ---------------------------------------------------------------------------------
    direct: list[float] = []
    for _ in range(args.repeats):
        restore()
        t = time.perf_counter()
        ingest_direct(regressing.path, PARTNER, PERIOD)
        process_direct()
        direct.append(time.perf_counter() - t)
        assert delivered(), "the direct run did not deliver the step alert"

    # --- event-driven ---------------------------------------------------------------------------
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    from ci_pipeline import events
    from ci_pipeline.receive import inbox
    from ci_pipeline.serve.deployments import runner_deployments
    from ci_pipeline.serve.runner import prefect_server, running
    from ci_pipeline.serve.warm import WarmLane, take_in_here

    def runs_since(since: datetime) -> list[Any]:
        with get_client(sync_client=True) as client:
            return client.read_flow_runs(
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
                limit=50,
            )

    def quiet(since: datetime, seconds: float = 15.0) -> None:
        """Wait until no run is pending and none has started for ``seconds`` (the burst
        window), so the next repeat starts from an idle pipeline."""
        last, stable = -1, time.monotonic()
        while True:
            now = datetime.now(UTC)
            # Runs the schedules created for later (daily, weekly, the 10-minute retry) wait.
            runs = [
                r
                for r in runs_since(since)
                if not (r.state and r.state.is_scheduled() and (r.expected_start_time or now) > now)
            ]
            busy = any(r.state and not r.state.is_final() for r in runs)
            if busy or len(runs) != last:
                last, stable = len(runs), time.monotonic()
            elif time.monotonic() - stable >= seconds:
                return
            time.sleep(0.5)

    event_driven: list[float] = []
    hops: list[dict[str, float]] = []
    watched = store.engine_for(settings.resolved_database_url)
    with (
        prefect_server(settings),
        running(runner_deployments()),
        # After the server, as in serve: the lane's handler warms its Prefect client there.
        (lane := WarmLane(take_in_here(), forward=events.prefect_emitter))
        if args.lane == "warm"
        else contextlib.nullcontext(),
        inbox.InboxWatcher(
            settings,
            initiative,
            emitter=lane.emit if args.lane == "warm" else events.prefect_emitter,
            engine=watched,
        ),
    ):
        for i in range(args.repeats):
            # The database file is replaced next: no pooled connection may outlive it (SQLite
            # in WAL mode then reads the new file as malformed).
            watched.dispose()
            restore()
            target = settings.inbox_dir / PARTNER / PERIOD / f"run{i}-{regressing.path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            since = datetime.now(UTC)
            target.write_bytes(regressing.path.read_bytes())
            t = time.perf_counter()
            _wait(delivered, "the step alert")
            event_driven.append(time.perf_counter() - t)
            quiet(since)
            hops.append(_hops(runs_since(since), since))
            print(f"  event-driven repeat {i + 1}: {event_driven[-1]:.1f} s")

    d, e = statistics.median(direct), statistics.median(event_driven)
    print()
    print(
        f"direct, one process       median {d:6.2f} s   ({', '.join(f'{x:.2f}' for x in direct)})"
    )
    print(
        f"event-driven ({args.lane:<6})     median {e:6.2f} s   ({', '.join(f'{x:.1f}' for x in event_driven)})"
    )
    print(f"ratio event-driven/direct {e / d:6.1f}x")
    print()
    print("event-driven hops, median seconds after the file landed:")
    for key in hops[0]:
        values = [h[key] for h in hops if key in h]
        print(f"  {key:<32} {statistics.median(values):6.1f}")
    print(
        f"\nrepeat: .venv/bin/python benchmarks/latency.py --repeats {args.repeats} --lane {args.lane}"
    )
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


def _hops(runs: list[Any], since: datetime) -> dict[str, float]:
    """Start and end of the first run of each flow, in seconds after ``since``."""
    out: dict[str, float] = {}
    for flow_name, label in [
        ("ingest", "ingest"),
        ("process", "process"),
        ("deliver", "deliver"),
    ]:
        mine = sorted(
            (r for r in runs if r.name.startswith(f"{flow_name} ")),
            key=lambda r: r.start_time or datetime.max.replace(tzinfo=UTC),
        )
        if mine and mine[0].start_time:
            out[f"{label} run started"] = (mine[0].start_time - since).total_seconds()
            if mine[0].end_time:
                out[f"{label} run ended"] = (mine[0].end_time - since).total_seconds()
    return out


if __name__ == "__main__":
    main()
