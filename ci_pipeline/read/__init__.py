"""Read a partner's file (CSV, XLSX, Parquet) into one long polars frame.

Reading is two steps. :func:`read_submission` turns bytes into text cells, refusing what cannot
be read safely (too large, an XLSX that expands too far, bytes that do not decode as declared)
and numbering rows as the partner sees them in their own file. :func:`to_long_frame` then maps
what partners write onto the canonical columns::

    measure_id, geo_code, period, <one column per dimension>, numerator, denominator, value

Nothing here judges the data: a value that is not a number becomes null next to its text, and
the validate stage reports it with its row and column.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.model.initiative import TOTAL, Initiative, normalise_name
from ci_pipeline.model.periods import canonical_period

ROW = "_row"  # the row number as the partner sees it (spreadsheet row / CSV line)
KEY_COLUMNS = ["measure_id", "geo_code", "period"]
NUMBER_COLUMNS = ["numerator", "denominator", "value"]
PARTNER_COLUMN = "partner_id"
#: Columns a template carries for the person filling it (see ci_pipeline.template).
HELP_COLUMNS = {"measure_title", "geo_name", "unit"}
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}

#: Header spellings partners use, normalised, mapped to canonical column names.
HEADER_ALIASES = {
    "measure": "measure_id",
    "measure_code": "measure_id",
    "indicator": "measure_id",
    "indicator_id": "measure_id",
    "מדד": "measure_id",
    "geo": "geo_code",
    "geography": "geo_code",
    "locality": "geo_code",
    "locality_code": "geo_code",
    "יישוב": "geo_code",
    "ישוב": "geo_code",
    "البلدة": "geo_code",
    "תקופה": "period",
    "الفترة": "period",
    "reporting_period": "period",
    "מונה": "numerator",
    "מכנה": "denominator",
    "ערך": "value",
    "القيمة": "value",
    "partner": PARTNER_COLUMN,
    "gender": "sex",
    "מין": "sex",
    "age_group": "age_band",
    "קבוצת_גיל": "age_band",
}


@dataclass(frozen=True)
class RawSubmission:
    """A file's cells as text, with canonical column names and the partner's row numbers."""

    rows: pl.DataFrame
    headers: dict[str, str]  # canonical name -> the header as the partner wrote it
    file_format: str
    encoding: str | None
    ignored_columns: list[str] = field(default_factory=list)


def canonical_header(name: str) -> str:
    """``' Measure ID '`` → ``measure_id``; known aliases (Hebrew, Arabic too) → canonical."""
    text = unicodedata.normalize("NFKC", name).strip().casefold()
    text = re.sub(r"[\s\-.]+", "_", text)
    return HEADER_ALIASES.get(text, text)


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
    elif data[:3] == b"\xef\xbb\xbf" or _is_non_ascii_utf8(data):
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
        start = exc.start + (3 if codec == "utf-8-sig" and data[:3] == b"\xef\xbb\xbf" else 0)
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


def _read_csv(path: Path, encoding: str) -> tuple[pl.DataFrame, int]:
    text = decode(path.read_bytes(), encoding)
    if not text.strip():
        raise SubmissionRefused(f"{path.name} is empty")
    try:
        frame = pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=sniff_delimiter(text),
            infer_schema=False,
            truncate_ragged_lines=True,
        )
    except pl.exceptions.PolarsError:  # e.g. a quote that is never closed
        raise SubmissionRefused(
            f'{path.name} could not be read as CSV: check for a cell whose quote (") is never '
            "closed, or save it from Excel again"
        ) from None
    return frame, 2  # the header is line 1


def _check_xlsx_expansion(path: Path, max_expanded: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise SubmissionRefused(f"{path.name} is not an XLSX workbook") from None
    if expanded > max_expanded:
        raise SubmissionRefused(
            f"{path.name} expands to {expanded:,} bytes, past the limit of {max_expanded:,}; "
            "it is refused unparsed"
        )


def _read_xlsx(path: Path) -> tuple[pl.DataFrame, int]:
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


def _read_parquet(path: Path) -> tuple[pl.DataFrame, int]:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises ComputeError / OSError variants for bad files
        raise SubmissionRefused(f"{path.name} could not be read as Parquet: {exc}") from None
    return frame.with_columns(pl.all().cast(pl.Utf8)), 1  # records count from 1


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
        encoding = encoding or "utf-8"
        frame, first_row = _read_csv(path, encoding)
    elif fmt == "xlsx":
        _check_xlsx_expansion(path, max_expanded_bytes)
        frame, first_row = _read_xlsx(path)
    else:
        frame, first_row = _read_parquet(path)

    headers: dict[str, str] = {}
    ignored: list[str] = []
    renames: dict[str, str] = {}
    for original in frame.columns:
        name = canonical_header(original)
        if name in HELP_COLUMNS:  # template helpers, expected back unchanged
            continue
        if name in headers or not name or name.startswith("_"):
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


def parse_number(text: pl.Expr) -> pl.Expr:
    """Numbers as partners write them: ``1,234.5``, ``0,26`` (decimal comma), `` 12 ``, ``26%``.

    Commas grouping thousands (``1,234,567.5``) are dropped; a single comma between digits
    (``0,26``) is a decimal comma. Text that is still not a number becomes null, and the
    validate stage reports it.
    """
    s = text.str.strip_chars().str.replace_all(r"[\s\u00a0\u202f]", "")
    percent = s.str.ends_with("%")
    s = s.str.strip_chars_end("%")
    s = (
        pl.when(s.str.contains(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$"))
        .then(s.str.replace_all(",", ""))
        .when(s.str.contains(r"^-?\d+,\d+$"))
        .then(s.str.replace(",", "."))
        .otherwise(s)
    )
    number = s.cast(pl.Float64, strict=False)
    number = pl.when(number.is_finite()).then(number)  # 'NaN', 'inf' are not numbers
    return pl.when(percent).then(number / 100).otherwise(number)


def resolve_geographies(written: pl.Series, initiative: Initiative) -> dict[str, str]:
    """Map each distinct way a file writes a place (כרמיאל, كرميئيل, Karmiel) to its code.

    Works on the distinct values only, so a million rows cost as much as their few localities.
    Unknown names map to themselves (stripped), for the contract to report.
    """
    aliases = initiative.geo_aliases()
    return {
        text: aliases.get(normalise_name(text), text.strip())
        for text in written.drop_nulls().unique().to_list()
    }


def to_long_frame(raw: RawSubmission, initiative: Initiative) -> pl.DataFrame:
    """Map text cells onto the canonical long frame, resolving names and parsing numbers.

    Keeps each number's text as ``<column>_text`` so the report can echo what was written.
    Missing dimension columns and blank dimension cells mean ``total``. Columns the format does
    not have (a partner's ``Notes``) are dropped and added to ``raw.ignored_columns``, as the
    partner wrote them, so validation warns about them.
    """
    frame = raw.rows
    known = {ROW, PARTNER_COLUMN, *KEY_COLUMNS, *NUMBER_COLUMNS, *initiative.dimension_names}
    for name in frame.columns:
        written = raw.headers.get(name, name)
        if name not in known and written not in raw.ignored_columns:
            raw.ignored_columns.append(written)
    for name in [*KEY_COLUMNS, *NUMBER_COLUMNS, *initiative.dimension_names]:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name))

    periodicity = {m.id: str(m.periodicity) for m in initiative.measures.values()}
    frame = frame.with_columns(
        pl.col("measure_id").str.strip_chars().str.to_lowercase(),
        pl.col("geo_code").replace_strict(resolve_geographies(frame["geo_code"], initiative)),
        *(pl.col(c).alias(f"{c}_text") for c in NUMBER_COLUMNS),
        *(parse_number(pl.col(c)).alias(c) for c in NUMBER_COLUMNS),
        *(
            pl.col(d).str.strip_chars().str.to_lowercase().fill_null(TOTAL).replace("", TOTAL)
            for d in initiative.dimension_names
        ),
    )
    frame = frame.with_columns(
        canonical_period(
            pl.col("period"), pl.col("measure_id").replace_strict(periodicity, default=None)
        ).alias("period")
    )
    columns = [ROW, *KEY_COLUMNS, *initiative.dimension_names, *NUMBER_COLUMNS]
    columns += [f"{c}_text" for c in NUMBER_COLUMNS]
    if PARTNER_COLUMN in frame.columns:
        columns.append(PARTNER_COLUMN)
    return frame.select(columns)
