"""Read a partner's file (CSV, XLSX, Parquet) into one long polars frame.

Reading is two steps. :func:`read_submission` turns bytes into text cells, refusing what cannot
be read safely (too large, an XLSX that expands too far, bytes that are not text, a line whose
cells do not match the header) and numbering rows as the partner sees them in their own file.
:func:`to_long_frame` then maps what partners write onto the canonical columns::

    measure_id, geo_code, period, <one column per dimension>, numerator, denominator, value

Numbers are read the way the partner's declared locale writes them, never guessed at. Nothing
here judges the data: a value that is not a number becomes null next to its text, and the
validate stage reports it with its row and column.

The modules: ``columns`` (the format's columns, their aliases, a header's check), ``files``
(bytes to text cells), ``records`` (a CSV's records against its header), ``workbooks``
(XLSX: the bomb guard, the data sheet, its header), ``numbers`` (the locale's grammar,
vectorised) and ``long`` (text cells to the long frame).
This namespace re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.read.columns import (
    HEADER_ALIASES,
    HELP_COLUMNS,
    KEY_COLUMNS,
    NUMBER_COLUMNS,
    PARTNER_COLUMN,
    ROW,
    TYPED_PREFIX,
    canonical_header,
    check_header_once,
)
from ci_pipeline.read.files import (
    BYTE_ORDER_MARKS,
    DELIMITERS,
    ENCODING_HINT,
    FORMATS,
    UTF8_BOM,
    Decoded,
    RawSubmission,
    byte_order_mark,
    decode,
    has_byte_order_mark,
    read_csv,
    read_parquet,
    read_submission,
    sniff_delimiter,
)
from ci_pipeline.read.long import in_batches, number, resolve_geographies, to_long_frame
from ci_pipeline.read.numbers import (
    DIRECTION_MARKS,
    NATIVE_DIGITS,
    NUMBER_LIKE,
    SPACES,
    Grammar,
    NumberFormat,
    check_locale,
    looks_like_number,
    number_format,
    parse_number,
    parse_plain_number,
)
from ci_pipeline.read.workbooks import (
    HEADER_SEARCH_ROWS,
    check_xlsx_expansion,
    header_row,
    inflated_size,
    read_xlsx,
)

__all__ = [
    "BYTE_ORDER_MARKS",
    "DELIMITERS",
    "DIRECTION_MARKS",
    "ENCODING_HINT",
    "FORMATS",
    "HEADER_ALIASES",
    "HEADER_SEARCH_ROWS",
    "HELP_COLUMNS",
    "KEY_COLUMNS",
    "NATIVE_DIGITS",
    "NUMBER_COLUMNS",
    "NUMBER_LIKE",
    "PARTNER_COLUMN",
    "ROW",
    "SPACES",
    "TYPED_PREFIX",
    "UTF8_BOM",
    "Decoded",
    "Grammar",
    "NumberFormat",
    "RawSubmission",
    "byte_order_mark",
    "canonical_header",
    "check_header_once",
    "check_locale",
    "check_xlsx_expansion",
    "decode",
    "has_byte_order_mark",
    "header_row",
    "in_batches",
    "inflated_size",
    "looks_like_number",
    "number",
    "number_format",
    "parse_number",
    "parse_plain_number",
    "read_csv",
    "read_parquet",
    "read_submission",
    "read_xlsx",
    "resolve_geographies",
    "sniff_delimiter",
    "to_long_frame",
]
