"""The deployments as declared in ``deployments/prefect.yaml``, read into Prefect runner
deployments: the file is the one declaration, so ``serve`` and ``prefect deploy`` can never
disagree about a trigger or a schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentTriggerTypes
from prefect.schedules import Cron, Interval, Schedule
from pydantic import TypeAdapter

#: The checkout the deployments' entrypoints are relative to (as ``prefect deploy`` reads them).
ROOT = Path(__file__).resolve().parents[2]


PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"


def declarations(path: Path = PREFECT_FILE) -> list[dict[str, Any]]:
    """The ``deployments`` section of ``prefect.yaml``, anchors and merge keys resolved."""
    with path.open(encoding="utf-8") as fh:
        return list(yaml.safe_load(fh)["deployments"])


def schedule(spec: dict[str, Any]) -> Schedule:
    """One ``schedules:`` entry of ``prefect.yaml`` (``cron`` or ``interval``) as a Schedule."""
    options = {k: spec[k] for k in ("timezone", "parameters", "active") if k in spec}
    if "cron" in spec:
        return Cron(spec["cron"], **options)
    if "interval" in spec:
        return Interval(spec["interval"], **options)
    raise ValueError(f"unsupported schedule (use cron or interval): {spec}")


TRIGGERS: TypeAdapter[Any] = TypeAdapter(DeploymentTriggerTypes)


def runner_deployment(declaration: dict[str, Any], root: Path = ROOT) -> RunnerDeployment:
    """A deployment of ``prefect.yaml`` as the runner serves it (same triggers, schedules,
    parameters, tags and concurrency limit; the flow loaded from its entrypoint)."""
    file, _, function = declaration["entrypoint"].partition(":")
    limit = declaration.get("concurrency_limit")
    return RunnerDeployment.from_entrypoint(
        f"{root / file}:{function}",
        name=declaration["name"],
        description=declaration.get("description"),
        tags=declaration.get("tags"),
        parameters=declaration.get("parameters"),
        triggers=[TRIGGERS.validate_python(t) for t in declaration.get("triggers", [])],
        schedules=[schedule(s) for s in declaration.get("schedules", [])],
        concurrency_limit=ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit,
    )


def runner_deployments(path: Path = PREFECT_FILE, root: Path = ROOT) -> list[RunnerDeployment]:
    """Every deployment declared in ``prefect.yaml``."""
    return [runner_deployment(d, root) for d in declarations(path)]
