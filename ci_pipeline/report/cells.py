"""The stored indicator cells a report card build reads, kept between builds slice by slice, so
a rebuild reads from the database only the slices recomputed since the last one.

A national card reads 2.07M cells (every breakdown: the Data Package publishes them all), and
reading them took half of a rebuild after one partner's file (6.3 of 11.8 s at 1M
observations), which recomputes a slice or two. Each slice's cells are kept as a Parquet file
named by the hash of the schema's revision, the slice and its stored ``lineage`` and
``computed_at``: ``store.replace_indicators``, the only writer of the cells, gives a slice a new
``computed_at`` with every new set of cells, so a kept slice whose hash is still stored holds the
stored cells.

Checked before the kept cells are used: the slices are read again after the missing slices
were read, and must not have changed (another process may have replaced a slice meanwhile), and
the cells put together must number as many as are stored then (counted once: the count goes
over every cell).
Otherwise every cell is read, as without a folder. Like the kept pages, the folder only saves
work: one it cannot read or write is passed over.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.keeping import prune, write_whole
from ci_pipeline.model.frames import STORED_INDICATOR_SCHEMA
from ci_pipeline.store.migrate import current_revision

#: The most slices read by naming each one (:func:`_read_missing`); more are read whole.
WINDOWED_SLICES = 200


@dataclass(frozen=True)
class Cells:
    """The cells a build read, and where they came from the kept slices, each measure's
    version: a digest of its slices' keys, the same while none of its slices is replaced (the
    Data Package keeps each measure's rows under it: :func:`.package.write_package`). None
    when every cell was read from the database."""

    frame: pl.DataFrame
    versions: dict[str, str] | None = None


def read_cells(initiative_id: str, *, engine: Engine, folder: Path | None = None) -> Cells:
    """Every stored indicator cell of the initiative, as :func:`store.read_indicators` reads
    them (in the same order), the unchanged slices from ``folder``."""
    kept = _kept_cells(initiative_id, folder, engine=engine) if folder is not None else None
    return kept if kept is not None else Cells(store.read_indicators(initiative_id, engine=engine))


def _kept_cells(initiative_id: str, folder: Path, *, engine: Engine) -> Cells | None:
    """The cells, the unchanged slices from ``folder`` and the others read and kept there; None
    when the kept cells cannot be trusted or used (every cell is read instead)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    revision = current_revision(engine=engine) or ""
    slices, _ = store.indicator_slices(initiative_id, engine=engine, count=False)
    keys = [_key(revision, row) for row in slices.iter_rows()]
    fresh = _read_missing(initiative_id, slices, keys, folder, engine=engine)
    # Counted once, after the missing slices were read: the slices as they were before, and
    # every kept and read cell adding up to what is stored then (below), or none is used.
    again, count = store.indicator_slices(initiative_id, engine=engine)
    if not again.equals(slices):
        return None  # replaced meanwhile
    parts = []
    for key in keys:
        part = fresh.get(key)
        if part is None:
            kept = folder / f"{key}.parquet"
            try:
                part = pl.read_parquet(kept)
            except (OSError, pl.exceptions.PolarsError):  # gone, or not whole: read again
                with contextlib.suppress(OSError):
                    kept.unlink()
                return None
        parts.append(part)
    prune(folder, {f"{key}.parquet" for key in keys})  # slices no longer stored
    # In order already: the slices are, and so is each one's cells (read_indicators' order).
    cells = (
        pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=STORED_INDICATOR_SCHEMA)
    )
    # Cells of no slice, or a slice without cells: read them all.
    if cells.height != count:
        return None
    by_measure: dict[str, list[str]] = {}
    for key, measure_id in zip(keys, slices["measure_id"], strict=True):
        by_measure.setdefault(measure_id, []).append(key)
    versions = {
        m: hashlib.sha256(" ".join(ks).encode()).hexdigest() for m, ks in by_measure.items()
    }
    return Cells(cells, versions)


def _key(revision: str, row: tuple[object, ...]) -> str:
    """The file name of a slice's kept cells: ``row`` is (measure, period, lineage,
    computed_at); the columns' types and the cells' order are in it too, so cells kept by a
    reader of other types or order are never put beside these."""
    parts = (revision, repr(STORED_INDICATOR_SCHEMA), store.INDICATOR_ORDER, *row)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _read_missing(
    initiative_id: str, slices: pl.DataFrame, keys: list[str], folder: Path, *, engine: Engine
) -> dict[str, pl.DataFrame]:
    """The cells of the slices not kept in ``folder``, read in one query, by key; each is kept
    for the next build (written whole or not at all)."""
    missing = {
        key: (m, p)
        for key, (m, p) in zip(keys, slices.select("measure_id", "period").iter_rows(), strict=True)
        if not (folder / f"{key}.parquet").exists()
    }
    if not missing:
        return {}
    windows: dict[str, set[str]] = {}
    for m, p in missing.values():
        windows.setdefault(m, set()).add(p)
    # Many slices (a first build): every cell in one plain query, not one parameter a slice.
    many = len(missing) > WINDOWED_SLICES
    read = store.read_indicators(initiative_id, engine=engine, windows=None if many else windows)
    by_slice = read.partition_by(["measure_id", "period"], as_dict=True, maintain_order=True)
    out = {}
    for key, (m, p) in missing.items():
        part = by_slice.get((m, p), read.clear())
        out[key] = part
        write_whole(folder / f"{key}.parquet", partial(_write, part))
    return out


def _write(cells: pl.DataFrame, path: Path) -> None:
    """A slice's cells kept; polars' own errors (a full disk) as the OSError the keeping
    passes over: the build goes on without them."""
    try:
        cells.write_parquet(path)
    except pl.exceptions.PolarsError as exc:
        raise OSError(str(exc)) from exc
