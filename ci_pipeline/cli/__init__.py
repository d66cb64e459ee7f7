"""The ``ci-pipeline`` command line (typer + rich).

Core errors (:mod:`ci_pipeline.errors`) become messages and exit codes here and nowhere else.
Every listing has ``--json`` for scripts. Prefect is imported only by the commands that run
flows, so ``--help`` and the listings stay fast.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from ci_pipeline import store
from ci_pipeline.cli.tokens import tokens_app
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.errors import DefinitionError, PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative, measure_json_schema

app = typer.Typer(
    help="Shared measurement for a Collective Impact initiative: validate partner files, "
    "store them, roll them up into indicators, and alert the backbone team when one regresses.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
measures_app = typer.Typer(
    help="List the shared measures, check a measures folder, print the JSON Schema."
)
app.add_typer(measures_app, name="measures")
app.add_typer(tokens_app, name="tokens")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
# Filters shared by the listings, declared once so every command spells them the same way.
MeasureFilter = Annotated[str | None, typer.Option("--measure", "-m", help="Only this measure.")]
GeoFilter = Annotated[str | None, typer.Option("--geo", "-g", help="Only this geography code.")]
PartnerFilter = Annotated[str | None, typer.Option("--partner", "-p", help="Only this partner.")]
PeriodFilter = Annotated[
    str | None,
    typer.Option("--period", help="Only this period (canonical: 2025-09, 2025-Q3, 2025)."),
]
EXIT_REJECTED = 2


def handle_errors(fn: F) -> F:
    """Turn the pipeline's own errors into a red message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DefinitionError as exc:
            err.print(
                f"[red]The initiative's definitions have {len(exc.problems)} problem(s):[/red]"
            )
            for problem in exc.problems:
                err.print(f"  • {problem}", markup=False)
            raise typer.Exit(1) from None
        except PipelineError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


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


def _context() -> tuple[Settings, Initiative]:
    settings = get_settings()
    return settings, load_initiative(settings.initiative)


def _engine(settings: Settings) -> Any:
    return store.engine_for(settings.resolved_database_url)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    return table


@app.command()
@handle_errors
def init(json_out: JsonOpt = False) -> None:
    """Create the database and load the initiative's definitions into it (safe to run again)."""
    from ci_pipeline.receive.intake import prepare_database

    settings, initiative = _context()
    changes = prepare_database(initiative, engine=_engine(settings))
    if json_out:
        _print_json(
            {
                "database": settings.resolved_database_url,
                "initiative": initiative.info.id,
                "changes": changes,
            }
        )
        return
    out.print(f"Database: {settings.resolved_database_url}")
    out.print(
        f"Initiative: {initiative.info.name.en} ({initiative.info.id}, {len(initiative.measures)} measures, {len(initiative.partners)} partners)"
    )
    for change in changes or ["nothing changed"]:
        out.print(f"  • {change}")


@app.command()
@handle_errors
def partners(json_out: JsonOpt = False) -> None:
    """List the partners: sector, localities, what they report and how often."""
    _, initiative = _context()
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "sector": p.sector,
            "localities": p.localities,
            "measures": p.measures,
            "submits_every": p.submits_every,
            "encoding": p.encoding,
            "contact": p.contact.email,
        }
        for p in initiative.partners.values()
    ]
    if json_out:
        _print_json(rows)
        return
    for r in rows:
        r["localities"] = ", ".join(r["localities"])
        r["measures"] = f"{len(r['measures'])} measures"
    out.print(
        _table(
            "Partners",
            rows,
            [
                "id",
                "name",
                "sector",
                "localities",
                "measures",
                "submits_every",
                "encoding",
                "contact",
            ],
        )
    )


@measures_app.callback(invoke_without_command=True)
@handle_errors
def measures_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the shared measures (without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    _, initiative = _context()
    if json_out:
        _print_json([m.model_dump(mode="json") for m in initiative.measures.values()])
        return
    rows = [
        {
            "id": m.id,
            "v": m.version,
            "title": m.title,
            "unit": f"{m.unit} ({m.unit_label})",
            "every": m.periodicity,
            "direction": m.direction.replace("_is_better", ""),
            "breakdowns": ", ".join(m.dimensions) or "-",
        }
        for m in initiative.measures.values()
    ]
    out.print(
        _table(
            "Shared measures",
            rows,
            ["id", "v", "title", "unit", "every", "direction", "breakdowns"],
        )
    )


@measures_app.command("check")
def measures_check(
    folder: Annotated[
        Path | None,
        typer.Argument(help="Initiative folder to check (default: the configured one)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check an initiative folder and report every problem at once (exit 1 if any)."""
    folder = folder or get_settings().initiative
    try:
        initiative = load_initiative(folder)
    except DefinitionError as exc:
        if json_out:
            _print_json({"ok": False, "problems": exc.problems})
        else:
            err.print(f"[red]{folder}: {len(exc.problems)} problem(s)[/red]")
            for problem in exc.problems:
                err.print(f"  • {problem}", markup=False)
        raise typer.Exit(1) from None
    summary = {
        "ok": True,
        "initiative": initiative.info.id,
        "measures": len(initiative.measures),
        "partners": len(initiative.partners),
        "geographies": len(initiative.geographies),
    }
    if json_out:
        _print_json(summary)
    else:
        out.print(
            f"[green]{folder}: OK[/green] — {summary['measures']} measures, {summary['partners']} partners, {summary['geographies']} geographies"
        )


@measures_app.command("schema")
def measures_schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file instead of printing.")
    ] = None,
) -> None:
    """Print the JSON Schema of a measure file (for editors and CI of measure definitions)."""
    text = measure_json_schema()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@app.command()
@handle_errors
def template(
    partner: Annotated[str, typer.Option("--partner", "-p", help="Partner id.")],
    period: Annotated[
        str, typer.Option("--period", help="Submission period: 2025-09, 2025-Q3 or 2025.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv or xlsx (default: from the file name).")
    ] = "",
) -> None:
    """Write the rows a partner is expected to fill for a period: a data-entry form as a file."""
    from ci_pipeline.model.periods import parse_period
    from ci_pipeline.validate.template import template_frame, write_table

    _, initiative = _context()
    fmt = (fmt or output.suffix.lstrip(".") or "csv").lower()
    if fmt not in ("csv", "xlsx"):
        raise PipelineError(f"--format must be csv or xlsx, not {fmt!r}")
    frame = template_frame(initiative, partner, parse_period(period))
    path = write_table(frame, output.with_suffix(f".{fmt}"))
    out.print(f"Wrote {frame.height} rows to {path}")


def _print_receipt(receipt: Any) -> None:
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
            _table(
                f"First {len(receipt.first_issues)} of {receipt.issues} problem(s)",
                receipt.first_issues,
                ["row", "column", "value", "rule", "message"],
            )
        )
    if receipt.report_path:
        # soft_wrap: a path is printed whole on one line, to be copied, whatever the width.
        out.print(f"Report: {receipt.report_path}", highlight=False, soft_wrap=True)


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
    json_out: JsonOpt = False,
) -> None:
    """Validate and store one partner file (runs the ingest flow). Exit 0 accepted or duplicate, 2 rejected."""

    from ci_pipeline.flows.ingest import ingest_submission
    from ci_pipeline.flows.runtime import in_process
    from ci_pipeline.model.periods import parse_period
    from ci_pipeline.receive.intake import Receipt

    _, initiative = _context()
    initiative.partner(partner)  # the caller's mistakes are told before a flow starts
    parse_period(period)
    with in_process():
        receipt = Receipt(**ingest_submission(str(file.resolve()), partner, period, encoding))
    if json_out:
        _print_json(receipt.to_dict())
    else:
        _print_receipt(receipt)
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
    rows = [
        store.submission_dict(s)
        for s in store.list_submissions(
            engine=_engine(settings), partner_id=partner, period=period, limit=limit
        )
    ]
    if json_out:
        _print_json(rows)
    else:
        out.print(_table(f"Submissions ({len(rows)})", rows, SUBMISSION_COLUMNS))


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
    frame = store.current_observations(
        engine=_engine(settings),
        measure_id=measure,
        geo_code=geo,
        period=period,
        partner_id=partner,
        limit=limit,
    )
    if json_out:
        _print_json(frame.to_dicts())
        return
    cols = [
        "partner_id",
        "measure_id",
        "geo_code",
        "period",
        "disaggregation",
        "numerator",
        "denominator",
        "value",
    ]
    out.print(
        _table(
            f"Observations ({frame.height}{'+' if frame.height == limit else ''})",
            frame.to_dicts(),
            cols,
        )
    )


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
    from ci_pipeline.demo import DEMO_AS_OF, generate
    from ci_pipeline.receive.intake import Receipt, prepare_database

    settings, initiative = _context()
    held_keys = {tuple(h.split(":", 1)) for h in hold or []}
    if any(len(k) != 2 for k in held_keys):
        raise PipelineError("--hold takes PARTNER:PERIOD, e.g. employment-service:2025-Q4")
    if reset:
        if settings.database_url is None:
            store.dispose_engines()  # no pooled connection may outlive the file it points at
            Path(settings.resolved_database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        else:
            store.drop_schema(engine=_engine(settings))
            store.dispose_engines()  # the next engine_for creates the schema again
        for folder in (settings.reports_dir, settings.archive_dir, settings.gx_dir):
            shutil.rmtree(folder, ignore_errors=True)
        for file in (settings.alerts_file, settings.engineers_file):
            file.unlink(missing_ok=True)
    prepare_database(initiative, engine=_engine(settings))
    generated = generate(initiative, settings.home / "demo-files")
    files = [f for f in generated if (f.partner_id, f.period) not in held_keys]
    held = [f for f in generated if (f.partner_id, f.period) in held_keys]
    if len(held) != len(held_keys):
        missing = held_keys - {(f.partner_id, f.period) for f in held}
        raise PipelineError(
            f"--hold: the demo has no file for {', '.join(':'.join(k) for k in sorted(missing))}"
        )
    from ci_pipeline.flows.ingest import ingest_submission
    from ci_pipeline.flows.process import process_period
    from ci_pipeline.flows.runtime import in_process

    receipts: list[Receipt] = []
    with out.status("Starting a local Prefect server…") as status, in_process():
        for i, f in enumerate(files, 1):
            status.update(f"Ingesting {i}/{len(files)}: {f.partner_id} {f.period} {f.path.name}")
            receipts.append(Receipt(**ingest_submission(str(f.path), f.partner_id, f.period)))
        status.update(
            f"Processing: indicators, quality gate, regressions, alerts (as of {DEMO_AS_OF})"
        )
        processed = process_period(as_of=DEMO_AS_OF)
    if json_out:
        _print_json(
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
    out.print(_table("Demo: submissions by outcome", counts, ["status", "files", "rows stored"]))
    notable = [
        r
        for r, f in zip(receipts, files, strict=True)
        if f.note and not f.note.startswith("backbone")
    ]
    for r in notable:
        _print_receipt(r)
        out.print()
    _print_demo_indicators(initiative, processed["detected"]["headline"])
    _print_process(processed)
    from ci_pipeline.alert import alert_dict, list_alerts

    open_alerts = [alert_dict(a) for a in list_alerts(engine=_engine(settings), status="open")]
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


def _print_demo_indicators(initiative: Initiative, headline: list[dict[str, Any]]) -> None:
    """The cluster's headline indicators (domain measures only), from the run's own headline."""
    roots = {g.code for g in initiative.geographies.values() if g.parent is None}
    cells = [
        r for r in headline if r["geo_code"] in roots and not r["measure_id"].startswith("fsg-")
    ]
    if not cells:
        return
    rows = _indicator_rows(
        pl.DataFrame(cells).with_columns(pl.lit("").alias("disaggregation")), initiative
    )
    out.print(
        _table("Headline indicators (cluster)", rows, ["measure_id", "period", "shown", "coverage"])
    )


# --- indicators and alerts -----------------------------------------------------------------------

alerts_app = typer.Typer(help="List alerts and acknowledge them.")
app.add_typer(alerts_app, name="alerts")


def _run_process(period: str | None, as_of: Any, full: bool) -> dict[str, Any]:
    from ci_pipeline.flows.process import process_period
    from ci_pipeline.flows.runtime import in_process

    with in_process():
        return process_period(period=period, as_of=as_of, full=full)


def _print_process(result: dict[str, Any]) -> None:
    aggregated, detected, delivered = result["aggregated"], result["detected"], result["delivered"]
    out.print(
        f"Indicators: {len(aggregated['slices'])} slice(s) recomputed, {aggregated['rows']} cells"
    )
    gate = (
        "[green]passed[/green]"
        if detected["gate_passed"]
        else f"[red]failed[/red] ({len(detected['gate_failures'])} problem(s); alerts of those measures held)"
    )
    out.print(f"Quality gate: {gate}. Data Docs: {detected['data_docs']}", soft_wrap=True)
    out.print(
        f"Alerts: {detected['findings']} finding(s), {len(detected['new_alerts'])} new, {len(detected['resolved_alerts'])} resolved"
    )
    for d in delivered:
        status = (
            "[green]sent[/green]" if d["ok"] else f"[red]failed[/red]: {d['error']} (will retry)"
        )
        out.print(f"  {d['channel']}: {d['alerts']} alert(s) {status}", soft_wrap=True)
    if not delivered:
        out.print("  nothing new to deliver")


def _parse_date(text: str | None) -> Any:
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PipelineError(f"--as-of must be a date such as 2026-03-15, not {text!r}") from None


@app.command()
@handle_errors
def process(
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="Judge the latest period inside this one (default: each measure's latest).",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The date deadlines are judged against (default: today)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild every indicator slice, not only those touched.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Aggregate indicators, run the quality gate, detect regressions and deliver alerts."""
    from ci_pipeline.model.periods import parse_period

    if period is not None:
        parse_period(period)  # told before a flow starts
    result = _run_process(period, _parse_date(as_of), full)
    if json_out:
        _print_json(result)
    else:
        _print_process(result)


def _indicator_rows(frame: Any, initiative: Initiative) -> list[dict[str, Any]]:
    from ci_pipeline.aggregate.privacy import mask
    from ci_pipeline.detect import format_value

    rows = mask(frame).to_dicts()
    for r in rows:
        m = initiative.measures.get(r["measure_id"])
        r["shown"] = (
            "suppressed" if r["suppressed"] else (format_value(m, r["value"]) if m else r["value"])
        )
        r["coverage"] = f"{r['partners_reported']}/{r['partners_expected']}"
    return rows


@app.command()
@handle_errors
def indicators(
    measure: MeasureFilter = None,
    geo: GeoFilter = None,
    period: PeriodFilter = None,
    breakdowns: Annotated[
        bool,
        typer.Option(
            "--breakdowns/--totals", help="Show breakdown cells too (default: totals only)."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 200,
    json_out: JsonOpt = False,
) -> None:
    """Population-level indicators by geography and period; small cells are suppressed."""
    from ci_pipeline.aggregate.privacy import mask

    settings, initiative = _context()
    frame = store.read_indicators(
        initiative.info.id,
        engine=_engine(settings),
        measure_id=measure,
        geo_code=geo,
        period=period,
    )
    if not breakdowns:
        totals = {m.id: m.total_key for m in initiative.measures.values()}
        frame = frame.filter(
            pl.col("disaggregation") == pl.col("measure_id").replace_strict(totals, default=None)
        )
    frame = frame.head(limit)
    if json_out:
        _print_json(mask(frame).drop("lineage").to_dicts())
        return
    out.print(
        _table(
            f"Indicators ({frame.height})",
            _indicator_rows(frame, initiative),
            ["measure_id", "geo_code", "period", "disaggregation", "shown", "coverage"],
        )
    )


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

    if ctx.invoked_subcommand is not None:
        return
    rows = [
        alert_dict(a)
        for a in list_alerts(engine=_engine(get_settings()), status=status, limit=limit)
    ]
    if json_out:
        _print_json(rows)
    else:
        out.print(_table(f"Alerts ({len(rows)})", rows, ALERT_COLUMNS))


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

    alert = acknowledge(alert_id, by, engine=_engine(get_settings()))
    if alert is None:
        raise PipelineError(f"no alert #{alert_id}")
    if json_out:
        _print_json(alert_dict(alert))
    else:
        out.print(
            f"Alert #{alert.id} is {alert.status}"
            + (f" (by {alert.acknowledged_by})" if alert.acknowledged_by else "")
        )


@app.command()
@handle_errors
def serve(
    no_api: Annotated[
        bool, typer.Option("--no-api", help="Do not start the HTTP intake API.")
    ] = False,
    no_inbox: Annotated[bool, typer.Option("--no-inbox", help="Do not watch the inbox.")] = False,
) -> None:
    """Run the pipeline on this machine until Ctrl-C: a local Prefect server (or the one in
    PREFECT_API_URL), every deployment of deployments/prefect.yaml with its triggers and
    schedules, the inbox watcher and the intake API."""
    from ci_pipeline.serve.runner import Addresses
    from ci_pipeline.serve.runner import serve as run

    settings, initiative = _context()

    def ready(addresses: Addresses) -> None:
        out.print("[bold green]ci-pipeline is serving[/bold green] (Ctrl-C stops everything)")
        out.print(f"  Prefect UI   {addresses.prefect_ui}", soft_wrap=True)
        out.print(
            f"  Intake API   {addresses.intake_api}  (docs: {addresses.intake_api}/docs)",
            soft_wrap=True,
        )
        out.print(f"  Inbox        {addresses.inbox}/<partner>/<period>/<file>", soft_wrap=True)
        out.print(f"  Alerts       {settings.alerts_file}", soft_wrap=True)

    out.print("Starting: the Prefect server takes 10–20 s on first start …")
    run(settings, initiative, on_ready=ready, with_api=not no_api, with_inbox=not no_inbox)
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
    snap = snapshot(settings, engine=_engine(settings), limit=limit)
    if json_out:
        _print_json(asdict(snap))
        return
    out.print(_table("Recent submissions", snap.submissions, STATUS_SUBMISSION_COLUMNS))
    if snap.runs_note:
        out.print(f"[yellow]Runs:[/yellow] {snap.runs_note}", soft_wrap=True)
    else:
        out.print(_table(f"Recent runs ({snap.prefect_api})", snap.runs, RUN_COLUMNS))
    out.print(
        _table(f"Open alerts ({len(snap.open_alerts)})", snap.open_alerts, STATUS_ALERT_COLUMNS)
    )


STATUS_SUBMISSION_COLUMNS = ["id", "partner_id", "period", "status", "received_at", "message"]
RUN_COLUMNS = ["name", "state", "expected_start", "seconds", "message"]
STATUS_ALERT_COLUMNS = ["id", "kind", "measure_id", "geo_code", "period", "message"]
