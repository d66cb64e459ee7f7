"""Reading a partner's file (CSV, XLSX, Parquet) into text columns exactly as written, with the
encoding, delimiter and size checks that come before anything is parsed.
"""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.read.columns import HELP_COLUMNS, ROW, canonical_header

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}


@dataclass(frozen=True)
class RawSubmission:
    """A file's cells as text, with canonical column names and the partner's row numbers."""

    rows: pl.DataFrame
    headers: dict[str, str]  # canonical name -> the header as the partner wrote it
    file_format: str
    encoding: str | None
    ignored_columns: list[str] = field(default_factory=list)


UTF8_BOM = b"\xef\xbb\xbf"


def _check_size(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise SubmissionRefused(
            f"{path.name} is {size:,} bytes; the limit is {max_bytes:,}. Split it by period "
            "or ask the backbone team to raise CI_PIPELINE_MAX_FILE_BYTES."
        )


def decode(data: bytes, encoding: str) -> str:
    """Decode strictly: bytes that are not valid in ``encoding`` refuse the file, never mojibake."""
    codec = encoding.lower().replace("_", "-")
    if codec in ("utf-8", "utf8", "utf-8-sig"):
        codec = "utf-8-sig"  # accept a byte-order mark, as Excel writes one
    elif data[:3] == UTF8_BOM or _is_non_ascii_utf8(data):
        # A legacy code page decodes almost any bytes, so check that the file is not UTF-8.
        raise SubmissionRefused(
            f"the file is UTF-8 text but was declared {encoding}; submit it without --encoding"
        )
    try:
        return data.decode(codec)
    except LookupError:
        raise SubmissionRefused(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        # utf-8-sig counts from after the byte-order mark; the partner counts from the file's start
        start = exc.start + (3 if codec == "utf-8-sig" and data[:3] == UTF8_BOM else 0)
        line = data[:start].count(b"\n") + 1
        bad = data[start : start + 8]
        hint = (
            "If the file was saved from Excel in Hebrew or Arabic, submit it with "
            "--encoding windows-1255 (Hebrew) or --encoding windows-1256 (Arabic)."
            if codec == "utf-8-sig"
            else "Check the encoding the file was saved in."
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


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV text: comma, semicolon (decimal-comma locales) or tab."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in (",", ";", "\t")}
        return max(counts, key=lambda d: counts[d])


def read_csv(path: Path, encoding: str) -> tuple[pl.DataFrame, int]:
    text = decode(path.read_bytes(), encoding)
    if not text.strip():
        raise SubmissionRefused(f"{path.name} is empty")
    separator = sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(text), delimiter=separator), [])
    check_header_once(header, path.name)
    try:
        frame = pl.read_csv(
            io.BytesIO(text.encode("utf-8")), separator=separator, infer_schema=False
        )
    except pl.exceptions.PolarsError:  # a quote never closed, or more cells than the header
        ragged = _first_ragged_line(text, separator, len(header))
        if ragged is not None:
            line, cells = ragged
            raise SubmissionRefused(
                f"{path.name}: line {line} has {cells} cells but the header has {len(header)}; "
                f"a number written with a comma (1,234) must be quoted in a file separated by "
                f"{_separator_name(separator)}, or the line has a cell too many"
            ) from None
        raise SubmissionRefused(
            f'{path.name} could not be read as CSV: check for a cell whose quote (") is never '
            "closed, or save it from Excel again"
        ) from None
    return frame, 2  # the header is line 1


def _first_ragged_line(text: str, separator: str, width: int) -> tuple[int, int] | None:
    """The first line with more cells than the header, and how many (only after the fast
    reader refused the file: this walks it record by record)."""
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    for record in reader:
        if len(record) > width:
            return reader.line_num, len(record)
    return None


def _separator_name(separator: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(separator, repr(separator))


def check_header_once(names: Sequence[str | None], file_name: str) -> None:
    """Refuse a header that names one column twice (``value,value``): which one counts would be
    a guess. Blank names and the template's help columns may repeat."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, 1):
        canonical = canonical_header(name or "")
        if not canonical or canonical in HELP_COLUMNS or canonical.startswith("_"):
            continue  # not read anyway (see read_submission)
        if canonical in seen:
            raise SubmissionRefused(
                f"{file_name}: the header names {canonical} twice (columns {seen[canonical]} "
                f"and {position}); keep one {canonical} column"
            )
        seen[canonical] = position


def check_xlsx_expansion(path: Path, max_expanded: int) -> None:
    """Refuse a workbook that inflates past ``max_expanded`` bytes, measured by inflating it
    (up to the limit), not by the sizes its zip headers declare: those can lie."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            expanded = (
                declared if declared > max_expanded else inflated_size(path, archive, max_expanded)
            )
    except (zipfile.BadZipFile, zlib.error, struct.error):
        raise SubmissionRefused(f"{path.name} is not an XLSX workbook") from None
    if expanded > max_expanded:
        shown = f"{expanded:,} bytes" if expanded == declared else "more bytes"
        raise SubmissionRefused(
            f"{path.name} expands to {shown}, past the limit of {max_expanded:,}; "
            "it is refused unparsed"
        )


def inflated_size(path: Path, archive: zipfile.ZipFile, limit: int) -> int:
    """What the members really inflate to, counted up to ``limit + 1`` bytes: each deflate
    stream is inflated from its local header until it ends, whatever the headers declare."""
    total = 0
    with path.open("rb") as raw:
        for info in archive.infolist():
            if info.compress_type == zipfile.ZIP_STORED:
                total += info.compress_size  # stored: no larger than the bytes in the file
            elif info.compress_type != zipfile.ZIP_DEFLATED:
                raise zipfile.BadZipFile(f"unsupported compression {info.compress_type}")
            else:
                raw.seek(info.header_offset + 26)
                name_length, extra_length = struct.unpack("<HH", raw.read(4))
                raw.seek(name_length + extra_length, io.SEEK_CUR)
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                pending = b""
                while not inflater.eof and total <= limit:
                    pending = pending or raw.read(1 << 16)
                    if not pending:
                        break  # the stream ends with the file
                    total += len(inflater.decompress(pending, limit + 1 - total))
                    pending = inflater.unconsumed_tail
            if total > limit:
                break
    return total


def read_xlsx(path: Path) -> tuple[pl.DataFrame, int]:
    import fastexcel

    try:
        # Every row from the sheet's row 1: by default calamine skips leading empty rows, and
        # the partner's row numbers would shift with them. The first non-blank row is the header.
        cells = (
            fastexcel.read_excel(path)
            .load_sheet(0, header_row=None, skip_rows=0, dtypes="string")
            .to_polars()
        )
    except Exception as exc:  # fastexcel raises its own error types for corrupt workbooks
        raise SubmissionRefused(f"{path.name} could not be read as a workbook: {exc}") from None
    if cells.width == 0:
        raise SubmissionRefused(f"{path.name} is empty")
    filled = ~pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == ""))
    at = cells.select(filled.arg_true().first()).item()
    if at is None:
        raise SubmissionRefused(f"{path.name} is empty")
    check_header_once(list(cells.row(at)), path.name)
    names: list[str] = []
    for i, cell in enumerate(cells.row(at)):  # as fastexcel names them: __UNNAMED__1, value_1
        name = cell if cell is not None and cell.strip() else f"__UNNAMED__{i}"
        unique, n = name, 0
        while unique in names:
            n += 1
            unique = f"{name}_{n}"
        names.append(unique)
    frame = cells.slice(at + 1).rename(dict(zip(cells.columns, names, strict=True)))
    return frame, at + 2  # the header is spreadsheet row at + 1


def read_parquet(path: Path) -> tuple[pl.DataFrame, int]:
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
    try:
        return frame.with_columns(pl.all().cast(pl.Utf8)), 1  # records count from 1
    except pl.exceptions.PolarsError as exc:  # e.g. binary or object columns
        raise SubmissionRefused(
            f"{path.name}: a column's type cannot be read as text ({exc}); send numbers and text"
        ) from None


def has_byte_order_mark(path: Path) -> bool:
    """Whether the file starts with UTF-8's byte-order mark (Excel's "CSV UTF-8" writes one)."""
    with path.open("rb") as fh:
        return fh.read(3) == UTF8_BOM


def read_submission(
    path: Path,
    *,
    encoding: str | None = None,
    max_bytes: int,
    max_expanded_bytes: int,
) -> RawSubmission:
    """Read a submission file into text cells, refusing what cannot be read safely.

    ``encoding`` applies to CSV only (XLSX and Parquet carry their own); default UTF-8.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SubmissionRefused(
            f"{path.name}: unsupported file type {path.suffix!r}; send CSV, XLSX or Parquet"
        )
    _check_size(path, max_bytes)
    if fmt == "csv":
        # The file's own byte-order mark says UTF-8, whatever the partner's settings declare.
        encoding = "utf-8" if has_byte_order_mark(path) else encoding or "utf-8"
        frame, first_row = read_csv(path, encoding)
    elif fmt == "xlsx":
        check_xlsx_expansion(path, max_expanded_bytes)
        frame, first_row = read_xlsx(path)
    else:
        frame, first_row = read_parquet(path)

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
    frame = frame.with_row_index(ROW, offset=first_row).with_columns(pl.col(ROW).cast(pl.Int64))
    cells = [c for c in frame.columns if c != ROW]
    # Blank rows (trailing ones especially) are dropped; the numbering above is kept.
    if cells:  # (all_horizontal over no columns is an error, so build it only when there are)
        blank = pl.all_horizontal(
            pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in cells
        )
        frame = frame.filter(~blank)
    else:
        frame = frame.clear()
    return RawSubmission(frame, headers, fmt, encoding if fmt == "csv" else None, ignored)
