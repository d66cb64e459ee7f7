"""serve's warm lane end to end, under the Prefect test server with every deployment of
prefect.yaml served by a runner (as in test_orchestration): a file dropped in the inbox is
ingested, processed and its alert delivered in this process, as named, tagged runs of the
take-in flow, and none of the deployments' triggers starts the same steps again."""

from __future__ import annotations

import time
from datetime import UTC, datetime

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
from tests.helpers import children

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
    # It judged what the file changed: the Employment Service's measures, not all of them.
    judged = children(process.id)
    assert set(judged) == {"aggregate-indicators", "detect-regressions", "deliver-alerts"}
    detected = judged["detect-regressions"].parameters
    assert detected["period"] == "2025-Q4"
    assert "arab-women-lfp" in detected["measures"]
    assert set(detected["measures"]) < set(served.initiative.measures)

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
