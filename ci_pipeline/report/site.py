"""The report card as a static site: one folder of HTML pages (the cluster, each locality, a
printable one-page summary) in English, Hebrew and Arabic, charts inlined as SVG, and the
figures behind them as a Frictionless Data Package. It opens from disk and from ``serve``
alike: every link is relative and no page loads anything from elsewhere.

Layout (``root`` is the report folder)::

    index.html               the cluster's card in English (what a reader opens first)
    en/ he/ ar/              index.html (the cluster), <locality>.html, summary.html
    data/indicators.csv      the published figures (suppressed cells blank)
    data/alerts.csv          the open alerts
    datapackage.json         the package: resources, and each measure's definition
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from ci_pipeline.model.initiative import Initiative
from ci_pipeline.report import charts, templates
from ci_pipeline.report.content import Card, Page
from ci_pipeline.report.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    RTL,
    day,
    kind_word,
    name_in,
    number,
    title_in,
    unit_label,
    word,
)
from ci_pipeline.report.kept import KeptPages, page_key


@dataclass(frozen=True)
class Built:
    """What was written: the report folder, the file a reader opens, and the page count."""

    root: Path
    index: Path
    pages: int


def _environment(initiative: Initiative, lang: str) -> Environment:
    env = Environment(
        loader=DictLoader({"page": templates.PAGE, "summary": templates.SUMMARY}),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    names = {g.code: name_in(g.name, lang) for g in initiative.geographies.values()}
    env.globals.update(
        w=lambda key: word(key, lang),
        kind=lambda k: kind_word(k, lang),
        num=lambda card, v: number(card.measure, v, lang),
        title=lambda m: title_in(m, lang),
        unit=lambda m: unit_label(m, lang),
        group=lambda side: name_in(side.name, lang),
        place=lambda code: names.get(code, code),
        lang=lang,
        dir="rtl" if lang in RTL else "ltr",
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        css=templates.CSS,
    )
    return env


def _file(page: Page) -> str:
    return "index.html" if page.geography.parent is None else f"{page.geography.code}.html"


def nearby(pages: list[Page], initiative: Initiative) -> dict[str, list[Page]]:
    """The pages each page links to, in the site's order, by the page's geography: the root,
    the page's ancestors, its siblings, its children, and itself. On a cluster of localities
    that is every page; on a national tree (2,761 places) a few dozen, where linking every page
    from every page wrote 2,761 links on each of 2,761 pages, in each language.

    A geography without a page (nothing to show) is passed over: its places hang from its
    nearest ancestor that has one, so every page is reached from the root."""
    order = {p.geography.code: i for i, p in enumerate(pages)}

    def above(code: str) -> str | None:  # the nearest ancestor with a page
        return next((a for a in initiative.ancestors(code) if a in order), None)

    children: dict[str | None, list[str]] = {}
    for code in order:
        children.setdefault(above(code), []).append(code)
    out = {}
    for p in pages:
        code = p.geography.code
        parent = above(code)
        near = {code, *initiative.ancestors(code), *children.get(None, [])}
        near |= {*children.get(code, []), *(children.get(parent, []) if parent else [])}
        out[code] = [pages[order[c]] for c in sorted(near & order.keys(), key=order.__getitem__)]
    return out


def _render_page(
    env: Environment,
    initiative: Initiative,
    page: Page,
    links: list[Page],
    lang: str,
    prefix: str,
    built_on: date,
    drawings: dict[tuple[str, str], str],
) -> str:
    """One geography's card page, linking to ``links`` (:func:`nearby`); ``prefix`` leads from
    the page's folder to the report root, ``drawings`` are the cards' charts by (geography,
    measure)."""
    code = page.geography.code
    cards = [(card, drawings[code, card.measure.id]) for card in page.cards]
    gap_drawings = {
        f"{c.measure.id}/{g.gap.id}": drawings[code, f"{c.measure.id}/{g.gap.id}"]
        for c in page.cards
        for g in c.gaps
    }
    return env.get_template("page").render(
        initiative=name_in(initiative.info.name, lang),
        page=page,
        cards=cards,
        gap_drawings=gap_drawings,
        pages=links,
        file=_file(page),
        prefix=prefix,
        own=f"{prefix}{lang}/",
        built=day(built_on, lang),
    )


def _render_summary(
    env: Environment,
    initiative: Initiative,
    root_page: Page,
    lang: str,
    built_on: date,
) -> str:
    domains: dict[str, list[Card]] = {}
    for card in root_page.cards:
        if card.measure.domain:
            domains.setdefault(card.measure.domain, []).append(card)
    headline = [c for c in root_page.cards if not c.measure.domain]
    return env.get_template("summary").render(
        initiative=name_in(initiative.info.name, lang),
        root=root_page,
        headline=headline,
        domains=sorted(domains.items()),
        flags=root_page.flags,  # the root's cards carry every place's alerts
        prefix="../",
        own=f"../{lang}/",
        built=day(built_on, lang),
    )


def write_site(
    pages: list[Page],
    initiative: Initiative,
    root: Path,
    *,
    built_on: date,
    drawn: Path | None = None,
    kept: Path | None = None,
) -> tuple[Path, int]:
    """Write every page in every language under ``root``; the index a reader opens, and the
    number of pages written. ``drawn``: the folder of charts drawn before
    (:func:`charts.draw`), where a rebuild finds the charts that did not change; ``kept``: the
    folder of the pages written before (:mod:`.kept`), where it finds the pages that did not."""
    if not pages:
        raise ValueError("an initiative without a root geography has no report card")
    root_page = next((p for p in pages if p.geography.parent is None), pages[0])
    links = nearby(pages, initiative)
    pages_kept = KeptPages(kept) if kept is not None else None
    # With kept pages: each page's content key (its language aside) and its key per language;
    # a page kept in every language, with its charts recorded, is linked and never drawn.
    contents: dict[str, str] = {}
    whole: dict[str, list[str]] = {}  # the charts of the pages kept whole, by place
    if pages_kept is not None:
        for p in pages:
            code = p.geography.code
            contents[code] = page_key(_page_inputs(initiative, p, links[code], built_on))
            names = pages_kept.charts_of(contents[code])
            if names is not None and all(
                pages_kept.has(_lang_key(contents[code], lang, prefix))
                for lang, prefix in _copies(p, root_page)
            ):
                whole[code] = names
    fresh = {p.geography.code: _specs(p) for p in pages if p.geography.code not in whole}
    specs = {key: spec for own in fresh.values() for key, spec in own.items()}
    kept_charts = {name for names in whole.values() for name in names}
    drawings = dict(zip(specs, charts.draw(list(specs.values()), drawn, kept_charts), strict=True))
    if pages_kept is not None:
        for code, content in contents.items():
            names = whole.get(code)
            if names is None:
                names = [charts.chart_name(spec) for spec in fresh[code].values()]
            pages_kept.record(content, names)
    written = 0

    def page_file(env: Environment, page: Page, lang: str, prefix: str, target: Path) -> None:
        """The page written at ``target``, or the same page kept from the last build."""
        code = page.geography.code
        key = _lang_key(contents[code], lang, prefix) if pages_kept is not None else None
        if pages_kept is not None and key is not None and pages_kept.take(key, target):
            return
        if code in whole and (code, "") not in drawings:
            # Kept whole, but removed since (by another build): its charts are drawn after all.
            mine = _specs(page)
            drawings.update(zip(mine, charts.draw(list(mine.values())), strict=True))
            drawings[code, ""] = ""  # drawn: not again for its other languages
        near = links[code]
        text = _render_page(env, initiative, page, near, lang, prefix, built_on, drawings)
        target.unlink(missing_ok=True)  # a new file: never written through a kept page's link
        target.write_text(text, encoding="utf-8")
        if pages_kept is not None and key is not None:
            pages_kept.keep(key, target)

    for lang in LANGUAGES:
        env = _environment(initiative, lang)
        folder = root / lang
        folder.mkdir(parents=True, exist_ok=True)
        for page in pages:
            page_file(env, page, lang, "../", folder / _file(page))
            written += 1
        (folder / "summary.html").write_text(
            _render_summary(env, initiative, root_page, lang, built_on), encoding="utf-8"
        )
        written += 1
    # The file a reader opens: the cluster in English, its links one folder up.
    index = root / "index.html"
    page_file(_environment(initiative, "en"), root_page, "en", "", index)
    if pages_kept is not None:
        pages_kept.prune()
    return index, written + 1


def _specs(page: Page) -> dict[tuple[str, str], dict[str, Any]]:
    """The charts of a page's cards (and of their gaps), by (place, chart)."""
    specs: dict[tuple[str, str], dict[str, Any]] = {}
    code = page.geography.code
    for card in page.cards:
        specs[code, card.measure.id] = charts.spec(card)
        for gap in card.gaps:
            specs[code, f"{card.measure.id}/{gap.gap.id}"] = charts.gap_spec(gap, card.measure)
    return specs


def _copies(page: Page, root_page: Page) -> list[tuple[str, str]]:
    """The (language, prefix) of each file a page is written as: once per language, and the
    root's page once more as the site's index."""
    copies = [(lang, "../") for lang in LANGUAGES]
    return copies + ([("en", "")] if page is root_page else [])


def _lang_key(content: str, lang: str, prefix: str) -> str:
    """A page file's key: its content's key (:func:`_page_inputs`), language and place."""
    return page_key((content, lang, prefix))


def _page_inputs(
    initiative: Initiative, page: Page, links: list[Page], built_on: date
) -> tuple[object, ...]:
    """Everything :func:`_render_page` writes a page from, besides the code, its language and
    where it sits (:func:`_lang_key`): the definitions (by their digest: names, titles, units,
    gaps), the page's geography and cards (each card's measure by its id, the definitions
    holding the rest; its charts are drawn from the same), the places it links to and the
    build's date."""
    # The points by the page's digest of its cells where it has one (pages made by
    # content.pages do), so a kept page's points are never made.
    series = page.series_key
    cards = tuple(
        (
            c.measure.id,
            tuple(c.points) if series is None else len(c.points),
            c.path,
            c.flags,
            tuple((g.gap.id, g.periods) for g in c.gaps),
        )
        for c in page.cards
    )
    near = tuple(p.geography.code for p in links)
    return (initiative.digest, page.geography.code, series, cards, near, built_on)
