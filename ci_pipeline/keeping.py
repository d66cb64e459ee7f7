"""What the pipeline keeps between runs only to save work (the report card's pages, cells, rows
and charts, a judgement's expectations): the digest of the code a kept result depends on, a
file put in place whole, and a folder pruned to what this run used. A kept file is never the
only copy of anything: one that cannot be written or read only costs the work again."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path

import ci_pipeline


def code_digest(
    sources: Iterable[str], libraries: Iterable[str], folder: Path | None = None
) -> bytes:
    """The digest of the package's ``sources`` (paths under ``folder``, the package's own by
    default) and the installed versions of ``libraries``: a change to either is other code."""
    base = folder or Path(ci_pipeline.__file__).parent
    digest = hashlib.sha256()
    for library in libraries:
        digest.update(f"{library} {version(library)}\n".encode())
    for name in sources:
        digest.update(f"{name}\n".encode())
        digest.update((base / name).read_bytes())
    return digest.digest()


def write_whole(target: Path, write: Callable[[Path], object]) -> bool:
    """``write`` a file of its own beside ``target``, then put it in ``target``'s place: a
    reader finds the old file or the new one, never half of one. False if either failed (a
    folder that cannot be written only costs work here)."""
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    try:
        write(partial)
        partial.replace(target)
    except OSError:
        with contextlib.suppress(OSError):  # e.g. the folder is not one
            partial.unlink(missing_ok=True)
        return False
    return True


def prune(folder: Path, used: set[str]) -> None:
    """Remove every file in ``folder`` not named in ``used`` (older results, and parts a
    failed or interrupted write left); one removed meanwhile by another run is passed over."""
    with contextlib.suppress(OSError):
        for old in folder.iterdir():
            if old.name not in used:
                with contextlib.suppress(OSError):
                    old.unlink()
