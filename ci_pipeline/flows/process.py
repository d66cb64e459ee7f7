"""Flows that turn stored submissions into indicators and alerts.

``aggregate_indicators`` → ``detect_regressions`` → ``deliver_alerts``, chained by
``process_period``. Wiring only: every step calls :mod:`ci_pipeline.aggregate` (refresh,
headline), :mod:`ci_pipeline.detect` (judge) or :mod:`ci_pipeline.alert` (record, deliver).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ci_pipeline import aggregate, alert, detect, events, links
from ci_pipeline.aggregate.privacy import privacy_notes
from ci_pipeline.clock import utcnow
from ci_pipeline.flows import names
from ci_pipeline.flows.runtime import RETRYING, context, tag_run
from ci_pipeline.flows.runtime import passthrough as quote
from ci_pipeline.report.build import build_report

refresh = task(name="refresh-indicators", **RETRYING)(aggregate.refresh_indicators)
judge = task(name="gate-and-detect", **RETRYING)(detect.judge)
record = task(name="record-alerts", **RETRYING)(alert.record_alerts)
send = task(name="deliver", cache_policy=NO_CACHE)(
    alert.deliver
)  # the outbox retries, not the task


def _detect_run_name() -> str:
    return names.run_name("detect-regressions", flow_run.parameters, today=date.today()) or ""


def _process_run_name() -> str:
    """``process 2025-Q4``; without a period ``process changes`` (a run that judges what
    changed) or ``process latest`` (not ``process None``)."""
    return names.run_name("process-period", flow_run.parameters, today=date.today()) or ""


@task(name="report-card", cache_policy=NO_CACHE)
def report_card(initiative_dir: str | None = None) -> str:
    """Rebuild the backbone team's report card from what is stored now (the whole site, in
    its three languages, swapped in at once: re-running it changes nothing); the file a reader
    opens."""
    settings, initiative, engine = context(initiative_dir)
    built = build_report(initiative, settings.report_card_dir, engine=engine, today=utcnow().date())
    return str(built.index)


@flow(name="aggregate-indicators", flow_run_name="aggregate indicators", log_prints=True)
def aggregate_indicators(full: bool = False, initiative_dir: str | None = None) -> dict[str, Any]:
    """Recompute the indicator slices touched since the last run (``full``: all of them)."""
    _, initiative, engine = context(initiative_dir)
    result = refresh(quote(initiative), engine=quote(engine), full=full)
    if result.slices:
        create_table_artifact(
            key="indicator-changes",
            table=[{"measure_id": m, "period": p} for m, p in result.slices],
            description=f"Indicator slices recomputed ({result.rows} cells written).",
        )
    events.emit(
        events.indicators_updated(result.slices, result.rows), emitter=events.prefect_emitter
    )
    print(f"recomputed {len(result.slices)} slice(s), {result.rows} indicator cells")
    for line in privacy_notes(result.unaudited):
        get_run_logger().warning(line)
    return {
        "slices": [list(s) for s in result.slices],
        "rows": result.rows,
        "unaudited": [list(t) for t in result.unaudited],
    }


@flow(name="detect-regressions", flow_run_name=_detect_run_name, log_prints=True)
def detect_regressions(
    period: str | None = None,
    as_of: date | None = None,
    initiative_dir: str | None = None,
    lane: str = events.QUEUED,
    measures: list[str] | None = None,
) -> dict[str, Any]:
    """Gate the judged period's indicators, detect regressions and missing data, record alerts.

    ``lane`` labels the new alerts' events: ``queued`` when the on-alert deployment delivers
    them, ``warm`` when the caller goes on to deliver them itself. ``measures``: judge only
    these (the ones whose indicators changed); all of them when not given."""
    settings, initiative, engine = context(initiative_dir)
    judgement = judge(
        quote(initiative),
        engine=quote(engine),
        settings=quote(settings),
        period=period,
        as_of=as_of,
        measures=measures,
    )
    recorded, queued = record(
        quote(judgement), quote(initiative), settings=quote(settings), engine=quote(engine)
    )
    table = aggregate.headline(judgement.indicators, initiative, judgement.judged).to_dicts()
    create_table_artifact(
        key="indicators",
        table=detect.readable_headline(table, initiative),
        description="Headline indicators of the judged periods (suppressed cells —).",
    )
    gate_text = (
        "passed"
        if judgement.gate.success
        else f"**failed** for {', '.join(sorted(judgement.gate.failed_measures))}: their alerts are held as unverified"
    )
    docs = links.gx_url(settings, judgement.gate.docs_path)
    excused = "; ".join(f"{m} ({why})" for m, why in sorted(judgement.gate.excused.items()))
    if excused:  # GX did not check them, so its Data Docs agree with the verdict above
        excused = f"Excused from the presence and coverage checks: {excused}.\n\n"
    create_markdown_artifact(
        key="alerts",
        markdown=(
            f"Quality gate {gate_text}. Data Docs: {f'[open]({docs})' if docs else 'none built'}\n\n{excused}"
            + (
                "\n".join(f"- {m}" for m in judgement.findings["message"].to_list())
                or "No findings."
            )
        ),
    )
    events.emit(
        [
            *(
                events.alert_event(a, lane=lane)
                for a in alert.read_alerts(recorded.new, engine=engine)
            ),
            *(
                events.alert_event(a, resolved=True)
                for a in alert.read_alerts(recorded.resolved, engine=engine)
            ),
        ],
        emitter=events.prefect_emitter,
    )
    print(
        f"{judgement.findings.height} finding(s): {len(recorded.new)} new, {len(recorded.updated)} still open, {len(recorded.resolved)} resolved; {queued} deliveries queued"
    )
    return {
        "judged": judgement.judged,
        "gate_passed": judgement.gate.success,
        "gate_failures": judgement.gate.failures,
        "gate_excused": judgement.gate.excused,
        "data_docs": judgement.gate.docs_path,
        "findings": judgement.findings.height,
        "new_alerts": recorded.new,
        "resolved_alerts": recorded.resolved,
        "queued": queued,
        "headline": table,
    }


@flow(name="deliver-alerts", flow_run_name="deliver alerts", log_prints=True)
def deliver_alerts(initiative_dir: str | None = None) -> list[dict[str, Any]]:
    """Send every due outbox message, grouped per channel; failures wait for their backoff."""
    settings, initiative, engine = context(initiative_dir)
    results = send(
        engine=quote(engine),
        ack_link=alert.link_maker(settings),
        headlines=alert.headlines_for(settings.alert_languages, quote(initiative)),
    )
    events.emit(
        [
            events.delivered(alert.redact_channel(d.channel), d.alert_ids, ok=d.ok, error=d.error)
            for d in results
        ],
        emitter=events.prefect_emitter,
    )
    for d in results:
        print(
            f"{alert.redact_channel(d.channel)}: {d.alerts} alert(s) {'sent' if d.ok else 'FAILED: ' + str(d.error)}"
        )
    return [
        {
            "channel": alert.redact_channel(d.channel),
            "alerts": d.alerts,
            "ok": d.ok,
            "error": d.error,
        }
        for d in results
    ]


@flow(name="process-period", flow_run_name=_process_run_name, log_prints=True)
def process_period(
    period: str | None = None,
    as_of: date | None = None,
    full: bool = False,
    initiative_dir: str | None = None,
    deliver: bool = True,
    only_if_new: bool = False,
    report: bool = True,
    changed_only: bool = False,
    inline_steps: bool = False,
) -> dict[str, Any]:
    """Aggregate, gate and detect, then deliver: everything after submissions are stored.

    ``deliver=False`` leaves delivery to the ``deliver-alerts`` deployment, which the new
    alerts' events start (they are labelled ``queued``; with ``deliver`` they are ``warm``:
    this run delivers them). ``only_if_new`` stops after aggregation when no slice was stale:
    the run an event burst queues behind another finds its work already done. ``report=False``
    leaves the report card for a later run (a caller processing several periods in a row
    rebuilds it once, after the last).

    ``changed_only`` (the runs new files start) stops when nothing was stale, like
    ``only_if_new``, and otherwise judges exactly what changed: each period whose slices this
    run recomputed, on the measures recomputed there, not every measure of ``period``. A
    burst that touched two periods is judged for both by the run that recomputed them (the
    next run finds nothing new); ``detected`` is then a list, one judgement per period.

    ``inline_steps`` (``serve``'s warm lane) runs the aggregate, detect and deliver steps in
    this run instead of as child flow runs: their tasks (``refresh-indicators``,
    ``gate-and-detect``, ``record-alerts``, ``deliver``), artifacts and events are this run's.
    Each child run costs Prefect's bookkeeping; the three cost a dropped file 0.3 s of its
    1.3 s wait for its alert (``benchmarks/latency.py``: 1.02 s instead of 1.30 s).
    """
    steps: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]] = (
        (aggregate_indicators.fn, detect_regressions.fn, deliver_alerts.fn)
        if inline_steps
        else (aggregate_indicators, detect_regressions, deliver_alerts)
    )
    aggregate_step, detect_step, deliver_step = steps
    aggregated = aggregate_step(full=full, initiative_dir=initiative_dir)
    # One call: tag_run merges with the tags the run was created with, so a second call would
    # drop the first one's.
    tag_run(
        *([f"period:{period}"] if period else []),
        *sorted({f"measure:{m}" for m, _ in aggregated["slices"]}),
    )
    if (only_if_new or changed_only) and not aggregated["slices"]:
        print("nothing new since the last run: indicators and alerts are current")
        return {"aggregated": aggregated, "detected": None, "delivered": None}
    lane = events.WARM if deliver else events.QUEUED
    detected: dict[str, Any] | list[dict[str, Any]]
    if changed_only:
        detected = [
            detect_step(
                period=p,
                as_of=as_of,
                initiative_dir=initiative_dir,
                lane=lane,
                measures=measures,
            )
            for p, measures in aggregate.refreshed_by_period(aggregated["slices"]).items()
        ]
    else:
        detected = detect_step(period=period, as_of=as_of, initiative_dir=initiative_dir, lane=lane)
    delivered = deliver_step(initiative_dir=initiative_dir) if deliver else None
    card = report_card(initiative_dir=initiative_dir) if report else None
    return {"aggregated": aggregated, "detected": detected, "delivered": delivered, "report": card}
