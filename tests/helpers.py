"""Helpers shared by several test modules."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from ci_pipeline import intake
from ci_pipeline.config import Settings
from ci_pipeline.initiative import Initiative


def ingest(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
) -> intake.Receipt:
    """One file through the intake steps, as the ingest flow runs them, without Prefect."""
    new = intake.receive(path, partner_id, period, initiative=initiative, settings=settings)
    duplicate = intake.duplicate_receipt(new, engine=engine)
    if duplicate is not None:
        return duplicate
    parsed = intake.parse(path, new, encoding=None, initiative=initiative, settings=settings)
    if isinstance(parsed, str):
        return intake.refuse(new, parsed, settings=settings, engine=engine)
    result = intake.check(parsed, new, initiative=initiative, engine=engine)
    return intake.record(new, result, encoding=parsed.encoding, settings=settings, engine=engine)
