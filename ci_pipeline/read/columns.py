"""The submission format's columns: their canonical names and the headers partners write for
them (loose, Hebrew and Arabic).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from ci_pipeline.errors import SubmissionRefused

ROW = "_row"  # the row number as the partner sees it (spreadsheet row / CSV line)


#: ``_typed_value`` etc.: whether the file stored the cell as a number (an XLSX number cell, a
#: Parquet numeric column), so its text is read without the partner's locale.
TYPED_PREFIX = "_typed_"


KEY_COLUMNS = ["measure_id", "geo_code", "period"]


NUMBER_COLUMNS = ["numerator", "denominator", "value"]


PARTNER_COLUMN = "partner_id"


#: Columns a template carries for the person filling it (see ci_pipeline.validate.template).
HELP_COLUMNS = {"measure_title", "geo_name", "unit"}


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


def canonical_header(name: str) -> str:
    """``' Measure ID '`` → ``measure_id``; known aliases (Hebrew, Arabic too) → canonical."""
    text = unicodedata.normalize("NFKC", name).strip().casefold()
    text = re.sub(r"[\s\-.]+", "_", text)
    return HEADER_ALIASES.get(text, text)


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
