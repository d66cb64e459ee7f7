"""``report.package``: the Data Package's rows of each measure kept between builds, and the
file put together from them byte for byte the file written whole."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.aggregate.privacy import mask
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.report.build import build_report
from ci_pipeline.report.package import write_package
from tests.report.test_report import ALERTS, indicators  # noqa: F401  (a fixture)


def _measures(figures: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    """The fixture's cells once per measure id, the ids in no order (polars and Python must
    agree on code point order: a capital before a small letter, an accented letter last)."""
    return mask(pl.concat([figures.with_columns(measure_id=pl.lit(m)) for m in ids]))


def _write(
    tmp_path: Path,
    initiative: Initiative,
    cells: pl.DataFrame,
    name: str,
    versions: dict[str, str] | None,
) -> bytes:
    """The indicators file written with the kept rows; asserted equal to the file written
    whole."""
    write_package(cells, ALERTS, initiative, tmp_path / f"{name}-whole")
    kept = tmp_path / "rows"
    write_package(cells, ALERTS, initiative, tmp_path / name, kept=kept, versions=versions)
    written = (tmp_path / name / "data" / "indicators.csv").read_bytes()
    assert written == (tmp_path / f"{name}-whole" / "data" / "indicators.csv").read_bytes()
    return written


def test_a_measure_s_rows_are_written_again_only_when_its_version_changes(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Worked: four measures (b, a, é, Z: written in the order Z, a, b, é). First build: four
    measures' rows written and kept. The same versions: none written, the file the same. b's
    version changes with its figures: b alone written, the file has b's new figure. é gone:
    its kept rows go. Every file equals the file written whole."""
    import ci_pipeline.report.package as package

    written: list[str] = []
    write_measure = package._write_measure

    def counting(cells: pl.DataFrame, measure_id: str, *args: object) -> None:
        written.append(measure_id)
        write_measure(cells, measure_id, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(package, "_write_measure", counting)
    ids = ["b", "a", "é", "Z"]
    cells = _measures(indicators, ids)
    versions = {m: "1" for m in ids}
    first = _write(tmp_path, initiative, cells, "first", versions)
    assert written == ["Z", "a", "b", "é"]
    lines = first.decode().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [
        m for m in ["Z", "a", "b", "é"] for _ in range(indicators.height)
    ]
    assert len(list((tmp_path / "rows").iterdir())) == 4
    written.clear()
    assert _write(tmp_path, initiative, cells, "again", versions) == first
    assert written == []
    changed = cells.with_columns(
        value=pl.when(pl.col("measure_id") == "b").then(pl.col("value") * 2).otherwise("value")
    )
    second = _write(tmp_path, initiative, changed, "changed", versions | {"b": "2"})
    assert written == ["b"] and second != first
    written.clear()
    fewer = changed.filter(pl.col("measure_id") != "é")
    _write(
        tmp_path,
        initiative,
        fewer,
        "fewer",
        {m: v for m, v in (versions | {"b": "2"}).items() if m != "é"},
    )
    assert written == []
    assert len(list((tmp_path / "rows").iterdir())) == 3


def test_rows_without_a_version_are_written_whole(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A measure whose cells have no version (not read from kept slices), no versions at
    all, or a rows folder that cannot be made: the file is written whole, and is the same."""
    cells = _measures(indicators, ["a", "b"])
    _write(tmp_path, initiative, cells, "one-missing", {"a": "1"})
    assert list((tmp_path / "rows").iterdir()) == []  # nothing kept
    _write(tmp_path, initiative, cells, "none", None)
    (tmp_path / "rows").rmdir()  # empty: nothing was kept
    (tmp_path / "rows").write_text("not a folder")
    _write(tmp_path, initiative, cells, "blocked", {"a": "1", "b": "1"})


def test_a_kept_row_file_gone_is_written_again(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
) -> None:
    """A kept measure's rows removed (by another build, or by hand): written again."""
    cells = _measures(indicators, ["a", "b"])
    first = _write(tmp_path, initiative, cells, "first", {"a": "1", "b": "1"})
    for kept in (tmp_path / "rows").iterdir():
        kept.unlink()
    assert _write(tmp_path, initiative, cells, "again", {"a": "1", "b": "1"}) == first
    assert len(list((tmp_path / "rows").iterdir())) == 2


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_rebuild_with_everything_kept_is_a_fresh_build_byte_for_byte(
    tmp_path: Path,
    initiative: Initiative,
    indicators: pl.DataFrame,  # noqa: F811
    sqlite_engine: Engine,
) -> None:
    """From the store: built, then one slice replaced (Nahf's latest value, and its suppressed
    cell shown), then nothing changed. After each, the site rebuilt beside its kept folders
    (cells, rows, pages, charts) is every file of a build in a folder of its own."""
    ini, day = initiative.info.id, date(2026, 11, 30)
    slices = sorted({(m, p) for m, p in indicators.select("measure_id", "period").iter_rows()})
    store.replace_indicators(ini, slices, indicators, engine=sqlite_engine)
    root = tmp_path / "kept" / "report-card"
    build_report(initiative, root, engine=sqlite_engine, today=day)
    latest = indicators["period"].max()
    changed = indicators.filter(pl.col("period") == latest).with_columns(
        value=pl.when(pl.col("geo_code") == "nahf").then(0.5).otherwise("value"),
        suppressed=pl.lit(False),
    )
    for n, replace in enumerate([True, False]):
        if replace:
            slice_ = (slices[-1][0], str(latest))
            store.replace_indicators(ini, [slice_], changed, engine=sqlite_engine)
        build_report(initiative, root, engine=sqlite_engine, today=day)
        fresh = tmp_path / f"fresh-{n}" / "report-card"
        build_report(initiative, fresh, engine=sqlite_engine, today=day)
        assert _tree(root) == _tree(fresh)
    assert any((tmp_path / "kept" / "report-card.rows").iterdir())
