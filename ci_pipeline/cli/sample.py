"""The ``demo`` command: the sample initiative end to end, and what it found."""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
import typer

from ci_pipeline.cli.app import app
from ci_pipeline.cli.common import (
    JsonOpt,
    UsageProblem,
    check_filters,
    handle_errors,
    indicator_rows,
    load_context,
    make_table,
    open_engine,
    out,
    print_json,
    print_process,
    warm_prefect,
)
from ci_pipeline.cli.intake import print_receipt
from ci_pipeline.model.initiative import Initiative


@app.command()
@handle_errors
def demo(
    reset: Annotated[
        bool,
        typer.Option(
            "--reset/--no-reset",
            help="Start from an empty database, reports and archive under CI_PIPELINE_HOME.",
        ),
    ] = False,
    hold: Annotated[
        list[str] | None,
        typer.Option(
            "--hold",
            metavar="PARTNER:PERIOD",
            help="Generate this file but do not ingest it: drop it into the inbox while "
            "`ci-pipeline serve` runs (e.g. employment-service:2025-Q4, the regressing file).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate the sample initiative's 24 months of files, ingest them, and process the period:
    indicators, the quality gate, regression detection and alert delivery."""
    from ci_pipeline.demo import run

    settings, initiative = load_context()
    held_keys = hold_keys(initiative, hold or [])
    if reset:
        run.reset(settings)
    warm_prefect(settings)
    with out.status("Preparing the database…") as status:
        result = run.run_demo(settings, initiative, hold=held_keys, progress=status.update)
    files, receipts, processed, held = result.files, result.receipts, result.processed, result.held
    if json_out:
        print_json(
            {
                "submissions": [r.to_dict() for r in receipts],
                "process": processed,
                "held": [str(f.path) for f in held],
            }
        )
        return
    counts = [
        {
            "status": status,
            "files": sum(r.status == status for r in receipts),
            "rows stored": sum(r.rows_accepted for r in receipts if r.status == status),
        }
        for status in sorted({r.status for r in receipts})
    ]
    out.print(
        make_table("Demo: submissions by outcome", counts, ["status", "files", "rows stored"])
    )
    notable = [
        r
        for r, f in zip(receipts, files, strict=True)
        if f.note and not f.note.startswith("backbone")
    ]
    for r in notable:
        print_receipt(r)
        out.print()
    print_demo_indicators(initiative, processed["detected"]["headline"])
    print_process(processed)
    from ci_pipeline.alert import alert_dict, list_alerts

    open_alerts = [alert_dict(a) for a in list_alerts(engine=open_engine(settings), status="open")]
    out.print(f"[bold]Open alerts ({len(open_alerts)})[/bold]")
    for a in sorted(open_alerts, key=lambda a: a["id"]):
        # One line each, unwrapped: the sentence is the alert, and a table would cut it.
        out.print(
            f"  #{a['id']} [{a['kind']}] {a['message']}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    out.print(f"Delivered to: {settings.alerts_file}", soft_wrap=True)
    for f in held:
        out.print(
            f"Held back, not ingested: {f.path}\n  while `ci-pipeline serve` runs, drop it into "
            f"{settings.inbox_dir / f.partner_id / f.period}/",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"Data folder: {settings.home}", soft_wrap=True)
    out.print(
        f"Explore it: export CI_PIPELINE_HOME={settings.home}; .venv/bin/ci-pipeline submissions | indicators | alerts",
        highlight=False,
        soft_wrap=True,
    )


def hold_keys(initiative: Initiative, hold: list[str]) -> set[tuple[str, str]]:
    """The ``--hold PARTNER:PERIOD`` values as (partner, canonical period) keys, each
    checked: a mistake is a usage error before anything is generated."""
    from ci_pipeline.demo import run
    from ci_pipeline.errors import PipelineError

    try:
        keys = run.parse_holds(hold)
    except PipelineError as exc:
        raise UsageProblem(str(exc)) from None
    checked = (check_filters(initiative, partner=p, period=period) for p, period in keys)
    return {(str(k.partner), str(k.period)) for k in checked}


def print_demo_indicators(initiative: Initiative, headline: list[dict[str, Any]]) -> None:
    """The cluster's headline indicators (domain measures only), from the run's own headline."""
    roots = {g.code for g in initiative.geographies.values() if g.parent is None}
    cells = [
        r for r in headline if r["geo_code"] in roots and not r["measure_id"].startswith("fsg-")
    ]
    if not cells:
        return
    rows = indicator_rows(
        pl.DataFrame(cells).with_columns(pl.lit("").alias("disaggregation")), initiative
    )
    out.print(
        make_table(
            "Headline indicators (cluster)", rows, ["measure_id", "period", "shown", "coverage"]
        )
    )
