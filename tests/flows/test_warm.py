"""serve's warm lane end to end, under the Prefect test server with every deployment of
prefect.yaml served by a runner (as in test_orchestration): a file dropped in the inbox is
ingested, processed and its alert delivered in this process, as named, tagged runs of the
take-in flow, and none of the deployments' triggers starts the same steps again."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
from prefect.client.schemas.objects import FlowRun

from ci_pipeline import events, store
from ci_pipeline.receive import inbox
from ci_pipeline.serve import warm
from tests.flows.test_orchestration import (  # noqa: F401 (served is a fixture)
    POLL,
    Served,
    runs_of,
    served,
    wait_for,
)
from tests.helpers import artifact, children, task_names

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def test_the_warm_lane_takes_a_dropped_file_to_its_alert_and_nothing_runs_twice(
    served: Served,  # noqa: F811
) -> None:
    since = datetime.now(UTC)
    source = served.files[("employment-service", "2025-Q4")]  # Nahf's step is in it
    target = served.settings.inbox_dir / "employment-service" / "2025-Q4" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    settings = served.settings.model_copy(update={"settle_seconds": 0.3})
    engine = store.engine_for(settings.resolved_database_url)

    def step_delivered() -> bool:
        log = settings.alerts_file
        return log.exists() and "Nahf" in log.read_text(encoding="utf-8")

    lane = warm.WarmLane(warm.take_in_here(), forward=events.prefect_emitter)
    with lane, inbox.InboxWatcher(settings, served.initiative, emitter=lane.emit, engine=engine):
        target.write_bytes(source.read_bytes())
        wait_for(step_delivered, "the step alert in the backbone's alert file")

    def taken_in() -> list[FlowRun]:
        runs = [
            r
            for r in runs_named_prefix("take in #")
            if r.start_time is not None and r.start_time >= since
        ]
        return runs if runs and all(r.state and r.state.is_final() for r in runs) else []

    (take_in,) = wait_for(taken_in, "the take-in run")
    assert take_in.state is not None and take_in.state.is_completed(), take_in.state
    assert take_in.deployment_id is None  # run here, not by a worker
    (submission_id,) = take_in.parameters["submission_ids"]
    row = store.get_submission(submission_id, engine=engine)
    assert row is not None and row.status == "accepted" and row.file_name == source.name

    # Its steps are the queued path's runs, by the same names, tagged like deployed runs.
    steps = children(take_in.id)
    assert set(steps) == {"ingest-submission", "process-period"}
    ingest = steps["ingest-submission"]
    assert ingest.name == f"ingest employment-service 2025-Q4 #{submission_id}"
    assert {"partner:employment-service", "period:2025-Q4", "measure:arab-women-lfp"} <= set(
        ingest.tags
    )
    process = steps["process-period"]
    assert process.name == "process 2025-Q4"
    assert {"period:2025-Q4", "measure:arab-women-lfp"} <= set(process.tags)
    # Its steps are the process run's own task runs (inline_steps), not child runs.
    assert children(process.id) == {}
    steps_run = task_names(process.id)
    for step in ("refresh-indicators", "gate-and-detect", "record-alerts", "deliver"):
        assert step in steps_run, steps_run
    # It judged what the file changed: the Employment Service's measures, not all of them.
    headline = json.loads(str(artifact("indicators", process.id).data))
    judged = {r["measure_id"] for r in headline}
    assert {r["period"] for r in headline} == {"2025-Q4"}
    assert "arab-women-lfp" in judged
    assert judged < set(served.initiative.measures)

    # Nothing twice: the triggers select ci.lane=queued, and every event above said warm. Waited
    # past the trailing triggers' 10 s quiet window, with the runner polling every POLL s.
    time.sleep(10 + 8 * POLL)
    for deployment in ("on-received", "indicators", "on-alert"):
        assert runs_of(deployment, since) == [], deployment


def runs_named_prefix(prefix: str) -> list[FlowRun]:
    """Flow runs whose name contains ``prefix`` (the run names carry ids)."""
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=prefix)), limit=50
        )


def test_serve_names_the_runs_triggers_and_schedules_queue(served: Served) -> None:  # noqa: F811
    """Prefect 3.8 creates a trigger's or a schedule's run with a random name; serve's namer
    gives a queued run the name it will give itself when it starts."""
    import asyncio
    from datetime import timedelta

    from prefect.states import Scheduled, State

    from ci_pipeline.serve.deployments import runner_deployments
    from ci_pipeline.serve.names import name_queued

    later: State[Any] = Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1))  # not run
    queued: list[tuple[str, dict[str, Any], str]] = [
        ("ingest-submission/on-received", {"submission_id": 424242}, "ingest #424242"),
        (
            "process-period/indicators",
            {"period": "2025-Q3", "deliver": False, "only_if_new": True, "changed_only": True},
            "process 2025-Q3",
        ),
    ]
    engine = store.engine_for(served.settings.resolved_database_url)
    with get_client(sync_client=True) as client:
        made = [
            client.create_flow_run_from_deployment(
                client.read_deployment_by_name(name).id, parameters=parameters, state=later
            )
            for name, parameters, _ in queued
        ]
        try:
            assert all(run.name not in {want for *_, want in queued} for run in made)

            named: set[Any] = set()  # what serve's namer keeps between sweeps

            async def sweep() -> int:
                from prefect.client.orchestration import get_client as async_client

                async with async_client() as aclient:
                    return await name_queued(
                        [d.full_name for d in runner_deployments()],
                        client=aclient,
                        engine=engine,
                        named=named,
                    )

            assert asyncio.run(sweep()) >= 2
            names = [client.read_flow_run(run.id).name for run in made]
            assert names == [want for *_, want in queued]
            assert {run.id for run in made} <= named  # not looked up again
            asyncio.run(sweep())  # a later sweep leaves them as they are
            assert [client.read_flow_run(run.id).name for run in made] == names
        finally:
            for run in made:
                client.delete_flow_run(run.id)
