"""Flows that turn stored submissions into indicators and alerts.

``aggregate_indicators`` → ``detect_regressions`` → ``deliver_alerts``, chained by
``process_period``. Wiring only: every step calls :mod:`ci_pipeline.process` or
:mod:`ci_pipeline.alert`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ci_pipeline import alert, process, store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.initiative import Initiative, load_initiative
from flows.runtime import passthrough as quote
from flows.runtime import worth_retrying

RETRIES, RETRY_DELAY = 2, 5


def _context(initiative_dir: str | None) -> tuple[Settings, Initiative, Any]:
    settings = get_settings(**({"initiative": Path(initiative_dir)} if initiative_dir else {}))
    initiative = load_initiative(settings.initiative)
    engine = store.make_engine(settings.resolved_database_url)
    store.create_schema(engine=engine)
    return settings, initiative, engine


RETRYING: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAY,
    "retry_condition_fn": worth_retrying,
}
refresh = task(name="refresh-indicators", **RETRYING)(process.refresh_indicators)
judge = task(name="gate-and-detect", **RETRYING)(process.judge)
record = task(name="record-alerts", **RETRYING)(process.record_alerts)
send = task(name="deliver", cache_policy=NO_CACHE)(
    alert.deliver
)  # the outbox retries, not the task


@flow(name="aggregate-indicators", log_prints=True)
def aggregate_indicators(full: bool = False, initiative_dir: str | None = None) -> dict[str, Any]:
    """Recompute the indicator slices touched since the last run (``full``: all of them)."""
    _, initiative, engine = _context(initiative_dir)
    result = refresh(quote(initiative), engine=quote(engine), full=full)
    print(f"recomputed {len(result.slices)} slice(s), {result.rows} indicator cells")
    return {"slices": [list(s) for s in result.slices], "rows": result.rows}


@flow(name="detect-regressions", log_prints=True)
def detect_regressions(
    period: str | None = None, as_of: date | None = None, initiative_dir: str | None = None
) -> dict[str, Any]:
    """Gate the judged period's indicators, detect regressions and missing data, record alerts."""
    settings, initiative, engine = _context(initiative_dir)
    judgement = judge(
        quote(initiative),
        engine=quote(engine),
        settings=quote(settings),
        period=period,
        as_of=as_of,
    )
    recorded, queued = record(
        quote(judgement), quote(initiative), settings=quote(settings), engine=quote(engine)
    )
    table = process.headline(judgement.indicators, initiative, judgement.judged).to_dicts()
    create_table_artifact(
        key="indicators",
        table=table,
        description="Headline indicators of the judged periods (suppressed cells blank).",
    )
    gate_text = (
        "passed"
        if judgement.gate.success
        else f"**failed** for {', '.join(sorted(judgement.gate.failed_measures))}: their alerts are held as unverified"
    )
    create_markdown_artifact(
        key="alerts",
        markdown=(
            f"Quality gate {gate_text}. Data Docs: {judgement.gate.docs_path}\n\n"
            + (
                "\n".join(f"- {m}" for m in judgement.findings["message"].to_list())
                or "No findings."
            )
        ),
    )
    print(
        f"{judgement.findings.height} finding(s): {len(recorded.new)} new, {len(recorded.updated)} still open, {len(recorded.resolved)} resolved; {queued} deliveries queued"
    )
    return {
        "judged": judgement.judged,
        "gate_passed": judgement.gate.success,
        "gate_failures": judgement.gate.failures,
        "data_docs": judgement.gate.docs_path,
        "findings": judgement.findings.height,
        "new_alerts": recorded.new,
        "resolved_alerts": recorded.resolved,
        "queued": queued,
        "headline": table,
    }


@flow(name="deliver-alerts", log_prints=True)
def deliver_alerts(initiative_dir: str | None = None) -> list[dict[str, Any]]:
    """Send every due outbox message, grouped per channel; failures wait for their backoff."""
    _, _, engine = _context(initiative_dir)
    results = send(engine=quote(engine))
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


def _process_run_name() -> str:
    """``process 2025-Q4``, or ``process latest`` without a period (not ``process None``)."""
    return f"process {flow_run.parameters.get('period') or 'latest'}"


@flow(name="process-period", flow_run_name=_process_run_name, log_prints=True)
def process_period(
    period: str | None = None,
    as_of: date | None = None,
    full: bool = False,
    initiative_dir: str | None = None,
) -> dict[str, Any]:
    """Aggregate, gate and detect, then deliver: everything after submissions are stored."""
    aggregated = aggregate_indicators(full=full, initiative_dir=initiative_dir)
    detected = detect_regressions(period=period, as_of=as_of, initiative_dir=initiative_dir)
    delivered = deliver_alerts(initiative_dir=initiative_dir)
    return {"aggregated": aggregated, "detected": detected, "delivered": delivered}
