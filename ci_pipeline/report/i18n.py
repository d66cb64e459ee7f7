"""The report card's three languages: its words, its direction, and numbers and dates as each
locale writes them (CLDR through babel, never hand-written separators)."""

from __future__ import annotations

import math
from datetime import date
from functools import cache

from babel import Locale
from babel.dates import format_date
from babel.numbers import NumberPattern, parse_pattern

from ci_pipeline.model.initiative import Measure, Names, Unit

LANGUAGES = ("en", "he", "ar")
#: Written right to left.
RTL = frozenset({"he", "ar"})
#: The CLDR locale each language's numbers and dates follow (Israel's: Arabic readers there
#: write Western digits, as ``ar_IL`` does).
LOCALES = {"en": "en_IL", "he": "he_IL", "ar": "ar_IL"}
LANGUAGE_NAMES = {"en": "English", "he": "עברית", "ar": "العربية"}

#: The interface's words. Every key exists in every language (a test checks).
WORDS: dict[str, dict[str, str]] = {
    "report_card": {"en": "Report card", "he": "כרטיס מדדים", "ar": "بطاقة المؤشرات"},
    "summary": {"en": "One-page summary", "he": "סיכום בעמוד אחד", "ar": "ملخص في صفحة واحدة"},
    "localities": {"en": "Localities", "he": "יישובים", "ar": "البلدات"},
    "open_alerts": {"en": "Open alerts", "he": "התראות פתוחות", "ar": "تنبيهات مفتوحة"},
    "no_alerts": {
        "en": "No open alerts.",
        "he": "אין התראות פתוחות.",
        "ar": "لا توجد تنبيهات مفتوحة.",
    },
    "measure": {"en": "Measure", "he": "מדד", "ar": "المؤشر"},
    "period": {"en": "Period", "he": "תקופה", "ar": "الفترة"},
    "value": {"en": "Value", "he": "ערך", "ar": "القيمة"},
    "latest": {"en": "Latest", "he": "אחרון", "ar": "الأحدث"},
    "coverage": {"en": "Partners reported", "he": "שותפים שדיווחו", "ar": "الشركاء الذين أبلغوا"},
    "baseline": {"en": "Baseline", "he": "נקודת מוצא", "ar": "خط الأساس"},
    "target": {"en": "Target", "he": "יעד", "ar": "الهدف"},
    "path": {"en": "Path to target", "he": "המסלול ליעד", "ar": "المسار نحو الهدف"},
    "suppressed": {"en": "suppressed", "he": "חסוי", "ar": "محجوب"},
    "suppressed_note": {
        "en": "Suppressed: too few people to publish (privacy).",
        "he": "חסוי: מעט מדי אנשים כדי לפרסם (פרטיות).",
        "ar": "محجوب: عدد قليل جدًا من الأشخاص للنشر (الخصوصية).",
    },
    "no_data": {"en": "No data yet.", "he": "אין עדיין נתונים.", "ar": "لا توجد بيانات بعد."},
    "alert": {"en": "Alert", "he": "התראה", "ar": "تنبيه"},
    "data_table": {
        "en": "Data behind the chart",
        "he": "הנתונים שמאחורי התרשים",
        "ar": "البيانات خلف الرسم",
    },
    "download": {
        "en": "Download the figures (Frictionless Data Package: CSV and datapackage.json)",
        "he": "הורדת הנתונים (Frictionless Data Package: ‏CSV ו-datapackage.json)",
        "ar": "تنزيل الأرقام (حزمة بيانات Frictionless: ‏CSV و datapackage.json)",
    },
    "built": {"en": "Built", "he": "נבנה", "ar": "أُنشئ"},
    "english_only": {
        "en": "",
        "he": "הנוסח המלא של כל התראה, עם הנתונים הסטטיסטיים, באנגלית.",
        "ar": "النص الكامل لكل تنبيه، مع الإحصاءات، باللغة الإنجليزية.",
    },
    "ack_title": {"en": "Alert", "he": "התראה", "ar": "تنبيه"},
    "ack_button": {
        "en": "Acknowledge: I own this",
        "he": "אישור: אני מטפל/ת בזה",
        "ar": "تأكيد: أنا أتولى هذا",
    },
    "ack_done": {
        "en": "Acknowledged. It will not be sent again.",
        "he": "אושר. ההתראה לא תישלח שוב.",
        "ar": "تم التأكيد. لن يُرسل التنبيه مرة أخرى.",
    },
    "ack_already": {
        "en": "This alert was already acknowledged",
        "he": "התראה זו כבר אושרה",
        "ar": "تم تأكيد هذا التنبيه من قبل",
    },
    "ack_resolved": {
        "en": "This alert has resolved: the indicator recovered.",
        "he": "ההתראה נסגרה: המדד חזר לקדמותו.",
        "ar": "أُغلق التنبيه: عاد المؤشر إلى وضعه.",
    },
    "ack_expired": {
        "en": "This link has expired. Ask the data team, or run: ci-pipeline alerts ack",
        "he": "תוקף הקישור פג. פנו לצוות הנתונים, או הריצו: ci-pipeline alerts ack",
        "ar": "انتهت صلاحية الرابط. اطلب من فريق البيانات، أو شغّل: ci-pipeline alerts ack",
    },
    "ack_invalid": {
        "en": "This is not a valid acknowledgement link.",
        "he": "זה אינו קישור אישור תקף.",
        "ar": "هذا ليس رابط تأكيد صالحًا.",
    },
    "gap": {"en": "Gap between groups", "he": "פער בין קבוצות", "ar": "الفجوة بين المجموعات"},
    "higher_is_better": {"en": "higher is better", "he": "גבוה יותר עדיף", "ar": "الأعلى أفضل"},
    "lower_is_better": {"en": "lower is better", "he": "נמוך יותר עדיף", "ar": "الأدنى أفضل"},
    "kind_step": {"en": "sudden change", "he": "שינוי חד", "ar": "تغير مفاجئ"},
    "kind_seasonal_step": {"en": "sudden change", "he": "שינוי חד", "ar": "تغير مفاجئ"},
    "kind_sustained": {"en": "sustained change", "he": "שינוי מתמשך", "ar": "تغير مستمر"},
    "kind_drift": {"en": "steady worsening", "he": "הרעה הדרגתית", "ar": "تدهور تدريجي"},
    "kind_missing": {"en": "missing data", "he": "נתונים חסרים", "ar": "بيانات ناقصة"},
    "kind_off_track": {"en": "off track", "he": "סטייה מהמסלול", "ar": "خارج المسار"},
    "kind_quality": {"en": "data quality", "he": "איכות נתונים", "ar": "جودة البيانات"},
    "kind_gap": {"en": "widening gap", "he": "פער מתרחב", "ar": "فجوة متسعة"},
}

#: Unit labels the bundled measures use, in Hebrew and Arabic; others are shown as written.
UNIT_LABELS: dict[str, dict[str, str]] = {
    "NIS": {"he": "₪", "ar": "₪"},
    "people": {"he": "אנשים", "ar": "أشخاص"},
    "students": {"he": "סטודנטים", "ar": "طلاب"},
    "businesses": {"he": "עסקים", "ar": "مصالح تجارية"},
    "business owners": {"he": "בעלי עסקים", "ar": "أصحاب مصالح"},
    "residents": {"he": "תושבים", "ar": "سكان"},
    "employees": {"he": "עובדים", "ar": "موظفون"},
    "women": {"he": "נשים", "ar": "نساء"},
}


def word(key: str, lang: str) -> str:
    """The interface word ``key`` in ``lang`` (English where a language lacks it)."""
    entry = WORDS[key]
    return entry.get(lang) or entry["en"]


def kind_word(kind: str, lang: str) -> str:
    """An alert kind in plain words."""
    key = f"kind_{kind}"
    return word(key, lang) if key in WORDS else kind.replace("_", " ")


def name_in(names: Names, lang: str) -> str:
    """A place's name in ``lang``, else in English."""
    return getattr(names, lang, None) or names.en


def title_in(measure: Measure, lang: str) -> str:
    """A measure's title in ``lang``, else in English."""
    return measure.title_in.get(lang) or measure.title


def number(measure: Measure, value: float | None, lang: str) -> str:
    """A value as the locale writes it, with its unit: 31.2%, ‏31.2%, 1,250 people, 3.80."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if measure.unit is Unit.proportion:
        return _formatted(value, "#,##0.0%", lang)
    if measure.unit is Unit.score:
        return _formatted(value, "#,##0.00", lang)
    return f"{_formatted(value, '#,##0.##', lang)} {unit_label(measure, lang)}"


def _formatted(value: float, pattern: str, lang: str) -> str:
    """What babel's ``format_decimal``/``format_percent`` write, with the pattern and the
    locale parsed once, not for each of a national report card's 50,000 figures (a third of
    its rendering time)."""
    return _pattern(pattern).apply(value, _locale(lang))


@cache
def _pattern(pattern: str) -> NumberPattern:
    return parse_pattern(pattern)


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(LOCALES[lang])


def unit_label(measure: Measure, lang: str) -> str:
    """The measure's unit label in ``lang`` where known, else as written."""
    if lang == "en":
        return measure.unit_label
    return UNIT_LABELS.get(measure.unit_label, {}).get(lang, measure.unit_label)


def day(when: date, lang: str) -> str:
    """A date as the locale writes it in full (30 November 2026, 30 בנובמבר 2026 …)."""
    return format_date(when, format="long", locale=LOCALES[lang])
