"""The ``alerts`` commands: list them, acknowledge one."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ci_pipeline.cli.common import (
    JsonOpt,
    UsageProblem,
    handle_errors,
    known_choice,
    make_table,
    open_engine,
    out,
    print_json,
)
from ci_pipeline.config import get_settings

alerts_app = typer.Typer(help="List alerts and acknowledge them.")


ALERT_COLUMNS = [
    "id",
    "status",
    "kind",
    "measure_id",
    "geo_code",
    "period",
    "subject",
    "verified",
    "message",
]


@alerts_app.callback(invoke_without_command=True)
@handle_errors
def alerts_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="open, acknowledged or resolved.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """List alerts, newest first (without a subcommand)."""
    from ci_pipeline.alert import alert_dict, list_alerts
    from ci_pipeline.store import AlertStatus

    if ctx.invoked_subcommand is not None:
        return
    known_choice("--status", status, [s.value for s in AlertStatus])
    rows = [
        alert_dict(a)
        for a in list_alerts(engine=open_engine(get_settings()), status=status, limit=limit)
    ]
    if json_out:
        print_json(rows)
    else:
        out.print(make_table(f"Alerts ({len(rows)})", rows, ALERT_COLUMNS))


@alerts_app.command("ack")
@handle_errors
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (see `ci-pipeline alerts`).")],
    by: Annotated[str, typer.Option("--by", help="Who takes it.")] = os.environ.get(
        "USER", "backbone"
    ),
    json_out: JsonOpt = False,
) -> None:
    """Acknowledge an alert: someone owns it, and it is not repeated any more."""
    from ci_pipeline.alert import acknowledge, alert_dict

    alert = acknowledge(alert_id, by, engine=open_engine(get_settings()))
    if alert is None:
        raise UsageProblem(f"no alert #{alert_id} (`ci-pipeline alerts` lists them)")
    if json_out:
        print_json(alert_dict(alert))
    else:
        out.print(
            f"Alert #{alert.id} is {alert.status}"
            + (f" (by {alert.acknowledged_by})" if alert.acknowledged_by else "")
        )
