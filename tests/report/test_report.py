"""The report card: what each page says (hand-worked), the site in three languages, nothing
suppressed shown, nothing loaded from elsewhere, and the figures as a valid Data Package."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import frictionless
import polars as pl
import pytest
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.aggregate.privacy import mask
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.report import charts, content, i18n
from ci_pipeline.report.build import build_report
from ci_pipeline.report.package import write_package
from ci_pipeline.report.site import nearby, write_site
from tests.detect.test_detect import LFP, frame, series

SECRET = 0.4321987  # a suppressed value: it must appear nowhere
ALERTS = pl.DataFrame(
    {
        "id": [7, 8],
        "kind": ["step", "missing"],
        "measure_id": [LFP, LFP],
        "geo_code": ["nahf", "beit-hakerem"],
        "period": ["2025-Q4", "2025-Q4"],
        "message": ["LFP in Nahf fell to 21.9%", "Nobody reported"],
    }
)


@pytest.fixture
def indicators(initiative: Initiative) -> pl.DataFrame:
    # 2025-Q3 is suppressed: its stored value stays, and no output may show it.
    nahf = series(initiative, LFP, [0.30, 0.31, SECRET, 0.219], suppressed={-1: True})
    cluster = series(initiative, LFP, [0.28, 0.29, 0.30, 0.27], geo="beit-hakerem")
    return frame(nahf, cluster)


def test_a_page_per_place_with_suppressed_cells_as_suppressed(
    initiative: Initiative, indicators: pl.DataFrame
) -> None:
    got = content.pages(indicators, ALERTS, initiative)
    assert [p.geography.code for p in got] == ["beit-hakerem", "nahf"]  # the root first
    [nahf] = got[1].cards
    assert [(p.period, p.value, p.suppressed) for p in nahf.points] == [
        ("2025-Q1", 0.30, False),
        ("2025-Q2", 0.31, False),
        ("2025-Q3", None, True),  # suppressed: no value, whatever the row held
        ("2025-Q4", 0.219, False),
    ]
    # Nahf's own alert only; the cluster's card carries every place's alerts on the measure.
    assert [f.id for f in nahf.flags] == [7]
    assert [f.id for f in got[0].cards[0].flags] == [7, 8]


def test_the_path_to_target_is_a_straight_line_from_the_baseline(
    initiative: Initiative, indicators: pl.DataFrame
) -> None:
    """arab-women-lfp: baseline 26% in 2024-Q1, target 40% in 2030-Q4 — 27 quarters (81
    months from the start of one to the start of the other), so 14 points / 27 a quarter:
    2025-Q4 is 7 quarters in, 26 + 14 x 21/81 = 29.63%."""
    m = initiative.measures[LFP]
    assert (m.baseline and m.baseline.period, m.target and m.target.period) == (
        "2024-Q1",
        "2030-Q4",
    )
    [cluster] = content.pages(indicators, ALERTS, initiative)[0].cards
    path = dict(cluster.path)
    assert path["2024-Q1"] == pytest.approx(0.26)
    assert path["2025-Q4"] == pytest.approx(0.26 + 0.14 * 21 / 81)
    assert path["2030-Q4"] == pytest.approx(0.40)
    # A locality has no path of its own (baseline and target are the cluster's).
    assert content.pages(indicators, ALERTS, initiative)[1].cards[0].path == []


def test_every_word_exists_in_every_language() -> None:
    for key, entry in i18n.WORDS.items():
        assert set(entry) == set(i18n.LANGUAGES), key
        # Only the note that alert sentences are English is empty, in English.
        assert all(entry[lang] for lang in i18n.LANGUAGES) or key == "english_only", key


def test_numbers_as_each_locale_writes_them(initiative: Initiative) -> None:
    lfp, students = initiative.measures[LFP], initiative.measures["starter-students-trained"]
    assert i18n.number(lfp, 0.3125, "en") == "31.2%"  # half to even, as babel rounds
    assert i18n.number(students, 1250, "en") == "1,250 students"
    assert i18n.number(students, 1250, "he") == "1,250 סטודנטים"
    assert i18n.number(lfp, None, "ar") == "—"
    assert i18n.day(date(2026, 11, 30), "he") == "30 בנובמבר 2026"


def test_the_chart_marks_alerts_and_draws_no_suppressed_value(
    initiative: Initiative, indicators: pl.DataFrame
) -> None:
    [nahf] = content.pages(indicators, ALERTS, initiative)[1].cards
    spec = charts.spec(nahf)
    drawn = [v for layer in spec["layer"] for v in layer["data"]["values"]]
    assert {"start": "2025-10-01", "label": "#7"} in drawn
    assert all(d.get("value") != SECRET for d in drawn)
    assert {"start": "2025-07-01"} in drawn  # the suppressed period's dotted rule
    svg = charts.render(spec)
    assert svg.startswith("<svg") and "#7" in svg


@pytest.fixture
def site(tmp_path: Path, initiative: Initiative, indicators: pl.DataFrame) -> Path:
    masked = mask(indicators)
    got = content.pages(masked, ALERTS, initiative)
    write_site(got, initiative, tmp_path, built_on=date(2026, 11, 30))
    write_package(masked, ALERTS, initiative, tmp_path)
    return tmp_path


def test_the_site_in_three_languages_right_to_left_where_it_belongs(site: Path) -> None:
    for lang, direction in (("en", "ltr"), ("he", "rtl"), ("ar", "rtl")):
        for page in ("index.html", "nahf.html", "summary.html"):
            text = (site / lang / page).read_text(encoding="utf-8")
            assert f'<html lang="{lang}" dir="{direction}">' in text, (lang, page)
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="he/index.html"' in index and 'href="ar/index.html"' in index
    he = (site / "he" / "index.html").read_text(encoding="utf-8")
    assert "כרטיס מדדים" in he and "נחף" in he  # Hebrew words and Nahf's Hebrew name


def test_every_chart_has_its_table_and_nothing_is_loaded_from_elsewhere(site: Path) -> None:
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if page.name != "summary.html":  # the summary is tables only
            figures = re.findall(r"<figure[^>]*>(.*?)</figure>", text, flags=re.S)
            assert figures and len(figures) == text.count("<table>"), page
            assert all(f.lstrip().startswith("<svg") for f in figures), page
        # No src= or href= leaves the site (SVG namespaces are names, not requests).
        external = re.findall(r'(?:src|href)="(https?:)?//', text)
        assert external == [], page
        assert "<script" not in text


def test_no_suppressed_value_in_any_output(site: Path) -> None:
    # As a page or a file would write it (SVG coordinates are plain numbers: no % sign).
    shown = [f"{SECRET * 100:.1f}%", f"{SECRET * 100:.2f}%", str(SECRET)]
    for path in site.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not any(s in text for s in shown), path


def test_the_figures_are_a_valid_frictionless_data_package(site: Path) -> None:
    report = frictionless.validate(site / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "message"])
    rows = pl.read_csv(site / "data" / "indicators.csv")
    nahf_q3 = rows.filter((pl.col("geo_code") == "nahf") & (pl.col("period") == "2025-Q3"))
    assert nahf_q3["value"].to_list() == [None] and nahf_q3["suppressed"].to_list() == [True]


def test_build_report_from_the_store_masks_and_rebuilds_in_place(
    tmp_path: Path, initiative: Initiative, indicators: pl.DataFrame, sqlite_engine: Engine
) -> None:
    """End to end from the database: the stored row keeps the suppressed value, the report
    does not; a second build replaces the first whole (the same files, nothing left over)."""
    slices = sorted({(m, p) for m, p in indicators.select("measure_id", "period").iter_rows()})
    store.replace_indicators(initiative.info.id, slices, indicators, engine=sqlite_engine)
    root = tmp_path / "report-card"
    built = build_report(initiative, root, engine=sqlite_engine, today=date(2026, 11, 30))
    assert built.index == root / "index.html" and built.index.exists()
    rows = pl.read_csv(root / "data" / "indicators.csv")
    hidden = rows.filter(pl.col("suppressed"))
    assert hidden.height == 1 and hidden["value"].to_list() == [None]
    first = sorted(p.relative_to(root) for p in root.rglob("*"))
    (root / "stale.html").write_text("left from before", encoding="utf-8")
    build_report(initiative, root, engine=sqlite_engine, today=date(2026, 11, 30))
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == first


def test_the_intake_api_serves_the_report_card_without_a_token(
    settings: Settings, initiative: Initiative, indicators: pl.DataFrame, sqlite_engine: Engine
) -> None:
    from fastapi.testclient import TestClient

    from ci_pipeline.receive.api import create_app

    slices = sorted({(m, p) for m, p in indicators.select("measure_id", "period").iter_rows()})
    store.replace_indicators(initiative.info.id, slices, indicators, engine=sqlite_engine)
    build_report(
        initiative, settings.report_card_dir, engine=sqlite_engine, today=date(2026, 11, 30)
    )
    app = create_app(settings, initiative, engine=sqlite_engine, emitter=lambda _e: None)
    with TestClient(app) as client:
        page = client.get("/report/he/")
        assert page.status_code == 200 and 'dir="rtl"' in page.text
        assert client.get("/report/datapackage.json").json()["resources"][0]["name"] == "indicators"
        assert client.get("/report/../ci_pipeline.db").status_code == 404


def test_an_empty_store_gets_a_card_that_says_so(
    tmp_path: Path, initiative: Initiative, sqlite_engine: Engine
) -> None:
    built = build_report(
        initiative, tmp_path / "card", engine=sqlite_engine, today=date(2026, 11, 30)
    )
    assert "No data yet." in built.index.read_text(encoding="utf-8")
    assert "אין עדיין נתונים" in (built.root / "he" / "index.html").read_text(encoding="utf-8")


def test_gaps_between_groups_on_the_card(
    tmp_path: Path, initiative: Initiative, indicators: pl.DataFrame
) -> None:
    """A gap series (``detect.gaps.gap_series``' shape) on the cluster's card: both groups'
    values by period, named in each language; a suppressed period shows neither value."""
    from ci_pipeline.detect.gaps import GAP_SCHEMA

    gaps = (
        pl.DataFrame(
            {
                "measure_id": [LFP, LFP],
                "geo_code": ["beit-hakerem", "beit-hakerem"],
                "period": ["2025-Q3", "2025-Q4"],
                "disaggregation": ["gap:jewish-arab", "gap:jewish-arab"],
                "value": [0.11, None],
                "suppressed": [False, True],
                "ahead_value": [0.4111, None],
                "behind_value": [0.3011, None],
            }
        )
        .with_columns(
            pl.lit(None, pl.Float64).alias(c) for c in ("numerator", "denominator", "variance")
        )
        .with_columns(
            pl.lit(1, pl.Int64).alias(c) for c in ("partners_reported", "partners_expected")
        )
        .select(list(GAP_SCHEMA))
    )
    got = content.pages(mask(indicators), ALERTS, initiative, gaps)
    [card] = got[0].cards
    [gap] = card.gaps
    assert gap.gap.id == "jewish-arab"
    assert gap.periods == [("2025-Q3", 0.4111, 0.3011), ("2025-Q4", None, None)]
    assert got[1].cards[0].gaps == []  # Nahf has none of its own here
    write_site(got, initiative, tmp_path, built_on=date(2026, 11, 30))
    he = (tmp_path / "he" / "index.html").read_text(encoding="utf-8")
    assert "יישובים יהודיים" in he and "יישובים ערביים" in he
    assert "41.1%" in he and "30.1%" in he
    row = he[he.index("2025-Q4</bdi></td>", he.index("פער בין קבוצות")) :].split("</tr>")[0]
    assert "חסוי" in row and "%" not in row


def test_alerts_lead_with_their_headline_in_the_page_s_language(
    tmp_path: Path, initiative: Initiative, indicators: pl.DataFrame, sqlite_engine: Engine
) -> None:
    """Built from the store, the Hebrew card heads each alert with its plain-words headline
    (``alert.headline``, without its "[kind] #id": the list shows those), the English sentence
    under it; the English card has the sentence alone."""
    slices = sorted({(m, p) for m, p in indicators.select("measure_id", "period").iter_rows()})
    store.replace_indicators(initiative.info.id, slices, indicators, engine=sqlite_engine)
    with store.transaction(engine=sqlite_engine) as session:
        store.add_alert(
            store.Alert(
                initiative_id=initiative.info.id,
                kind="step",
                measure_id=LFP,
                geo_code="nahf",
                disaggregation="age_band=total",
                period="2025-Q4",
                message="Arab women's labour-force participation in Nahf fell to 21.9%",
                evidence='{"value": 0.219, "reference": 0.2926}',
            ),
            session=session,
        )
    built = build_report(
        initiative, tmp_path / "card", engine=sqlite_engine, today=date(2026, 11, 30)
    )
    he = (built.root / "he" / "index.html").read_text(encoding="utf-8")
    assert (
        '<div class="headline">השתתפות נשים ערביות בכוח העבודה בנחף, \u20662025-Q4\u2069: '
        "\u206621.9%\u2069 (לעומת \u206629.3%\u2069)"
    ) in he
    assert "fell to 21.9%" in he  # the English sentence, under it
    en = (built.root / "en" / "index.html").read_text(encoding="utf-8")
    assert 'class="headline"' not in en and "fell to 21.9%" in en


def test_each_page_links_its_root_ancestors_siblings_and_children(tmp_path: Path) -> None:
    """A nation of two districts of localities (north: a1, a2; south: b1). Worked by hand from
    the tree: the nation links its districts; north links the nation, south (its sibling)
    and its own localities; a1 links the nation, north and a2, not south or b1."""
    from tests.aggregate.test_aggregate import write_nation

    nation = write_nation(tmp_path / "nation")
    order = ["nation", "north", "south", "a1", "a2", "b1"]
    links = nearby([content.Page(nation.geographies[c], []) for c in order], nation)
    assert {code: [p.geography.code for p in near] for code, near in links.items()} == {
        "nation": ["nation", "north", "south"],
        "north": ["nation", "north", "south", "a1", "a2"],
        "south": ["nation", "north", "south", "b1"],
        "a1": ["nation", "north", "a1", "a2"],
        "a2": ["nation", "north", "a1", "a2"],
        "b1": ["nation", "south", "b1"],
    }


def test_a_place_under_a_geography_without_a_page_hangs_from_the_next_one_up(
    tmp_path: Path,
) -> None:
    """North has nothing to show, so no page: a1 and a2 hang from the nation, beside south.
    Worked: the nation links south, a1 and a2; a1 links the nation and its siblings south and
    a2; south links b1 and its siblings a1 and a2. Every page is one link from the root's."""
    from tests.aggregate.test_aggregate import write_nation

    nation = write_nation(tmp_path / "nation")
    order = ["nation", "south", "a1", "a2", "b1"]
    links = nearby([content.Page(nation.geographies[c], []) for c in order], nation)
    assert {code: [p.geography.code for p in near] for code, near in links.items()} == {
        "nation": ["nation", "south", "a1", "a2"],
        "south": ["nation", "south", "a1", "a2", "b1"],
        "a1": ["nation", "south", "a1", "a2"],
        "a2": ["nation", "south", "a1", "a2"],
        "b1": ["nation", "south", "b1"],
    }


def test_on_a_cluster_of_localities_every_page_links_every_page(initiative: Initiative) -> None:
    all_pages = [content.Page(g, []) for g in initiative.geographies.values()]
    assert len(all_pages) == 8  # the cluster and its seven localities
    for near in nearby(all_pages, initiative).values():
        assert near == all_pages


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The charts vl-convert is asked to draw, in order (``charts.render`` counted)."""
    asked: list[dict[str, object]] = []
    render = charts.render

    def counting(chart: dict[str, object]) -> str:
        asked.append(chart)
        return render(chart)

    monkeypatch.setattr(charts, "render", counting)
    return asked


def test_a_rebuild_draws_only_the_charts_that_changed(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,
    drawn: list[dict[str, object]],
) -> None:
    """Two cards (the cluster's and Nahf's): the first build draws both; the same figures
    again draw none; a new Nahf figure draws Nahf's chart only. Every build's pages are the
    pages an uncached build writes, and the folder keeps only the last build's charts."""
    cache = tmp_path / "charts"

    def build(figures: pl.DataFrame, name: str) -> dict[str, str]:
        got = content.pages(figures, ALERTS, initiative)
        folder = tmp_path / name
        write_site(got, initiative, folder, built_on=date(2026, 11, 30), drawn=cache)
        uncached = tmp_path / f"{name}-uncached"
        write_site(got, initiative, uncached, built_on=date(2026, 11, 30))
        pages = {str(p.relative_to(folder)): p.read_text() for p in folder.glob("*/*.html")}
        assert len(pages) == 3 * 3  # the cluster, Nahf and the summary, in three languages
        assert pages == {
            str(p.relative_to(uncached)): p.read_text() for p in uncached.glob("*/*.html")
        }
        return pages

    build(indicators, "first")
    assert len(drawn) == 2 * 2  # two charts, drawn for the cached build and the uncached one
    drawn.clear()
    build(indicators, "again")
    assert len(drawn) == 2  # the uncached build's only
    drawn.clear()
    changed = indicators.with_columns(
        pl.when((pl.col("geo_code") == "nahf") & (pl.col("period") == "2025-Q4"))
        .then(0.25)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    build(changed, "changed")
    assert len(drawn) == 1 + 2  # Nahf's chart, then the uncached build's two
    assert len(list(cache.iterdir())) == 2


def test_a_chart_cache_that_cannot_be_used_only_costs_drawing(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,
    drawn: list[dict[str, object]],
) -> None:
    """A cached chart removed (by another build) is drawn again; a cache path that is not a
    folder is passed over. Either way the SVGs are the ones drawn without a cache."""
    specs = [charts.spec(c) for p in content.pages(indicators, ALERTS, initiative) for c in p.cards]
    expected = charts.draw(specs)
    drawn.clear()
    cache = tmp_path / "charts"
    assert charts.draw(specs, cache) == expected and len(drawn) == len(specs) == 2
    next(cache.iterdir()).unlink()
    drawn.clear()
    assert charts.draw(specs, cache) == expected and len(drawn) == 1
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert charts.draw(specs, not_a_folder) == expected
