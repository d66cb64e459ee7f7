"""What each flow's runs are called, from their parameters: one place for the names the runs
give themselves when they start and the names ``serve`` gives runs still queued
(:mod:`ci_pipeline.serve.names`), so a run keeps its name from queued to finished. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any


def run_name(
    flow: str,
    parameters: Mapping[str, Any],
    *,
    today: date,
    submission: tuple[str, str] | None = None,
) -> str | None:
    """The name of a run of ``flow`` (its Prefect flow name) with ``parameters``; ``today``
    stands in for a missing ``as_of``; ``submission`` is an ingest's (partner, period) when
    known. None for a flow not named here."""
    as_of = str(parameters.get("as_of") or today.isoformat())
    period = parameters.get("period")
    if flow == "ingest-submission":
        number = parameters.get("submission_id")
        return (
            f"ingest {submission[0]} {submission[1]} #{number}"
            if submission
            else f"ingest #{number}"
        )
    if flow == "process-period":
        return f"process {period or ('changes' if parameters.get('changed_only') else 'latest')}"
    if flow == "detect-regressions":
        return f"detect {period or 'latest'}"
    if flow == "deliver-alerts":
        return "deliver alerts"
    if flow == "check-completeness":
        return f"completeness {as_of}"
    if flow == "weekly-digest":
        days = parameters.get("days", 7)
        return f"digest week to {as_of}" if days == 7 else f"digest {days} days to {as_of}"
    if flow == "notify-quiet-intake":
        return f"quiet intake {as_of}"
    return None
