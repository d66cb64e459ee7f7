"""Turn a judgement into alerts: record the findings and queue what is due for delivery."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from ci_pipeline.alert.channels import file_channel
from ci_pipeline.alert.lifecycle import Recorded, record_findings
from ci_pipeline.alert.outbox import Routing, enqueue
from ci_pipeline.config import Settings
from ci_pipeline.detect.judgement import Judgement
from ci_pipeline.model.initiative import Initiative


def routing(settings: Settings) -> Routing:
    return Routing(
        backbone=settings.alert_urls or [file_channel(settings.alerts_file)],
        engineers=settings.engineer_urls or [file_channel(settings.engineers_file)],
        routes=settings.alert_routes,
    )


def record_alerts(
    judgement: Judgement, initiative: Initiative, *, settings: Settings, engine: Engine
) -> tuple[Recorded, int]:
    """Store the findings as alerts and queue what is due for delivery."""
    recorded = record_findings(
        judgement.findings,
        initiative,
        judgement.judged,
        unverified_measures=judgement.gate.failed_measures,
        engine=engine,
        current=judgement.indicators,
        reported=judgement.reported,
    )
    queued = enqueue(
        routing(settings),
        repeat_interval=timedelta(hours=settings.alert_repeat_hours),
        engine=engine,
    )
    return recorded, queued
