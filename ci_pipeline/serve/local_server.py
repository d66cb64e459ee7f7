"""The local Prefect server ``serve`` and the command line's daemon run, and how a process
finds and uses a Prefect API. Nothing here imports Prefect until a server is started or a
process is pointed at one, so the command line can ask cheaply."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ci_pipeline.config import Settings
from ci_pipeline.errors import OperationalProblem
from ci_pipeline.serve import auth

#: How often the local server evaluates proactive triggers (the quiet window of a coalesced
#: burst): Prefect's default is 5 s.
PROACTIVE_GRANULARITY = "PT1S"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers at ``api_url``."""
    import httpx

    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def use_api(api_url: str, auth_string: str | None = None) -> None:
    """Point this process, its threads and the runs it starts (they inherit the environment)
    at ``api_url``, authenticating with ``auth_string`` when given (Prefect's settings are
    read again if it is already imported)."""
    os.environ["PREFECT_API_URL"] = api_url
    if auth_string:
        os.environ[auth.CLIENT_VARIABLE] = auth_string
    if "prefect" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


@contextmanager
def prefect_server(settings: Settings, *, startup_timeout: float = 90.0) -> Iterator[str]:
    """The Prefect API to use: ``PREFECT_API_URL`` if set, else a local server started here.

    The local server keeps its database in the pipeline's home (``prefect.db``), evaluates
    proactive triggers every second, requires the auth string of :mod:`.auth` (made once, kept
    in the home; ``PREFECT_SERVER_API_AUTH_STRING`` if set instead) from every client — this
    process, the runner and its runs get it — and is stopped on exit.
    """
    from prefect.settings import get_current_settings

    configured = get_current_settings().api.url
    if configured:
        if not healthy(configured):
            raise OperationalProblem(f"no Prefect API answers at PREFECT_API_URL={configured}")
        use_api(configured)
        yield configured
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    url = settings.local_prefect_api_url
    if healthy(url):
        raise OperationalProblem(
            f"a Prefect server already answers at {url}: set PREFECT_API_URL={url} to use it, "
            "or CI_PIPELINE_PREFECT_PORT to start another"
        )
    auth_string = os.environ.get(auth.SERVER_VARIABLE) or auth.auth_string(settings)
    env = {
        **os.environ,
        auth.SERVER_VARIABLE: auth_string,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": os.environ.get(
            "PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY", PROACTIVE_GRANULARITY
        ),
    }
    if not any(
        k in os.environ
        for k in ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
    ):
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = (
            f"sqlite+aiosqlite:///{settings.home.resolve() / 'prefect.db'}"
        )
    log = (settings.home / "prefect-server.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(settings.prefect_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own session: a Ctrl-C at the terminal reaches serve alone, which then stops the
        # runner (whose last state updates need this server) before it stops the server.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + startup_timeout
        while not healthy(url, timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise OperationalProblem(
                    f"the local Prefect server did not start; see {settings.home / 'prefect-server.log'}"
                )
            time.sleep(0.5)
        use_api(url, auth_string)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
