"""The durability scenario: 400 files in, the Prefect server killed mid-burst, each decided once.

Usage::

    .venv/bin/python benchmarks/durability.py [--files 400] [--database-url URL] [--keep DIR]

What a new user would do, with real processes: a fresh ``CI_PIPELINE_HOME`` (SQLite; or, with
``--database-url`` naming a PostgreSQL server, a fresh database created there and dropped
afterwards), the bundled initiative, ``ci-pipeline init``, an API token per partner
(``ci-pipeline tokens issue --json``), a Prefect server started here (``prefect server start``
with its own ``PREFECT_HOME`` and SQLite database, ``PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY
=PT1S``) and ``ci-pipeline serve`` pointed at it with ``PREFECT_API_URL``, so that the server can
be killed and restarted while ``serve`` goes on. Then, paced at ``--rate`` files a second:

- half the files are dropped into ``inbox/<partner>/<period>/``, half uploaded to
  ``POST /v1/submissions`` with the partner's token from a thread pool;
- once ``--kill-after`` files have gone, the Prefect server's process group gets ``kill -9``;
  ``--outage`` seconds later it is started again on the same port and database. Files keep
  arriving throughout; the 202s are counted (a refused upload is not received, and is
  reported).

The files are distinct valid files, one per partner and quarter going back from 2025-Q4, in
each partner's format from the demo generator (Windows-1255/1256 CSV, XLSX, Parquet, TSV) with
values filled at random, plus deliberate pairs whose two files are sent one after the other on
the two channels: ``--duplicates`` files sent twice (the same bytes: one accepted, the other a
duplicate) and ``--overlaps`` files repeating figures of another file of the same partner under
another period (a month inside a quarter, a quarter inside a year: one accepted, the other
rejected ``already_reported``). Every other file must be accepted.

Then it polls ``ci-pipeline submissions --json`` as a user would until every file has a verdict,
or ``--deadline`` seconds have passed since the restart, and checks, independently of the
pipeline's own code: one submission per file sent and no other, the expected verdicts, no
figure counted twice (among ``ci-pipeline observations --json``: no partner, measure, place,
period and breakdown twice, and no two figures of a partner overlapping — periods sharing a
month, breakdowns sharing people), the observations matching the receipts, every archive copy
matching its SHA-256, and ``serve`` still running. Prints the figures and exits 1 if the
guarantee failed. Every process it started is stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

BIN = Path(sys.executable).parent


@dataclass(eq=False)
class File:
    """One file to send: who, for which period, its bytes, its channel, and what must become of
    it: ``kind`` plain (accepted), or one of a ``duplicate``/``overlap`` pair named ``group``."""

    partner: str
    period: str
    name: str
    content: bytes
    channel: str
    kind: str = "plain"
    group: int | None = None
    second: bool = False  # the pair's file sent second
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha = hashlib.sha256(self.content).hexdigest()

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.partner, self.period, self.name, self.sha)


# --- the files ----------------------------------------------------------------------------------


def fill(rows: pl.DataFrame, initiative: Any, rng: np.random.Generator) -> pl.DataFrame:
    """Valid random figures for a partner's expected rows, as each measure's unit needs them."""
    measures = initiative.measures.values()
    units = {m.id: str(m.unit) for m in measures}
    # Within each measure's valid range; scores 1-5, counts up to 300, amounts up to 900,000
    # where it sets no bound.
    default_high = {"score": 5.0, "count": 300.0, "amount": 900_000.0, "proportion": 1.0}
    low = {m.id: m.valid_range.min or (1.0 if m.unit == "score" else 0.0) for m in measures}
    high = {
        m.id: min(x for x in (m.valid_range.max, default_high[str(m.unit)]) if x is not None)
        for m in measures
    }
    n = rows.height
    unit = rows["measure_id"].replace_strict(units, return_dtype=pl.Utf8)
    lo = rows["measure_id"].replace_strict(low, return_dtype=pl.Float64).to_numpy()
    hi = rows["measure_id"].replace_strict(high, return_dtype=pl.Float64).to_numpy()
    share = rng.random(n)
    den = rng.integers(40, 900, n)
    num = rng.binomial(den, 0.3)
    counts = np.floor(lo + (hi - lo + 1) * share).clip(lo, hi)
    amounts = np.round(lo + (hi - lo) * share, -3).clip(lo, hi)
    scores = np.round(lo + (hi - lo) * share, 2)

    def series(values: np.ndarray) -> pl.Expr:
        return pl.lit(pl.Series(values, dtype=pl.Float64))

    return rows.with_columns(
        pl.when(unit == "proportion").then(series(num)).alias("numerator"),
        pl.when(unit.is_in(["proportion", "score"])).then(series(den)).alias("denominator"),
        pl.when(unit == "count")
        .then(series(counts))
        .when(unit == "amount")
        .then(series(amounts))
        .when(unit == "score")
        .then(series(scores))
        .alias("value"),
    )


def build_files(count: int, duplicates: int, overlaps: int, seed: int, folder: Path) -> list[File]:
    """``count`` files in the order they are sent, half on each channel: one per partner and
    quarter (none a duplicate or an overlap of another), and the deliberate pairs' second
    files, each right after its first, on the other channel."""
    from ci_pipeline.config import get_settings
    from ci_pipeline.demo import write_partner_file
    from ci_pipeline.model.load import load_initiative
    from ci_pipeline.model.periods import Periodicity, parse_period, periods_in
    from ci_pipeline.validate.template import expected_rows

    initiative = load_initiative(get_settings().initiative)
    rng = np.random.default_rng(seed)
    partners = sorted(initiative.partners)
    base = count - duplicates - overlaps
    last = parse_period("2025-Q4").start
    quarters = [
        parse_period(f"{s // 12}-Q{s % 12 // 3 + 1}").label
        for s in range(last, last - 3 * -(-base // len(partners)), -3)
    ]

    def write(partner: str, period: str, rows: pl.DataFrame) -> tuple[str, bytes]:
        frame = fill(rows, initiative, rng)
        path = write_partner_file(frame, initiative, partner, period, folder)
        name, content = path.name, path.read_bytes()
        path.unlink()
        return name, content

    files = []
    for i in range(base):
        partner, quarter = partners[i % len(partners)], quarters[i // len(partners)]
        name, content = write(
            partner, quarter, expected_rows(initiative, partner, parse_period(quarter))
        )
        files.append(File(partner, quarter, name, content, "inbox" if i % 2 == 0 else "api"))

    # The pairs' first files: from the middle of the burst on, alternating channels (so the
    # channels stay even), the overlaps' of distinct partners (one extra period each).
    firsts: list[int] = []
    used: set[str] = set()
    i = base // 2
    for k in range(duplicates + overlaps):
        while i in firsts or i % 2 != k % 2 or (k >= duplicates and files[i].partner in used):
            i += 1
        firsts.append(i)
        if k >= duplicates:
            used.add(files[i].partner)
    seconds: dict[int, File] = {}
    for k, i in enumerate(firsts):
        first = files[i]
        other = "api" if first.channel == "inbox" else "inbox"
        if k < duplicates:
            stem, _, suffix = first.name.rpartition(".")
            second = File(
                first.partner, first.period, f"{stem}-again.{suffix}", first.content, other
            )
        else:
            # A month of the quarter for a monthly partner, else the year, with the rows of the
            # quarter's own file that fall in it.
            q = parse_period(first.period)
            monthly = initiative.partner(first.partner).submits_every == "month"
            period = periods_in(q, Periodicity.month)[0].label if monthly else str(q.start // 12)
            inside = expected_rows(initiative, first.partner, q)["period"].unique().to_list()
            rows = expected_rows(initiative, first.partner, parse_period(period))
            name, content = write(
                first.partner, period, rows.filter(pl.col("period").is_in(inside))
            )
            second = File(first.partner, period, name, content, other)
        first.kind = second.kind = "duplicate" if k < duplicates else "overlap"
        first.group = second.group = k
        second.second = True
        seconds[i] = second
    order = []
    for i, f in enumerate(files):
        order.append(f)
        if i in seconds:
            order.append(seconds[i])
    shas = [f.sha for f in order if not (f.kind == "duplicate" and f.second)]
    if len(set(shas)) != len(shas) or len({f.key for f in order}) != len(order):
        raise SystemExit("two generated files have the same bytes or name: try another --seed")
    return order


# --- the processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(url: str, what: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``url`` answers 200; fails if ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not answers(url):
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode} before answering")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f} s")
        time.sleep(0.25)


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in its own session (so a terminal's Ctrl-C reaches this script only, which
    stops it in order), its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes] | None, sig: int, grace: float) -> None:
    """Send ``sig`` to the process, then SIGKILL its whole group if it has not exited."""
    if process is None or process.poll() is not None:
        if process is not None:
            _kill_group(process.pid)  # children it left behind
        return
    try:
        process.send_signal(sig)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(process.pid)
    process.wait()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """``ci-pipeline ARGS`` as the user types it; its standard output."""
    done = subprocess.run(
        [str(BIN / "ci-pipeline"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"ci-pipeline {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


@dataclass
class Upload:
    file: File
    started: float
    ended: float = 0.0
    code: int | str = 0
    submission_id: int | None = None


def upload(client: httpx.Client, url: str, token: str, f: File) -> Upload:
    """POST one file as a partner would; what the API answered."""
    result = Upload(f, time.monotonic())
    try:
        response = client.post(
            f"{url}/v1/submissions",
            params={"period": f.period, "filename": f.name},
            headers={"Authorization": f"Bearer {token}"},
            content=f.content,
        )
        result.code = response.status_code
        if response.status_code == 202:
            result.submission_id = int(response.json()["submission_id"])
    except httpx.HTTPError as exc:
        result.code = f"{type(exc).__name__}: {exc}"
    result.ended = time.monotonic()
    return result


def fresh_database(url: str) -> tuple[str, str]:
    """A new, empty PostgreSQL database on the server of ``url``: (its URL, its name)."""
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    name = f"ci_durability_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


def drop_database(url: str, name: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(sa.engine.make_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- the independent checks ---------------------------------------------------------------------


def months(period: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """First and last month (``year * 12 + month - 1``) of a canonical period: 2025-09,
    2025-Q3, 2025."""
    year = period.str.slice(0, 4).cast(pl.Int64) * 12
    month = period.str.extract(r"^\d{4}-(\d{2})$", 1).cast(pl.Int64)
    quarter = period.str.extract(r"^\d{4}-Q(\d)$", 1).cast(pl.Int64)
    first = (
        pl.when(month.is_not_null())
        .then(year + month - 1)
        .when(quarter.is_not_null())
        .then(year + 3 * (quarter - 1))
        .otherwise(year)
    )
    last = (
        pl.when(month.is_not_null())
        .then(year + month - 1)
        .when(quarter.is_not_null())
        .then(year + 3 * quarter - 1)
        .otherwise(year + 11)
    )
    return first, last


def counted_twice(obs: pl.DataFrame) -> tuple[int, int]:
    """(keys stored twice, pairs of a partner's figures that overlap) among the figures that
    count: the same measure and place, periods sharing a month, and for every breakdown
    dimension the same code or a total on either side."""
    key = ["partner_id", "measure_id", "geo_code", "period", "disaggregation"]
    twice = obs.group_by(key).len().filter(pl.col("len") > 1).height
    dims = sorted(
        {
            part.split("=", 1)[0]
            for key_text in obs["disaggregation"].unique().to_list()
            for part in key_text.split(";")
            if "=" in part
        }
    )
    first, last = months(pl.col("period"))
    frame = obs.select(
        *key[:3],
        pl.int_range(pl.len()).alias("row"),
        first.alias("first"),
        last.alias("last"),
        *(
            pl.col("disaggregation")
            .str.extract(rf"(?:^|;){re.escape(d)}=([^;]+)", 1)
            .fill_null("total")
            .alias(d)
            for d in dims
        ),
    )
    pairs = frame.join(frame, on=key[:3], suffix="_b").filter(
        pl.col("row") < pl.col("row_b"),
        pl.col("first") <= pl.col("last_b"),
        pl.col("first_b") <= pl.col("last"),
        *(
            (pl.col(d) == "total") | (pl.col(f"{d}_b") == "total") | (pl.col(d) == pl.col(f"{d}_b"))
            for d in dims
        ),
    )
    return twice, pairs.height


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the scenario -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=400, help="files in all (half each way)")
    parser.add_argument("--duplicates", type=int, default=5, help="files sent twice")
    parser.add_argument("--overlaps", type=int, default=5, help="files overlapping another")
    parser.add_argument("--rate", type=float, default=10.0, help="files sent a second")
    parser.add_argument("--kill-after", type=int, help="files sent before the kill (half)")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the server is down")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds after restart")
    parser.add_argument("--reconcile-every", type=int, default=10)
    parser.add_argument("--reconcile-after", type=int, default=30)
    parser.add_argument("--database-url", help="a PostgreSQL server: a fresh database on it")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--keep", type=Path, help="keep the working folder here")
    args = parser.parse_args()
    kill_after = args.files // 2 if args.kill_after is None else args.kill_after

    home = (args.keep or Path(tempfile.mkdtemp(prefix="ci-durability-"))).resolve()
    if args.keep and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    prefect_port, api_port = free_port(), free_port()
    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    intake_api = f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_PIPELINE_", "PREFECT_"))}
    env.update(
        CI_PIPELINE_HOME=str(home),
        CI_PIPELINE_API_PORT=str(api_port),
        CI_PIPELINE_RECONCILE_EVERY_SECONDS=str(args.reconcile_every),
        CI_PIPELINE_RECONCILE_AFTER_SECONDS=str(args.reconcile_after),
        PREFECT_HOME=str(home / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    server_env = {
        **env,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S",
    }
    env["PREFECT_API_URL"] = prefect_api
    database = "SQLite"
    fresh: tuple[str, str] | None = None
    if args.database_url:
        fresh = fresh_database(args.database_url)
        env["CI_PIPELINE_DATABASE_URL"] = fresh[0]
        database = f"PostgreSQL (fresh database {fresh[1]})"
    os.environ.update(CI_PIPELINE_HOME=str(home))  # the generator reads the bundled initiative

    server: subprocess.Popen[bytes] | None = None
    serve: subprocess.Popen[bytes] | None = None

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    failed = True
    try:
        print(f"working folder {home}; app database: {database}; load average {_load()}")
        t = time.monotonic()
        files = build_files(args.files, args.duplicates, args.overlaps, args.seed, home / "files")
        channels = Counter(f.channel for f in files)
        print(
            f"files: {len(files)} ({channels['inbox']} for the inbox, {channels['api']} for the "
            f"API; {args.duplicates} sent twice, {args.overlaps} overlapping another; "
            f"{len({f.partner for f in files})} partners, "
            f"{len({f.period for f in files})} periods), made in {time.monotonic() - t:.1f} s"
        )
        t = time.monotonic()
        cli(env, "init", "--json")
        partners = sorted({f.partner for f in files if f.channel == "api"})
        with ThreadPoolExecutor(4) as pool:
            issued = pool.map(
                lambda p: json.loads(cli(env, "tokens", "issue", "--partner", p, "--json")),
                partners,
            )
            tokens = {p: i["secret"] for p, i in zip(partners, issued, strict=True)}
        print(f"ci-pipeline init and {len(tokens)} tokens issued in {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        command += ["--port", str(prefect_port)]
        server = start(command, server_env, home / "prefect-server.log")
        wait_until(f"{prefect_api}/health", "the Prefect server", server, 300)
        print(f"Prefect server up at {prefect_api} in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        serve = start([str(BIN / "ci-pipeline"), "serve"], env, home / "serve.log")
        wait_until(f"{intake_api}/healthz", "ci-pipeline serve", serve, 300)
        print(
            f"ci-pipeline serve up in {time.monotonic() - t:.1f} s (intake API {intake_api}); "
            f"CI_PIPELINE_RECONCILE_EVERY_SECONDS={args.reconcile_every} "
            f"CI_PIPELINE_RECONCILE_AFTER_SECONDS={args.reconcile_after} "
            "CI_PIPELINE_INGEST_LEASE_SECONDS=900 (default)"
        )
        time.sleep(3)  # serve's first reconcile pass and the watcher's first scan

        # --- the burst, and the kill ----------------------------------------------------------
        outage: dict[str, float] = {}

        def kill_and_restart() -> None:
            nonlocal server
            assert server is not None
            outage["kill"] = time.monotonic()
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            time.sleep(args.outage)
            outage["restart"] = time.monotonic()
            server = start(command, server_env, home / "prefect-server.log")
            wait_until(f"{prefect_api}/health", "the restarted Prefect server", server, 300)
            outage["up"] = time.monotonic()

        uploads: list[Future[Upload]] = []
        dropped: list[tuple[File, float]] = []
        killer = threading.Thread(target=kill_and_restart, name="killer")
        client = httpx.Client(timeout=120.0)
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            for n, f in enumerate(files):
                time.sleep(max(0.0, t0 + n / args.rate - time.monotonic()))
                if n == kill_after:
                    killer.start()
                if f.channel == "inbox":
                    target = home / "inbox" / f.partner / f.period / f.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(f.content)
                    dropped.append((f, time.monotonic()))
                else:
                    uploads.append(pool.submit(upload, client, intake_api, tokens[f.partner], f))
            done = [u.result() for u in uploads]
        sent = time.monotonic()
        if killer.is_alive() or kill_after < len(files):
            killer.join()
        client.close()
        print(
            f"burst: {len(files)} files sent in {sent - t0:.1f} s ({args.rate:g}/s); the Prefect "
            f"server got kill -9 after {kill_after} ({outage['kill'] - t0:.1f} s in), was started "
            f"again {outage['restart'] - outage['kill']:.1f} s later and answered "
            f"{outage['up'] - outage['kill']:.1f} s after the kill"
        )
        codes = Counter(u.code for u in done)
        took = [u.ended - u.started for u in done]
        during = [u for u in done if outage["kill"] <= u.started <= outage["up"]]
        print(
            f"uploads: {codes.get(202, 0)} of {len(done)} answered 202 (median "
            f"{statistics.median(took):.2f} s, slowest {max(took):.2f} s); {len(during)} sent while "
            f"the server was down, {sum(u.code == 202 for u in during)} of them 202 (slowest "
            f"{max((u.ended - u.started for u in during), default=0):.2f} s); refused: "
            f"{dict((k, v) for k, v in codes.items() if k != 202) or 'none'}"
        )
        in_outage = sum(outage["kill"] <= at <= outage["up"] for _, at in dropped)
        inbox = home / "inbox"

        def left() -> list[Path]:
            return [
                p
                for p in inbox.rglob("*")
                if p.is_file() and not p.relative_to(inbox).parts[0].startswith(("_", "README"))
            ]

        deadline = time.monotonic() + 120
        while left() and time.monotonic() < deadline:
            time.sleep(0.5)
        refused = [p for p in (inbox / "_refused").rglob("*") if p.is_file()]
        print(
            f"inbox: {len(dropped)} dropped ({in_outage} while the server was down); "
            f"{len(left())} still in the inbox, {len(refused)} in _refused"
        )

        # --- until every file has a verdict ---------------------------------------------------
        expected = [u.file for u in done if u.code == 202] + [f for f, _ in dropped]
        limit = str(2 * len(files) + 10)
        rows: list[dict[str, Any]] = []
        all_decided_at: float | None = None
        end = outage["up"] + args.deadline
        last_print = 0.0
        while True:
            asked = time.monotonic()
            try:
                rows = json.loads(cli(env, "submissions", "--json", "--limit", limit))
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                print(f"  ci-pipeline submissions failed: {exc}")
                rows = []
            decided = sum(r["status"] != "received" for r in rows)
            if rows and decided == len(rows) >= len(expected):
                all_decided_at = asked
                break
            if asked - last_print >= 30:
                print(
                    f"  {asked - outage['up']:6.0f} s after the restart: {len(rows)} submissions, "
                    f"{decided} with a verdict"
                )
                last_print = asked
            if asked > end:
                break
            time.sleep(5)
        statuses = Counter(r["status"] for r in rows)
        if all_decided_at is not None:
            print(
                f"verdicts: all {len(rows)} decided {all_decided_at - outage['up']:.0f} s after the "
                f"restarted server answered ({all_decided_at - outage['kill']:.0f} s after the "
                f"kill, {all_decided_at - t0:.0f} s after the first file; polled every ~5 s plus "
                "the command's own run time)"
            )
        else:
            print(f"verdicts: NOT all decided {args.deadline:.0f} s after the restart")
        print(f"status: {dict(sorted(statuses.items()))}")
        problems = check(env, files, expected, rows, limit, home)
        if codes.get(202, 0) != len(done):
            problems.append(f"{len(done) - codes.get(202, 0)} upload(s) refused (see above)")
        if left() or refused:
            problems.append(f"{len(left())} file(s) left in the inbox, {len(refused)} refused")
        if all_decided_at is None:
            still = [r for r in rows if r["status"] == "received"]
            problems.append(f"{len(still)} submission(s) still received at the deadline")
            for r in still[:20]:
                print(
                    f"  still received: #{r['id']} {r['partner_id']} {r['period']} "
                    f"{r['file_name']} claimed_at={r['claimed_at']}"
                )
        print(ingest_runs(prefect_api))
        alive = serve.poll() is None
        print(f"serve: {'still running' if alive else f'EXITED with code {serve.returncode}'}")
        if not alive:
            problems.append("ci-pipeline serve exited")
        print(_serve_log_summary(home / "serve.log"))
        print(f"load average at the end {_load()} (2-core machine shared with other work)")
        print()
        if problems:
            print("FAILED: " + "; ".join(problems))
        else:
            print(
                f"HELD: all {len(rows)} files received have exactly one verdict, as expected, and "
                "no figure is counted twice"
            )
        line = f".venv/bin/python benchmarks/durability.py --files {args.files}"
        if args.database_url:
            line += f" --database-url {args.database_url}"
        print(f"\nrepeat: {line}")
        failed = bool(problems)
        return 1 if problems else 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything this script started")
        return 130
    finally:
        stop(serve, signal.SIGTERM, 90)
        stop(server, signal.SIGTERM, 20)
        if fresh is not None and not args.keep:
            drop_database(args.database_url, fresh[1])
        if args.keep or failed:
            print(f"(working folder kept: {home})")
        else:
            shutil.rmtree(home, ignore_errors=True)


def check(
    env: dict[str, str],
    files: list[File],
    expected: list[File],
    rows: list[dict[str, Any]],
    limit: str,
    home: Path,
) -> list[str]:
    """Everything the guarantee says, checked from what a user can see; the problems found."""
    problems: list[str] = []
    by_key: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(
            (r["partner_id"], r["period"], r["file_name"], r["content_hash"]), []
        ).append(r)
    wanted = {f.key for f in expected}
    twice = [k for k, v in by_key.items() if len(v) > 1]
    missing = [f for f in expected if f.key not in by_key]
    strangers = [k for k in by_key if k not in wanted]
    print(
        f"submissions: {len(rows)} for {len(expected)} files received; {len(missing)} missing, "
        f"{len(twice)} recorded twice, {len(strangers)} not sent"
    )
    if missing or twice or strangers:
        problems.append(
            f"{len(missing)} file(s) missing, {len(twice)} recorded twice, {len(strangers)} unknown"
        )
    status = {f: by_key[f.key][0]["status"] for f in expected if f.key in by_key}
    wrong = [f for f in expected if f.kind == "plain" and status.get(f) != "accepted"]
    groups: dict[int, list[File]] = {}
    for f in expected:
        if f.group is not None:
            groups.setdefault(f.group, []).append(f)
    pairs_ok: Counter[str] = Counter()
    for members in groups.values():
        kind = members[0].kind
        got = sorted(status.get(f, "missing") for f in members)
        want = ["accepted", "duplicate"] if kind == "duplicate" else ["accepted", "rejected"]
        good = got == want
        if good and kind == "overlap":
            loser = next(f for f in members if status[f] == "rejected")
            report = json.loads(Path(by_key[loser.key][0]["report_path"]).read_text("utf-8"))
            good = {i["rule"] for i in report["issues"]} == {"already_reported"}
        pairs_ok[kind] += good
        if not good:
            problems.append(
                f"{kind} pair {[(f.partner, f.period, status.get(f)) for f in members]}"
            )
    print(
        f"expected verdicts: {sum(f.kind == 'plain' for f in expected) - len(wrong)} of "
        f"{sum(f.kind == 'plain' for f in expected)} plain files accepted; "
        f"{pairs_ok['duplicate']} of {sum(m[0].kind == 'duplicate' for m in groups.values())} "
        "pairs sent twice: one accepted, one duplicate; "
        f"{pairs_ok['overlap']} of {sum(m[0].kind == 'overlap' for m in groups.values())} "
        "overlapping pairs: one accepted, one rejected already_reported"
    )
    if wrong:
        problems.append(f"{len(wrong)} plain file(s) not accepted")
        for f in wrong[:10]:
            r = by_key.get(f.key, [{}])[0]
            print(
                f"  not accepted: {f.partner} {f.period} {f.name}: {r.get('status')} {r.get('message')}"
            )

    obs = pl.DataFrame(json.loads(cli(env, "observations", "--json", "--limit", "100000000")))
    after = json.loads(cli(env, "submissions", "--json", "--limit", limit))
    accepted = {r["id"]: r["rows_accepted"] for r in after if r["status"] == "accepted"}
    steady = accepted == {r["id"]: r["rows_accepted"] for r in rows if r["status"] == "accepted"}
    per = Counter(obs["submission_id"].to_list()) if obs.height else Counter()
    mismatched = [i for i in set(accepted) | set(per) if accepted.get(i) != per.get(i, 0)]
    keys_twice, overlapping = counted_twice(obs) if obs.height else (0, 0)
    compared = (
        f"{sum(accepted.values())} rows accepted in the receipts, {len(mismatched)} "
        "submission(s) differing"
        if steady
        else "not compared with the receipts: ingests were still deciding"
    )
    print(
        f"counted once: {obs.height} observations count ({compared}); {keys_twice} key(s) "
        f"stored twice; {overlapping} overlapping pair(s) of figures"
    )
    if (steady and mismatched) or keys_twice or overlapping:
        problems.append(
            f"counted twice: {keys_twice} key(s) twice, {overlapping} overlap(s), "
            f"{len(mismatched) if steady else 0} receipt(s) not matching the observations"
        )
    decided = [r for r in rows if r["status"] != "received"]
    bad = [
        r
        for r in decided
        if not r.get("archive_path")
        or not Path(r["archive_path"]).is_file()
        or sha256_file(Path(r["archive_path"])) != r["content_hash"]
    ]
    stray = [p for p in (home / "archive").rglob("*") if p.is_file() and p.name.endswith(".part")]
    print(
        f"archive: {len(decided) - len(bad)} of the {len(decided)} decided submissions' copies "
        f"match their SHA-256; {len(stray)} partial file(s) left"
    )
    if bad or stray:
        problems.append(f"archive: {len(bad)} copies missing or wrong, {len(stray)} partial")
    return problems


def ingest_runs(api: str) -> str:
    """How many ingest runs Prefect holds, by state, how many the reconciler started, and how
    many submissions had more than one (each run past the first is wasted work)."""
    runs: list[dict[str, Any]] = []
    try:
        while True:
            page = httpx.post(
                f"{api}/flow_runs/filter",
                json={
                    "flows": {"name": {"any_": ["ingest-submission"]}},
                    "limit": 200,
                    "offset": len(runs),
                },
                timeout=60,
            ).json()
            runs += page
            if len(page) < 200:
                break
    except (httpx.HTTPError, ValueError) as exc:
        return f"ingest runs: could not be read from Prefect ({exc})"
    states = Counter((r.get("state") or {}).get("name") for r in runs)
    per = Counter(str(r["parameters"].get("submission_id")) for r in runs)
    reconciled = sum("reconciled" in r["tags"] for r in runs)
    return (
        f"ingest runs in Prefect: {len(runs)} ({dict(states)}); {reconciled} started by the "
        f"reconciler; {sum(n > 1 for n in per.values())} submission(s) with more than one run"
    )


def _serve_log_summary(log: Path) -> str:
    text = log.read_text("utf-8", errors="replace") if log.exists() else ""
    started = sum(int(n) for n in re.findall(r"reconcile: started ingests for (\d+)", text))
    passes = len(re.findall(r"reconcile: started ingests for", text))
    could_not = text.count("reconcile: could not start an ingest")
    return (
        f"serve.log: the reconciler started {started} ingest(s) in {passes} pass(es); "
        f"{could_not} pass(es) could not reach Prefect; {text.count('Traceback')} traceback(s), "
        f"{len(re.findall(r'ERROR', text))} ERROR line(s)"
    )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
