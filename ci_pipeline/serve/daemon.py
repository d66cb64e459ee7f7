"""A long-lived local Prefect server for the command line: started on first use, reused by
every later command, stopped after it has been idle a while.

Without ``PREFECT_API_URL`` each flow run Prefect starts in a process brings up a temporary
server of its own (20–36 s here). A command that runs flows (``submit``, ``process``,
``reconcile``, ``demo``) instead calls :func:`ensure`: the first one starts this daemon —
``python -m ci_pipeline.serve.daemon``, in its own session, which runs the same local server
``serve`` runs (:func:`ci_pipeline.serve.local_server.prefect_server`: the home's ``prefect.db``,
the home's auth secret, ``CI_PIPELINE_PREFECT_PORT``) — and every later command finds it
answering and pays nothing. Each use touches a file; the daemon stops its server and exits
once that file is ``CI_PIPELINE_PREFECT_DAEMON_IDLE_SECONDS`` old (0 turns the daemon off:
a temporary server per command, as Prefect does by itself). ``serve`` stops it before it starts
its own server on the same port and database; while ``serve`` runs, commands use its server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ci_pipeline.config import Settings, get_settings
from ci_pipeline.serve import handoff
from ci_pipeline.serve.local_server import healthy

#: In the data folder: the daemon's pid (while it runs), the file each use touches, the lock
#: two commands starting it at once take turns on, and its server's log.
PID_NAME, USED_NAME, LOCK_NAME, LOG_NAME = (
    "prefect-daemon.pid",
    "prefect-daemon.used",
    "prefect-daemon.lock",
    "prefect-daemon.log",
)

#: How long a first command waits for the daemon's server to answer.
STARTUP_SECONDS = 120.0


def _pid(settings: Settings) -> int | None:
    """The daemon's pid if one is recorded and that process lives (:func:`gone`)."""
    try:
        pid = int((settings.home / PID_NAME).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return None if gone(pid) else pid


def running(settings: Settings) -> str | None:
    """The daemon's API URL when it runs and answers; None otherwise."""
    url = settings.local_prefect_api_url
    return url if _pid(settings) is not None and healthy(url, timeout=1.0) else None


def _used(settings: Settings) -> None:
    (settings.home / USED_NAME).touch()


def ensure(settings: Settings, *, on_start: Callable[[], None] | None = None) -> str | None:
    """The daemon's API URL, starting the daemon first if it is not running; None when the
    daemon is off (idle seconds 0), or the port answers for something else, or it did not
    start in time (the caller falls back to a temporary server, as before).

    ``on_start`` (a callable) is told before a start, so the user knows why this first command
    waits.
    """
    if settings.prefect_daemon_idle_seconds <= 0:
        return None
    settings.home.mkdir(parents=True, exist_ok=True)
    with (settings.home / LOCK_NAME).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; the others then find it
        url = running(settings)
        if url is None:
            if healthy(settings.local_prefect_api_url, timeout=1.0):
                return None  # a server we did not start (serve's is found before this)
            if on_start is not None:
                on_start()
            url = _start(settings)
        if url is not None:
            _used(settings)
        return url


def _start(settings: Settings) -> str | None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with (settings.home / LOG_NAME).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ci_pipeline.serve.daemon"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the command; a Ctrl-C there does not reach it
            close_fds=True,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if _pid(settings) == process.pid and healthy(settings.local_prefect_api_url, 1.0):
            return settings.local_prefect_api_url
        time.sleep(0.5)
    return None


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (reaped here if it is this process's own child, as
    when a long-lived process started the daemon: a zombie would still answer a signal)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop(settings: Settings, *, timeout: float = 30.0) -> bool:
    """Stop the daemon if it runs (it stops its server first); whether one was stopped."""
    pid = _pid(settings)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


def main() -> None:
    """The daemon itself: the local server, and the hand-off of the commands' ingests
    (:mod:`.handoff`), until idle for the configured time, or SIGTERM."""
    from ci_pipeline.serve.local_server import prefect_server

    settings = get_settings()
    idle = settings.prefect_daemon_idle_seconds
    pid_file: Path = settings.home / PID_NAME

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        with prefect_server(settings):
            _used(settings)  # idle from now: the start itself may take longer than the limit
            pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
            # Warm before listening: a command that finds the socket finds the flows imported
            # and Prefect's first-run costs paid.
            import ci_pipeline.flows.ingest  # noqa: F401
            from ci_pipeline.flows.runtime import warm_up

            with contextlib.suppress(Exception):  # a slower first hand-off, not a failed start
                warm_up()

            def ingest(request: dict[str, Any]) -> dict[str, Any]:
                """:func:`.handoff.run_ingest`; the daemon counts as used (idle from then)."""
                try:
                    return handoff.run_ingest(request)
                finally:
                    _used(settings)

            with handoff.listening(settings, {"ingest": ingest}) as busy:
                while True:
                    try:
                        quiet = time.time() - (settings.home / USED_NAME).stat().st_mtime
                    except OSError:
                        quiet = idle
                    if quiet >= idle and not (busy and busy.is_set()):
                        break
                    time.sleep(min(30.0, max(0.2, idle - quiet)))
    except KeyboardInterrupt:
        pass
    finally:
        if _pid(settings) == os.getpid():
            pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
