"""Handing a command's ingest to a warm process: the command line's daemon, or ``serve``.

A ``ci-pipeline submit`` that runs the ingest flow itself pays for importing Prefect, pandera
and the flows (3-4 s here) on every command, though the same steps take 0.1-0.2 s in a warm
process. The command line's daemon (:mod:`ci_pipeline.serve.daemon`) and ``serve`` are such
processes: each keeps the flows imported and listens on a Unix socket in the data folder
(:data:`SOCKET_NAME`, its owner's alone; only one of them runs on a folder at a time). A
command that has *received* a submission (its bytes and row stored,
:func:`ci_pipeline.receive.intake.take`) asks it to ingest the submission: it runs the same
``ingest-submission`` flow on its Prefect server — a named, tagged run in the same UI — and
answers with the receipt.

It only takes work from a command whose settings and code are its own (:func:`fingerprint`)
and whose Prefect API is none or its own: a command with another database, initiative or data
folder in its environment, or its own ``PREFECT_API_URL``, or a listener started before the
code changed, is answered ``mismatch`` and runs the flow itself, as before. So does a command
that finds no listener, or one that stops mid-way (the submission is still ``received``;
running its ingest again is safe: a submission with a verdict is not ingested twice).

One request per connection, one JSON line each way. One ingest at a time, in arrival order;
the connection stays open until it is answered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ci_pipeline.config import Settings
from ci_pipeline.model.load import file_stamps

#: The daemon's socket, in the data folder.
SOCKET_NAME = "warm.sock"

#: The longest path a Unix socket may have here (``sun_path`` is 108 bytes with its NUL); a
#: data folder too deep for it has no hand-off, and its commands run their flows themselves.
MAX_SOCKET_PATH = 107

#: How long a command waits to connect to a daemon that is there (it answers at once even when
#: busy: the kernel queues the connection).
CONNECT_SECONDS = 2.0

#: The answers (``status``) a daemon gives.
DONE, MISMATCH, FAILED = "done", "mismatch", "failed"


def socket_path(settings: Settings) -> Path | None:
    """The daemon's socket path for this data folder, or None when it would be too long."""
    path = settings.home.resolve() / SOCKET_NAME
    return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None


def fingerprint(settings: Settings) -> str:
    """What must be the same in the command and the daemon for the daemon's run to be the
    command's: every setting (paths resolved, so a relative one means the same folder) and the
    code (each module of the package: path, size and modification time)."""
    values = settings.model_dump(mode="json")
    for name, value in settings.model_dump().items():
        if isinstance(value, Path):
            values[name] = str(value.resolve())
    code = file_stamps(Path(__file__).resolve().parents[1], "*.py")
    blob = json.dumps({"settings": values, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# --- the command's side -----------------------------------------------------------------------


class DaemonStopped(Exception):
    """The daemon took the request and closed the connection without answering."""


def ingest(settings: Settings, submission_id: int) -> dict[str, Any] | None:
    """The receipt (the ingest flow's result) of received submission ``submission_id``, run by
    the daemon; None when no daemon takes it (none listens, or its settings or code differ, or
    its run failed: the caller runs the flow itself and meets the error as its own).

    Raises :class:`DaemonStopped` when the daemon took the request and stopped before
    answering; the submission is then still ``received`` or already decided, and running its
    ingest again is safe.
    """
    path = socket_path(settings)
    if path is None or not path.exists():
        return None
    request = {
        "job": "ingest",
        "submission_id": submission_id,
        "fingerprint": fingerprint(settings),
    }
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(CONNECT_SECONDS)
        connection.connect(str(path))
    except OSError:  # a socket left by a daemon that is gone, or not ours to use
        return None
    with connection:
        connection.settimeout(None)  # an ingest of a large file takes what it takes
        connection.sendall(json.dumps(request).encode() + b"\n")
        with connection.makefile("rb") as reply:
            line = reply.readline()
    if not line:
        raise DaemonStopped(f"the daemon stopped before it answered on submission #{submission_id}")
    answer = json.loads(line)
    return answer["result"] if answer.get("status") == DONE else None


# --- the daemon's side ------------------------------------------------------------------------

#: A job the daemon runs: a request in, a JSON-ready result out.
Job = Callable[[dict[str, Any]], dict[str, Any]]


class _Server(socketserver.UnixStreamServer):
    """One request at a time (no threads): ingests in arrival order, as a queue would."""

    def __init__(self, path: Path, expected: str, jobs: dict[str, Job]) -> None:
        self.expected, self.jobs, self.busy = expected, jobs, threading.Event()
        super().__init__(str(path), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline()
        if not line:
            return
        self.server.busy.set()
        try:
            answer = self._answer(json.loads(line))
        finally:
            self.server.busy.clear()
        self.wfile.write(json.dumps(answer, default=str).encode() + b"\n")

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("fingerprint") != self.server.expected or not _same_api(request):
            return {"status": MISMATCH}
        job = self.server.jobs.get(str(request.get("job")))
        if job is None:
            return {"status": FAILED, "message": f"no job {request.get('job')!r}"}
        try:
            return {"status": DONE, "result": job(request)}
        except Exception as exc:  # the command runs it again itself and reports it properly
            return {"status": FAILED, "message": f"{type(exc).__name__}: {exc}"}


def _same_api(request: dict[str, Any]) -> bool:
    """Whether the command would run its flow on this process's Prefect API: it names none
    (the daemon's case: the command would have used the daemon's), or names this one (the
    ``serve`` case: the command found it in ``serve.lock``)."""
    wanted = str(request.get("api") or "").rstrip("/")
    return not wanted or wanted == os.environ.get("PREFECT_API_URL", "").rstrip("/")


def run_ingest(request: dict[str, Any]) -> dict[str, Any]:
    """The ``ingest`` job: the command's received submission through the same flow the command
    would run, in this warm process, its run tagged as a warm process's runs are; the receipt
    as JSON-ready data."""
    from ci_pipeline.flows.ingest import ingest_submission
    from ci_pipeline.flows.runtime import in_process, tagged_in_process
    from ci_pipeline.receive.receipt import Receipt

    with in_process(), tagged_in_process():
        result = ingest_submission(int(request["submission_id"]))
    return Receipt(**result).model_dump(mode="json")


@contextlib.contextmanager
def listening(settings: Settings, jobs: dict[str, Job]) -> Iterator[threading.Event | None]:
    """Serve ``jobs`` on the data folder's socket in a background thread while the block runs;
    yields the event set while a job runs (so the daemon does not stop mid-job), or None when
    the socket cannot be made (too long a path)."""
    path = socket_path(settings)
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # left by a daemon that was killed
    old = os.umask(0o077)  # the socket is its owner's alone, as the auth secret is
    try:
        server = _Server(path, fingerprint(settings), jobs)
    finally:
        os.umask(old)
    thread = threading.Thread(target=server.serve_forever, name="handoff", daemon=True)
    thread.start()
    try:
        yield server.busy
    finally:
        server.shutdown()
        server.server_close()
        path.unlink(missing_ok=True)
