"""Reading an XLSX workbook: its expansion measured before it is parsed (a zip bomb is refused
unparsed), the sheet that holds the data found, title rows above the header skipped, and
which cells Excel stored as numbers told apart from cells stored as text.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import polars as pl

from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.read.columns import KEY_COLUMNS, canonical_header, check_header_once

#: How far down a sheet the header is looked for (title rows, notes above it).
HEADER_SEARCH_ROWS = 20


def check_xlsx_expansion(path: Path, max_expanded: int) -> None:
    """Refuse a workbook that inflates past ``max_expanded`` bytes, measured by inflating it
    (up to the limit), not by the sizes its zip headers declare: those can lie."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            expanded = (
                declared if declared > max_expanded else inflated_size(path, archive, max_expanded)
            )
    except (zipfile.BadZipFile, zlib.error, struct.error, EOFError, OSError):
        raise SubmissionRefused(f"{path.name} is not an XLSX workbook") from None
    if expanded > max_expanded:
        shown = f"{expanded:,} bytes" if expanded == declared else "more bytes"
        raise SubmissionRefused(
            f"{path.name} expands to {shown}, past the limit of {max_expanded:,}; "
            "it is refused unparsed"
        )


def inflated_size(path: Path, archive: zipfile.ZipFile, limit: int) -> int:
    """What the members really inflate to, counted up to ``limit + 1`` bytes: each deflate
    stream is inflated from its local header until it ends, whatever the headers declare, and
    never more than ``limit + 1`` bytes in all are inflated."""
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


def header_row(cells: pl.DataFrame) -> int | None:
    """The index of the first row (within :data:`HEADER_SEARCH_ROWS`) that names every key
    column (measure_id, geo_code, period, in any spelling the format accepts)."""
    for at in range(min(cells.height, HEADER_SEARCH_ROWS)):
        names = {canonical_header(c) for c in cells.row(at) if c}
        if names.issuperset(KEY_COLUMNS):
            return at
    return None


def _load(reader: Any, sheet: int, dtypes: str, n_rows: int | None = None) -> pl.DataFrame:
    # Every row from the sheet's row 1: by default calamine skips leading empty rows, and the
    # partner's row numbers would shift with them.
    return reader.load_sheet(
        sheet, header_row=None, skip_rows=0, n_rows=n_rows, dtypes=dtypes
    ).to_polars()


def _choose_sheet(reader: Any, path: Path, sheet: str | None) -> tuple[int, int | None]:
    """The sheet to read and its header row, if a row names the key columns: the sheet named in
    the partner's settings, else the first whose header does, else the first sheet."""
    names: list[str] = list(reader.sheet_names)
    if sheet is not None:
        if sheet not in names:
            raise SubmissionRefused(
                f"{path.name} has no sheet named {sheet!r} (the partner's settings name it); "
                f"its sheets: {', '.join(repr(n) for n in names)}"
            )
        index = names.index(sheet)
        return index, header_row(_load(reader, index, "string", HEADER_SEARCH_ROWS))
    for index in range(len(names)):
        at = header_row(_load(reader, index, "string", HEADER_SEARCH_ROWS))
        if at is not None:
            return index, at
    return 0, None


def read_xlsx(path: Path, sheet: str | None = None) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """The data sheet's cells as text under its header, the spreadsheet row of the first of
    them, and, cell by cell, whether Excel stored it as a number.

    A number cell's text is the number itself (``0.26``, whatever the sheet displays), so it is
    read without the partner's locale; a text cell is read with it.
    """
    import fastexcel

    try:
        reader = fastexcel.read_excel(path)
        index, at = _choose_sheet(reader, path, sheet)
        cells = _load(reader, index, "string")
        # Coerced to booleans, a number cell is true or false and a text cell is null.
        numeric = _load(reader, index, "boolean").select(pl.all().is_not_null())
    except SubmissionRefused:
        raise
    except Exception as exc:  # fastexcel raises its own error types for corrupt workbooks
        raise SubmissionRefused(f"{path.name} could not be read as a workbook: {exc}") from None
    if cells.width == 0:
        raise SubmissionRefused(f"{path.name} is empty")
    if numeric.shape != cells.shape:  # not expected; then no cell counts as a number cell
        numeric = cells.select(pl.repeat(False, pl.len()).alias(c) for c in cells.columns)
    if at is None:  # no row names the key columns: the first non-blank row, for the report
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
    numeric = numeric.slice(at + 1).rename(dict(zip(numeric.columns, names, strict=True)))
    return frame, at + 2, numeric  # the header is spreadsheet row at + 1
