"""Commands for operators: ``serve`` the pipeline, see its ``status``, ``reconcile`` by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from ci_pipeline.cli.app import app
from ci_pipeline.cli.common import (
    JsonOpt,
    handle_errors,
    load_context,
    make_table,
    open_engine,
    out,
    print_json,
    warm_prefect,
)
from ci_pipeline.config import get_settings


@app.command()
@handle_errors
def serve(
    no_api: Annotated[
        bool, typer.Option("--no-api", help="Do not start the HTTP intake API.")
    ] = False,
    no_inbox: Annotated[bool, typer.Option("--no-inbox", help="Do not watch the inbox.")] = False,
    no_flows: Annotated[
        bool,
        typer.Option(
            "--no-flows",
            help="Run no flows here: the workers of the ci-pipeline work pool run them all "
            "(deployments registered with `prefect deploy`, on the Prefect server of "
            "PREFECT_API_URL, which is required).",
        ),
    ] = False,
) -> None:
    """Run the pipeline on this machine until Ctrl-C: a local Prefect server (or the one in
    PREFECT_API_URL), every deployment of deployments/prefect.yaml with its triggers and
    schedules, the inbox watcher and the intake API."""
    from ci_pipeline.serve.runner import Addresses
    from ci_pipeline.serve.runner import serve as run

    settings, initiative = load_context()

    def ready(addresses: Addresses) -> None:
        out.print("[bold green]ci-pipeline is serving[/bold green] (Ctrl-C stops everything)")
        out.print(f"  Prefect UI   {addresses.prefect_ui}", soft_wrap=True)
        out.print(
            f"  Intake API   {addresses.intake_api}  (docs: {addresses.intake_api}/docs)",
            soft_wrap=True,
        )
        out.print(f"  Inbox        {addresses.inbox}/<partner>/<period>/<file>", soft_wrap=True)
        out.print(f"  Alerts       {settings.alerts_file}", soft_wrap=True)

    def starting() -> None:
        out.print("Starting: the Prefect server takes 10–20 s on first start …")

    run(
        settings,
        initiative,
        on_start=starting,
        on_ready=ready,
        with_api=not no_api,
        with_inbox=not no_inbox,
        with_flows=not no_flows,
    )
    out.print("Stopped.")


@app.command()
@handle_errors
def status(
    limit: Annotated[int, typer.Option(help="How many of each to show.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """Recent submissions, recent flow runs (from the Prefect API) and open alerts."""
    from dataclasses import asdict

    from ci_pipeline.serve.status import snapshot

    settings = get_settings()
    snap = snapshot(settings, engine=open_engine(settings), limit=limit)
    if json_out:
        print_json(asdict(snap))
        return
    out.print(make_table("Recent submissions", snap.submissions, STATUS_SUBMISSION_COLUMNS))
    if snap.runs_note:
        out.print(f"[yellow]Runs:[/yellow] {snap.runs_note}", soft_wrap=True)
    else:
        out.print(make_table(f"Recent runs ({snap.prefect_api})", snap.runs, RUN_COLUMNS))
    out.print(
        make_table(f"Open alerts ({len(snap.open_alerts)})", snap.open_alerts, STATUS_ALERT_COLUMNS)
    )


STATUS_SUBMISSION_COLUMNS = ["id", "partner_id", "period", "status", "received_at", "message"]


RUN_COLUMNS = ["name", "state", "expected_start", "seconds", "message"]


STATUS_ALERT_COLUMNS = ["id", "kind", "measure_id", "geo_code", "period", "message"]


@app.command()
@handle_errors
def reconcile(
    json_out: JsonOpt = False,
) -> None:
    """Ingest, now and in this process, every received submission nobody is deciding (its
    event was lost, or its run died); `serve` does this by itself every minute."""
    from datetime import timedelta

    from ci_pipeline.flows.ingest import ingest_submission
    from ci_pipeline.flows.runtime import in_process
    from ci_pipeline.serve.reconcile import reconcile as reconcile_now

    settings, initiative = load_context()
    engine = open_engine(settings)
    verdicts: list[dict[str, object]] = []
    warm_prefect(settings)
    with in_process():
        reconcile_now(
            settings,
            initiative,
            engine=engine,
            start=lambda submission_id: verdicts.append(ingest_submission(submission_id)),
            unclaimed_for=timedelta(0),  # by hand: every one not being ingested right now
        )
    if json_out:
        print_json(verdicts)
        return
    if not verdicts:
        out.print("Every received submission has a verdict (or is being ingested).")
    for v in verdicts:
        out.print(f"#{v['submission_id']} {v['partner_id']} {v['period']}: {v['message']}")
