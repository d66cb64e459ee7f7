"""``read.records``: whether a quote-free CSV holds a line shorter than its header, against an
oracle that looks at each line in Python."""

from __future__ import annotations

import io

import polars as pl
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ci_pipeline.read.records import _has_short_line, has_short_record


def _oracle(data: bytes, separator: str, width: int) -> bool:
    """A non-blank line with fewer than ``width - 1`` separators, line by line."""
    lines = data.decode().split("\n")
    if data.endswith(b"\n"):
        lines.pop()  # the last terminator ends a line; it does not start one
    return any(line.strip() and line.count(separator) < width - 1 for line in lines)


@st.composite
def quote_free_files(draw: st.DrawFn) -> tuple[bytes, str, int]:
    """A header of ``width`` cells, then lines: whole, short, long (a separator or a cell too
    many), blank, blank but for spaces, or all separators; ``\\n`` or ``\\r\\n``, with or
    without a last line break. The check runs on files polars reads (it refuses most long
    lines first): the others are left out."""
    separator = draw(st.sampled_from([",", ";", "\t"]))
    width = draw(st.integers(1, 5))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    cell = st.text(alphabet="ab 1", max_size=3)
    lines = [separator.join(f"c{i}" for i in range(width))]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(
            st.sampled_from(["whole", "whole", "short", "long", "blank", "spaces", "separators"])
        )
        if kind == "long":
            lines.append(separator.join(draw(cell) for _ in range(width)) + separator)
        elif kind == "blank":
            lines.append("")
        elif kind == "spaces":
            lines.append(" " * draw(st.integers(1, 3)))
        elif kind == "separators":
            lines.append(separator * (width - 1))
        else:
            cells = width if kind == "whole" else draw(st.integers(1, max(width - 1, 1)))
            lines.append(separator.join(draw(cell) for _ in range(cells)))
    end = newline if draw(st.booleans()) else ""
    return (newline.join(lines) + end).encode(), separator, width


@settings(max_examples=400, deadline=None)
@given(quote_free_files())
def test_a_short_line_is_found_exactly_as_line_by_line(case: tuple[bytes, str, int]) -> None:
    """The count over the whole file that says "no short line" at once, and the look at each
    line when the count falls short, together say what the oracle says on every file."""
    data, separator, width = case
    try:
        pl.read_csv(io.BytesIO(data), separator=separator, infer_schema=False)
    except pl.exceptions.PolarsError:
        assume(False)  # refused before the check: more cells than the header
    assert _has_short_line(data, separator, width) == _oracle(data, separator, width)
    assert has_short_record(data, separator, width) == _oracle(data, separator, width)


def test_the_count_alone_decides_a_file_of_whole_lines() -> None:
    """Worked: ``a,b,c`` then two whole lines hold 3 lines x 2 commas = 6 commas, so no line
    can be short (none may hold more than 2). ``1,2`` in place of one holds 5: the lines are
    looked at, and line 3 is short. A blank line (``\\n\\n``) also brings the count short, and
    the lines are looked at: blank is not short."""
    assert not _has_short_line(b"a,b,c\n1,2,3\n4,5,6\n", ",", 3)
    assert _has_short_line(b"a,b,c\n1,2,3\n4,5\n", ",", 3)
    assert not _has_short_line(b"a,b,c\n1,2,3\n\n4,5,6", ",", 3)
    # polars reads a last line without a line break that has one separator too many: its 3
    # commas make up for line 2's 1, and the count alone would say no line is short.
    assert _has_short_line(b"a,b,c\n1,2\n4,5,6,", ",", 3)
