"""deployments/prefect.yaml, read as the runner and `prefect deploy` read it.

The test server runs triggers but not the scheduler, so schedules are checked here, by reading
the declarations: every entrypoint loads, every parameter is one its flow accepts, every
trigger and schedule is valid for Prefect, and the coalescing rules hold.
"""

from __future__ import annotations

import copy
import inspect
from datetime import timedelta
from typing import Any

import pytest
from prefect.flows import load_flow_from_entrypoint

from ci_pipeline import events
from ci_pipeline.serve.deployments import (
    PREFECT_FILE,
    ROOT,
    TRIGGERS,
    declarations,
    runner_deployments,
    schedule,
)

DECLARED = {d["name"]: d for d in declarations()}


def test_every_deployment_the_issue_asks_for_is_declared() -> None:
    assert set(DECLARED) == {
        "on-received",
        "indicators",
        "on-alert",
        "daily",
        "weekly",
        "quiet-intake",
    }
    assert PREFECT_FILE.parent == ROOT / "deployments"


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_entrypoints_load_and_parameters_match_the_flow(name: str) -> None:
    declaration = DECLARED[name]
    flow: Any = load_flow_from_entrypoint(str(ROOT / declaration["entrypoint"]))
    accepted = set(inspect.signature(flow.fn).parameters)
    given: set[str] = set(declaration.get("parameters", {}))
    for trigger in declaration.get("triggers", []):
        given |= set(trigger.get("parameters", {}))
    for s in declaration.get("schedules", []):
        given |= set(s.get("parameters", {}))
    assert given <= accepted, given - accepted


def test_the_runner_builds_what_the_file_declares() -> None:
    built = {d.name: d for d in runner_deployments()}
    assert set(built) == set(DECLARED)
    for name, d in built.items():
        assert len(d.triggers or []) == len(DECLARED[name].get("triggers", []))
        assert len(d.schedules or []) == len(DECLARED[name].get("schedules", []))
    assert built["indicators"].concurrency_limit == 1


def triggers(name: str) -> list[Any]:
    return [TRIGGERS.validate_python(t) for t in DECLARED[name].get("triggers", [])]


def test_ingest_runs_on_each_received_file_with_parameters_from_the_event() -> None:
    (trigger,) = triggers("on-received")
    assert trigger.expect == {events.SUBMISSION_RECEIVED}
    assert trigger.within == timedelta(0) and trigger.threshold == 1
    # The event names a stored submission, never a path: the ingest reads the bytes from the
    # database, and only those of a submission still waiting for its verdict.
    assert trigger.parameters == {"submission_id": "{{ event.payload.submission_id }}"}


def rendered(parameters: dict[str, Any], resource: dict[str, str]) -> dict[str, Any]:
    """A trigger's parameters as the Prefect server renders them for an event on ``resource``
    with :data:`PAYLOAD` (its run-deployment action: templates upgraded, then hydrated with the
    event)."""
    from prefect.server.events.actions import RunDeployment
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    upgraded = copy.deepcopy(parameters)
    RunDeployment._upgrade_v1_templates(upgraded)
    context = {"event": {"resource": resource, "payload": PAYLOAD}}
    return hydrate(
        upgraded, HydrationContext(raise_on_error=True, render_jinja=True, jinja_context=context)
    )


#: An event's resource labels as the pipeline's events carry them: always strings.
LABELS = {"ci.submission": "7", "ci.period": "2025-Q4", "ci.partner": "nahf-council"}
#: A received event, and its payload, as :func:`events.submission_received` builds them.
RECEIVED = events.submission_received(
    submission_id=7,
    partner_id="nahf-council",
    period="2025-Q4",
    file_name="x.csv",
    content_hash="ab" * 32,
    size_bytes=12,
    source="api",
)
PAYLOAD = RECEIVED.payload


@pytest.mark.parametrize("name", sorted(n for n, d in DECLARED.items() if d.get("triggers")))
def test_the_parameters_a_trigger_renders_are_valid_for_its_flow(name: str) -> None:
    # The server refuses a run whose parameters do not match the flow's schema (Prefect's
    # enforce_parameter_schema): a label is a string, so an int parameter comes from the payload.
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import validate

    declaration = DECLARED[name]
    flow: Any = load_flow_from_entrypoint(str(ROOT / declaration["entrypoint"]))
    schema = parameter_schema(flow).model_dump_for_openapi()
    for trigger in declaration["triggers"]:
        values = rendered(trigger.get("parameters", {}), LABELS)
        validate(values, schema, raise_on_error=True, ignore_required=True)


def test_the_ingest_trigger_passes_the_submission_id_as_a_number() -> None:
    (trigger,) = DECLARED["on-received"]["triggers"]
    assert rendered(trigger["parameters"], LABELS) == {"submission_id": 7}


@pytest.mark.parametrize(
    ("name", "expected", "group"),
    [
        ("indicators", {events.SUBMISSION_ACCEPTED}, {"ci.period"}),
        ("on-alert", set(events.ALERT_OPENED), {"ci.initiative"}),
    ],
)
def test_bursts_are_coalesced_by_a_leading_and_a_trailing_trigger(
    name: str, expected: set[str], group: set[str]
) -> None:
    leading, trailing = triggers(name)
    assert leading.posture == "Reactive" and leading.within >= timedelta(seconds=30)
    assert trailing.posture == "Proactive" and trailing.within == timedelta(seconds=10)
    # A proactive trigger's "after" and "expect" both the event: it fires once a burst is quiet.
    assert trailing.after == trailing.expect == expected == leading.expect
    # Without for_each a proactive trigger opens a window of its own and fires when idle.
    assert leading.for_each == trailing.for_each == group


def test_only_the_indicators_deployment_writes_slices_and_it_runs_alone() -> None:
    limit = DECLARED["indicators"]["concurrency_limit"]
    assert limit == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert DECLARED["indicators"]["parameters"] == {
        "deliver": False,
        "only_if_new": True,
        "changed_only": True,
    }
    # What files start judges what they changed; the daily run judges everything.
    for trigger in DECLARED["indicators"]["triggers"]:
        assert trigger["parameters"]["changed_only"] is True
    (daily,) = DECLARED["indicators"]["schedules"]
    assert daily["parameters"] == {"only_if_new": False, "changed_only": False}
    assert DECLARED["on-alert"]["concurrency_limit"]["limit"] == 1


@pytest.mark.parametrize(
    ("name", "cron"),
    [("indicators", "0 6 * * *"), ("daily", "0 7 * * *"), ("weekly", "0 8 * * 0")],
)
def test_schedules_in_the_initiatives_time_zone(name: str, cron: str) -> None:
    (spec,) = DECLARED[name]["schedules"]
    built = schedule(spec)
    assert built.cron == cron and built.timezone == "Asia/Jerusalem"


def test_failed_deliveries_are_retried_every_ten_minutes() -> None:
    (spec,) = DECLARED["on-alert"]["schedules"]
    assert schedule(spec).interval == timedelta(minutes=10)


def test_quiet_intake_is_a_proactive_automation_over_received_files() -> None:
    (trigger,) = triggers("quiet-intake")
    assert trigger.posture == "Proactive"
    assert trigger.expect == {events.SUBMISSION_RECEIVED}
    assert trigger.within == timedelta(days=14)
    assert trigger.parameters == {"days": 14}


def test_an_unknown_schedule_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="cron or interval"):
        schedule({"rrule": "FREQ=DAILY"})


def _selects(trigger: Any, resource: dict[str, str]) -> bool:
    """Whether the server would let an event on ``resource`` through ``trigger``'s match."""
    from prefect.server.events.schemas.events import Resource, ResourceSpecification

    return ResourceSpecification(trigger.match.root).matches(Resource(resource))


@pytest.mark.parametrize("name", ["on-received", "indicators", "on-alert"])
def test_the_next_step_triggers_leave_warm_events_to_the_process_that_sent_them(
    name: str,
) -> None:
    # serve's warm lane ingests, processes and delivers what it received itself; its events are
    # labelled warm, and a trigger that started the same step again would do it twice.
    alert = {
        "id": 3,
        "kind": "step",
        "measure_id": "m",
        "geo_code": "nahf",
        "period": "2025-Q4",
        "initiative_id": "i",
    }
    outcome = {
        "submission_id": 7,
        "file_name": "x.csv",
        "partner_id": "p",
        "period": "2025-Q4",
        "status": "accepted",
    }
    spec = {
        "on-received": RECEIVED,
        "indicators": events.submission_outcome(outcome),
        "on-alert": events.alert_event(alert),
    }[name]
    assert spec.resource[events.LANE] == events.QUEUED  # what every builder says by default
    for trigger in triggers(name):
        assert _selects(trigger, spec.resource)
        assert not _selects(trigger, events.in_lane(spec, events.WARM).resource)
