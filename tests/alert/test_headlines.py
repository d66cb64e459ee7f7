"""An alert's headline in its readers' language: plain words from the alert's own fields, the
English sentence with its statistics under it."""

from __future__ import annotations

import json

from ci_pipeline import alert
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.store import Alert

STEP_EVIDENCE = {"value": 0.219, "reference": 0.2926, "subject": ""}


def _alert(
    kind: str,
    evidence: dict[str, object],
    *,
    measure_id: str = "arab-women-lfp",
    geo_code: str = "nahf",
    period: str = "2025-Q4",
    subject: str = "",
) -> Alert:
    return Alert(
        id=1,
        initiative_id="beit-hakerem",
        kind=kind,
        measure_id=measure_id,
        geo_code=geo_code,
        disaggregation="total",
        period=period,
        subject=subject,
        message="Arab women's labour-force participation in Nahf fell to 21.9% …",
        evidence=json.dumps(evidence),
    )


def test_a_step_in_hebrew_and_arabic(initiative: Initiative) -> None:
    step = _alert("step", STEP_EVIDENCE)
    # Periods and numbers are left-to-right isolates (U+2066 … U+2069) in right-to-left text.
    assert alert.headline(step, initiative, "he") == (
        "[שינוי חד] #1 השתתפות נשים ערביות בכוח העבודה בנחף, \u20662025-Q4\u2069: "
        "\u206621.9%\u2069 (לעומת \u206629.3%\u2069)"
    )
    assert alert.headline(step, initiative, "ar").startswith("[تغير مفاجئ] #1 ")
    assert "في نحف" in alert.headline(step, initiative, "ar")
    assert alert.headline(step, initiative, "en") == (
        "[sudden change] #1 Arab women's labour-force participation in Nahf, 2025-Q4: 21.9% "
        "(against 29.3%)"
    )


def test_a_late_partner_by_its_name_in_the_language(initiative: Initiative) -> None:
    late = _alert(
        "missing",
        {"subject": "kurkum"},
        measure_id="kurkum-women-employed",
        geo_code="majd-al-krum",
        period="2025-12",
        subject="kurkum",
    )
    partner = initiative.partners["kurkum"]
    he = alert.headline(late, initiative, "he")
    assert he.startswith("[נתונים חסרים] #1 ")
    assert (partner.name_he or partner.name) in he and "2025-12" in he


def test_a_channel_reads_its_language_and_english_keeps_its_sentence(
    initiative: Initiative,
) -> None:
    step = _alert("step", STEP_EVIDENCE)
    for_channel = alert.headlines_for({"json://he.example.org": "he"}, initiative)
    assert for_channel("json://other.example.org") is None  # English: the sentence as it is
    he = for_channel("json://he.example.org")
    assert he is not None
    _, body = alert.compose([step], "backbone", None, he)
    first, second = body.splitlines()[:2]
    assert first == "• " + alert.headline(step, initiative, "he")
    assert second.strip() == step.message  # the details, with the statistics
