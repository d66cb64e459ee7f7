"""The ``ci-pipeline`` application and its global options; the command groups register on it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from ci_pipeline.cli.common import EXIT_CODES_HELP, VERBOSE

app = typer.Typer(
    help="Shared measurement for a Collective Impact initiative: validate partner files, "
    "store them, roll them up into indicators, and alert the backbone team when one regresses.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    rich_markup_mode="rich",
    # A traceback (--verbose) is for engineers: it must not print the settings' secrets.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    initiative: Annotated[
        Path | None,
        typer.Option(
            "--initiative",
            help="Initiative folder (default: CI_PIPELINE_INITIATIVE or the bundled Beit HaKerem).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show Prefect's run logs on the terminal, and the traceback of an error.",
        ),
    ] = False,
) -> None:
    """Settings come from CI_PIPELINE_* environment variables; see the README."""
    # For this invocation only: the next one (a test's, in the same process) starts without.
    token = VERBOSE.set(verbose)
    ctx.call_on_close(lambda: VERBOSE.reset(token))
    if initiative is not None:
        os.environ["CI_PIPELINE_INITIATIVE"] = str(initiative.resolve())
    # Operators read run logs in the Prefect UI; the terminal shows results unless asked.
    os.environ.setdefault(
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "WARNING"
    )
    # The temporary local server would try to send usage telemetry: the machine may well be
    # offline, and an ERROR line about it would only confuse.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # While `serve` runs on this data folder, a command uses its warm Prefect server instead of
    # starting a temporary one (20-36 s), and its runs show in the same UI.
    if not os.environ.get("PREFECT_API_URL"):
        from pydantic import ValidationError

        from ci_pipeline.config import get_settings
        from ci_pipeline.serve.preflight import serving_prefect

        with contextlib.suppress(ValidationError):
            url = serving_prefect(get_settings())
            if url:
                os.environ["PREFECT_API_URL"] = url
    # Pointed at the local server `serve` started, authenticate with its stored secret.
    if os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_API_AUTH_STRING"):
        from pydantic import ValidationError

        from ci_pipeline.config import get_settings
        from ci_pipeline.serve.auth import use_local_auth

        with contextlib.suppress(ValidationError):  # the command itself reports bad settings
            use_local_auth(get_settings())
