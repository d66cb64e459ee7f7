"""What every command shares: the consoles, the options spelled once, turning the pipeline's
own errors into messages and exit codes (here and nowhere else), and the output helpers.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.errors import DefinitionError, PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative

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


def load_context() -> tuple[Settings, Initiative]:
    """The settings from the environment, and the initiative they name."""
    settings = get_settings()
    return settings, load_initiative(settings.initiative)


def open_engine(settings: Settings) -> Engine:
    """The process's engine on the settings' database (schema brought up to date)."""
    return store.engine_for(settings.resolved_database_url)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def make_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    return table


def print_process(result: dict[str, Any]) -> None:
    aggregated, detected, delivered = result["aggregated"], result["detected"], result["delivered"]
    out.print(
        f"Indicators: {len(aggregated['slices'])} slice(s) recomputed, {aggregated['rows']} cells"
    )
    from ci_pipeline.aggregate.privacy import privacy_notes  # scipy: not for --help

    unaudited = [(str(m), str(p), int(n)) for m, p, n in aggregated.get("unaudited", [])]
    for line in privacy_notes(unaudited):
        out.print(f"[yellow]{line}[/yellow]", highlight=False)
    gate = (
        "[green]passed[/green]"
        if detected["gate_passed"]
        else f"[red]failed[/red] ({len(detected['gate_failures'])} problem(s); alerts of those measures held)"
    )
    out.print(f"Quality gate: {gate}. Data Docs: {detected['data_docs']}", soft_wrap=True)
    for measure_id, why in sorted(detected.get("gate_excused", {}).items()):
        out.print(f"  {measure_id}: excused from the presence and coverage checks ({why})")
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


def indicator_rows(frame: Any, initiative: Initiative) -> list[dict[str, Any]]:
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
