"""Queued runs named after their work, not Prefect's random ``clever-otter``.

On Prefect 3.8 an automation's run-deployment action and the scheduler create runs without a
name (``tests/serve/test_run_names.py``); a run names itself only when it starts. ``serve``
therefore renames, every :data:`EVERY_SECONDS`, its deployments' runs still ``Scheduled`` or
``Pending`` (``AwaitingConcurrencySlot`` included) to the name they will give themselves
(:func:`ci_pipeline.flows.names.run_name`): an operator finds a queued ``process 2025-Q4`` or
``ingest nahf-council 2025-Q4 #12`` in the UI, by name, from the moment it is queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.flows.names import run_name
from ci_pipeline.serve.background import Background

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

logger = logging.getLogger(__name__)

#: How often queued runs are looked for.
EVERY_SECONDS = 2.0


async def name_queued(
    deployments: Sequence[str],
    *,
    client: PrefectClient,
    engine: Engine | None = None,
    named: set[UUID] | None = None,
) -> int:
    """Rename the queued runs of ``deployments`` (``flow/deployment``) that do not carry
    their name yet; how many were renamed. ``engine`` finds an ingest's partner and period.
    ``named`` (kept by the caller between passes) holds the runs already found named: a run's
    parameters, and so its name, do not change, so they are not looked up again; it is cut
    to the runs still queued."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    from ci_pipeline.serve.stuck import deployment_ids

    ids = await deployment_ids(deployments, client=client)
    if not ids:
        return 0
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=list(ids)),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
            ),
        ),
        limit=200,
    )
    flows: dict[UUID, str] = {}
    renamed = 0
    done = named if named is not None else set()
    done &= {run.id for run in runs}  # started or gone: forgotten
    for run in runs:
        if run.id in done:
            continue
        if run.flow_id not in flows:
            flows[run.flow_id] = (await client.read_flow(run.flow_id)).name
        submission = None
        if engine is not None and "submission_id" in run.parameters:
            row = store.get_submission(int(run.parameters["submission_id"]), engine=engine)
            submission = (row.partner_id, row.period) if row is not None else None
        day = (run.expected_start_time or datetime.now(UTC)).date()
        name = run_name(flows[run.flow_id], run.parameters, today=day, submission=submission)
        if name and run.name != name:
            await client.update_flow_run(run.id, name=name)
            renamed += 1
        done.add(run.id)
    return renamed


class QueuedNamer(Background):
    """:func:`name_queued` every :data:`EVERY_SECONDS` on a daemon thread (``serve``)."""

    thread_name = "ci-queued-namer"

    def __init__(self, deployments: Sequence[str], *, engine: Engine) -> None:
        super().__init__()
        self.deployments, self.engine = list(deployments), engine
        self.named: set[UUID] = set()  # queued runs already carrying their name

    def _run(self) -> None:
        from prefect.client.orchestration import get_client

        async def loop() -> None:
            async with get_client() as client:
                while not self._stop.is_set():
                    try:
                        await name_queued(
                            self.deployments, client=client, engine=self.engine, named=self.named
                        )
                    except Exception as exc:  # a name is a nicety: never stop serve for it
                        logger.debug("queued runs not named this time: %s", exc)
                    await asyncio.to_thread(self._stop.wait, EVERY_SECONDS)

        asyncio.run(loop())
