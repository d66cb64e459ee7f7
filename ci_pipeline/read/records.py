"""A CSV's records against its header: polars pads a line with fewer cells than the header
with nulls, so a short line would read as if its last cells were blank. These functions find
such a line (:func:`padded`, :func:`has_short_record`) and refuse the file naming it
(:func:`refuse_ragged`), only once a null last cell says the file may hold one.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv

from ci_pipeline.errors import SubmissionRefused


def padded(frame: pl.DataFrame) -> pl.Expr:
    """Whether some non-blank row has a null last cell."""
    blank = pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == ""))
    return (pl.col(frame.columns[-1]).is_null() & ~blank).any()


def has_short_record(data: bytes, separator: str, width: int) -> bool:
    """Whether a non-blank record has fewer cells than the header (``a,b`` under ``a,b,c``;
    ``a,b,`` has three). Without a quote in the file a record is a line and its cells are its
    separators and one more, which polars counts (a million lines in 0.1 s); else the records
    are parsed by Arrow (0.3 s), and Python sees only the records that are wrong."""
    # A carriage return alone ends a record for Arrow and for csv, not for polars: such a file
    # is parsed by Arrow, and its records walked by csv (:func:`refuse_ragged`).
    if b'"' not in data and data.count(b"\r") == data.count(b"\r\n"):
        return _has_short_line(data, separator, width)
    short: list[int] = []

    def invalid(row: pa_csv.InvalidRow) -> str:
        if row.text.strip() and row.actual_columns < row.expected_columns:
            short.append(row.actual_columns)
        return "skip"

    try:
        pa_csv.read_csv(
            io.BytesIO(data),
            # The header read as a row of its own: it, not the first data line, sets the width.
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
            parse_options=pa_csv.ParseOptions(
                delimiter=separator, newlines_in_values=True, invalid_row_handler=invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)}
            ),
        )
    except pa.ArrowInvalid:
        return False  # what polars read, Arrow could not: polars' reading stands
    return bool(short)


def _has_short_line(data: bytes, separator: str, width: int) -> bool:
    """Whether a non-blank line of a file without quotes has fewer than ``width - 1``
    separators. Each line is read as one cell: NUL, the cell separator given, is in no file
    that gets here (:func:`~ci_pipeline.read.files.read_csv` refuses it), and without quotes no cell spans lines.

    First the separators are counted over the whole file (memchr's pace: 0.02 s for 36 MB). No
    line ended by a line break has more than ``width - 1`` (polars refuses such a file before
    this), so when the lines hold ``width - 1`` each on the whole, every line holds exactly
    that: none is short. Only a file whose last line is ended so is counted: polars reads a last
    line without one that ends in one separator too many (``1,2,3,`` under ``a,b,c``), whose
    extra separator would make up for a short line's missing one. A file with a blank line
    falls short of that count; either is looked at line by line."""
    if data.endswith(b"\n") and data.count(separator.encode()) == data.count(b"\n") * (width - 1):
        return False
    lines = pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        separator="\x00",
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
    ).get_column("line")
    short = (lines.str.count_matches(separator, literal=True) < width - 1) & (
        lines.str.strip_chars() != ""
    )
    return bool(short.any())


def refuse_ragged(path: Path, text: str, separator: str, width: int) -> None:
    """Refuse the file naming its first line whose cells do not match the header's, if any
    (only once the file is known to be wrong: this walks it record by record). A line csv
    cannot read (a cell over its size limit) is named as such."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        for record in reader:
            if len(record) != width and "".join(record).strip():
                _refuse_record(path, reader.line_num, len(record), separator, width)
    except csv.Error as exc:
        raise SubmissionRefused(
            f"{path.name}: line {reader.line_num} could not be read as CSV ({exc}); save the "
            "file from Excel again as CSV UTF-8"
        ) from None


def _refuse_record(path: Path, line: int, cells: int, separator: str, width: int) -> None:
    """Refuse the file for its record on ``line``, of ``cells`` cells under a header of
    ``width``, saying what usually causes it."""
    if cells > width:
        reason = (
            f"a number written with a comma (1,234) must be quoted in a file separated by "
            f"{_separator_name(separator)}, or the line has a cell too many"
        )
    else:
        reason = (
            "every line needs a cell for every column of the header (an empty cell is "
            f"written as nothing between two {_separator_name(separator)})"
        )
    raise SubmissionRefused(
        f"{path.name}: line {line} has {cells} cells but the header has {width}; {reason}"
    )


def _separator_name(separator: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(separator, repr(separator))
