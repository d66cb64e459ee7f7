"""An alert's headline in the recipient's language: what happened, where and when, in plain
words, built from the alert's stored fields (its measure's and place's names in that
language, numbers as the locale writes them). The full sentence with its statistics follows
as the evidence; it is English (``detect.describe``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ci_pipeline.model.initiative import Initiative
from ci_pipeline.report.i18n import kind_word, name_in, number, title_in
from ci_pipeline.store import Alert

#: Headline patterns by language: a regression (value, and what it was compared with), a
#: late partner, anything else.
PATTERNS: dict[str, dict[str, str]] = {
    "moved": {
        "en": "{title} in {place}, {period}: {value} (against {reference})",
        "he": "{title} ב{place}, {period}: {value} (לעומת {reference})",
        "ar": "{title} في {place}، {period}: {value} (مقابل {reference})",
    },
    "missing": {
        "en": "{partner} has not reported {title} for {period}",
        "he": "{partner} לא דיווח/ה על {title} עבור {period}",
        "ar": "{partner} لم يُبلغ عن {title} للفترة {period}",
    },
    "other": {
        "en": "{title} in {place}, {period}",
        "he": "{title} ב{place}, {period}",
        "ar": "{title} في {place}، {period}",
    },
}


def _ltr(text: str, lang: str) -> str:
    """A period or a number kept left to right inside Hebrew or Arabic text (Unicode's
    left-to-right isolate), so ``2025-Q4`` does not read ``Q4-2025`` — in a web page and in a
    plain-text message alike."""
    return f"\u2066{text}\u2069" if lang in ("he", "ar") else text


def _partner_name(initiative: Initiative, partner_id: str, lang: str) -> str:
    partner = initiative.partners.get(partner_id)
    if partner is None:
        return partner_id
    return getattr(partner, f"name_{lang}", None) or partner.name


def headline(a: Alert, initiative: Initiative, lang: str) -> str:
    """``[kind] #id`` and what happened, in ``lang`` (English for a language it lacks)."""
    lang = lang if lang in PATTERNS["moved"] else "en"
    return f"[{kind_word(a.kind, lang)}] #{a.id} {what_happened(a, initiative, lang)}"


def what_happened(a: Alert, initiative: Initiative, lang: str) -> str:
    """The headline without its ``[kind] #id`` (a page that lists those itself shows this)."""
    lang = lang if lang in PATTERNS["moved"] else "en"
    evidence: dict[str, Any] = json.loads(a.evidence or "{}")
    m = initiative.measures.get(a.measure_id)
    geo = initiative.geographies.get(a.geo_code)
    fields = {
        "title": title_in(m, lang) if m else a.measure_id,
        "place": name_in(geo.name, lang) if geo else a.geo_code,
        "period": _ltr(a.period, lang),
    }
    if a.kind == "missing":
        partner = _partner_name(initiative, a.subject or str(evidence.get("subject", "")), lang)
        return PATTERNS["missing"][lang].format(partner=partner, **fields)
    value, reference = evidence.get("value"), evidence.get("reference")
    if m is not None and isinstance(value, (int, float)) and isinstance(reference, (int, float)):
        return PATTERNS["moved"][lang].format(
            value=_ltr(number(m, value, lang), lang),
            reference=_ltr(number(m, reference, lang), lang),
            **fields,
        )
    return PATTERNS["other"][lang].format(**fields)


def headlines_for(
    languages: dict[str, str], initiative: Initiative
) -> Callable[[str], Callable[[Alert], str] | None]:
    """For each channel, the headline function of the language its readers read
    (``CI_PIPELINE_ALERT_LANGUAGES``); None for English, whose sentence is already for people."""

    def for_channel(channel: str) -> Callable[[Alert], str] | None:
        lang = languages.get(channel, "en")
        if lang == "en" or lang not in PATTERNS["moved"]:
            return None
        return lambda a: headline(a, initiative, lang)

    return for_channel
