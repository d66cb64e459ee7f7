"""The README's "Beyond one machine", run as written: a Prefect server on PostgreSQL, the app
database on PostgreSQL, the deployments of ``deployments/prefect.yaml`` registered with
``prefect deploy``, two process workers and the intake API, each "machine" with its own data
folder (and Prefect home): nothing on disk is shared, only the two databases and the Prefect
API. A hundred files are uploaded through the intake API; every one must reach the verdict its
content calls for, once, decided by one ingest run that one of the two workers ran.

Every step is a real process started with the README's commands and environment, in the
README's order (the section says where the test differs: a free port on 127.0.0.1 instead of a
host name, temporary folders instead of /srv); a fast test checks the README's shell block
against the commands and settings here. The end-to-end test is slow (12-20 minutes on a busy
2-core machine: 100 flow-run processes, two at a time) and PostgreSQL-only: without
``CI_PIPELINE_TEST_POSTGRES_URL`` it skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from ci_pipeline import demo
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.serve.deployments import ROOT
from ci_pipeline.store import Observation, Submission
from tests.helpers import postgres_url
from tests.serve.test_serve import _answers, _port

README = ROOT / "README.md"

# The README section's commands and environment, in its order, as the test runs them. Where the
# test must differ it adds to them: the server listens on 127.0.0.1 and a free port (the
# README's --host 0.0.0.0), the intake API on a free port (CI_PIPELINE_API_PORT), and a token
# is issued for every partner that uploads, with --json to read its secret.
SERVER = ["prefect", "server", "start"]
README_SERVER = [*SERVER, "--host", "0.0.0.0"]
POOL = ["prefect", "work-pool", "create", "ci-pipeline", "--type", "process"]
DEPLOY = ["prefect", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"]
WORKER = ["prefect", "worker", "start", "--pool", "ci-pipeline", "--limit", "1"]
TOKEN = ["ci-pipeline", "tokens", "issue", "--partner"]
README_TOKEN = [*TOKEN, "nahf-council"]
SERVE = ["ci-pipeline", "serve", "--no-inbox", "--no-flows"]
SERVER_ENV = (
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_API_AUTH_STRING",
    "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY",
    "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS",
)
CLIENT_ENV = ("CI_PIPELINE_DATABASE_URL", "PREFECT_API_URL", "PREFECT_API_AUTH_STRING")
WORKER_ENV = (
    "CI_PIPELINE_SRC",
    "CI_PIPELINE_HOME",
    "CI_PIPELINE_API_URL",
    "PREFECT_WORKER_QUERY_SECONDS",
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY",
)
INTAKE_ENV = ("CI_PIPELINE_HOME", "CI_PIPELINE_RECONCILE_AFTER_SECONDS")
#: The values the README gives too (the others are URLs, secrets and folders).
FIXED = {
    "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S",
    "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
    "CI_PIPELINE_RECONCILE_AFTER_SECONDS": "1800",
}
#: Each secret file the README makes, and where it copies it.
SECRET_FILES = ("prefect-api-auth", "ack-link-key")

#: Files uploaded: the demo's files for two quarters (accepted) and rejected ones to make 100.
FILES = 100
#: Long enough for a first Prefect server start on an empty PostgreSQL database (migrations)
#: and for 100 flow-run processes on a busy 2-core machine, each wait bounded by one of these.
STARTUP_SECONDS = 300.0
VERDICT_SECONDS = 1800.0
COMMAND_SECONDS = 300.0
BIN = Path(sys.executable).parent
#: The state types a flow run ends in.
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def _readme_block() -> list[str]:
    """The lines of the shell block in README.md's *Beyond one machine*."""
    section = README.read_text(encoding="utf-8").split("### Beyond one machine", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()


def test_the_readme_section_is_what_the_test_runs() -> None:
    """Fast, and not PostgreSQL's: the README's commands and exported settings, in order, are
    the ones the slow test below runs, so the section cannot drift from it unnoticed."""
    commands: list[list[str]] = []
    exported: list[list[str]] = []
    made: list[str] = []
    for line in _readme_block():
        words = shlex.split(line, comments=True)
        if words[:1] in (["prefect"], ["ci-pipeline"]):
            commands.append(words)
        elif words[:1] == ["export"]:
            exported += [word.split("=", 1) for word in words[1:]]
        elif words[:1] in (["python3"], ["install"]):
            made.append(words[-1].rsplit("/", 1)[-1])
    assert commands == [README_SERVER, POOL, DEPLOY, WORKER, README_TOKEN, SERVE]
    assert [name for name, _ in exported] == [
        *SERVER_ENV,
        *CLIENT_ENV,
        *WORKER_ENV,
        *INTAKE_ENV,
    ]
    assert {n: v for n, v in exported if n in FIXED} == FIXED
    assert made == [*SECRET_FILES, "ack-link-key", "ack-link-key"]


def _wait(what: str, done: Callable[[], bool], seconds: float, log: Path | None = None) -> None:
    """Poll ``done`` every half second; fail saying ``what`` (and the log's tail) on timeout."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            pytest.fail(f"{what} not within {seconds:.0f} s\n{tail}")
        time.sleep(0.5)


@dataclass
class Machines:
    """The processes the test started, each in its own session, killed (group and all) at
    the end whatever happened; and their log files."""

    folder: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``command`` running in the background, as on a machine of its own, logging to
        ``<name>.log``."""
        with self.log(name).open("ab") as out:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, process))
        return process

    def run(self, name: str, command: list[str], env: dict[str, str]) -> str:
        """``command`` run to its end, from the checkout; it must succeed. Its output."""
        done = subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        with self.log(name).open("a") as out:
            out.write(done.stdout + done.stderr)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def stop(self) -> None:
        """SIGINT (Ctrl-C) to every process group, newest first; SIGKILL what is left."""
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        for _, process in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its flow-run children too
            process.wait()


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    started = Machines(tmp_path / "logs")
    started.folder.mkdir()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL databases, the app's and the Prefect server's (their URLs);
    dropped at the end."""
    admin_url = make_url(postgres_url())
    names = [f"ci_mm_{role}_{uuid.uuid4().hex[:8]}" for role in ("app", "prefect")]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        app = admin_url.set(database=names[0]).render_as_string(hide_password=False)
        prefect = (
            admin_url.set(drivername="postgresql+asyncpg", database=names[1])
        ).render_as_string(hide_password=False)
        yield app, prefect
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Upload:
    """A file to upload, for a partner and period, and the verdict it must reach."""

    partner_id: str
    period: str
    name: str
    body: bytes
    verdict: str


def _uploads(initiative: Initiative, folder: Path) -> list[Upload]:
    """The demo's files for 2025-Q3 and 2025-Q4 (each partner's one file: accepted), then
    galilee-foundation 2025-Q4 files whose value is not a number (each different: rejected,
    not duplicates), to make :data:`FILES`. Few periods, so little processing competes with
    the ingests for the workers."""
    files = [
        f
        for f in demo.generate(initiative, folder)
        if f.period in ("2025-Q3", "2025-Q4") and not f.note  # no duplicate, no revision
    ]
    accepted = [
        Upload(f.partner_id, f.period, f.path.name, f.path.read_bytes(), "accepted") for f in files
    ]
    rejected = [
        Upload(
            "galilee-foundation",
            "2025-Q4",
            f"fund-draft-{i}.csv",
            f"measure_id,geo_code,period,value\nnew-resources-nis,beit-hakerem,2025-Q4,about {i}\n".encode(),
            "rejected",
        )
        for i in range(FILES - len(accepted))
    ]
    return accepted + rejected


def _secret(path: Path, value: str) -> None:
    """A secret file as the pipeline keeps one: readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


def _prefect_api(url: str, auth: str) -> httpx.Client:
    user, _, password = auth.partition(":")
    return httpx.Client(base_url=url, auth=(user, password), timeout=30)


def _ingest_runs(client: httpx.Client) -> list[dict[str, Any]]:
    """Every flow run of the on-received deployment (the ingests), read from the Prefect API."""
    deployment = client.get("/deployments/name/ingest-submission/on-received").json()
    runs: list[dict[str, Any]] = []
    while True:
        page = client.post(
            "/flow_runs/filter",
            json={
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "limit": 200,
                "offset": len(runs),
            },
        ).json()
        runs += page
        if len(page) < 200:
            return runs


def _submitting_workers(client: httpx.Client, run_ids: list[str]) -> dict[str, set[str]]:
    """The workers that submitted each run: the names in its ``Worker '<name>' submitting flow
    run`` log lines (a runner logs ``Runner '<name>' …``). A submission the server turned away
    (no concurrency slot yet) is logged too, so a run may name both workers."""
    found: dict[str, set[str]] = {}
    logs: list[dict[str, Any]] = []
    while True:  # every log line of the runs, a page at a time
        page = client.post(
            "/logs/filter",
            json={
                "logs": {"flow_run_id": {"any_": run_ids}},
                "sort": "TIMESTAMP_ASC",
                "limit": 200,
                "offset": len(logs),
            },
        ).json()
        logs += page
        if len(page) < 200:
            break
    for entry in logs:
        message: str = entry["message"]
        if message.startswith("Worker '") and " submitting flow run " in message:
            found.setdefault(entry["flow_run_id"], set()).add(message.split("'")[1])
    return found


@pytest.mark.slow
def test_two_workers_without_shared_disk_judge_every_uploaded_file_once(
    tmp_path: Path,
    machines: Machines,
    databases: tuple[str, str],
    initiative: Initiative,
) -> None:
    app_database, prefect_database = databases
    began = time.monotonic()
    uploads = _uploads(initiative, tmp_path / "files")
    assert len(uploads) == FILES

    # Every "machine" starts from a clean environment: its own Prefect home, no settings of ours.
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CI_PIPELINE_"))
    } | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def machine(name: str, names: tuple[str, ...], *values: str, **more: str) -> dict[str, str]:
        """A machine's environment: ``names`` (a README section's exports, in order) set to
        ``values``, then to :data:`FIXED` for those with a fixed value; and ``more``."""
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        given = dict(zip(names[: len(values)], values, strict=True))
        fixed = {n: FIXED[n] for n in names[len(values) :]}
        assert set(given) | set(fixed) == set(names)
        own = {
            "PREFECT_HOME": str(folder / ".prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        return clean | own | more | given | fixed

    # Two secrets, made once: the Prefect API's, and the key that signs alerts'
    # acknowledgement links (a worker signs them, the intake API checks them).
    auth = "admin:" + secrets.token_urlsafe(32)
    ack_key = secrets.token_urlsafe(32)
    prefect_port = _port()
    prefect_url = f"http://127.0.0.1:{prefect_port}/api"

    # The Prefect server, on PostgreSQL, refusing every request without the secret.
    server_env = machine("prefect-server", SERVER_ENV, prefect_database, auth)
    server = machines.start(
        "prefect-server", [*SERVER, "--host", "127.0.0.1", "--port", str(prefect_port)], server_env
    )
    _wait(
        "the Prefect server answering",
        lambda: server.poll() is None and _answers(f"{prefect_url}/health"),
        STARTUP_SECONDS,
        machines.log("prefect-server"),
    )
    assert httpx.post(f"{prefect_url}/flow_runs/filter", json={}).status_code == 401

    # The app database and the server with its secret, for every machine that runs flows or
    # commands.
    client = dict(zip(CLIENT_ENV, (app_database, prefect_url, auth), strict=True))

    # Once, from a checkout: the work pool and the deployments with their triggers.
    operator = machine("operator", (), **client)
    machines.run("operator", POOL, operator)
    machines.run("operator", DEPLOY, operator)

    api_port = _port()  # the intake API's, which workers name in links
    api = f"http://127.0.0.1:{api_port}"

    # On each worker machine: the checkout, its own data folder, a worker.
    homes = {}
    for name in ("worker-a", "worker-b"):
        homes[name] = tmp_path / name / "ci-pipeline-data"
        _secret(homes[name] / "ack-link-key", ack_key)
        machines.start(
            name,
            WORKER,
            machine(name, WORKER_ENV, str(ROOT), str(homes[name]), api, **client),
        )

    # The event source facing partners: its own data folder, the intake API, no flows (a file
    # left waiting for a worker is not taken by its reconciler within the test).
    intake_home = tmp_path / "intake" / "ci-pipeline-data"
    _secret(intake_home / "ack-link-key", ack_key)
    intake_env = machine(
        "intake", INTAKE_ENV, str(intake_home), **client, CI_PIPELINE_API_PORT=str(api_port)
    )
    tokens = {}
    for partner_id in sorted({u.partner_id for u in uploads}):
        out = machines.run("intake", [*TOKEN, partner_id, "--json"], intake_env)
        tokens[partner_id] = json.loads(out)["secret"]
    serve = machines.start("intake", SERVE, intake_env)
    _wait(
        "the intake API answering",
        lambda: serve.poll() is None and _answers(f"{api}/healthz"),
        STARTUP_SECONDS,
        machines.log("intake"),
    )
    ready = time.monotonic()

    expected: dict[int, Upload] = {}
    with httpx.Client(base_url=api, timeout=60) as partners:
        for upload in uploads:
            answer = partners.post(
                "/v1/submissions",
                params={"period": upload.period, "filename": upload.name},
                content=upload.body,
                headers={"Authorization": f"Bearer {tokens[upload.partner_id]}"},
            )
            assert answer.status_code == 202, answer.text
            expected[answer.json()["submission_id"]] = upload
    uploaded = time.monotonic()

    engine = create_engine(app_database)
    try:

        def undecided() -> int:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        text("SELECT count(*) FROM submission WHERE status = 'received'")
                    ).scalar_one()
                )

        _wait(
            "a verdict for every upload",
            lambda: undecided() == 0,
            VERDICT_SECONDS,
            machines.log("worker-a"),
        )
        judged = time.monotonic()
        with Session(engine) as session:
            rows = {r.id or 0: r for r in session.exec(select(Submission)).all()}
            stored = Counter(session.exec(select(Observation.submission_id)).all())
    finally:
        engine.dispose()

    # Every upload reached the verdict its content calls for, and nothing else was received.
    assert sorted(rows) == sorted(expected)
    verdicts = {i: (rows[i].status, expected[i].verdict) for i in rows}
    assert all(got == want for got, want in verdicts.values()), verdicts
    # Its figures counted once: an accepted file's rows, each stored once; a rejected, none.
    for i, row in rows.items():
        assert stored[i] == (row.rows_accepted if row.status == "accepted" else 0), row

    # Judged by a worker: its report and its archive copy in that worker's data folder; nothing
    # of the kind in the receiving machine's.
    judged_by: Counter[str] = Counter()
    for row in rows.values():
        assert row.report_path and row.archive_path, row
        kept = (Path(row.report_path), Path(row.archive_path))
        where = [n for n, h in homes.items() if all(p.is_relative_to(h) for p in kept)]
        assert len(where) == 1 and all(p.is_file() for p in kept), kept
        judged_by[where[0]] += 1
    assert not (intake_home / "reports").exists() and not (intake_home / "archive").exists()

    # Once: one ingest run per submission, finished, each submitted by a worker of the pool.
    with _prefect_api(prefect_url, auth) as prefect:
        # A run writes its verdict before it publishes it and ends: wait for the last ones.
        _wait(
            "every ingest run finished",
            lambda: all(r["state_type"] in FINAL for r in _ingest_runs(prefect)),
            STARTUP_SECONDS,
        )
        runs = _ingest_runs(prefect)
        per_submission = Counter(int(r["parameters"]["submission_id"]) for r in runs)
        assert per_submission == Counter(dict.fromkeys(expected, 1)), per_submission
        assert all(r["state_type"] == "COMPLETED" for r in runs), [
            (r["name"], r["state_name"]) for r in runs if r["state_type"] != "COMPLETED"
        ]
        workers = {
            w["name"]
            for w in prefect.post("/work_pools/ci-pipeline/workers/filter", json={}).json()
        }
        ids = [r["id"] for r in runs]
        _wait(
            "every ingest run's 'Worker … submitting' log line",
            lambda: len(_submitting_workers(prefect, ids)) == len(ids),
            60,
        )
        submitted_by = _submitting_workers(prefect, ids)
    assert len(workers) == 2 and set().union(*submitted_by.values()) <= workers, (
        workers,
        submitted_by,
    )

    # Without shared disk, the API machine cannot serve a report a worker wrote.
    some = next(iter(expected))
    report = httpx.get(
        f"{api}/v1/submissions/{some}/report.json",
        headers={"Authorization": f"Bearer {tokens[expected[some].partner_id]}"},
        timeout=30,
    )
    assert report.status_code == 404

    print(
        f"\nmulti-machine: start {ready - began:.0f} s, uploads {uploaded - ready:.0f} s, "
        f"verdicts {judged - uploaded:.0f} s after the last upload; files judged per worker "
        f"{dict(judged_by)}"
    )
