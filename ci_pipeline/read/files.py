"""Reading a partner's file (CSV, XLSX, Parquet) into text columns exactly as written, with the
encoding, delimiter, shape and size checks that come before anything is parsed.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.read.columns import (
    HELP_COLUMNS,
    NUMBER_COLUMNS,
    ROW,
    TYPED_PREFIX,
    canonical_header,
    check_header_once,
)
from ci_pipeline.read.numbers import NumberFormat, number_format
from ci_pipeline.read.records import has_short_record, padded, refuse_ragged
from ci_pipeline.read.workbooks import check_xlsx_expansion, read_xlsx

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}


@dataclass(frozen=True)
class RawSubmission:
    """A file's cells as text, with canonical column names and the partner's row numbers.

    ``rows`` may hold ``_typed_<column>`` flags beside the number columns (see
    :data:`~ci_pipeline.read.columns.TYPED_PREFIX`); ``numbers`` is the locale the text numbers
    are read in; ``warnings`` are told to the partner with the outcome.
    """

    rows: pl.DataFrame
    headers: dict[str, str]  # canonical name -> the header as the partner wrote it
    file_format: str
    encoding: str | None
    ignored_columns: list[str] = field(default_factory=list)
    numbers: NumberFormat = field(default_factory=lambda: number_format("en"))
    warnings: list[str] = field(default_factory=list)


UTF8_BOM = b"\xef\xbb\xbf"

#: Byte-order marks and the encoding each one says, longest first.
BYTE_ORDER_MARKS = ((UTF8_BOM, "utf-8"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))

#: What a refusal for undecodable bytes suggests: no command-line option, since inbox and API
#: partners never gave one.
ENCODING_HINT = (
    'If it was saved from Excel in Hebrew or Arabic, save it again as "CSV UTF-8", or ask the '
    "backbone team to record its encoding (windows-1255 for Hebrew, windows-1256 for Arabic) "
    "in your settings or give it with the file."
)


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise SubmissionRefused(
            f"{path.name} is {size:,} bytes; the limit is {max_bytes:,}. Split it by period "
            "or ask the backbone team to raise CI_PIPELINE_MAX_FILE_BYTES."
        )


def byte_order_mark(data: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``data`` says, if it starts with one."""
    return next((name for mark, name in BYTE_ORDER_MARKS if data.startswith(mark)), None)


def has_byte_order_mark(path: Path) -> bool:
    """Whether the file starts with a byte-order mark (Excel's "CSV UTF-8" writes one)."""
    with path.open("rb") as fh:
        return byte_order_mark(fh.read(3)) is not None


@dataclass(frozen=True)
class Decoded:
    """A file's text, the encoding it was read in, and what the partner should be told."""

    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


def decode(data: bytes, encoding: str) -> Decoded:
    """Decode strictly; bytes that are not valid text refuse the file, never mojibake.

    The declared ``encoding`` is a default, not a trap: a byte-order mark decides (it is the
    file's own word), and a file that is valid UTF-8 with non-ASCII text is read as UTF-8 with
    a warning (a legacy code page decodes almost any bytes, so it would read UTF-8 as mojibake).
    Otherwise the declared encoding is used.
    """
    codec = encoding.lower().replace("_", "-")
    marked = byte_order_mark(data)
    warnings: list[str] = []
    if marked is not None:
        codec = "utf-8-sig" if marked == "utf-8" else marked  # utf-16 takes its own mark off
        encoding = marked
    elif codec in ("utf-8", "utf8", "utf-8-sig"):
        codec, encoding = "utf-8-sig", "utf-8"
    elif _is_non_ascii_utf8(data):
        warnings.append(
            f"the file is UTF-8 text although {encoding} was expected; it was read as UTF-8"
        )
        codec, encoding = "utf-8", "utf-8"
    try:
        return Decoded(data.decode(codec), encoding, warnings)
    except LookupError:
        raise SubmissionRefused(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        # utf-8-sig counts from after the byte-order mark; the partner counts from the file's start
        start = exc.start + (3 if codec == "utf-8-sig" and data[:3] == UTF8_BOM else 0)
        line = data[:start].count(b"\n") + 1
        bad = data[start : start + 8]
        hint = (
            ENCODING_HINT if codec == "utf-8-sig" else "Check the encoding the file was saved in."
        )
        raise SubmissionRefused(
            f"line {line} (byte {start}) is not valid {encoding}: {bad!r}. {hint}"
        ) from None


def _is_non_ascii_utf8(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


DELIMITERS = (",", ";", "\t")


#: How much of a CSV's start is looked at for its first line, header and delimiter: enough for
#: any header and its first rows, so a large file is never split into lines to sniff it.
SNIFF_CHARS = 64 * 1024


def head(text: str) -> str:
    """The start of a text, cut after its last whole line within :data:`SNIFF_CHARS` (the
    whole text if it is shorter, or if its first line is longer)."""
    if len(text) <= SNIFF_CHARS:
        return text
    sample = text[:SNIFF_CHARS]
    end = max(sample.rfind("\n"), sample.rfind("\r"))
    return sample[: end + 1] if end > 0 else text


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: comma, semicolon (decimal-comma locales) or tab, judged on
    its first 20 lines (within the first 64 KiB)."""
    sample = "\n".join(head(text).splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in DELIMITERS}
        return max(counts, key=lambda d: counts[d])


def read_csv(path: Path, encoding: str) -> tuple[pl.DataFrame, int, str, list[str]]:
    """The CSV's cells as text, the line of the first row, the encoding read, and warnings.

    The bytes are decoded once, strictly, to check them (:func:`decode`); polars then reads the
    UTF-8 bytes as they came (less a byte-order mark), and only text of another encoding is
    encoded to UTF-8 for it. The first line, header and delimiter come from the text's start.
    """
    data = path.read_bytes()
    decoded = decode(data, encoding)
    text = decoded.text
    if "\x00" in text:
        raise SubmissionRefused(
            f"{path.name} holds NUL bytes, so it is not CSV text: send it as CSV, XLSX or Parquet"
        )
    if not text or text.isspace():
        raise SubmissionRefused(f"{path.name} is empty")
    blank_lines = re.match(r"[\r\n]*", text)  # the first line is the first that is not blank
    first = blank_lines.end() if blank_lines else 0
    first_line = text[first : first + SNIFF_CHARS].splitlines()[0]
    if not any(d in first_line for d in DELIMITERS):
        raise SubmissionRefused(
            f"{path.name}: its first line has no comma, semicolon or tab, so its columns cannot "
            "be told apart; the first line names the columns (measure_id, geo_code, period, "
            "value …) separated by commas, semicolons or tabs"
        )
    separator = sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(head(text)), delimiter=separator), [])
    check_header_once(header, path.name)
    # UTF-8 bytes are what polars reads already: only another encoding is re-encoded for it.
    data = data.removeprefix(UTF8_BOM) if decoded.encoding == "utf-8" else text.encode("utf-8")
    encoding_read, warnings = decoded.encoding, decoded.warnings
    del decoded, text  # from here on the bytes are read: the text is not held beside the frame
    try:
        frame = pl.read_csv(io.BytesIO(data), separator=separator, infer_schema=False)
    except pl.exceptions.PolarsError:  # a quote never closed, or more cells than the header
        refuse_ragged(path, data.decode("utf-8"), separator, len(header))
        raise SubmissionRefused(
            f'{path.name} could not be read as CSV: check for a cell whose quote (") is never '
            "closed, or save it from Excel again"
        ) from None
    # polars pads a line with fewer cells than the header with nulls; only such a line, or a
    # blank last cell, leaves the last column null, so only then is the file walked for it.
    short = frame.width > 1 and frame.select(padded(frame)).item()
    if short and has_short_record(data, separator, frame.width):
        refuse_ragged(path, data.decode("utf-8"), separator, len(header))
    return frame, 2, encoding_read, warnings  # the header is line 1


def read_parquet(path: Path) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """The Parquet file's cells as text, and, column by column, whether they are stored as
    numbers (read without the partner's locale)."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises ComputeError / OSError variants for bad files
        raise SubmissionRefused(f"{path.name} could not be read as Parquet: {exc}") from None
    check_header_once(frame.columns, path.name)  # "Value" and "value" are one column twice
    # One value per cell: a list or struct column has no text a partner wrote for a cell.
    nested = [f"{name!r} ({dtype})" for name, dtype in frame.schema.items() if dtype.is_nested()]
    if nested:
        raise SubmissionRefused(
            f"{path.name}: column {', '.join(nested)} holds lists or records, not one value per "
            "cell; send each value in a cell of its own"
        )
    numeric = frame.select(
        pl.repeat(dtype.is_numeric(), pl.len()).alias(name) for name, dtype in frame.schema.items()
    )
    try:
        return frame.with_columns(pl.all().cast(pl.Utf8)), 1, numeric  # records count from 1
    except pl.exceptions.PolarsError as exc:  # e.g. binary or object columns
        raise SubmissionRefused(
            f"{path.name}: a column's type cannot be read as text ({exc}); send numbers and text"
        ) from None


def read_submission(
    path: Path,
    *,
    encoding: str | None = None,
    locale: str = "en",
    sheet: str | None = None,
    max_bytes: int,
    max_expanded_bytes: int,
) -> RawSubmission:
    """Read a submission file into text cells, refusing what cannot be read safely.

    ``encoding`` applies to CSV only (XLSX and Parquet carry their own); default UTF-8, and a
    default only (see :func:`decode`). ``locale`` is how the partner writes numbers (checked
    here, used by :func:`~ci_pipeline.read.long.to_long_frame`). ``sheet``: the workbook sheet
    to read (default: the first whose header names the key columns).
    """
    path = Path(path)
    numbers = number_format(locale)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SubmissionRefused(
            f"{path.name}: unsupported file type {path.suffix!r}; send CSV, XLSX or Parquet"
        )
    _check_size(path, max_bytes)
    numeric: pl.DataFrame | None = None
    warnings: list[str] = []
    if fmt == "csv":
        frame, first_row, encoding, warnings = read_csv(path, encoding or "utf-8")
    elif fmt == "xlsx":
        check_xlsx_expansion(path, max_expanded_bytes)
        frame, first_row, numeric = read_xlsx(path, sheet)
    else:
        frame, first_row, numeric = read_parquet(path)

    headers: dict[str, str] = {}
    ignored: list[str] = []
    renames: dict[str, str] = {}
    for original in frame.columns:
        name = canonical_header(original)
        if name in HELP_COLUMNS:  # template helpers, expected back unchanged
            continue
        if not name or name.startswith("_"):  # (a name twice was refused by the reader)
            ignored.append(original)
            continue
        headers[name] = original
        renames[original] = name
    frame = frame.select(list(renames)).rename(renames)
    cells = list(frame.columns)
    if numeric is not None:
        frame = frame.with_columns(
            numeric[original].alias(f"{TYPED_PREFIX}{name}")
            for original, name in renames.items()
            if name in NUMBER_COLUMNS
        )
    frame = frame.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))
    # Blank rows (trailing ones especially) are dropped; the numbering above is kept.
    if cells:  # (all_horizontal over no columns is an error, so build it only when there are)
        blank = pl.all_horizontal(
            pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in cells
        )
        frame = frame.filter(~blank)
    else:
        frame = frame.clear()
    return RawSubmission(
        frame, headers, fmt, encoding if fmt == "csv" else None, ignored, numbers, warnings
    )
