"""Validation of one submission in one lazy pass, and its failures as issues a partner can act
on: the row as they see it in their own file, the column as they named it, the value they
wrote, the rule, and a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from pandera.errors import SchemaErrors

from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import Period
from ci_pipeline.read import KEY_COLUMNS, NUMBER_COLUMNS, PARTNER_COLUMN, ROW, RawSubmission
from ci_pipeline.validate.contract import (
    Rule,
    build_contract,
    message_text,
    rules_frame,
    with_outcomes,
)
from ci_pipeline.validate.echo import echo_text

ISSUE_SCHEMA = {
    "row": pl.Int64,
    "column": pl.Utf8,
    "value": pl.Utf8,
    "rule": pl.Utf8,
    "message": pl.Utf8,
}


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating one submission."""

    rows: int
    issues: pl.DataFrame  # ISSUE_SCHEMA, one row per failing cell, sorted by row
    observations: pl.DataFrame | None  # the validated frame when there are no issues
    warnings: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.observations is not None

    def summary(self) -> pl.DataFrame:
        """Failures counted by rule and column: the table a run shows at a glance."""
        return (
            self.issues.group_by("rule", "column")
            .agg(pl.len().alias("rows"), pl.col("row").min().alias("first_row"))
            .sort(["rows", "rule"], descending=[True, False])
        )


def _header_issues(raw: RawSubmission) -> pl.DataFrame:
    problems: list[tuple[int | None, str | None, str | None, str, str]] = []
    for col in KEY_COLUMNS:
        if col not in raw.headers:
            problems.append((None, col, None, "required_column", f"the file has no {col} column"))
    if not any(c in raw.headers for c in NUMBER_COLUMNS):
        problems.append(
            (
                None,
                "value",
                None,
                "required_column",
                "the file has no value, numerator or denominator column",
            )
        )
    if not problems and raw.rows.height == 0:
        problems.append((None, None, None, "no_rows", "the file has a header but no data rows"))
    return pl.DataFrame(problems, schema=ISSUE_SCHEMA, orient="row")


def validate(
    frame: pl.DataFrame, raw: RawSubmission, initiative: Initiative, partner_id: str, period: Period
) -> ValidationResult:
    """Validate a long frame (from :func:`ci_pipeline.read.to_long_frame`) in one lazy pass."""
    warnings = [
        *raw.warnings,
        *(
            f"column {echo_text(c)!r} is not part of the submission format and was ignored"
            for c in raw.ignored_columns
        ),
    ]
    header = _header_issues(raw)
    if header.height:
        return ValidationResult(raw.rows.height, header, None, warnings)
    schema, rules = build_contract(
        initiative,
        partner_id,
        period,
        with_partner_column=PARTNER_COLUMN in frame.columns,
        numbers=raw.numbers,
    )
    try:
        schema.validate(with_outcomes(frame, initiative, rules), lazy=True)
    except SchemaErrors as exc:
        issues = _issues(exc.failure_cases, frame, raw, rules, initiative)
        return ValidationResult(frame.height, issues, None, warnings)
    return ValidationResult(frame.height, pl.DataFrame(schema=ISSUE_SCHEMA), frame, warnings)


def _issues(
    failures: pl.DataFrame,
    frame: pl.DataFrame,
    raw: RawSubmission,
    rules: dict[str, Rule],
    initiative: Initiative,
) -> pl.DataFrame:
    failures = failures.with_columns(
        pl.col("check").replace({"not_nullable": "required"}),
        pl.col("column").fill_null(""),
    )
    joined = (
        frame.with_row_index("index")
        .with_columns(pl.col("index").cast(pl.Int32))
        .join(rules_frame(initiative), on="measure_id", how="left")
    )
    parts = []
    for (check, column), group in failures.group_by("check", "column"):
        check, column = str(check), str(column)
        rows = group.select("index").join(joined, on="index", how="inner")
        if check == "required":
            col, message = column, message_text(f"{column} is required")
        elif check in rules:
            col, message = rules[check].column, rules[check].message
        else:  # a pandera built-in we did not name (e.g. a dtype check)
            col, message = column or "", message_text(f"failed {check}")
        text_col = f"{col}_text" if col in NUMBER_COLUMNS else None
        parts.append(
            rows.select(
                pl.col(ROW).alias("row"),
                pl.lit(raw.headers.get(col, col).strip()).alias("column"),
                pl.lit(None, pl.Utf8).alias("value")
                if text_col is None
                else pl.col(text_col).alias("value"),
                pl.lit(check).alias("rule"),
                message.alias("message"),
            )
            .join(
                raw.rows.select(pl.col(ROW).alias("row"), pl.col(col).alias("_raw"))
                if col in raw.rows.columns
                else pl.DataFrame(schema={"row": pl.Int64, "_raw": pl.Utf8}),
                on="row",
                how="left",
            )
            .select("row", "column", pl.coalesce("value", "_raw").alias("value"), "rule", "message")
        )
    issues = pl.concat(parts) if parts else pl.DataFrame(schema=ISSUE_SCHEMA)
    return issues.cast(ISSUE_SCHEMA).unique().sort("row", "column", "rule", nulls_last=False)  # type: ignore[arg-type]
