"""Run names from parameters (ci_pipeline/flows/names.py): one rule for a run starting and a
run still queued."""

from __future__ import annotations

from datetime import date

import pytest

from ci_pipeline.flows.names import run_name

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("flow", "parameters", "submission", "expected"),
    [
        (
            "ingest-submission",
            {"submission_id": 12},
            ("nahf-council", "2025-Q4"),
            "ingest nahf-council 2025-Q4 #12",
        ),
        ("ingest-submission", {"submission_id": 12}, None, "ingest #12"),
        ("process-period", {"period": "2025-Q4", "changed_only": True}, None, "process 2025-Q4"),
        ("process-period", {"changed_only": True}, None, "process changes"),
        ("process-period", {}, None, "process latest"),
        ("detect-regressions", {"period": "2025-Q4"}, None, "detect 2025-Q4"),
        ("deliver-alerts", {}, None, "deliver alerts"),
        ("check-completeness", {}, None, "completeness 2026-11-30"),
        ("check-completeness", {"as_of": "2026-03-15"}, None, "completeness 2026-03-15"),
        ("weekly-digest", {}, None, "digest week to 2026-11-30"),
        ("weekly-digest", {"days": 14}, None, "digest 14 days to 2026-11-30"),
        ("notify-quiet-intake", {"days": 14}, None, "quiet intake 2026-11-30"),
        ("someone-elses-flow", {}, None, None),
    ],
)
def test_each_flow_s_runs_are_named_after_their_work(
    flow: str,
    parameters: dict[str, object],
    submission: tuple[str, str] | None,
    expected: str | None,
) -> None:
    assert run_name(flow, parameters, today=TODAY, submission=submission) == expected
