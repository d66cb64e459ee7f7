"""What a partner (and the CLI) is told about a submission: its :class:`Receipt`."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import ConfigDict
from sqlmodel import Field

from ci_pipeline import store
from ci_pipeline.validate import report

#: Issues shown in a receipt; the report file has them all.
RECEIPT_ISSUES = 20


#: The stored fields a receipt repeats, in its order after ``submission_id`` (the row's id).
RECEIPT_FIELDS = tuple(store.SubmissionOutcome.model_fields)


class Receipt(store.SubmissionOutcome):
    """What a partner (and the CLI) is told about a submission: the stored outcome (its fields
    are :class:`store.SubmissionOutcome`'s, declared there once), the row's id, and what is not
    stored: the first problems found and the warnings.

    :meth:`from_row` makes it from the stored row; ``Receipt(**receipt.to_dict())`` makes it
    again from its plain form (what the ingest flow returns).
    """

    # SQLModel types its config as its own TypedDict; pydantic's ConfigDict is what it reads.
    model_config = ConfigDict(extra="forbid", frozen=True)  # type: ignore[assignment]

    submission_id: int
    first_issues: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def from_row(
        cls,
        row: store.SubmissionFields,
        issues: pl.DataFrame | None = None,
        warnings: list[str] | None = None,
    ) -> Receipt:
        """The receipt of a stored submission: its fields, the first :data:`RECEIPT_ISSUES` of
        ``issues`` and the warnings."""
        assert row.id is not None
        stored = {name: getattr(row, name) for name in RECEIPT_FIELDS}
        stored["message"] = row.message or ""
        first = (
            report.safe_issues(issues.head(RECEIPT_ISSUES)).to_dicts() if issues is not None else []
        )
        return cls(submission_id=row.id, first_issues=first, warnings=warnings or [], **stored)

    def to_dict(self) -> dict[str, Any]:
        """The receipt as plain JSON-ready data (``submission_id`` first, then the stored
        fields, the first issues and the warnings)."""
        return {"submission_id": self.submission_id, **self.model_dump(exclude={"submission_id"})}
