"""The ingest run's final state, named after the verdict (no Prefect server: the state is
built from the receipt alone)."""

from __future__ import annotations

from typing import Any

import pytest

from ci_pipeline.flows.ingest import final_state
from ci_pipeline.receive.intake import Receipt


def receipt(status: str, rules: list[str], message: str) -> Receipt:
    return Receipt(
        submission_id=7,
        status=status,
        partner_id="galilee-foundation",
        period="2025-Q1",
        file_name="fund.csv",
        message=message,
        first_issues=[{"row": None, "rule": r, "message": "…"} for r in rules],
    )


@pytest.mark.parametrize(
    ("status", "rules", "name"),
    [
        ("accepted", [], "Completed"),
        ("rejected", ["value_is_number", "value_in_range"], "Rejected"),
        ("rejected", ["file_refused"], "Refused"),
        # A refusal among validation failures is still a rejection of what was read.
        ("rejected", ["file_refused", "value_is_number"], "Rejected"),
        ("duplicate", [], "Duplicate"),
    ],
)
def test_the_final_state_is_named_after_the_verdict(
    status: str, rules: list[str], name: str
) -> None:
    r = receipt(status, rules, f"{status}: see the report")

    state = final_state(r)

    assert state.name == name
    # Completed-type, always: a partner's mistake neither retries the run nor raises.
    assert state.is_completed()
    assert state.message == f"{status}: see the report"
    data: Any = state.data
    assert data == r.to_dict()
    assert Receipt(**data) == r  # callers rebuild the receipt from the result
