"""The ``ci-pipeline`` command line (typer + rich).

Core errors (:mod:`ci_pipeline.errors`) become messages and exit codes in ``common`` and
nowhere else. Every listing has ``--json`` for scripts. Prefect is imported only by the
commands that run flows, so ``--help`` and the listings stay fast.

One module per command group: ``definitions`` (init, partners, measures, template),
``intake`` (submit, submissions, observations), ``processing`` (process, indicators),
``alerts``, ``tokens``, ``operations`` (serve, status) and ``sample`` (demo); ``app`` is the
application they register on. Importing this package registers them all.
"""

from __future__ import annotations

# Imported in the order the commands are listed in --help.
from ci_pipeline.cli import definitions, intake, sample, processing, operations  # isort: skip
from ci_pipeline.cli import alerts, common, tokens
from ci_pipeline.cli.alerts import alerts_app
from ci_pipeline.cli.app import app
from ci_pipeline.cli.definitions import measures_app
from ci_pipeline.cli.tokens import tokens_app

app.add_typer(measures_app, name="measures")
app.add_typer(tokens_app, name="tokens")
app.add_typer(alerts_app, name="alerts")

__all__ = [
    "alerts",
    "app",
    "common",
    "definitions",
    "intake",
    "operations",
    "processing",
    "sample",
    "tokens",
]
