"""Commands on the initiative's definitions: ``init``, ``partners``, ``measures`` and
``template``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ci_pipeline.cli.app import app
from ci_pipeline.cli.common import (
    JsonOpt,
    UsageProblem,
    check_filters,
    err,
    handle_errors,
    load_context,
    make_table,
    open_engine,
    out,
    print_json,
)
from ci_pipeline.config import get_settings
from ci_pipeline.errors import DefinitionError
from ci_pipeline.model.load import load_initiative, measure_json_schema

measures_app = typer.Typer(
    help="List the shared measures, check a measures folder, print the JSON Schema."
)


@app.command()
@handle_errors
def init(json_out: JsonOpt = False) -> None:
    """Create the database and load the initiative's definitions into it (safe to run again)."""
    from ci_pipeline.receive.intake import prepare_database

    settings, initiative = load_context()
    changes = prepare_database(initiative, engine=open_engine(settings))
    if json_out:
        print_json(
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
    _, initiative = load_context()
    rows = [
        {
            "id": p.id,
            "name": p.name,
            "sector": p.sector,
            "localities": p.localities,
            "measures": p.measures,
            "submits_every": p.submits_every,
            "encoding": p.encoding,
            "locale": initiative.partner_locale(p.id),
            "contact": p.contact.email,
        }
        for p in initiative.partners.values()
    ]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        r["localities"] = ", ".join(r["localities"])
        r["measures"] = f"{len(r['measures'])} measures"
    out.print(
        make_table(
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
                "locale",
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
    _, initiative = load_context()
    if json_out:
        print_json([m.model_dump(mode="json") for m in initiative.measures.values()])
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
        make_table(
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
            print_json({"ok": False, "problems": exc.problems})
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
        print_json(summary)
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

    _, initiative = load_context()
    wanted = check_filters(initiative, partner=partner, period=period)
    fmt = (fmt or output.suffix.lstrip(".") or "csv").lower()
    if fmt not in ("csv", "xlsx"):
        raise UsageProblem(f"--format must be csv or xlsx, not {fmt!r}")
    frame = template_frame(initiative, partner, parse_period(str(wanted.period)))
    path = write_table(frame, output.with_suffix(f".{fmt}"))
    out.print(f"Wrote {frame.height} rows to {path}")
