"""The ``ci-pipeline`` application and its global options; the command groups register on it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Shared measurement for a Collective Impact initiative: validate partner files, "
    "store them, roll them up into indicators, and alert the backbone team when one regresses.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.callback()
def main(
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
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs on the terminal.")
    ] = False,
) -> None:
    """Settings come from CI_PIPELINE_* environment variables; see the README."""
    if initiative is not None:
        os.environ["CI_PIPELINE_INITIATIVE"] = str(initiative.resolve())
    # Operators read run logs in the Prefect UI; the terminal shows results unless asked.
    os.environ.setdefault(
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "WARNING"
    )
    # The temporary local server would try to send usage telemetry: the machine may well be
    # offline, and an ERROR line about it would only confuse.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Pointed at the local server `serve` started, authenticate with its stored secret.
    if os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_API_AUTH_STRING"):
        from pydantic import ValidationError

        from ci_pipeline.config import get_settings
        from ci_pipeline.serve.auth import use_local_auth

        with contextlib.suppress(ValidationError):  # the command itself reports bad settings
            use_local_auth(get_settings())
