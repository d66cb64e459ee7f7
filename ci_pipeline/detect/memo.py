"""The expectations of the last judgement, kept by the digest of what each was worked out from,
so a judgement after a partner's file works out again only the series the file changed.

A national measure-quarter is 41,415 series, and a regional partner's file changes about 2,000
of them; working out every series' expectation (its models' predictions, their errors, the
baseline without past episodes) was 60% of judging the measure (about 9 of 15 s at 1M). An
expectation is a function of the series' values and denominators over its window, the
measure's unit, periodicity and seasonal setting, and the code that works it out
(:func:`.stats.expectation`): those are its key (:meth:`Memo.expectation`), and equal keys mean
equal expectations. The pooled scale and the multiple-testing adjustment are worked out again
from all of them on every run, as before.

Each judged measure's expectations are kept in a file of their own (``<home>/expectations/``,
numpy's ``.npz``: the numbers as they were, read without pickles) holding only those its last
judgement used, so the folder stays the size of one judgement.
Like the report card's kept files, it only saves work: a file that cannot be read or written is
passed over, and its expectations are worked out.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ci_pipeline.detect.stats import Expectation, expectation
from ci_pipeline.keeping import code_digest, write_whole
from ci_pipeline.model.initiative import Unit

#: The modules an expectation is worked out by.
_SOURCES = ("detect/stats.py", "detect/baseline.py", "detect/seasons.py", "detect/tails.py")


def salt_of(folder: Path | None = None) -> str:
    """The source of the modules (under ``folder``; the package's by default) that work out an
    expectation, and the versions of numpy and scipy (its tails)."""
    return code_digest(_SOURCES, ("numpy", "scipy"), folder).hex()


#: Worked out as this module is imported, with the modules it imports: the code that runs, not
#: what is on disk when a judgement is kept (a long-lived ``serve`` outlives a deploy).
_SALT = salt_of()


def _key(
    y: np.ndarray, denominator: np.ndarray | None, unit: Unit, per_year: int, seasonal: bool | None
) -> str:
    """The digest of an expectation's inputs: the values' and denominators' bytes (float64:
    NaN where unknown) and the measure's settings."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    digest.update(
        b"-"
        if denominator is None
        else b"d" + np.ascontiguousarray(denominator, dtype=np.float64).tobytes()
    )
    digest.update(repr((str(unit), per_year, seasonal, len(y))).encode())
    return digest.hexdigest()


def _arrays(rows: dict[str, Expectation | None]) -> dict[str, np.ndarray]:
    """Expectations as the arrays of one ``.npz`` file (numbers only, no pickles): a row each,
    the errors and baselines (of any length) one after another with where each starts."""
    keys = list(rows)
    some = [rows[k] for k in keys]
    ex = [e for e in some if e is not None]
    starts = {"errors": [0], "baseline": [0]}
    for e in ex:
        starts["errors"].append(starts["errors"][-1] + len(e.errors))
        starts["baseline"].append(starts["baseline"][-1] + len(e.baseline))
    return {
        "salt": np.array(_SALT),
        "keys": np.array(keys, dtype=str),
        "known": np.array([e is not None for e in some], dtype=bool),
        "model": np.array([e.model for e in ex], dtype=str),
        "expected": np.array([e.expected for e in ex], dtype=np.float64),
        "scale": np.array([e.scale for e in ex], dtype=np.float64),
        "df": np.array([e.df for e in ex], dtype=np.int64),
        "sampling": np.array([e.sampling for e in ex], dtype=bool),
        "year_ago": np.array([e.year_ago for e in ex], dtype=bool),
        "errors": np.concatenate([e.errors for e in ex]) if ex else np.empty(0),
        "errors_at": np.array(starts["errors"], dtype=np.int64),
        "baseline": np.concatenate([e.baseline for e in ex]) if ex else np.empty(0),
        "baseline_at": np.array(starts["baseline"], dtype=np.int64),
    }


def _rows(npz: Any) -> dict[str, Expectation | None]:
    """The expectations of a file :func:`_arrays` wrote."""
    arrays = {name: npz[name] for name in npz.files}  # each read once (npz reads on access)
    model, expected, scale = (
        arrays["model"].tolist(),
        arrays["expected"].tolist(),
        arrays["scale"].tolist(),
    )
    df, sampling, year_ago = (
        arrays["df"].tolist(),
        arrays["sampling"].tolist(),
        arrays["year_ago"].tolist(),
    )
    out: dict[str, Expectation | None] = {}
    i = 0
    errors, errors_at = arrays["errors"], arrays["errors_at"].tolist()
    baseline, baseline_at = arrays["baseline"], arrays["baseline_at"].tolist()
    for key, known in zip(arrays["keys"].tolist(), arrays["known"].tolist(), strict=True):
        if not known:
            out[key] = None
            continue
        out[key] = Expectation(
            model=str(model[i]),
            expected=float(expected[i]),
            errors=errors[errors_at[i] : errors_at[i + 1]].copy(),
            scale=float(scale[i]),
            df=int(df[i]),
            sampling=bool(sampling[i]),
            baseline=baseline[baseline_at[i] : baseline_at[i + 1]].copy(),
            year_ago=bool(year_ago[i]),
        )
        i += 1
    return out


def _save(rows: dict[str, Expectation | None], path: Path) -> None:
    """One measure's expectations written at ``path`` (through a file: given a name, numpy
    would add ``.npz`` to it)."""
    try:
        with path.open("wb") as file:
            np.savez(file, **_arrays(rows))  # type: ignore[arg-type]  # numpy's stub
    except ValueError as exc:  # as the OSError a failed keeping is
        raise OSError(str(exc)) from exc


class Memo:
    """The kept expectations of some measures (read when made), worked out where missing
    (:meth:`expectation`), and the ones this judgement used written back (:meth:`save`)."""

    def __init__(self, folder: Path | None, measures: Iterable[str]) -> None:
        self.folder = folder
        self.kept: dict[str, dict[str, Expectation | None]] = {}
        self.used: dict[str, dict[str, Expectation | None]] = {m: {} for m in measures}
        self.worked_out = 0  # how many were not kept (what a test counts)
        if folder is None:
            return
        for m in self.used:
            # A file not whole, not ours, or of other code: its expectations are worked out.
            # Whatever reading it raises (zipfile and numpy's header parser raise more than
            # OSError and ValueError): the memo only saves work.
            with (
                contextlib.suppress(Exception),
                np.load(self._file(m), allow_pickle=False) as arrays,
            ):
                if str(arrays["salt"]) == _SALT:
                    self.kept[m] = _rows(arrays)

    def _file(self, measure_id: str) -> Path:
        assert self.folder is not None
        # Measure ids are slugs (the definitions' rule); hashed anyway, so no id names a path.
        return self.folder / f"{hashlib.sha256(measure_id.encode()).hexdigest()[:32]}.npz"

    def expectation(
        self,
        measure_id: str,
        y: np.ndarray,
        *,
        unit: Unit,
        per_year: int,
        denominator: np.ndarray | None = None,
        seasonal: bool | None = None,
    ) -> Expectation | None:
        """:func:`.stats.expectation` of a series of ``measure_id``, kept or worked out."""
        # As the key reads them: float64 values, the unit itself (not its name).
        y, unit = np.asarray(y, dtype=np.float64), Unit(unit)
        if denominator is not None:
            denominator = np.asarray(denominator, dtype=np.float64)
        key = _key(y, denominator, unit, per_year, seasonal)
        used = self.used.setdefault(measure_id, {})
        kept = self.kept.get(measure_id, {})
        if key in used:  # a series the same as another of this judgement
            return used[key]
        if key in kept:
            ex = kept[key]
        else:
            ex = expectation(
                y, unit=unit, per_year=per_year, denominator=denominator, seasonal=seasonal
            )
            self.worked_out += 1
        used[key] = ex
        return ex

    def save(self) -> None:
        """Keep the expectations each measure's judgement used, and no others."""
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        for m, rows in self.used.items():
            write_whole(self._file(m), partial(_save, rows))  # not kept: the judgement stands
