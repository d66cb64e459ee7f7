"""``report.kept``: a rebuild writes again only the pages whose inputs changed, and every page
it writes is the page a build without kept pages writes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ci_pipeline.model.initiative import Initiative
from ci_pipeline.report import charts, content, site
from ci_pipeline.report.site import write_site
from tests.report.test_report import ALERTS, indicators  # noqa: F401  (a fixture)

DAY = date(2026, 11, 30)


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pages rendered, by geography and language (``site._render_page`` counted)."""
    calls: list[str] = []
    render = site._render_page

    def counting(*args: Any) -> str:
        calls.append(f"{args[2].geography.code}/{args[4]}")
        return render(*args)

    monkeypatch.setattr(site, "_render_page", counting)
    return calls


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*.html")}


def _build(
    tmp_path: Path,
    initiative: Initiative,
    figures: pl.DataFrame,
    name: str,
    rendered: list[str],
    day: date = DAY,
    kept: Path | None = None,
    alerts: pl.DataFrame = ALERTS,
) -> list[str]:
    """Build with the kept pages, and without; the pages the kept build rendered. Both builds
    write the same files."""
    pages = content.pages(figures, alerts, initiative)
    write_site(pages, initiative, tmp_path / f"{name}-whole", built_on=day)
    rendered.clear()
    folder = tmp_path / name
    drawn = tmp_path / "charts"
    write_site(pages, initiative, folder, built_on=day, drawn=drawn, kept=kept or tmp_path / "kept")
    assert _files(folder) == _files(tmp_path / f"{name}-whole")
    return sorted(rendered)


def test_a_rebuild_renders_only_the_pages_whose_inputs_changed(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
) -> None:
    """Two pages (the cluster's and Nahf's) in three languages, and the cluster's English page
    again as the site's index: 7 rendered the first time. The same figures: none. A new
    Nahf figure for 2025-Q4: Nahf's three pages (the cluster's card is the cluster's own
    series, and its links name Nahf as before). The next day: all 7 (each page says the day
    it was built). The kept folder holds the last build's 7 pages only."""
    root = next(g.code for g in initiative.geographies.values() if g.parent is None)
    everything = sorted(
        [f"{g}/{lang}" for g in (root, "nahf") for lang in ("ar", "en", "he")] + [f"{root}/en"]
    )
    kept = tmp_path / "kept"
    assert _build(tmp_path, initiative, indicators, "first", rendered) == everything
    assert len(list(kept.glob("*.html"))) == 7
    assert _build(tmp_path, initiative, indicators, "again", rendered) == []
    changed = indicators.with_columns(
        pl.when((pl.col("geo_code") == "nahf") & (pl.col("period") == "2025-Q4"))
        .then(0.25)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    assert _build(tmp_path, initiative, changed, "changed", rendered) == [
        "nahf/ar",
        "nahf/en",
        "nahf/he",
    ]
    assert len(list(kept.glob("*.html"))) == 7
    next_day = date(2026, 12, 1)
    assert _build(tmp_path, initiative, changed, "next", rendered, next_day) == everything
    assert len(list(kept.glob("*.html"))) == 7


def test_changed_definitions_render_every_page(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
) -> None:
    """A renamed place or measure changes the definitions' digest: every page is rendered."""
    _build(tmp_path, initiative, indicators, "first", rendered)
    edited = initiative.model_copy(update={"digest": "another"})
    assert len(_build(tmp_path, edited, indicators, "edited", rendered)) == 7


def test_kept_pages_that_cannot_be_used_only_cost_rendering(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
) -> None:
    """A kept page removed (by another build) is rendered again; a kept folder that is a file
    keeps nothing. Either way the pages are the ones written without kept pages."""
    kept = tmp_path / "kept"
    _build(tmp_path, initiative, indicators, "first", rendered)
    gone = sorted(kept.glob("*.html"))[0]
    gone.unlink()
    assert len(_build(tmp_path, initiative, indicators, "again", rendered)) == 1
    assert gone.exists()  # kept again
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert len(_build(tmp_path, initiative, indicators, "b1", rendered, kept=blocked)) == 7
    assert len(_build(tmp_path, initiative, indicators, "b2", rendered, kept=blocked)) == 7


def test_a_kept_page_is_never_written_through(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
) -> None:
    """Kept pages are links to the site's files: a build into a folder that holds them (a
    site written before) writes new files, and the kept pages keep their text."""
    kept = tmp_path / "kept"
    _build(tmp_path, initiative, indicators, "first", rendered)
    before = {p.name: p.read_text() for p in kept.glob("*.html")}
    pages = content.pages(indicators, ALERTS, initiative)
    write_site(pages, initiative, tmp_path / "first", built_on=date(2027, 1, 1))
    assert {p.name: p.read_text() for p in kept.glob("*.html")} == before


def test_an_alert_closed_renders_the_pages_that_listed_it(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
) -> None:
    """Alert #8 is on Beit HaKerem, which has no page: closing it changes the cluster's pages
    only (the cluster's card lists every place's alerts): 3 and the index. Closing #7 too
    (on Nahf) changes Nahf's 3 pages and the cluster's again: 7."""
    root = next(g.code for g in initiative.geographies.values() if g.parent is None)
    _build(tmp_path, initiative, indicators, "first", rendered)
    open_7 = ALERTS.filter(pl.col("id") == 7)
    assert _build(tmp_path, initiative, indicators, "one", rendered, alerts=open_7) == sorted(
        [f"{root}/{lang}" for lang in ("ar", "en", "he")] + [f"{root}/en"]
    )
    none = ALERTS.clear()
    assert len(_build(tmp_path, initiative, indicators, "none", rendered, alerts=none)) == 7


def test_a_page_kept_whole_is_not_drawn_and_keeps_its_charts(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster's and Nahf's cards have a chart each. A build that keeps both pages works
    out no chart at all, and the charts stay drawn (the next change needs them); a new Nahf
    figure works out Nahf's chart only. A kept page removed by another build is drawn again
    for itself, without a cache."""
    specs: list[str] = []
    spec = charts.spec

    def counting(card: content.Card) -> dict[str, Any]:
        specs.append(card.measure.id)
        return spec(card)

    monkeypatch.setattr(charts, "spec", counting)
    _build(tmp_path, initiative, indicators, "first", rendered)
    drawn = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert len(drawn) == 2
    specs.clear()
    pages = content.pages(indicators, ALERTS, initiative)
    write_site(
        pages,
        initiative,
        tmp_path / "again",
        built_on=DAY,
        drawn=tmp_path / "charts",
        kept=tmp_path / "kept",
    )
    assert specs == []
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == drawn
    changed = indicators.with_columns(
        pl.when((pl.col("geo_code") == "nahf") & (pl.col("period") == "2025-Q4"))
        .then(0.25)
        .otherwise(pl.col("value"))
        .alias("value")
    )
    specs.clear()
    write_site(
        content.pages(changed, ALERTS, initiative),
        initiative,
        tmp_path / "changed",
        built_on=DAY,
        drawn=tmp_path / "charts",
        kept=tmp_path / "kept",
    )
    assert len(specs) == 1  # Nahf's card
    assert _files(tmp_path / "changed") == _files(_whole(tmp_path, initiative, changed))
    for page in (tmp_path / "kept").glob("*.html"):
        page.unlink()  # removed by another build, after this one found them kept
    monkeypatch.setattr(site.KeptPages, "has", lambda self, key: True)
    write_site(
        content.pages(changed, ALERTS, initiative),
        initiative,
        tmp_path / "gone",
        built_on=DAY,
        drawn=tmp_path / "charts",
        kept=tmp_path / "kept",
    )
    assert _files(tmp_path / "gone") == _files(tmp_path / "changed")


def _whole(tmp_path: Path, initiative: Initiative, figures: pl.DataFrame) -> Path:
    folder = tmp_path / "whole-check"
    write_site(content.pages(figures, ALERTS, initiative), initiative, folder, built_on=DAY)
    return folder


@pytest.mark.parametrize(
    "record",
    [
        pytest.param("not json", id="not-json"),
        pytest.param("[" * 100_000, id="nested-too-deep"),
        pytest.param('{"KEY": [["x"]]}', id="not-names"),
    ],
)
def test_a_spoilt_record_of_charts_only_costs_drawing(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
    record: str,
) -> None:
    """The kept folder's record of each page's charts spoilt (cut short, nested past what
    json reads, or holding other than names, here under every page's key): the pages are
    drawn again, the build is the same as one without kept pages, and the next build keeps
    them whole again."""
    _build(tmp_path, initiative, indicators, "first", rendered)
    charts_json = tmp_path / "kept" / "charts.json"
    keys = list(json.loads(charts_json.read_text()))
    text = record if "KEY" not in record else json.dumps({k: [["x"]] for k in keys})
    charts_json.write_text(text)
    assert _build(tmp_path, initiative, indicators, "again", rendered) == []  # linked, drawn
    assert json.loads(charts_json.read_text()).keys() == set(keys)


NAHF = ["nahf/ar", "nahf/en", "nahf/he"]


@pytest.mark.parametrize(
    ("before", "after", "pages"),
    [
        pytest.param({}, {"partners_reported": 9}, NAHF, id="reported"),
        pytest.param({}, {"partners_expected": 9}, NAHF, id="expected"),
        pytest.param({}, {"suppressed": True}, NAHF, id="suppressed"),
        # The same values a period later: only the period tells the pages apart.
        pytest.param({}, {"period": "2026-Q1"}, NAHF, id="period"),
        # A cell with no value, then suppressed: the page says so where it said nothing.
        pytest.param({"value": None}, {"value": None, "suppressed": True}, NAHF, id="flag-only"),
        # A missing flag is no suppression: the value is shown, so a new one is written.
        pytest.param({"suppressed": None}, {"suppressed": None, "value": 0.5}, NAHF, id="no-flag"),
        # The value of a cell already suppressed is never shown: nothing to write again.
        pytest.param({}, {"value": 0.99}, [], id="hidden-value"),
    ],
)
def test_a_page_is_written_again_when_what_it_shows_of_a_cell_changes(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    rendered: list[str],
    before: dict[str, object],
    after: dict[str, object],
    pages: list[str],
) -> None:
    """A page's key stands for its cells by a digest of what the cards show of each (its
    period, the value unless suppressed, whether it is, partners reported and expected).
    Worked on Nahf's latest cell (its suppressed one for the hidden value): each change of
    what the page shows renders its three pages; a change of what it does not, none."""
    hidden = indicators.filter(pl.col("geo_code") == "nahf", pl.col("suppressed"))
    latest = indicators.filter(pl.col("geo_code") == "nahf")["period"].max()
    at = hidden["period"][0] if "value" in after and not before else latest
    target = (pl.col("geo_code") == "nahf") & (pl.col("period") == at)

    def edited(change: dict[str, object]) -> pl.DataFrame:
        return indicators.with_columns(
            pl.when(target)
            .then(pl.lit(v, dtype=indicators.schema[c]))
            .otherwise(pl.col(c))
            .alias(c)
            for c, v in change.items()
        )

    _build(tmp_path, initiative, edited(before), "first", rendered)
    assert _build(tmp_path, initiative, edited(after), "changed", rendered) == pages


def test_a_card_s_points_are_made_when_read(
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Worked: the pages made, only the cluster's 4 points are (its card's path to target
    needs their periods); Nahf's card knows it has 4 without making them. Read, Nahf's are
    made (8 in all), once: the stored cells in period order, the suppressed one without its
    value, equal to the same points as a list."""
    made: list[str] = []
    point = content.Point

    def counted(**fields: Any) -> content.Point:
        made.append(str(fields["period"]))
        return point(**fields)

    monkeypatch.setattr(content, "Point", counted)
    pages = content.pages(indicators, ALERTS, initiative)
    assert len(made) == 4
    card = next(p for p in pages if p.geography.code == "nahf").cards[0]
    assert len(card.points) == 4 and len(made) == 4
    rows = indicators.filter(pl.col("geo_code") == "nahf").sort("period")
    expected = [
        point(
            period=r["period"],
            value=None if r["suppressed"] else r["value"],
            suppressed=bool(r["suppressed"]),
            reported=int(r["partners_reported"] or 0),
            expected=int(r["partners_expected"] or 0),
        )
        for r in rows.iter_rows(named=True)
    ]
    assert list(card.points) == expected and card.points == expected
    assert card.points[-1] == expected[-1] and card.latest == expected[-1]
    assert [p.value for p in card.points].count(None) == 1
    assert len(made) == 8  # Nahf's 4, once
