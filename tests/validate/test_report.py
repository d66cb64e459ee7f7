"""Error reports: safe to open in a spreadsheet, and readable by the partner who gets them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from ci_pipeline import read, validate
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.validate import report

HERE = Path(__file__).parents[1]  # the tests folder
GOLDEN = HERE / "golden" / "error_report.csv"
GOLDEN_INPUT = HERE / "fixtures" / "errors_braude_2025-Q3.csv"
BOM = b"\xef\xbb\xbf"


def issues(*rows: tuple[int | None, str | None, str | None, str, str]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=validate.ISSUE_SCHEMA, orient="row")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+2", "'=1+2"),
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+SUM(A1:A9)", "'+SUM(A1:A9)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+2", "'\t=1+2"),
        ("\r=1+2", "'\r=1+2"),
        ("-3\n=1+2", "'-3\n=1+2"),
        ("-3", "-3"),
        ("+0,5", "+0,5"),
        ("-12.75", "-12.75"),
        ("42", "42"),
        ("Karmiel", "Karmiel"),
        ("כרמיאל", "כרמיאל"),
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
    ],
)
def test_neutralise(cell: str | None, expected: str | None) -> None:
    out = pl.DataFrame({"x": [cell]}, schema={"x": pl.Utf8}).select(report.neutralise(pl.col("x")))
    assert out.item() == expected


def test_safe_issues_neutralises_every_echoed_text_cell() -> None:
    raw = issues((3, "=cmd|' /C calc'!A0", "@SUM(1)", "value_is_number", "-bad message"))
    safe = report.safe_issues(raw)
    assert safe.rows() == [
        (3, "'=cmd|' /C calc'!A0", "'@SUM(1)", "value_is_number", "'-bad message")
    ]
    assert safe.schema == raw.schema


def test_write_report_without_diff(tmp_path: Path) -> None:
    found = issues((2, "value", "=1+2", "value_is_number", "value '=1+2' is not a number"))
    path = report.write_report(tmp_path / "r", found, {"status": "rejected", "rows": 1})
    assert path == tmp_path / "r" / "report.json"
    assert sorted(p.name for p in path.parent.iterdir()) == ["errors.csv", "report.json"]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["status"] == "rejected"
    assert data["rows"] == 1
    assert data["files"] == {"errors_csv": "errors.csv"}
    assert data["issues"] == [
        {
            "row": 2,
            "column": "value",
            "value": "'=1+2",
            "rule": "value_is_number",
            "message": "value '=1+2' is not a number",
        }
    ]
    errors = (path.parent / "errors.csv").read_bytes()
    assert errors.startswith(BOM)  # Excel shows Hebrew and Arabic only with the mark
    assert pl.read_csv(errors[len(BOM) :], infer_schema=False)["value"].to_list() == ["'=1+2"]


def test_write_report_with_diff_and_no_issues(tmp_path: Path) -> None:
    diff = pl.DataFrame(
        {"measure_id": ["kurkum-women-employed"], "change": ["changed"], "value": [3.0]}
    )
    none = issues()
    path = report.write_report(tmp_path, none, {"status": "accepted"}, diff)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changes.csv", "report.json"]
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["files"] == {"changes_csv": "changes.csv"}
    assert data["issues"] == []
    assert pl.read_csv(tmp_path / "changes.csv").equals(diff)


def test_write_report_empty_diff_writes_no_changes_file(tmp_path: Path) -> None:
    report.write_report(
        tmp_path, issues(), {}, pl.DataFrame({"change": []}, schema={"change": pl.Utf8})
    )
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_error_report_matches_golden(tmp_path: Path, initiative: Initiative) -> None:
    """The errors.csv a partner receives for a committed file with several mistakes.

    Regenerate with ``UPDATE_GOLDEN=1`` after a deliberate change, and read the diff.
    """
    raw = read.read_submission(GOLDEN_INPUT, max_bytes=10**8, max_expanded_bytes=10**8)
    frame = read.to_long_frame(raw, initiative)
    result = validate.validate(frame, raw, initiative, "braude-college", parse_period("2025-Q3"))
    report.write_report(tmp_path, result.issues, {"status": "rejected"})
    produced = (tmp_path / "errors.csv").read_bytes()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(produced)
    assert produced == GOLDEN.read_bytes()
