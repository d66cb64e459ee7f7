"""Values echoed back to a partner, cut to a readable length.

A report names the value it found wrong, but a cell can hold a megabyte (a pasted document, a
runaway formula): echoed whole, in the value column, in the sentence and again in each report
file and receipt, it would make the report unreadable and large. An echoed value longer than
:data:`ECHO_LIMIT` characters keeps its first :data:`ECHO_LIMIT` characters and says how long
it was: ``…[cut: 1,048,576 characters in all]``.
"""

from __future__ import annotations

import polars as pl

#: The most characters of a value echoed in a report, a sentence or a warning.
ECHO_LIMIT = 200

#: The most characters of a sentence (a message or a refusal's reason), which may quote values.
MESSAGE_LIMIT = 2000


def _marker(length: pl.Expr) -> pl.Expr:
    grouped = length.cast(pl.Utf8).str.reverse().str.replace_all(r"(\d{3})", "$1,")
    grouped = grouped.str.reverse().str.strip_chars_start(",")
    return pl.concat_str(pl.lit("…[cut: "), grouped, pl.lit(" characters in all]"))


def echoed(text: pl.Expr, limit: int = ECHO_LIMIT) -> pl.Expr:
    """``text`` as echoed: whole when short, else its first ``limit`` characters, a visible
    mark and its full length."""
    length = text.str.len_chars()
    return (
        pl.when(length > limit)
        .then(pl.concat_str(text.str.slice(0, limit), _marker(length)))
        .otherwise(text)
    )


def echo_text(text: str, limit: int = ECHO_LIMIT) -> str:
    """:func:`echoed` for one string (a header name in a warning, a refusal's reason)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[cut: {len(text):,} characters in all]"
