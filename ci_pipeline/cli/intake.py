"""Commands on submissions: ``submit`` a file, list ``submissions`` and ``observations``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ci_pipeline import store
from ci_pipeline.cli.app import app
from ci_pipeline.cli.common import (
    EXIT_REJECTED,
    GeoFilter,
    JsonOpt,
    MeasureFilter,
    PartnerFilter,
    PeriodFilter,
    UsageProblem,
    check_filters,
    err,
    handle_errors,
    load_context,
    make_table,
    open_engine,
    out,
    print_json,
    warm_prefect,
)
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.errors import SubmissionRefused


def print_receipt(receipt: Any) -> None:
    colour = {"accepted": "green", "duplicate": "yellow", "rejected": "red"}.get(
        receipt.status, "white"
    )
    out.print(
        f"[{colour}]{receipt.status.upper()}[/{colour}] #{receipt.submission_id} {receipt.partner_id} {receipt.period} {receipt.file_name}: {receipt.message}",
        highlight=False,
    )
    for warning in receipt.warnings:
        out.print(f"  [yellow]warning:[/yellow] {warning}")
    if receipt.first_issues:
        out.print(
            make_table(
                f"First {len(receipt.first_issues)} of {receipt.issues} problem(s)",
                receipt.first_issues,
                ["row", "column", "value", "rule", "message"],
            )
        )
    if receipt.report_path:
        # soft_wrap: a path is printed whole on one line, to be copied, whatever the width.
        out.print(f"Report: {receipt.report_path}", highlight=False, soft_wrap=True)


def ingest_received(settings: Settings, submission_id: int) -> Any:
    """The receipt of received submission ``submission_id``, once the ingest flow has run on
    it: in the warm process that listens on this data folder (``serve``, or the command line's
    daemon) when it runs with this command's settings, code and Prefect API
    (:mod:`ci_pipeline.serve.handoff`; the command then imports no Prefect), else here."""
    from ci_pipeline.receive.receipt import Receipt
    from ci_pipeline.serve import handoff

    try:
        result = handoff.ingest(settings, submission_id)
    except handoff.DaemonStopped as exc:
        err.print(f"{exc}; ingesting it here", highlight=False)
        result = None
    if result is not None:
        return Receipt(**result)
    from ci_pipeline.flows.ingest import ingest_submission
    from ci_pipeline.flows.runtime import in_process

    warm_prefect(settings)
    with in_process():
        return Receipt(**ingest_submission(submission_id))


@app.command()
@handle_errors
def submit(
    file: Annotated[
        Path, typer.Argument(help="CSV, XLSX or Parquet file.", exists=True, dir_okay=False)
    ],
    partner: Annotated[str, typer.Option("--partner", "-p", help="The submitting partner's id.")],
    period: Annotated[
        str, typer.Option("--period", help="The period the file reports: 2025-09, 2025-Q3 or 2025.")
    ],
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="CSV text encoding, e.g. windows-1255 (Hebrew), windows-1256 (Arabic). Default: the partner's setting, else UTF-8.",
        ),
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(
            "--locale",
            help="How this file writes numbers, as a CLDR locale: he_IL (1,234.5), de_DE (1.234,5), fr_FR (1 234,5). Default: the partner's setting.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Validate and store one partner file (runs the ingest flow). Exit 0 accepted or duplicate, 3 rejected."""

    from ci_pipeline.read import check_locale
    from ci_pipeline.receive import intake

    settings, initiative = load_context()
    # The caller's mistakes are told before anything is made.
    period = str(check_filters(initiative, partner=partner, period=period).period)
    if locale is not None:
        try:
            locale = check_locale(locale)
        except SubmissionRefused as exc:  # a mistake on the command line, not in the file
            raise UsageProblem(str(exc)) from None
    engine = open_engine(settings)
    intake.prepare_database(initiative, engine=engine)
    # Received (bytes and submission stored) first, then ingested.
    row = intake.take(
        file.resolve(),
        partner,
        period,
        initiative=initiative,
        settings=settings,
        engine=engine,
        options={"encoding": encoding, "locale": locale},
    )
    assert row.id is not None
    receipt = ingest_received(settings, row.id)
    if json_out:
        print_json(receipt.to_dict())
    else:
        print_receipt(receipt)
    if receipt.status == store.Status.rejected:
        raise typer.Exit(EXIT_REJECTED)


SUBMISSION_COLUMNS = [
    "id",
    "partner_id",
    "period",
    "file_name",
    "status",
    "rows_total",
    "rows_accepted",
    "issues",
    "received_at",
    "message",
]


@app.command()
@handle_errors
def submissions(
    partner: PartnerFilter = None,
    period: PeriodFilter = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """List submissions, newest first, with their status and outcome."""
    settings = get_settings()
    wanted = check_filters(partner=partner, period=period)
    rows = [
        store.submission_dict(s)
        for s in store.list_submissions(
            engine=open_engine(settings),
            partner_id=wanted.partner,
            period=wanted.period,
            limit=limit,
        )
    ]
    if json_out:
        print_json(rows)
    else:
        out.print(make_table(f"Submissions ({len(rows)})", rows, SUBMISSION_COLUMNS))


OBSERVATION_BOOKKEEPING = {"submission_id", "measure_version", "source_row"}


@app.command()
@handle_errors
def observations(
    measure: MeasureFilter = None,
    geo: GeoFilter = None,
    period: PeriodFilter = None,
    partner: PartnerFilter = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 200,
    json_out: JsonOpt = False,
) -> None:
    """List the observations that count (from accepted submissions), as partners reported them."""
    settings = get_settings()
    wanted = check_filters(measure=measure, geo=geo, partner=partner, period=period)
    frame = store.current_observations(
        engine=open_engine(settings),
        measure_id=wanted.measure,
        geo_code=wanted.geo,
        period=wanted.period,
        partner_id=wanted.partner,
        limit=limit,
    )
    if json_out:
        print_json(frame.to_dicts())
        return
    # The stored columns, less the bookkeeping a reader does not need in a table.
    cols = [c for c in store.OBSERVATION_COLUMNS if c not in OBSERVATION_BOOKKEEPING]
    out.print(
        make_table(
            f"Observations ({frame.height}{'+' if frame.height == limit else ''})",
            frame.to_dicts(),
            cols,
        )
    )
