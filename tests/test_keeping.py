"""``keeping``: what is kept only to save work is written whole, pruned to what a run used,
and keyed by the code it depends on."""

from __future__ import annotations

from pathlib import Path

from ci_pipeline.keeping import code_digest, prune, write_whole


def test_write_whole_leaves_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    """A write that fails midway leaves the file as it was and no part beside it; one that
    succeeds replaces it."""
    target = tmp_path / "page.html"
    target.write_text("old")

    def half(part: Path) -> None:
        part.write_text("ne")
        raise OSError("disk full")

    assert not write_whole(target, half)
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    assert write_whole(target, lambda part: part.write_text("new"))
    assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]


def test_prune_keeps_only_the_files_used(tmp_path: Path) -> None:
    for name in ("a", "b", "c.part"):
        (tmp_path / name).write_text(name)
    prune(tmp_path, {"a", "gone"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    prune(tmp_path / "no-such-folder", set())  # nothing to prune: passed over


def test_the_code_digest_changes_with_a_byte_of_a_source_and_with_the_libraries(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    (tmp_path / "n.py").write_text("y = 2\n")
    base = code_digest(["m.py", "n.py"], ["polars"], tmp_path)
    assert code_digest(["m.py", "n.py"], ["polars"], tmp_path) == base
    assert code_digest(["m.py", "n.py"], ["polars", "numpy"], tmp_path) != base
    # The names are in it: two sources' bytes moved from one to the other are other code.
    (tmp_path / "m.py").write_text("x = 1\ny = 2\n")
    (tmp_path / "n.py").write_text("")
    assert code_digest(["m.py", "n.py"], ["polars"], tmp_path) != base
