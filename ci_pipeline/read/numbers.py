"""Numbers read the way the partner's locale writes them, or not at all.

A partner declares a CLDR locale (``he_IL``, ``en``, ``de_DE``, ``fr_FR``, ``ar_EG`` …; partner
settings, overridable per submission). Babel supplies the locale's grammar: its decimal and
group symbols, its grouping sizes (3 then 3, or 3 then 2 in ``hi_IN``) and its default numbering
system. The grammar is compiled once into a regular expression and applied to whole columns by
polars, so no row is parsed in Python.

What a cell must look like, with the semantics of ``babel.numbers.parse_decimal(strict=True)``:
an optional sign, digits with either no group symbol or every group symbol where the locale
puts one (the first group does not start with 0), then optionally the decimal symbol and
digits, then optionally ``%``. So in ``he_IL`` (and ``en``) ``1,234.5`` is 1234.5, ``1,234`` is
1234 and ``0,26`` is not a number; in ``de_DE`` ``1.234,5`` is 1234.5 and ``0,26`` is 0.26; in
``fr_FR`` ``1 234,5`` is 1234.5. The declared locale decides: a cell is read one way, never
guessed at. Where the locale groups with a space, a space, a no-break space (U+00A0) and a narrow
no-break space (U+202F) all group. Invisible direction marks (LRM, RLM, ALM, which Hebrew and
Arabic software puts before a minus sign) are dropped; an exponent (``1e20``) is read, as babel
reads it; ``NaN`` and ``inf`` are not numbers a partner writes.

Arabic-Indic digits (٠١٢…) are read where the locale's default numbering system is ``arab`` or
``arabext`` (``ar_EG``, ``ar_IL``, ``ar_SA``: babel says so), with that system's symbols
(``٫`` decimal, ``٬`` group); Latin digits are read there too, with the Latin symbols. In a
locale whose numbering system is Latin (``ar``, ``he_IL``) they do not fit the grammar, and the
contract reports them as ``<column>_number_format``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import polars as pl
from babel import Locale, UnknownLocaleError
from babel import numbers as babel_numbers

from ci_pipeline.errors import SubmissionRefused

#: Digits of the non-Latin numbering systems babel names as a locale's default (CLDR
#: numberingSystems: ``arab`` and ``arabext`` are the ones this region's locales use).
NATIVE_DIGITS = {"arab": "٠١٢٣٤٥٦٧٨٩", "arabext": "۰۱۲۳۴۵۶۷۸۹"}

#: Space characters that group digits where the locale's group symbol is one of them.
SPACES = (" ", "\u00a0", "\u202f")

#: Invisible direction marks (LRM, RLM, ALM, embeddings, isolates): not part of a number.
DIRECTION_MARKS = "[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]"

#: Text that is plainly meant as a number (digits of any script, separators, a sign, a
#: percent sign): when it does not fit the locale's grammar it is a format problem, not a word.
NUMBER_LIKE = r"^[+\-\u2212]?[\d.,'’٫٬\s]*\d[\d.,'’٫٬\s]*[%٪]?$"


@dataclass(frozen=True)
class Grammar:
    """One numbering system's way of writing a number in a locale."""

    digits: str  # the ten digits, 0 to 9
    decimal: str
    group: str
    primary: int  # digits in the last group before the decimal symbol
    secondary: int  # digits in each group before it

    def pattern(self) -> str:
        """The anchored regular expression a number in this grammar matches (after signs,
        percent signs, direction marks and outer spaces are taken off)."""
        d = f"[{_hex(self.digits[0])}-{_hex(self.digits[9])}]"
        nonzero = f"[{_hex(self.digits[1])}-{_hex(self.digits[9])}]"
        g, dot = _hex(self.group), _hex(self.decimal)
        grouped = (
            f"{nonzero}{d}{{0,{self.secondary - 1}}}(?:{g}{d}{{{self.secondary}}})*"
            f"{g}{d}{{{self.primary}}}"
        )
        exponent = f"(?:[eE][+-]?{d}+)?"  # 1e20, 1.5E-3: babel reads them, and so do we
        return f"^(?:(?:{grouped}|{d}+)(?:{dot}{d}+)?|{dot}{d}+){exponent}$"


@dataclass(frozen=True)
class NumberFormat:
    """A locale's grammar for numbers: what :func:`parse_number` reads and messages quote."""

    locale: str  # as declared, e.g. he_IL
    name: str  # in English, e.g. Hebrew (Israel)
    grammars: tuple[Grammar, ...]  # Latin first, then the locale's own digits if it has any
    example: str  # 1234.5 as the locale writes it, e.g. 1,234.5

    @property
    def latin(self) -> Grammar:
        return self.grammars[0]

    def describe(self) -> str:
        """What the locale expects, in words: quoted in the ``number_format`` messages."""
        grammar = self.latin
        group = "a space" if grammar.group in SPACES else f"'{grammar.group}'"
        return (
            f"{self.locale} ({self.name}) writes numbers like {self.example}: "
            f"{group} groups thousands and '{grammar.decimal}' is the decimal separator"
        )


def _hex(text: str) -> str:
    """Characters as regex escapes (``\\x{2C}``): safe whatever the symbol is."""
    return "".join(f"\\x{{{ord(c):X}}}" for c in text)


def _grammar(locale: Locale, system: str, digits: str) -> Grammar:
    primary, secondary = locale.decimal_formats[None].grouping
    group = babel_numbers.get_group_symbol(locale, numbering_system=system)
    return Grammar(
        digits=digits,
        decimal=babel_numbers.get_decimal_symbol(locale, numbering_system=system),
        group=" " if group in SPACES else group,  # spaces are made one before matching
        primary=primary,
        secondary=secondary,
    )


@lru_cache(maxsize=64)
def number_format(locale_id: str) -> NumberFormat:
    """The number grammar of a CLDR locale id (``he_IL``, ``he-IL`` and ``de`` alike).

    Raises :class:`SubmissionRefused` for a locale babel does not know.
    """
    try:
        locale = Locale.parse(locale_id.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise SubmissionRefused(
            f"unknown locale {locale_id!r}: give a CLDR locale such as he_IL, ar, en, de_DE "
            "or fr_FR"
        ) from None
    grammars = [_grammar(locale, "latn", "0123456789")]
    native = locale.default_numbering_system
    if native in NATIVE_DIGITS:
        grammars.append(_grammar(locale, native, NATIVE_DIGITS[native]))
    example = babel_numbers.format_decimal(1234.5, locale=locale)
    return NumberFormat(
        locale=str(locale),
        name=locale.get_display_name("en") or str(locale),
        grammars=tuple(grammars),
        example=example.replace("\u202f", " ").replace("\u00a0", " "),
    )


def check_locale(locale_id: str) -> str:
    """The locale id as babel spells it (``he-il`` → ``he_IL``), or :class:`SubmissionRefused`."""
    return number_format(locale_id).locale


def _in_grammar(text: pl.Expr, grammar: Grammar) -> tuple[pl.Expr, pl.Expr]:
    """Whether ``text`` is a number in ``grammar``, and its value as a float when it is."""
    fits = text.str.contains(grammar.pattern())
    plain = text.str.replace_all(grammar.group, "", literal=True).str.replace(
        grammar.decimal, ".", literal=True
    )
    if grammar.digits != "0123456789":
        plain = plain.str.replace_many(list(grammar.digits), list("0123456789"))
    return fits, plain.cast(pl.Float64, strict=False)


def parse_number(text: pl.Expr, numbers: NumberFormat) -> pl.Expr:
    """Numbers as the locale writes them; null for text that is not one (the validate stage
    reports it, naming the row, the column, the value and what the locale expects).

    A trailing ``%`` divides by 100 (``26%`` is 0.26).
    """
    s = text.str.replace_all(DIRECTION_MARKS, "").str.strip_chars()
    if numbers.latin.group == " ":
        s = s.str.replace_all("[\u00a0\u202f ]", " ")
    percent = s.str.contains("[%٪]$")
    s = s.str.replace("[%٪]$", "").str.strip_chars_end()
    negative = s.str.contains("^[\\-\u2212]")
    s = s.str.replace("^[+\\-\u2212]", "")
    number = pl.lit(None, dtype=pl.Float64)
    for grammar in reversed(numbers.grammars):
        fits, value = _in_grammar(s, grammar)
        number = pl.when(fits).then(value).otherwise(number)
    number = pl.when(negative).then(-number).otherwise(number)
    return pl.when(percent).then(number / 100).otherwise(number)


def parse_plain_number(text: pl.Expr) -> pl.Expr:
    """A number a file stored as a number (an XLSX number cell, a Parquet numeric column),
    rendered as text by the reader: locale-free, read as is; NaN and infinities are not."""
    number = text.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def looks_like_number(text: pl.Expr) -> pl.Expr:
    """Whether the text is plainly meant as a number (digits and separators), so a failure to
    read it is a matter of format (``<column>_number_format``), not a word (``_is_number``)."""
    return text.str.replace_all(DIRECTION_MARKS, "").str.strip_chars().str.contains(NUMBER_LIKE)
