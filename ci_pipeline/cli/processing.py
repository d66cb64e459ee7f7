"""Commands on indicators: ``process`` a period, list ``indicators``, build the ``report``
card."""

from __future__ import annotations

from typing import Annotated, Any

import polars as pl
import typer

from ci_pipeline import store
from ci_pipeline.cli.app import app
from ci_pipeline.cli.common import (
    GeoFilter,
    JsonOpt,
    MeasureFilter,
    PeriodFilter,
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
from ci_pipeline.config import get_settings


def run_process(period: str | None, as_of: Any, full: bool) -> dict[str, Any]:
    from ci_pipeline.flows.process import process_period
    from ci_pipeline.flows.runtime import in_process

    warm_prefect(get_settings())
    with in_process():
        return process_period(period=period, as_of=as_of, full=full)


def parse_date(text: str | None) -> Any:
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageProblem(f"--as-of must be a date such as 2026-03-15, not {text!r}") from None


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
    period = check_filters(period=period).period  # told before a flow starts
    result = run_process(period, parse_date(as_of), full)
    if json_out:
        print_json(result)
    else:
        print_process(result)


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

    settings, initiative = load_context()
    wanted = check_filters(initiative, measure=measure, geo=geo, period=period)
    frame = store.read_indicators(
        initiative.info.id,
        engine=open_engine(settings),
        measure_id=wanted.measure,
        geo_code=wanted.geo,
        period=wanted.period,
    )
    if not breakdowns:
        totals = {m.id: m.total_key for m in initiative.measures.values()}
        frame = frame.filter(
            pl.col("disaggregation") == pl.col("measure_id").replace_strict(totals, default=None)
        )
    frame = frame.head(limit)
    if json_out:
        print_json(mask(frame).drop("lineage").to_dicts())
        return
    out.print(
        make_table(
            f"Indicators ({frame.height})",
            indicator_rows(frame, initiative),
            ["measure_id", "geo_code", "period", "disaggregation", "shown", "coverage"],
        )
    )


@app.command()
@handle_errors
def report() -> None:
    """Rebuild the backbone team's report card (English, Hebrew, Arabic) from what is stored:
    ``process`` does this after every run; this is for a data folder processed elsewhere."""
    from ci_pipeline.clock import utcnow
    from ci_pipeline.report.build import build_report

    settings, initiative = load_context()
    built = build_report(
        initiative, settings.report_card_dir, engine=open_engine(settings), today=utcnow().date()
    )
    out.print(f"Report card: {built.pages} pages in English, Hebrew and Arabic", highlight=False)
    out.print(f"Open: file://{built.index}", soft_wrap=True, highlight=False)
