"""The event-driven chain under a Prefect test server, with the deployments of prefect.yaml
served by a real runner (each run in its own subprocess, as `ci-pipeline serve` runs them).

A file dropped in the inbox is announced (``ci.submission.received``), ingested by the
``on-received`` deployment with parameters taken from the event, aggregated and judged by
``indicators`` (started by ``ci.submission.accepted``), and its regression alert delivered by
``on-alert`` (started by ``ci.indicator.regressed``). A burst of accepted events for one period
starts a bounded number of aggregation runs and leaves the indicators exactly as a full rebuild.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
)
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.runner import RunnerDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from sqlalchemy import Engine

from ci_pipeline import aggregate, alert, demo, events, store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import inbox, intake
from ci_pipeline.serve.deployments import runner_deployments
from ci_pipeline.serve.runner import running
from tests.helpers import ingest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

DEADLINE = 240.0  # seconds; each run is a subprocess that imports the pipeline
POLL = 0.5  # seconds: how often the runner asks for runs to start
GRACE = 4 * POLL  # seconds with nothing new once a burst's runs are all final


@dataclass
class Served:
    settings: Settings
    initiative: Initiative
    engine: Engine
    files: dict[tuple[str, str], Path]


@pytest.fixture(scope="module")
def served(
    prefect_harness: None,
    initiative: Initiative,
    demo_files: list[demo.DemoFile],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """The Employment Service's history up to 2025-Q3 stored, and every deployment served by a runner."""
    home = tmp_path_factory.mktemp("served")
    with pytest.MonkeyPatch.context() as mp:
        # The runs are subprocesses: they read the same environment.
        mp.setenv("CI_PIPELINE_HOME", str(home))
        for name in (
            "CI_PIPELINE_DATABASE_URL",
            "CI_PIPELINE_ALERT_URLS",
            "CI_PIPELINE_ENGINEER_URLS",
            "CI_PIPELINE_ALERT_ROUTES",
        ):
            mp.delenv(name, raising=False)
        settings = get_settings()
        engine = store.make_engine(settings.resolved_database_url)
        intake.prepare_database(initiative, engine=engine)
        files = {(f.partner_id, f.period): f.path for f in demo_files if not f.note}
        for (partner, period), path in sorted(files.items()):
            if partner == "employment-service" and period < "2025-Q4":
                ingest(
                    path, partner, period, initiative=initiative, settings=settings, engine=engine
                )
        aggregate.refresh_indicators(initiative, engine=engine)
        deployments = runner_deployments()
        try:
            with running(deployments, poll_seconds=POLL):
                yield Served(settings, initiative, engine, files)
        finally:
            unregister(deployments)
            engine.dispose()


def unregister(deployments: list[RunnerDeployment]) -> None:
    """Remove the served deployments, their triggers and scheduled runs from the shared test
    server: nothing of this module fires or waits there once its runner has stopped."""
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            try:
                found = client.read_deployment_by_name(deployment.full_name)
            except ObjectNotFound:  # never registered: the runner failed to start
                continue
            client.delete_resource_owned_automations(f"prefect.deployment.{found.id}")
            client.delete_deployment(found.id)


def runs_of(deployment: str, since: datetime) -> list[FlowRun]:
    """Flow runs of one deployment (by name) created for a start since ``since``, started or
    not (a run waiting for its concurrency slot counts); the runs its schedules create ahead of
    time are left out."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=since)
            ),
            limit=50,
        )
    return [r for r in runs if not r.auto_scheduled]


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something truthy (no timing assertions)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@functools.cache
def trailing_window(automation_id: UUID) -> timedelta | None:
    """The quiet window of an automation's trigger if it is the proactive (trailing) one of a
    coalescing pair, else None."""
    with get_client(sync_client=True) as client:
        automation = client.read_automation(automation_id)
    trigger = automation.trigger if automation else None
    if isinstance(trigger, EventTrigger) and trigger.posture == Posture.Proactive:
        return trigger.within
    return None


def trailing(run: FlowRun) -> timedelta | None:
    """The quiet window of the trailing trigger that created ``run`` (an automation's run
    carries ``automation <id>, action …`` as its idempotency key), or None."""
    found = re.match(r"automation ([0-9a-f-]{36}),", run.idempotency_key or "")
    return trailing_window(UUID(found[1])) if found else None


def settled(
    deployment: str,
    since: datetime,
    *,
    period: str | None = None,
    last_event: datetime | None = None,
) -> list[FlowRun]:
    """The runs of a deployment (of one period) once its burst is over: the trailing trigger
    has fired (at the end of its quiet window after ``last_event``, the burst's last event,
    when given) and every run is final.

    The trailing trigger fires once per burst, after every event of it; the runs it and the
    leading trigger created are then all there is, so no fixed quiet time is waited. A short
    grace (a few runner polls) with nothing new guards the answer.
    """

    def done() -> list[FlowRun] | None:
        runs = [
            r
            for r in runs_of(deployment, since)
            if period is None or r.parameters.get("period") == period
        ]
        closing = [
            r
            for r in runs
            if (window := trailing(r)) is not None
            and (last_event is None or (r.created is not None and r.created >= last_event + window))
        ]
        final = all(r.state is not None and r.state.is_final() for r in runs)
        return runs if closing and final else None

    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        runs = wait_for(done, f"the {deployment} runs to settle")
        time.sleep(GRACE)
        again = done()
        if again is not None and [r.id for r in again] == [r.id for r in runs]:
            return again
    raise AssertionError(f"{deployment} runs did not settle")


def test_a_file_landing_drives_ingest_aggregation_and_a_delivered_alert(served: Served) -> None:
    since = datetime.now(UTC)
    # Arab women's labour-force participation in Nahf drops in this file.
    source = served.files[("employment-service", "2025-Q4")]
    target = served.settings.inbox_dir / "employment-service" / "2025-Q4" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    settings = served.settings.model_copy(update={"settle_seconds": 0.3})
    engine = store.engine_for(settings.resolved_database_url)
    with inbox.InboxWatcher(
        settings, served.initiative, emitter=events.prefect_emitter, engine=engine
    ):
        target.write_bytes(source.read_bytes())

        ingested = wait_for(
            lambda: [r for r in runs_of("on-received", since) if r.state and r.state.is_final()],
            "the ingest run",
        )
    run = ingested[0]
    assert run.state is not None and run.state.is_completed(), run.state
    assert run.name.startswith("ingest employment-service 2025-Q4 #")
    # The event's one parameter, a number: the stored submission, its bytes in the database.
    submission_id = run.parameters["submission_id"]
    assert isinstance(submission_id, int)
    row = store.get_submission(submission_id, engine=engine)
    assert row is not None
    assert (row.partner_id, row.period, row.file_name, row.status) == (
        "employment-service",
        "2025-Q4",
        source.name,
        "accepted",
    )
    assert store.received_content(row.content_hash, engine=engine) == source.read_bytes()
    assert {"partner:employment-service", "period:2025-Q4", "measure:arab-women-lfp"} <= set(
        run.tags
    )
    assert not target.exists()  # moved out of the inbox

    processed = settled("indicators", since)
    assert processed and all(r.state and r.state.is_completed() for r in processed)
    assert {r.parameters.get("period") for r in processed} == {"2025-Q4"}
    # The run that recomputed the slices carries both what it judged and what it touched.
    assert any({"period:2025-Q4", "measure:arab-women-lfp"} <= set(r.tags) for r in processed)

    def step_delivered() -> bool:
        log = served.settings.alerts_file
        return log.exists() and "Nahf" in log.read_text(encoding="utf-8")

    wait_for(step_delivered, "the step alert in the backbone's alert file")
    step = [
        a
        for a in alert.list_alerts(engine=served.engine)
        if (a.kind, a.measure_id, a.geo_code, a.period)
        == ("step", "arab-women-lfp", "nahf", "2025-Q4")
    ]
    assert step and step[0].notifications >= 1
    delivered = settled("on-alert", since)
    assert delivered and all(r.state and r.state.is_completed() for r in delivered)


def test_a_burst_of_accepted_events_for_one_period_coalesces(served: Served) -> None:
    """20 partners' worth of accepted events in two seconds: a bounded number of aggregation
    runs, and the indicators end exactly as a full rebuild leaves them."""
    period = "2025-Q3"
    stored = [
        ingest(
            path,
            partner,
            p,
            initiative=served.initiative,
            settings=served.settings,
            engine=served.engine,
        )
        for (partner, p), path in sorted(served.files.items())
        if p == period and partner != "employment-service"
    ]
    assert stored and all(r.status == "accepted" for r in stored), [r.message for r in stored]
    assert store.stale_slices(served.initiative.info.id, engine=served.engine)

    since = datetime.now(UTC)
    receipts = [r.to_dict() for r in stored]
    burst = [events.submission_outcome(receipts[i % len(receipts)]) for i in range(20)]
    for spec in burst:  # 20 partners' verdicts within 2 s: well inside one 10 s quiet window
        last_event = datetime.now(UTC)  # no later than the event's own time
        assert events.emit(spec, emitter=events.prefect_emitter) == 1
        time.sleep(0.1)

    for_period = settled("indicators", since, period=period, last_event=last_event)
    assert 1 <= len(for_period) <= 3, [r.name for r in for_period]
    assert all(r.state and r.state.is_completed() for r in for_period)

    assert store.stale_slices(served.initiative.info.id, engine=served.engine) == []
    incremental = store.read_indicators(served.initiative.info.id, engine=served.engine)
    aggregate.refresh_indicators(served.initiative, engine=served.engine, full=True)
    rebuilt = store.read_indicators(served.initiative.info.id, engine=served.engine)
    key = ["measure_id", "geo_code", "disaggregation", "period"]
    assert incremental.sort(key).equals(rebuilt.sort(key)), pl.concat(
        [incremental, rebuilt]
    ).filter(pl.struct(pl.all()).is_unique())
