"""``report.cells``: the cells a build reads are the stored cells, every time, and only the
slices recomputed since the last build are read from the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.model.frames import STORED_INDICATOR_SCHEMA
from ci_pipeline.report import cells
from ci_pipeline.report.cells import read_cells

INI = "ini"


def _cells(measure: str, period: str, values: list[float]) -> pl.DataFrame:
    """One slice's cells: one place per value (``a``, ``b``, …), at total."""
    return pl.DataFrame(
        [
            (measure, chr(97 + i), period, "total", v, None, None, 1, 1, 1.0, "1", False, None)
            for i, v in enumerate(values)
        ],
        schema=STORED_INDICATOR_SCHEMA,
        orient="row",
    )


def _replace(engine: Engine, *parts: pl.DataFrame, emptied: tuple[str, str] | None = None) -> None:
    slices = [(p["measure_id"][0], p["period"][0]) for p in parts]
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=STORED_INDICATOR_SCHEMA)
    store.replace_indicators(INI, slices + ([emptied] if emptied else []), frame, engine=engine)


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each ``store.read_indicators`` call asked for (None: every cell)."""
    asked: list[Any] = []
    read = store.read_indicators

    def counting(initiative_id: str, **kwargs: Any) -> pl.DataFrame:
        w = kwargs.get("windows")
        asked.append(None if w is None else {m: sorted(ps) for m, ps in w.items()})
        return read(initiative_id, **kwargs)

    monkeypatch.setattr(store, "read_indicators", counting)
    return asked


def _same_as_stored(engine: Engine, folder: Path, windows: list[Any]) -> list[Any]:
    got = read_cells(INI, engine=engine, folder=folder).frame
    asked = list(windows)
    windows.clear()
    assert_frame_equal(got, store.read_indicators(INI, engine=engine))
    windows.clear()
    return asked


def test_a_rebuild_reads_only_the_slices_recomputed_since(
    tmp_path: Path, engine: Engine, windows: list[Any]
) -> None:
    """Worked: three slices (m1 Q1 and Q2, m2 Q1) stored; the first read asks for all three,
    the second for none. m1 Q2 recomputed: only it is read. m2 Q1 emptied (no cells left): none
    is read, and its kept file goes. Each read equals the stored cells."""
    folder = tmp_path / "cells"
    _replace(engine, _cells("m1", "2025-Q1", [1, 2]), _cells("m1", "2025-Q2", [3]))
    _replace(engine, _cells("m2", "2025-Q1", [4, 5, 6]))
    assert _same_as_stored(engine, folder, windows) == [
        {"m1": ["2025-Q1", "2025-Q2"], "m2": ["2025-Q1"]}
    ]
    assert len(list(folder.iterdir())) == 3
    assert _same_as_stored(engine, folder, windows) == []
    _replace(engine, _cells("m1", "2025-Q2", [3.5, 7]))
    assert _same_as_stored(engine, folder, windows) == [{"m1": ["2025-Q2"]}]
    _replace(engine, emptied=("m2", "2025-Q1"))
    assert _same_as_stored(engine, folder, windows) == []
    assert len(list(folder.iterdir())) == 2


def test_a_measure_s_version_changes_with_its_slices_only(tmp_path: Path, engine: Engine) -> None:
    """Worked: m1 (two slices) and m2 (one). Read again with nothing replaced: the same
    versions. m1 Q2 recomputed, with the same figures: m1's version changes (its slice is
    another), m2's does not. m2 Q1 emptied: m2 has no cells and no version."""
    folder = tmp_path / "cells"
    _replace(engine, _cells("m1", "2025-Q1", [1]), _cells("m1", "2025-Q2", [2]))
    _replace(engine, _cells("m2", "2025-Q1", [3]))
    first = read_cells(INI, engine=engine, folder=folder).versions
    assert first is not None and sorted(first) == ["m1", "m2"]
    assert read_cells(INI, engine=engine, folder=folder).versions == first
    _replace(engine, _cells("m1", "2025-Q2", [2]))
    second = read_cells(INI, engine=engine, folder=folder).versions
    assert second is not None
    assert second["m1"] != first["m1"] and second["m2"] == first["m2"]
    _replace(engine, emptied=("m2", "2025-Q1"))
    third = read_cells(INI, engine=engine, folder=folder).versions
    assert third == {"m1": second["m1"]}


def test_cells_changed_while_reading_are_read_whole(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process recomputes a slice between the reads: the kept cells are not trusted,
    and every cell is read (what is stored after the change)."""
    folder = tmp_path / "cells"
    _replace(engine, _cells("m1", "2025-Q1", [1]), _cells("m1", "2025-Q2", [2]))
    read_cells(INI, engine=engine, folder=folder)
    _replace(engine, _cells("m1", "2025-Q1", [1.5]))
    read = store.read_indicators

    def meanwhile(initiative_id: str, **kwargs: Any) -> pl.DataFrame:
        got = read(initiative_id, **kwargs)
        if kwargs.get("windows"):
            _replace(engine, _cells("m1", "2025-Q2", [9]))
        return got

    monkeypatch.setattr(store, "read_indicators", meanwhile)
    got = read_cells(INI, engine=engine, folder=folder)
    assert got.frame["value"].to_list() == [1.5, 9.0]
    assert got.versions is None  # read whole: no version of any measure to keep rows by


def _cell_without_slice(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO indicator_value (initiative_id, measure_id, geo_code, period, "
                "disaggregation, value, partners_reported, partners_expected, coverage, "
                "lineage, suppressed, computed_at) VALUES ('ini', 'm9', 'a', '2025-Q1', "
                "'total', 1.0, 1, 1, 1.0, '1', false, '2025-01-01 00:00:00')"
            )
        )


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda folder, engine: _cell_without_slice(engine), id="cell-without-slice"),
        pytest.param(
            lambda folder, engine: [p.write_bytes(b"not parquet") for p in folder.iterdir()],
            id="kept-file-unreadable",
        ),
    ],
)
def test_kept_cells_that_do_not_add_up_are_not_used(
    tmp_path: Path, engine: Engine, spoil: Callable[[Path, Engine], object]
) -> None:
    """A stored cell no slice accounts for (written by other means than the store), or a kept
    file that cannot be read: every cell is read, and the result is the stored cells."""
    folder = tmp_path / "cells"
    _replace(engine, _cells("m1", "2025-Q1", [1, 2]))
    read_cells(INI, engine=engine, folder=folder)
    spoil(folder, engine)
    for again in (False, True):  # and again: an unreadable file is not kept
        got = read_cells(INI, engine=engine, folder=folder)
        assert_frame_equal(got.frame, store.read_indicators(INI, engine=engine))
        if not again:  # read whole: no version to keep a measure's published rows by
            assert got.versions is None


def test_a_folder_that_cannot_be_made_reads_every_cell(tmp_path: Path, engine: Engine) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    _replace(engine, _cells("m1", "2025-Q1", [1]))
    assert_frame_equal(
        read_cells(INI, engine=engine, folder=blocked).frame,
        store.read_indicators(INI, engine=engine),
    )


def test_many_missing_slices_are_read_in_one_plain_query(
    tmp_path: Path, engine: Engine, windows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``WINDOWED_SLICES`` missing slices (here 1), every cell is read at once instead of
    naming each slice (a first build of many slices); one missing slice is still named."""
    monkeypatch.setattr(cells, "WINDOWED_SLICES", 1)
    folder = tmp_path / "cells"
    _replace(engine, _cells("m1", "2025-Q1", [1, 2]), _cells("m2", "2025-Q1", [3]))
    assert _same_as_stored(engine, folder, windows) == [None]
    _replace(engine, _cells("m2", "2025-Q1", [4]))
    assert _same_as_stored(engine, folder, windows) == [{"m2": ["2025-Q1"]}]
