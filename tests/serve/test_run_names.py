"""Why a run queued by a trigger or a schedule has Prefect's random name until it starts: the
Prefect release this project pins can name a deployment's run at creation only when a client
creates it (``run_deployment(flow_run_name=...)``), not from an automation's ``run-deployment``
action or the scheduler, so ``serve`` renames queued runs itself (``serve/names.py``; tested in
``tests/flows/test_warm.py``). These tests fail when that changes, so the README's note and the
namer are revisited (see README, *Operators*)."""

from __future__ import annotations

import inspect

from prefect.deployments import run_deployment
from prefect.events.actions import RunDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.server.events.actions import RunDeployment as ServerRunDeployment


def test_a_trigger_cannot_name_the_run_it_creates() -> None:
    for action in (RunDeployment, ServerRunDeployment):
        fields = set(action.model_fields)
        assert {"parameters", "job_variables"} <= fields, action
        assert not {"name", "flow_run_name"} & fields, action
    # prefect.yaml's trigger: its ``name`` names the automation, not the runs it creates.
    trigger = set(DeploymentEventTrigger.model_fields)
    assert {"name", "parameters", "job_variables"} <= trigger
    assert "flow_run_name" not in trigger


def test_a_client_can() -> None:
    assert "flow_run_name" in inspect.signature(run_deployment).parameters
