"""What ``serve`` checks before it starts anything: one ``serve`` per data folder, and the
ports it will listen on free.

Told up front, a busy port or a second ``serve`` is one sentence naming the setting to change,
instead of a failure half-way through starting a Prefect server, a runner and a watcher (each
of which would then have to be stopped again).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ci_pipeline.config import Settings, ensure_home
from ci_pipeline.errors import OperationalProblem

#: The file in the data folder a running ``serve`` holds locked (its pid inside, for people).
LOCK_NAME = "serve.lock"


@contextmanager
def only_serve(settings: Settings) -> Iterator[Callable[[str], None]]:
    """Hold the data folder's ``serve`` lock until exit; :class:`OperationalProblem` if another
    process holds it. Yields ``announce(prefect_api_url)``, which writes the Prefect API this
    ``serve`` uses into the lock file, for the command line to use (:func:`serving_prefect`).

    An OS lock (``flock``), not a pid file: it is let go when its process ends however it
    ends, so a ``serve`` that was killed never blocks the next one.
    """
    path = ensure_home(settings) / LOCK_NAME
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            raise OperationalProblem(
                f"`ci-pipeline serve` is already running with the data folder "
                f"{settings.home}{f' (pid {pid})' if pid else ''}: stop it first (Ctrl-C in "
                "its terminal), or give this one another CI_PIPELINE_HOME"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()

        def announce(prefect_api_url: str) -> None:
            handle.write(f"{prefect_api_url}\n")
            handle.flush()

        try:
            yield announce
        finally:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def serving_prefect(settings: Settings) -> str | None:
    """The Prefect API a ``serve`` running on this data folder uses (it holds the lock and
    announced one), so a command can use that warm server instead of starting a temporary one
    (20-36 s); None when no ``serve`` runs here."""
    path = settings.home / LOCK_NAME
    try:
        handle = path.open(encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: a serve runs
            lines = handle.read().splitlines()
            return lines[1].strip() if len(lines) > 1 and lines[1].strip() else None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None  # nobody holds it: what it says is stale


def port_in_use(host: str, port: int) -> bool:
    """Whether another program listens on ``host:port`` (bound as uvicorn and Prefect bind,
    with ``SO_REUSEADDR``, so a port only lingering after a closed connection counts free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_ports(settings: Settings, *, with_api: bool, own_server: bool) -> None:
    """:class:`OperationalProblem` naming the port and its setting if one ``serve`` will listen
    on is taken: the intake API's (``with_api``) and the local Prefect server's (``own_server``:
    no ``PREFECT_API_URL``)."""
    if own_server and port_in_use("127.0.0.1", settings.prefect_port):
        raise OperationalProblem(
            f"port {settings.prefect_port} of the local Prefect server is in use by another "
            "program: set CI_PIPELINE_PREFECT_PORT to a free port (or PREFECT_API_URL, to use "
            "a Prefect server that is already running)"
        )
    if not with_api:
        return
    try:
        taken = port_in_use(settings.api_host, settings.api_port)
    except OSError as exc:  # not an address of this machine, a privileged port ...
        raise OperationalProblem(
            f"the intake API cannot listen on {settings.api_host}:{settings.api_port} "
            f"({exc.strerror}): check CI_PIPELINE_API_HOST and CI_PIPELINE_API_PORT"
        ) from None
    if taken:
        raise OperationalProblem(
            f"port {settings.api_port} of the intake API ({settings.api_host}) is in use by "
            "another program: set CI_PIPELINE_API_PORT to a free port (or run serve --no-api)"
        )
