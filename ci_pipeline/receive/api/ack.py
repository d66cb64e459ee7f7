"""``/ack/{token}``: acknowledge an alert from the link in its message, with no terminal and no
partner token (the signed link is the credential: :mod:`ci_pipeline.alert.ack`).

``GET`` shows the alert and a button in the reader's language (``?lang=he``, ``ar``; English
by default), and changes nothing, so a mail scanner fetching every link acknowledges nothing;
the button ``POST``\\s, which acknowledges the alert if it is still open, once. An expired link
is 410, an altered one 403, each with a page that says so.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, select_autoescape

from ci_pipeline import alert, store
from ci_pipeline.alert.ack import ROUTE
from ci_pipeline.receive.api.auth import ApiContext, Context
from ci_pipeline.report.i18n import LANGUAGE_NAMES, LANGUAGES, RTL, kind_word, word

router = APIRouter(tags=["alerts"])

Lang = Annotated[str, Query(pattern="^(en|he|ar)$", description="The page's language.")]

PAGE = """<!doctype html>
<html lang="{{ lang }}" dir="{{ dir }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading }}</title>
<style>body{font-family:"Noto Sans","DejaVu Sans",Arial,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
button{font-size:1.1rem;padding:.5rem 1rem}.msg{border-inline-start:4px solid #c0392b;padding-inline-start:.8rem}</style>
</head><body>
<nav>{% for code, name in languages %}<a href="?lang={{ code }}" lang="{{ code }}">{{ name }}</a> {% endfor %}</nav>
<h1>{{ heading }}</h1>
{% if message %}<p class="msg"><bdi lang="en" dir="ltr">{{ message }}</bdi></p>{% endif %}
{% if note %}<p id="outcome">{{ note }}</p>{% endif %}
{% if can_ack %}<form method="post" action="?lang={{ lang }}"><button type="submit" id="ack">{{ button }}</button></form>{% endif %}
</body></html>
"""
_env = Environment(autoescape=select_autoescape(default_for_string=True, default=True))
_template = _env.from_string(PAGE)


def _page(lang: str, heading: str, *, status: int = 200, **parts: object) -> HTMLResponse:
    html = _template.render(
        lang=lang,
        dir="rtl" if lang in RTL else "ltr",
        languages=[(c, LANGUAGE_NAMES[c]) for c in LANGUAGES],
        heading=heading,
        message=parts.get("message"),
        note=parts.get("note"),
        can_ack=parts.get("can_ack", False),
        button=word("ack_button", lang),
    )
    return HTMLResponse(html, status_code=status)


def _alert(context: ApiContext, token: str, lang: str) -> store.Alert | HTMLResponse:
    """The alert the token names, or the page saying why there is none."""
    settings = context.settings
    try:
        alert_id = alert.verify(
            token, key=alert.ack_key(settings), max_age_seconds=settings.ack_link_days * 86400
        )
    except alert.AckLinkExpired:
        return _page(lang, word("ack_expired", lang), status=410)
    except alert.AckLinkInvalid:
        return _page(lang, word("ack_invalid", lang), status=403)
    found = store.alerts_by_id([alert_id], engine=context.engine)
    if not found:
        return _page(lang, word("ack_invalid", lang), status=404)
    return found[0]


def _heading(a: store.Alert, lang: str) -> str:
    return f"{word('ack_title', lang)} #{a.id} — {kind_word(a.kind, lang)}"


def _state(a: store.Alert, lang: str) -> str | None:
    if a.status == store.AlertStatus.acknowledged:
        return f"{word('ack_already', lang)} ({a.acknowledged_by})."
    if a.status == store.AlertStatus.resolved:
        return word("ack_resolved", lang)
    return None


@router.get(f"{ROUTE}/{{token}}", response_class=HTMLResponse, summary="An alert, to acknowledge")
def show(token: str, context: Context, lang: Lang = "en") -> HTMLResponse:
    """The alert the link names and a button to acknowledge it; nothing changes."""
    a = _alert(context, token, lang)
    if isinstance(a, HTMLResponse):
        return a
    note = _state(a, lang)
    return _page(lang, _heading(a, lang), message=a.message, note=note, can_ack=note is None)


@router.post(f"{ROUTE}/{{token}}", response_class=HTMLResponse, summary="Acknowledge an alert")
def acknowledge(token: str, context: Context, lang: Lang = "en") -> HTMLResponse:
    """Acknowledge the alert the link names, if it is still open (once: a second press says
    it already was)."""
    a = _alert(context, token, lang)
    if isinstance(a, HTMLResponse):
        return a
    note = _state(a, lang)
    if note is None:
        done = alert.acknowledge(alert.alert_id(a), "acknowledgement link", engine=context.engine)
        if done is not None and done.status == store.AlertStatus.acknowledged:
            note = word("ack_done", lang)
        else:
            note = _state(done or a, lang)
    return _page(lang, _heading(a, lang), message=a.message, note=note)
