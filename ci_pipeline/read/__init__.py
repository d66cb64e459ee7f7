"""Read a partner's file (CSV, XLSX, Parquet) into one long polars frame.

Reading is two steps. :func:`read_submission` turns bytes into text cells, refusing what cannot
be read safely (too large, an XLSX that expands too far, bytes that do not decode as declared)
and numbering rows as the partner sees them in their own file. :func:`to_long_frame` then maps
what partners write onto the canonical columns::

    measure_id, geo_code, period, <one column per dimension>, numerator, denominator, value

Nothing here judges the data: a value that is not a number becomes null next to its text, and
the validate stage reports it with its row and column.

The modules: ``columns`` (the format's columns and their aliases), ``files`` (bytes to text
cells) and ``long`` (text cells to the long frame). This namespace re-exports their public
names.
"""

from __future__ import annotations

from ci_pipeline.read.columns import (
    HEADER_ALIASES,
    HELP_COLUMNS,
    KEY_COLUMNS,
    NUMBER_COLUMNS,
    PARTNER_COLUMN,
    ROW,
    canonical_header,
)
from ci_pipeline.read.files import (
    FORMATS,
    UTF8_BOM,
    RawSubmission,
    check_header_once,
    check_xlsx_expansion,
    decode,
    has_byte_order_mark,
    inflated_size,
    read_csv,
    read_parquet,
    read_submission,
    read_xlsx,
    sniff_delimiter,
)
from ci_pipeline.read.long import parse_number, resolve_geographies, to_long_frame

__all__ = [
    "FORMATS",
    "HEADER_ALIASES",
    "HELP_COLUMNS",
    "KEY_COLUMNS",
    "NUMBER_COLUMNS",
    "PARTNER_COLUMN",
    "ROW",
    "UTF8_BOM",
    "RawSubmission",
    "canonical_header",
    "check_header_once",
    "check_xlsx_expansion",
    "decode",
    "has_byte_order_mark",
    "inflated_size",
    "parse_number",
    "read_csv",
    "read_parquet",
    "read_submission",
    "read_xlsx",
    "resolve_geographies",
    "sniff_delimiter",
    "to_long_frame",
]
