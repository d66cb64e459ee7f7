"""Reading partners' files: the encodings, delimiters and spreadsheets they really send."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter
from babel.numbers import get_group_symbol, parse_decimal

from ci_pipeline.errors import SubmissionRefused
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.read import (
    ROW,
    SPACES,
    RawSubmission,
    canonical_header,
    number_format,
    parse_number,
    read_submission,
    to_long_frame,
)
from ci_pipeline.read import files as read_files
from ci_pipeline.read import workbooks as read_workbooks

FIXTURES = Path(__file__).parents[1] / "fixtures"
LIMITS: dict[str, Any] = {"max_bytes": 1_000_000, "max_expanded_bytes": 10_000_000}


def load(
    path: Path | str,
    encoding: str | None = None,
    locale: str = "he_IL",
    sheet: str | None = None,
    **limits: int,
) -> RawSubmission:
    path = FIXTURES / path if isinstance(path, str) else path
    return read_submission(
        path, encoding=encoding, locale=locale, sheet=sheet, **{**LIMITS, **limits}
    )


def column(frame: pl.DataFrame, name: str) -> list[Any]:
    return frame[name].to_list()


# --- files partners send ------------------------------------------------------------------------


def test_utf8_csv(initiative: Initiative) -> None:
    raw = load("utf8.csv")
    assert (raw.file_format, raw.encoding, raw.ignored_columns) == ("csv", "utf-8", [])
    assert list(raw.headers) == [
        "measure_id", "geo_code", "period", "numerator", "denominator", "value"
    ]  # fmt: skip
    assert column(raw.rows, ROW) == [2, 3]  # the header is line 1
    assert column(raw.rows, "value") == ["0.26", "0.25"]  # cells stay text until to_long_frame

    frame = to_long_frame(raw, initiative)
    assert frame.columns == [
        ROW, "measure_id", "geo_code", "period", "age_band", "sex",
        "numerator", "denominator", "value", "numerator_text", "denominator_text", "value_text",
    ]  # fmt: skip
    assert frame.row(0, named=True) == {
        ROW: 2,
        "measure_id": "smb-digital-presence",
        "geo_code": "karmiel",
        "period": "2025-Q3",
        "age_band": "total",  # missing dimension columns mean total
        "sex": "total",
        "numerator": 52.0,
        "denominator": 200.0,
        "value": 0.26,
        "numerator_text": "52",
        "denominator_text": "200",
        "value_text": "0.26",
    }
    assert column(frame, "geo_code") == ["karmiel", "misgav"]


def test_utf8_with_bom_and_crlf(initiative: Initiative) -> None:
    assert (FIXTURES / "utf8_bom.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    raw = load("utf8_bom.csv")
    assert list(raw.headers) == ["measure_id", "geo_code", "period", "value"]  # no BOM in a name
    assert raw.rows.row(0) == (2, "kurkum-women-employed", "מג'ד אל-כרום", "09/2025", "14")
    frame = to_long_frame(raw, initiative)
    assert frame.select("geo_code", "period", "value").row(0) == ("majd-al-krum", "2025-09", 14.0)


def test_windows_1255_hebrew_semicolons_and_decimal_commas(initiative: Initiative) -> None:
    # The employment service's office writes decimal commas: its settings say locale ru.
    assert initiative.partner_locale("employment-service") == "ru"
    raw = load("hebrew_windows1255.csv", encoding="windows-1255", locale="ru")
    assert raw.encoding == "windows-1255"
    assert raw.headers == {
        "measure_id": "מדד",
        "geo_code": "יישוב",
        "period": "תקופה",
        "age_band": "קבוצת גיל",
        "numerator": "מונה",
        "denominator": "מכנה",
        "value": "ערך",
    }
    assert column(raw.rows, "value") == ["0,26", "0,31"]  # ';' split the row, not the comma
    frame = to_long_frame(raw, initiative)
    assert frame.select(
        ROW, "measure_id", "geo_code", "age_band", "value", "value_text"
    ).rows() == [
        (2, "arab-women-lfp", "majd-al-krum", "total", 0.26, "0,26"),
        (3, "arab-women-lfp", "biina", "25-44", 0.31, "0,31"),
    ]
    assert column(frame, "numerator") == [1040.0, 310.0]


def test_windows_1256_arabic_locality_names(initiative: Initiative) -> None:
    raw = load("arabic_windows1256.csv", encoding="windows-1256")
    assert raw.headers == {
        "measure_id": "measure_id",
        "geo_code": "البلدة",
        "period": "الفترة",
        "value": "القيمة",
    }
    assert column(raw.rows, "geo_code") == ["مجد الكروم", "كرميئيل"]
    frame = to_long_frame(raw, initiative)
    assert frame.select("geo_code", "period", "value").rows() == [
        ("majd-al-krum", "2025-09", 12.0),
        ("karmiel", "2025-09", 3.0),
    ]


def test_tab_delimited(initiative: Initiative) -> None:
    raw = load("tab_delimited.tsv")
    assert list(raw.headers) == ["measure_id", "geo_code", "period", "sex", "value"]
    frame = to_long_frame(raw, initiative)
    assert frame.select(ROW, "sex", "age_band", "value").rows() == [
        (2, "female", "total", 7.0),
        (3, "male", "total", 5.0),
    ]


def test_head_cuts_after_the_last_whole_line_within_64_kib() -> None:
    line = "a;b;c\n"  # 6 characters
    text = line * 20_000  # 120,000 characters
    sample = read_files.head(text)
    assert len(sample) == (read_files.SNIFF_CHARS // 6) * 6  # 10,922 whole lines
    assert sample.endswith("\n") and sample.splitlines()[-1] == "a;b;c"
    assert read_files.head("a;b\nc;d") == "a;b\nc;d"  # shorter than the sample: all of it
    long_header = "x" * (read_files.SNIFF_CHARS + 10) + "\n1\n"
    assert read_files.head(long_header) == long_header  # no whole line within it: all of it


def test_large_semicolon_file_sniffed_on_its_start_and_read_whole(
    tmp_path: Path, initiative: Initiative
) -> None:
    # 30,000 rows (about 1.3 MB): the delimiter is judged on the first 64 KiB only, and every
    # row is read, each repeated number and period parsed once and mapped back to its rows.
    rows = 30_000
    body = "".join(
        f"arab-women-lfp;majd-al-krum;2025-09-{1 + i % 28:02d};{i % 3},5\n" for i in range(rows)
    )
    path = tmp_path / "large.csv"
    path.write_text("measure_id;geo_code;period;value\n" + body, encoding="utf-8")
    raw = load(path, locale="ru", max_bytes=10_000_000)
    frame = to_long_frame(raw, initiative)
    assert frame.height == rows
    assert frame[ROW].to_list()[:2] == [2, 3] and frame[ROW].to_list()[-1] == rows + 1
    # 0,5 / 1,5 / 2,5 in a decimal-comma locale; every September date is in the quarterly
    # measure's 2025-Q3
    assert frame["value"].to_list()[:4] == [0.5, 1.5, 2.5, 0.5]
    assert frame["value"].sum() == pytest.approx(1.5 * rows)
    assert frame["period"].unique().to_list() == ["2025-Q3"]


def test_header_spellings_helper_and_extra_columns(initiative: Initiative) -> None:
    raw = load("messy_headers.csv")
    assert raw.headers == {
        "measure_id": " Measure ID ",
        "geo_code": "GEO_CODE",
        "period": " Period",
        "value": "Value ",
        "notes": "Notes",
    }
    # Template helper columns are dropped silently: not read, not warned about.
    assert not {"measure_title", "geo_name", "unit"} & set(raw.rows.columns)
    frame = to_long_frame(raw, initiative)
    assert "notes" not in frame.columns
    assert raw.ignored_columns == ["Notes"]  # listed as the partner wrote it
    to_long_frame(raw, initiative)
    assert raw.ignored_columns == ["Notes"]  # and only once
    assert frame.select("measure_id", "geo_code", "period", "value").row(0) == (
        "new-resources-nis",
        "karmiel",
        "2025-Q3",
        1234.5,
    )


def test_blank_and_internal_headers_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("measure_id,value,,_internal,\nm,1,x,y,z\n", encoding="utf-8")
    raw = load(path)
    assert raw.headers == {"measure_id": "measure_id", "value": "value"}
    assert raw.rows.row(0) == (2, "m", "1")


@pytest.mark.parametrize(
    ("header", "twice"),
    [
        ("measure_id,value,,Value ,_internal", "value twice (columns 2 and 4)"),
        ("measure_id,ערך,value", "value twice (columns 2 and 3)"),  # a Hebrew alias of value
        ("Measure ID,measure_id,value", "measure_id twice (columns 1 and 2)"),
    ],
)
def test_a_column_named_twice_is_refused(tmp_path: Path, header: str, twice: str) -> None:
    """Which of two value columns counts would be a guess: the file is refused instead."""
    path = tmp_path / "dup.csv"
    path.write_text(f"{header}\nm,1,x,2,y\n", encoding="utf-8")
    with pytest.raises(SubmissionRefused, match=re.escape(f"dup.csv: the header names {twice}")):
        load(path)


def test_a_parquet_column_named_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pl.DataFrame({"measure_id": ["m"], "Value": ["1"], "value": ["2"]}).write_parquet(path)
    with pytest.raises(
        SubmissionRefused,
        match=re.escape("dup.parquet: the header names value twice (columns 2 and 3)"),
    ):
        load(path)


def test_a_line_with_a_cell_too_many_is_refused_naming_it(tmp_path: Path) -> None:
    """``1,234`` unquoted in a comma file is two cells: the line is named, never truncated."""
    path = tmp_path / "ragged.csv"
    path.write_text(
        "measure_id,geo_code,period,sex,value\n"
        "m,karmiel,2025-01,female,2\n"
        "m,karmiel,2025-01,male,1,234\n",
        encoding="utf-8",
    )
    with pytest.raises(SubmissionRefused) as refused:
        load(path)
    assert str(refused.value).startswith(
        "ragged.csv: line 3 has 6 cells but the header has 5; a number written with a comma "
        "(1,234) must be quoted in a file separated by commas"
    )


def test_blank_rows_keep_the_partners_line_numbers() -> None:
    text = (FIXTURES / "blank_rows.csv").read_text(encoding="utf-8").splitlines()
    assert text[2] == "" and text[3].endswith(",2025-08,3")  # the fixture: line 3 blank
    raw = load("blank_rows.csv")
    assert raw.rows.select(ROW, "period", "value").rows() == [
        (2, "2025-09", "4"),
        (4, "2025-08", "3"),  # after the blank line 3, still line 4
    ]  # blank and whitespace-only trailing rows are dropped


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("measure_id,value\r\nm,1\r\n\r\nm,2\r\n\r\n", [2, 4]),  # Windows line ends
        ("measure_id,value\nm,1\n,\n\n , \nm,2", [2, 6]),  # no final newline
        ("measure_id,value\n\nm,1\n", [3]),
    ],
)
def test_blank_rows_numbering(tmp_path: Path, text: str, rows: list[int]) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    assert column(load(path).rows, ROW) == rows


@pytest.mark.parametrize(
    ("row", "written", "code"),
    [
        (2, "karmiel", "karmiel"),  # the code
        (3, "Karmiel", "karmiel"),  # English
        (4, "כרמיאל", "karmiel"),  # Hebrew
        (5, "كرميئيل", "karmiel"),  # Arabic
        (6, "Atlantis", "Atlantis"),  # unknown: left as written, for the contract to report
    ],
)
def test_locality_by_code_or_name(
    initiative: Initiative, row: int, written: str, code: str
) -> None:
    raw = load("localities.csv")
    assert raw.rows.filter(pl.col(ROW) == row)["geo_code"].to_list() == [written]
    frame = to_long_frame(raw, initiative)
    assert frame.filter(pl.col(ROW) == row)["geo_code"].to_list() == [code]


def test_xlsx_with_excel_date_cells(initiative: Initiative) -> None:
    raw = load("dates.xlsx")
    assert (raw.file_format, raw.encoding) == ("xlsx", None)
    # Header in row 1, data from row 2; the blank row 3 is dropped but row 4 stays row 4.
    assert raw.rows.select(ROW, "period").rows() == [
        (2, "2025-09-30 00:00:00"),
        (4, "2025-08-31 00:00:00"),
    ]
    frame = to_long_frame(raw, initiative)
    assert frame.select(ROW, "measure_id", "period", "numerator", "value").rows() == [
        (2, "smb-digital-presence", "2025-Q3", 52.0, 0.26),  # a quarterly measure
        (4, "kurkum-women-employed", "2025-08", None, 12.0),  # a monthly one
    ]


def test_xlsx_rows_numbered_as_the_sheet_shows_them(tmp_path: Path) -> None:
    """A sheet whose table starts lower down keeps the row numbers the partner sees."""
    path = tmp_path / "lower.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    sheet.write_row(2, 0, ["measure_id", "geo_code", "period", "value"])  # header in row 3
    sheet.write_row(3, 0, ["kurkum-women-employed", "karmiel", "2025-09", 1])
    sheet.write_row(5, 0, ["kurkum-women-employed", "misgav"])  # row 6, after a blank row 5
    sheet.write_datetime(5, 2, dt.datetime(2025, 9, 1))
    sheet.write_number(5, 3, 2)
    workbook.close()
    raw = load(path)
    assert list(raw.headers) == ["measure_id", "geo_code", "period", "value"]
    assert raw.rows.select(ROW, "geo_code", "value").rows() == [
        (4, "karmiel", "1"),
        (6, "misgav", "2"),
    ]


def test_xlsx_blank_header_cells(tmp_path: Path) -> None:
    path = tmp_path / "blanks.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["measure_id", None, "value", None, "Notes"])
    sheet.write_row(1, 0, ["m", "x", 1, 2, "n"])
    workbook.close()
    raw = load(path)
    assert raw.headers == {"measure_id": "measure_id", "value": "value", "notes": "Notes"}
    assert raw.ignored_columns == ["__UNNAMED__1", "__UNNAMED__3"]
    assert raw.rows.select(ROW, "measure_id", "value", "notes").row(0) == (2, "m", "1", "n")
    assert raw.rows["_typed_value"].to_list() == [True]  # Excel stored 1 as a number


def test_xlsx_column_named_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dups.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["measure_id", None, "value", " Value", "Notes"])
    sheet.write_row(1, 0, ["m", "x", 1, 2, "n"])
    workbook.close()
    with pytest.raises(
        SubmissionRefused, match=r"dups.xlsx: the header names value twice \(columns 3 and 4\)"
    ):
        load(path)


def test_parquet(initiative: Initiative) -> None:
    assert pl.read_parquet(FIXTURES / "typed.parquet")["value"].dtype == pl.Int64
    raw = load("typed.parquet")
    assert (raw.file_format, raw.encoding) == ("parquet", None)
    assert raw.rows.schema[ROW] == pl.Int64
    assert all(raw.rows.schema[c] == pl.Utf8 for c in raw.headers)
    assert raw.rows["_typed_value"].to_list() == [True, True]  # an integer column
    assert raw.rows.select(ROW, "value").rows() == [(1, "12"), (2, "3")]  # records count from 1
    frame = to_long_frame(raw, initiative)
    assert frame.select("geo_code", "value").rows() == [("majd-al-krum", 12.0), ("karmiel", 3.0)]


def test_partner_column_is_kept(tmp_path: Path, initiative: Initiative) -> None:
    path = tmp_path / "p.csv"
    path.write_text("Partner,measure_id,geo_code,period,value\nkurkum,x,y,2025,1\n")
    raw = load(path)
    frame = to_long_frame(raw, initiative)
    assert frame["partner_id"].to_list() == ["kurkum"]
    assert raw.ignored_columns == []


def test_to_long_frame_normalises_keys_and_dimensions(
    tmp_path: Path, initiative: Initiative
) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        "measure_id,geo_code,period,sex,age_band,value\n"
        " Starter-Students-Trained ,karmiel,30/09/2025, Female ,,3\n"
        "no-such-measure,karmiel,30/09/2025,,,4\n"
    )
    frame = to_long_frame(load(path), initiative)
    assert frame.select("measure_id", "period", "sex", "age_band").rows() == [
        ("starter-students-trained", "2025-09", "female", "total"),
        ("no-such-measure", "30/09/2025", "total", "total"),  # no periodicity: left as written
    ]


# --- files refused before their rows are parsed -------------------------------------------------


def test_bytes_that_are_not_utf8_are_refused_naming_the_line() -> None:
    with pytest.raises(SubmissionRefused) as exc:
        load("not_utf8.csv")
    message = str(exc.value)
    first_bad = (FIXTURES / "not_utf8.csv").read_bytes().index("כ".encode("windows-1255"))
    assert first_bad == 95
    assert message.startswith("line 3 (byte 95) is not valid utf-8: b'\\xeb\\xf8")
    # Told how to fix it, without a command-line option an inbox or API partner never saw
    assert '"CSV UTF-8"' in message and "windows-1255 for Hebrew" in message
    assert "--encoding" not in message


def test_the_same_file_reads_with_its_encoding(initiative: Initiative) -> None:
    frame = to_long_frame(load("not_utf8.csv", encoding="windows-1255"), initiative)
    assert column(frame, "geo_code") == ["karmiel", "karmiel"]


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("hebrew_windows1255.csv", None), ("arabic_windows1256.csv", "utf-8")],
)
def test_legacy_code_page_undeclared_is_refused(name: str, encoding: str | None) -> None:
    with pytest.raises(SubmissionRefused, match=r"^line 1 .*windows-1255 for Hebrew") as exc:
        load(name, encoding=encoding)
    assert "--encoding" not in str(exc.value)


def test_bad_byte_after_a_bom_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    data = b"\xef\xbb\xbfmeasure_id,value\nm,1\n\nm,\xff\n"
    path.write_bytes(data)
    with pytest.raises(SubmissionRefused) as exc:
        load(path)
    assert data.index(b"\xff") == 27  # counted from the file's first byte, the BOM included
    assert str(exc.value).startswith("line 4 (byte 27) is not valid utf-8: b'\\xff\\n'")


@pytest.mark.parametrize("name", ["localities.csv", "hebrew_windows1255.csv"])
def test_utf8_declared_as_a_code_page_is_read_as_utf8_with_a_warning(
    tmp_path: Path, name: str
) -> None:
    """A declared encoding is a default, not a trap: valid UTF-8 with non-ASCII text is UTF-8
    (windows-1255 would decode its bytes as mojibake), and the partner is told."""
    source = FIXTURES / name
    if name == "hebrew_windows1255.csv":  # the same file saved as UTF-8
        source = tmp_path / name
        source.write_text((FIXTURES / name).read_text(encoding="windows-1255"), encoding="utf-8")
    expected = load(source, encoding="utf-8")
    raw = load(source, encoding="windows-1255")
    assert raw.encoding == "utf-8"
    assert raw.warnings == [
        "the file is UTF-8 text although windows-1255 was expected; it was read as UTF-8"
    ]
    assert raw.rows.equals(expected.rows)  # Hebrew names as written, not mojibake
    assert expected.warnings == []


@pytest.mark.parametrize("declared", [None, "windows-1255", "windows-1256"])
def test_a_byte_order_mark_says_utf8_whatever_was_declared(
    tmp_path: Path, declared: str | None
) -> None:
    """Excel's "CSV UTF-8" (a template filled in and saved as it came) starts with a BOM: the
    file's own mark beats the partner's setting, and the text reads as written."""
    path = tmp_path / "filled.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + "measure_id,geo_code,period,value\nx,כרמיאל,2025-Q4,5\n".encode()
    )
    raw = load(path, encoding=declared)
    assert raw.encoding == "utf-8"
    assert list(raw.headers) == ["measure_id", "geo_code", "period", "value"]
    assert raw.rows["geo_code"].to_list() == ["כרמיאל"]


def test_ascii_declared_as_a_code_page_reads() -> None:
    raw = load("utf8.csv", encoding="windows-1255")  # plain ASCII is the same in both
    assert raw.encoding == "windows-1255"
    assert raw.rows.height == 2


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(SubmissionRefused, match="unknown encoding 'klingon'"):
        load("utf8.csv", encoding="klingon")


def _unread(*_: object, **__: object) -> Any:
    raise AssertionError("the file was read")


def test_file_over_max_bytes_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    size = (FIXTURES / "utf8.csv").stat().st_size
    assert load("utf8.csv", max_bytes=size).rows.height == 2  # at the limit: read
    for name in ("read_csv", "read_xlsx", "read_parquet", "check_xlsx_expansion", "decode"):
        monkeypatch.setattr(read_files, name, _unread)
    with pytest.raises(SubmissionRefused) as exc:
        load("utf8.csv", max_bytes=size - 1)
    assert str(exc.value).startswith(f"utf8.csv is {size:,} bytes; the limit is {size - 1:,}")
    with pytest.raises(SubmissionRefused, match="the limit is 100"):
        load("dates.xlsx", max_bytes=100)


def test_xlsx_expanding_past_the_limit_is_refused_unparsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with zipfile.ZipFile(FIXTURES / "dates.xlsx") as archive:
        expanded = sum(i.file_size for i in archive.infolist())
    assert load("dates.xlsx", max_expanded_bytes=expanded).rows.height == 2
    monkeypatch.setattr(read_files, "read_xlsx", _unread)
    with pytest.raises(SubmissionRefused) as exc:
        load("dates.xlsx", max_expanded_bytes=expanded - 1)
    assert str(exc.value) == (
        f"dates.xlsx expands to {expanded:,} bytes, past the limit of {expanded - 1:,}; "
        "it is refused unparsed"
    )


def test_xlsx_bomb_is_refused_unparsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 2_000_000)
    assert path.stat().st_size < 10_000  # small on disk
    monkeypatch.setattr(read_files, "read_xlsx", _unread)
    with pytest.raises(SubmissionRefused, match="refused unparsed"):
        load(path, max_expanded_bytes=1_000_000)


def _under_declare(path: Path, size: int) -> None:
    """Rewrite every uncompressed size the zip's headers declare (local and central) as ``size``."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at != -1:
            data[at + offset : at + offset + 4] = size.to_bytes(4, "little")
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def test_xlsx_whose_headers_under_declare_its_size_is_refused_unparsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bomb that declares 100 bytes per member is measured by inflating it, not believed."""
    path = tmp_path / "liar.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 2_000_000)
        archive.writestr("[Content_Types].xml", b"<Types/>")
    _under_declare(path, 100)
    with zipfile.ZipFile(path) as archive:  # what the headers now claim
        assert sum(i.file_size for i in archive.infolist()) == 200
    monkeypatch.setattr(read_files, "read_xlsx", _unread)

    with pytest.raises(SubmissionRefused) as refused:
        load(path, max_expanded_bytes=1_000_000)
    assert str(refused.value) == (
        "liar.xlsx expands to more bytes, past the limit of 1,000,000; it is refused unparsed"
    )


def test_an_honest_workbook_inflates_to_what_it_declares() -> None:
    """The measured expansion of a real workbook is its declared one: a limit just above it
    reads it (the check does not over-count)."""
    with zipfile.ZipFile(FIXTURES / "dates.xlsx") as archive:
        declared = sum(i.file_size for i in archive.infolist())
        assert (
            read_workbooks.inflated_size(FIXTURES / "dates.xlsx", archive, 10 * declared)
            == declared
        )
    assert load("dates.xlsx", max_expanded_bytes=declared).rows.height == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("report.xlsx", b"measure_id,value\nm,1\n", "report.xlsx is not an XLSX workbook"),
        ("report.xlsx", b"", "report.xlsx is not an XLSX workbook"),
        ("report.parquet", b"PAR1 not really", "report.parquet could not be read as Parquet"),
        ("report.json", b"[]", "report.json: unsupported file type '.json'"),
        ("report.xls", b"\xd0\xcf\x11\xe0", "report.xls: unsupported file type '.xls'"),
        ("report", b"measure_id\n", "report: unsupported file type ''"),
        ("empty.csv", b"", "empty.csv is empty"),
        ("blank.csv", b" \r\n\n\t\n", "blank.csv is empty"),
        ("bom.csv", b"\xef\xbb\xbf", "bom.csv is empty"),
        ("quote.csv", b'measure_id,value\nm,"1\nm,2\n', "quote.csv could not be read as CSV"),
    ],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SubmissionRefused) as exc:
        load(path)
    assert str(exc.value).startswith(message)


def test_zip_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(SubmissionRefused, match=r"archive\.xlsx could not be read as a workbook"):
        load(path)


def test_empty_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    xlsxwriter.Workbook(str(path)).close()
    with pytest.raises(SubmissionRefused, match=r"^empty\.xlsx is empty$"):
        load(path)


def test_header_only_and_helper_only_files_have_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("measure_id,geo_code,period,value\n")
    assert load(path).rows.columns == [ROW, "measure_id", "geo_code", "period", "value"]
    assert load(path).rows.height == 0
    path.write_text("measure_title,unit\nx,y\n")
    raw = load(path)
    assert (raw.rows.columns, raw.rows.height, raw.headers) == ([ROW], 0, {})


# --- header names and numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "name"),
    [
        (" Measure ID ", "measure_id"),
        ("GEO_CODE", "geo_code"),
        ("Geo-Code", "geo_code"),
        ("Locality", "geo_code"),
        ("Reporting Period", "period"),
        ("Age group", "age_band"),
        ("Gender", "sex"),
        ("מדד", "measure_id"),
        (" יישוב ", "geo_code"),
        ("البلدة", "geo_code"),
        ("ＶＡＬＵＥ", "value"),  # full-width letters, NFKC-folded
        ("Notes", "notes"),
    ],
)
def test_canonical_header(written: str, name: str) -> None:
    assert canonical_header(written) == name


#: (text, locale, number): each written number read one way in each locale, or not at all (None).
#: Worked by hand from the locale's symbols (babel/CLDR): he_IL and en group with ',' and put
#: '.' before the decimals; de_DE groups with '.' and uses ','; fr_FR groups with a narrow
#: no-break space and uses ','; hi_IN groups 3 then 2; ar_EG writes Arabic-Indic digits with
#: '٬' grouping and '٫' before the decimals (and Latin digits as en does).
NUMBERS: list[tuple[str | None, str, float | None]] = [
    ("1,234.5", "he_IL", 1234.5),
    ("1,234.5", "de_DE", None),  # ',' is de_DE's decimal: '1,234' then '.5' fits nothing
    ("1,234.5", "fr_FR", None),
    ("1.234,5", "de_DE", 1234.5),
    ("1.234,5", "he_IL", None),  # a group symbol after the decimal point
    ("1 234,5", "fr_FR", 1234.5),
    ("1\u00a0234,5", "fr_FR", 1234.5),  # no-break space
    ("1\u202f234,5", "fr_FR", 1234.5),  # narrow no-break space, fr_FR's own
    ("1 234,5", "ru", 1234.5),
    ("1 234,5", "he_IL", None),  # he_IL does not group with a space
    ("1 234,5", "de_DE", None),
    ("0,26", "de_DE", 0.26),
    ("0,26", "fr_FR", 0.26),
    ("0,26", "he_IL", None),  # ',' groups thousands in he_IL: '0,26' is no grouping
    ("0,26", "en", None),
    ("0,260", "he_IL", None),  # a group cannot start with 0, nor follow a lone 0
    ("0,260", "de_DE", 0.26),
    ("1,234", "he_IL", 1234.0),  # the declared locale decides: ',' groups thousands
    ("1,234", "de_DE", 1.234),  # and here it is the decimal comma
    ("1.234", "he_IL", 1.234),
    ("1.234", "de_DE", 1234.0),
    ("1,234,567.5", "en", 1234567.5),
    ("1,23,4", "en", None),  # misplaced group separators
    ("12,34", "en", None),
    ("1,2345", "en", None),
    ("12,34,567.5", "hi_IN", 1234567.5),  # groups of 3, then 2
    ("12,34,567.5", "en", None),
    ("1.234.567", "de_DE", 1234567.0),
    ("1.234.567", "he_IL", None),  # two decimal points
    (" 12 ", "he_IL", 12.0),
    ("-3", "he_IL", -3.0),
    ("\u200e-3", "he_IL", -3.0),  # Hebrew software's left-to-right mark before the minus
    ("\u2212" + "3", "fr_FR", -3.0),  # the minus sign U+2212
    ("26%", "he_IL", 0.26),
    ("12,5%", "de_DE", 0.125),
    ("12,5%", "he_IL", None),
    (".5", "en", 0.5),
    ("١٬٢٣٤٫٥", "ar_EG", 1234.5),  # Arabic-Indic digits where babel says the locale uses them
    ("٠٫٢٦", "ar_EG", 0.26),
    ("1,234.5", "ar_EG", 1234.5),  # Latin digits with the Latin symbols, there too
    ("١٬٢٣٤٫٥", "ar", None),  # ar's numbering system is Latin
    ("١٢3", "ar_EG", None),  # two digit systems in one number
    ("1e5", "en", 100000.0),  # an exponent, as babel reads it
    ("1,5e3", "de_DE", 1500.0),
    ("1,5e3", "en", None),
    ("NaN", "en", None),  # NaN and infinities are not how partners write numbers
    ("inf", "en", None),
    ("abc", "en", None),
    ("", "en", None),
    (None, "en", None),
]


@pytest.mark.parametrize(("text", "locale", "number"), NUMBERS)
def test_parse_number_in_the_partners_locale(
    text: str | None, locale: str, number: float | None
) -> None:
    frame = pl.DataFrame({"text": [text]}, schema={"text": pl.Utf8})
    value = frame.select(parse_number(pl.col("text"), number_format(locale))).item()
    assert value == (pytest.approx(number) if number is not None else None)


@pytest.mark.parametrize(("text", "locale", "number"), NUMBERS)
def test_what_is_read_is_what_babel_reads(
    text: str | None, locale: str, number: float | None
) -> None:
    """The vectorised grammar agrees with babel's strict parser wherever it reads a number
    (Latin digits; babel leaves digits of other scripts to the caller)."""
    if number is None or text is None or not text.strip().isascii():
        return
    plain = text.replace("\u200e", "").replace("%", "").strip()
    group = get_group_symbol(locale)
    if group in SPACES:  # any space groups where the locale groups with one (documented)
        plain = re.sub("[ \u00a0\u202f]", group, plain)
    scale = 100 if text.endswith("%") else 1
    assert float(parse_decimal(plain, locale, strict=True)) / scale == pytest.approx(number)


def test_a_number_format_says_what_its_locale_expects() -> None:
    assert number_format("he-IL").describe() == (
        "he_IL (Hebrew (Israel)) writes numbers like 1,234.5: ',' groups thousands and '.' is "
        "the decimal separator"
    )
    assert number_format("fr_FR").example == "1 234,5"
    with pytest.raises(SubmissionRefused, match="unknown locale 'klingon'"):
        number_format("klingon")


def test_parquet_nan_is_not_a_number(tmp_path: Path, initiative: Initiative) -> None:
    path = tmp_path / "nan.parquet"
    pl.DataFrame(
        {"measure_id": ["kurkum-women-employed"], "geo_code": ["karmiel"], "period": ["2025-09"],
         "value": [float("nan")]}
    ).write_parquet(path)  # fmt: skip
    frame = to_long_frame(load(path), initiative)
    assert frame.select("value", "value_text").row(0) == (None, "NaN")  # reported, not summed


@pytest.mark.parametrize(
    ("column", "dtype_words"),
    [
        (pl.Series("value", [[1, 2], [3]]), "list"),
        (pl.Series("value", [{"a": 1}, {"a": 2}]), "struct"),
    ],
)
def test_a_parquet_column_of_lists_or_records_is_refused_by_name(
    tmp_path: Path, column: pl.Series, dtype_words: str
) -> None:
    path = tmp_path / "nested.parquet"
    pl.DataFrame(
        {"measure_id": ["x", "y"], "geo_code": ["nahf", "nahf"], "period": ["2025-Q4"] * 2}
    ).with_columns(column).write_parquet(path)
    with pytest.raises(SubmissionRefused) as refused:
        load(path)
    message = str(refused.value)
    assert message.startswith("nested.parquet: column 'value' (")
    assert dtype_words in message.lower() and "one value per cell" in message


# --- lines with fewer cells than the header -----------------------------------------------------


@pytest.mark.parametrize(
    ("separator", "quoted", "newline"),
    [(",", False, "\n"), (",", True, "\n"), (";", False, "\r\n"), ("\t", True, "\r\n")],
    ids=["comma", "comma-quoted", "semicolon-crlf", "tab-quoted-crlf"],
)
def test_a_line_with_fewer_cells_than_the_header_is_refused_naming_it(
    tmp_path: Path, separator: str, quoted: bool, newline: str
) -> None:
    """polars pads a short line with nulls: ``1,2`` under ``a,b,c`` would read as if c were
    blank. The line is named instead; ``1,2,`` (an empty last cell) is three cells and reads.
    A file without quotes is checked line by line, one with quotes record by record (a quoted
    cell may hold the separator, or a line break): both ways, with each separator."""
    m = '"m"' if quoted else "m"

    def written(*lines: str) -> str:
        return newline.join(line.replace(",", separator) for line in lines) + newline

    path = tmp_path / "short.csv"
    path.write_text(
        written("measure_id,geo_code,period,value", f"{m},nahf,2025-Q1,", "", f"{m},nahf,2025-Q2"),
        newline="",
    )
    with pytest.raises(SubmissionRefused) as refused:
        load(path)
    assert str(refused.value).startswith(
        "short.csv: line 4 has 3 cells but the header has 4; every line needs a cell for every "
        "column of the header"
    )
    path.write_text(
        written(
            "measure_id,geo_code,period,value", f"{m},nahf,2025-Q1,", "", " , , , ", f"{m},nahf,,"
        ),
        newline="",
    )
    assert column(load(path).rows, ROW) == [2, 5]  # empty last cells and blank lines are fine


def test_a_carriage_return_alone_ends_a_line(tmp_path: Path) -> None:
    """Old Mac files end lines with a carriage return alone; polars does not split there, so
    ``m,g,\\nm\\rm,g,1`` would read as one row with the measure ``m\\rm``. Such a file is
    walked record by record instead, and its short line (``m`` alone, line 3) is named."""
    path = tmp_path / "cr.csv"
    path.write_bytes(b"measure_id,geo_code,value\nm,g,\nm\rm,g,1\n")
    with pytest.raises(SubmissionRefused, match=r"cr.csv: line 3 has 1 cells but the header"):
        load(path)


def test_a_cell_csv_cannot_read_is_refused_naming_its_line(tmp_path: Path) -> None:
    """A quoted cell longer than Python's csv reads (131,072 characters) on a line that is
    short: the file is refused naming the line, never with a traceback."""
    path = tmp_path / "long.csv"
    path.write_text(f'measure_id,geo_code,value\nm,g,\n"{"x" * 200_000}",g\n')
    with pytest.raises(SubmissionRefused, match=r"long.csv: line 3 could not be read as CSV"):
        load(path)


def test_a_quoted_cell_may_hold_the_separator_or_a_line_break(tmp_path: Path) -> None:
    """In a file with quotes a record is not a line: ``"a,b"`` is one cell, and a quoted line
    break continues the record (a line of it has one comma, yet the record is whole): such a
    file reads, with its last cells blank."""
    path = tmp_path / "quoted.csv"
    path.write_text(
        'measure_id,geo_code,period,value\nm,"nahf, north",2025-Q1,\nm,"two\nlines",2025-Q2,\n'
    )
    assert column(load(path).rows, "geo_code") == ["nahf, north", "two\nlines"]


# --- workbooks: the data sheet, title rows, number cells -----------------------------------------


def _workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for at, row in enumerate(rows):
            sheet.write_row(at, 0, row)
    workbook.close()
    return path


DATA: list[list[Any]] = [
    ["measure_id", "geo_code", "period", "value"],
    ["ecommerce-centre-employees", "nahf", "2025-09", 4],
]


def test_the_sheet_holding_the_header_is_read_title_rows_skipped(tmp_path: Path) -> None:
    """A notes sheet first, and two title rows above the header: the header's sheet is found,
    and rows keep the numbers the spreadsheet shows (header on row 4, data on row 5)."""
    title = [["דוח רבעוני — מרכז המסחר המקוון"], ["", "prepared 2025-10-01"]]
    path = _workbook(
        tmp_path / "titled.xlsx",
        {"Notes": [["read me"], ["nothing here"]], "Data": [*title, *DATA]},
    )
    raw = load(path)
    assert list(raw.headers) == ["measure_id", "geo_code", "period", "value"]
    assert raw.rows.select(ROW, "geo_code", "value").rows() == [(4, "nahf", "4")]


def test_the_sheet_named_in_the_partners_settings_is_read(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "two.xlsx",
        {"Draft": DATA, "Final": [DATA[0], [*DATA[1][:3], 5]]},
    )
    assert column(load(path).rows, "value") == ["4"]  # the first sheet with the header
    assert column(load(path, sheet="Final").rows, "value") == ["5"]
    with pytest.raises(
        SubmissionRefused, match=r"two.xlsx has no sheet named 'Summary'.*'Draft', 'Final'"
    ):
        load(path, sheet="Summary")


def test_a_workbook_without_the_header_reads_its_first_row_for_the_report(
    tmp_path: Path,
) -> None:
    path = _workbook(tmp_path / "plain.xlsx", {"S": [["title"], ["a", "b"], ["1", "2"]]})
    raw = load(path)  # the first non-blank row, as before: validation names what is missing
    assert list(raw.headers) == ["title"]


def test_number_cells_are_read_as_numbers_whatever_the_locale(
    tmp_path: Path, initiative: Initiative
) -> None:
    """A number cell's text is the number itself (1.234), so it is not read in the locale (in
    ru, '1.234' typed as text is no number at all); a text cell is."""
    path = _workbook(
        tmp_path / "ru.xlsx",
        {
            "S": [
                ["measure_id", "geo_code", "period", "value"],
                ["new-resources-nis", "beit-hakerem", "2025-Q1", 1.234],
                ["new-resources-nis", "beit-hakerem", "2025-Q2", "1 234,5"],
                ["new-resources-nis", "beit-hakerem", "2025-Q3", "1.234"],
            ]
        },
    )
    frame = to_long_frame(load(path, locale="ru"), initiative)
    assert frame.select("value", "value_text").rows() == [
        (1.234, "1.234"),
        (1234.5, "1 234,5"),
        (None, "1.234"),  # typed as text: not how ru writes a number; reported, not guessed
    ]


def test_the_bomb_guard_stops_inflating_at_the_limit(tmp_path: Path) -> None:
    """Inflating stops one byte past the limit, however far the member would expand."""
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 5_000_000)
    with zipfile.ZipFile(path) as archive:
        assert read_workbooks.inflated_size(path, archive, 1000) == 1001
