"""Error reports a partner can open: CSV (for a spreadsheet) and JSON (for a script).

Every value echoed back is cut to a readable length (see ``echo``: a 1 MB cell is echoed as
its first 200 characters and its length) and neutralised against spreadsheet formula injection: a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'`` so a
spreadsheet shows it as text instead of running it (OWASP's CSV-injection advice). A plain
number such as ``-3`` is echoed as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from ci_pipeline.validate.echo import ECHO_LIMIT, MESSAGE_LIMIT, echoed

FORMULA_PREFIX = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?\d+([.,]\d+)?$"  # -3 or +0,5 is a number, not a formula
TEXT_COLUMNS = ["column", "value", "message"]


def neutralise(expr: pl.Expr) -> pl.Expr:
    """Prefix text a spreadsheet would run as a formula with an apostrophe."""
    risky = expr.str.contains(FORMULA_PREFIX) & ~expr.str.contains(PLAIN_NUMBER)
    return pl.when(risky).then(pl.lit("'") + expr).otherwise(expr)


def safe_issues(issues: pl.DataFrame) -> pl.DataFrame:
    """The issues table with every echoed text cell cut to a readable length and neutralised
    (a sentence, which may quote a value, is cut at a longer length)."""
    return issues.with_columns(
        neutralise(echoed(pl.col(c), MESSAGE_LIMIT if c == "message" else ECHO_LIMIT)).alias(c)
        for c in TEXT_COLUMNS
        if c in issues.columns
    )


def write_report(
    folder: Path, issues: pl.DataFrame, summary: dict[str, Any], diff: pl.DataFrame | None = None
) -> Path:
    """Write ``errors.csv``, ``report.json`` (and ``changes.csv`` for a replacement) to ``folder``.

    Returns the path of the JSON report, which names the others.
    """
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_issues(issues)
    files = {}
    if issues.height:
        # UTF-8 with a byte-order mark, as templates are, so Excel shows Hebrew and Arabic
        (folder / "errors.csv").write_bytes(b"\xef\xbb\xbf" + safe.write_csv().encode("utf-8"))
        files["errors_csv"] = "errors.csv"
    if diff is not None and diff.height:
        diff.write_csv(folder / "changes.csv")
        files["changes_csv"] = "changes.csv"
    report = {**summary, "files": files, "issues": safe.to_dicts()}
    path = folder / "report.json"
    path.write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return path
