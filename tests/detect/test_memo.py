"""``detect.memo``: expectations kept between judgements are the expectations worked out, and a
judgement after a change works out only the series it changed, finding what one without the
kept expectations finds."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ci_pipeline import detect
from ci_pipeline.detect import memo as memo_module
from ci_pipeline.detect.memo import Memo
from ci_pipeline.detect.stats import Expectation, expectation
from ci_pipeline.model.initiative import Initiative, Unit
from tests.detect.test_detect import FLAT, LFP, STEP, WAGE, frame, judged, series


def _figures(initiative: Initiative, last: float = 0.312) -> pl.DataFrame:
    """A step in Nahf among 19 quiet places (LFP: adjusted among them, no finding) and a
    slide after a flat history (WAGE: a step finding): 21 series with an expectation, 20 of
    them different (x18 has x0's figures unless ``last`` moves it)."""
    step = series(initiative, LFP, [*FLAT, STEP])
    quiet = [series(initiative, LFP, [*FLAT, 0.312 + i / 1000], geo=f"x{i}") for i in range(18)]
    moved = series(initiative, LFP, [*FLAT, last], geo="x18")
    slide = [0.40] * 12 + [0.41, 0.42, 0.43, 0.44, 0.45]
    wage = series(initiative, WAGE, slide, denominator=100_000)
    return frame(step, *quiet, moved, wage)


def _detect(initiative: Initiative, figures: pl.DataFrame, memo: Memo | None) -> pl.DataFrame:
    """The findings, in the order a judgement records them (detect's own is not stable)."""
    found = detect.detect(figures, initiative, judged(initiative, LFP, WAGE), memo=memo)
    return found.sort(detect.FINDING_ORDER)


def test_kept_expectations_find_what_working_them_out_finds(
    tmp_path: Path, initiative: Initiative
) -> None:
    """Worked: 21 series with an expectation (20 of LFP, Nahf's WAGE), two of them alike. The
    first judgement works out the 20 different ones; the next, nothing changed, none; after one place's latest figure changed,
    that one. Each time the findings equal those of a judgement without a memo, and the folder
    holds a file per judged measure."""
    folder = tmp_path / "expectations"
    measures = [LFP, WAGE]
    figures = _figures(initiative)
    plain = _detect(initiative, figures, None)
    assert not plain.is_empty()
    for worked_out in (20, 0):
        memo = Memo(folder, measures)
        assert_frame_equal(_detect(initiative, figures, memo), plain)
        assert memo.worked_out == worked_out
        memo.save()
    assert len(list(folder.iterdir())) == 2
    changed = _figures(initiative, last=0.2)
    memo = Memo(folder, measures)
    assert_frame_equal(_detect(initiative, changed, memo), _detect(initiative, changed, None))
    assert memo.worked_out == 1


def _assert_same(got: Expectation | None, want: Expectation | None) -> None:
    """Field for field, arrays value for value (NaN as NaN) and sign for sign (-0.0)."""
    if want is None:
        assert got is None
        return
    assert got is not None
    assert (got.model, got.expected, got.scale, got.df, got.sampling, got.year_ago) == (
        want.model,
        want.expected,
        want.scale,
        want.df,
        want.sampling,
        want.year_ago,
    )
    for mine, theirs in ((got.errors, want.errors), (got.baseline, want.baseline)):
        np.testing.assert_array_equal(mine, theirs)
        assert np.signbit(mine).tolist() == np.signbit(theirs).tolist()


def test_kept_expectations_read_back_exactly(tmp_path: Path) -> None:
    """Expectations with NaN errors, a proportion's denominators and none at all (too short a
    history to predict from) are read back field for field; a series with the same values
    and other denominators is another key."""
    rng = np.random.default_rng(7)
    y = np.r_[np.nan, rng.normal(0.3, 0.01, 30)]
    den = np.full(len(y), 1000.0)
    series = {
        "a": (y, None, Unit.count),
        "b": (y, den, Unit.proportion),
        "c": (y, den * 2, Unit.proportion),
        "d": (np.array([np.nan, 0.3]), None, Unit.count),
    }
    memo = Memo(tmp_path, ["m"])
    first = {
        name: memo.expectation("m", v, unit=u, per_year=4, denominator=d)
        for name, (v, d, u) in series.items()
    }
    assert first["d"] is None and memo.worked_out == 4
    memo.save()
    again = Memo(tmp_path, ["m"])
    for v, d, u in series.values():
        got = again.expectation("m", v, unit=u, per_year=4, denominator=d)
        want = expectation(v, unit=u, per_year=4, denominator=d)
        _assert_same(got, want)
    assert again.worked_out == 0


def _bad_method(kept: Path) -> None:
    """A zip whose central directory names a compression method zipfile does not know
    (NotImplementedError, not OSError)."""
    data = bytearray(kept.read_bytes())
    at = data.index(b"PK\x01\x02")
    data[at + 10 : at + 12] = (99).to_bytes(2, "little")
    kept.write_bytes(bytes(data))


def _an_array(kept: Path) -> None:
    """A plain .npy array where the memo's .npz was."""
    np.save(kept.with_suffix(""), np.arange(3))
    kept.with_suffix(".npy").replace(kept)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda f, mp: f.write_bytes(b"not numpy"), id="not-npz"),
        pytest.param(lambda f, mp: f.write_bytes(f.read_bytes()[:200]), id="cut-short"),
        pytest.param(lambda f, mp: _bad_method(f), id="unknown-compression"),
        pytest.param(lambda f, mp: _an_array(f), id="an-array"),
        pytest.param(lambda f, mp: mp.setattr(memo_module, "_SALT", "other"), id="other-code"),
    ],
)
def test_a_kept_file_that_cannot_be_used_only_costs_working_out(
    tmp_path: Path, initiative: Initiative, spoil: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spoilt, cut short, unreadable by zipfile, not the memo's, or kept by other code
    (another salt): every expectation is worked out again, the findings are the same, and
    the file is kept again whole."""
    folder = tmp_path / "expectations"
    figures = _figures(initiative)
    memo = Memo(folder, [LFP, WAGE])
    plain = _detect(initiative, figures, memo)
    memo.save()
    for kept in folder.iterdir():
        spoil(kept, monkeypatch)
    memo = Memo(folder, [LFP, WAGE])
    assert_frame_equal(_detect(initiative, figures, memo), plain)
    assert memo.worked_out == 20
    memo.save()
    assert Memo(folder, [LFP, WAGE]).kept.keys() == {LFP, WAGE}


def test_the_key_holds_every_setting_and_the_salt_every_source(tmp_path: Path) -> None:
    """The same values under another unit, periodicity or seasonal setting are other keys;
    and the salt changes with a byte of any module an expectation is worked out by, and
    covers every module of the package those import (read from their imports)."""
    y = np.array([0.3, 0.31, 0.29, 0.3])
    base = memo_module._key(y, None, Unit.proportion, 4, None)
    assert base != memo_module._key(y, None, Unit.count, 4, None)
    assert base != memo_module._key(y, None, Unit.proportion, 12, None)
    assert base != memo_module._key(y, None, Unit.proportion, 4, True)
    assert base != memo_module._key(y, np.ones(4), Unit.proportion, 4, None)
    package = Path(memo_module.__file__).parents[1]
    copy = tmp_path / "package"
    for name in memo_module._SOURCES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((package / name).read_bytes())
    salt = memo_module.salt_of(copy)
    assert salt == memo_module._SALT
    for name in memo_module._SOURCES:
        (copy / name).write_bytes((package / name).read_bytes() + b"\n")
        assert memo_module.salt_of(copy) != salt
        (copy / name).write_bytes((package / name).read_bytes())
    imported = set()
    for name in memo_module._SOURCES:
        tree = ast.parse((package / name).read_text())
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith("ci_pipeline.detect."):
                imported.add(module.removeprefix("ci_pipeline.").replace(".", "/") + ".py")
    assert imported <= set(memo_module._SOURCES)


def test_a_folder_that_cannot_be_written_only_costs_working_out(
    tmp_path: Path, initiative: Initiative
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    memo = Memo(blocked, [LFP])
    assert_frame_equal(
        _detect(initiative, _figures(initiative), memo),
        _detect(initiative, _figures(initiative), None),
    )
    memo.save()
    assert blocked.read_text() == "not a folder"


def test_every_field_is_kept(tmp_path: Path) -> None:
    """Hand-made expectations differing in every field (errors and baselines of different
    lengths, NaN, flags either way, none at all) read back as they were."""
    made = {
        "k1": Expectation("usual", 0.5, np.array([np.nan, 1.5, -2.0]), 1.25, 7, True),
        "k2": None,
        "k3": Expectation(
            "seasonal_previous", -3.0, np.array([0.1]), 0.5, 0, False, np.array([1.0, 2.0]), True
        ),
        "k4": Expectation("previous", 1e300, np.empty(0), 2.0, 3, False, np.array([-0.0]), False),
    }
    memo = Memo(tmp_path, ["m"])
    memo.used["m"] = dict(made)
    memo.save()
    kept = Memo(tmp_path, ["m"]).kept["m"]
    assert list(kept) == list(made)
    for key, want in made.items():
        got = kept[key]
        _assert_same(got, want)
