"""Moving partners' files safely: free names (never overwrite), moves that survive a change of
file system, and the signature that says a file has settled.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ci_pipeline.receive.inbox.layout import REASON_SUFFIX

#: Longest file name most file systems allow, in bytes.
NAME_MAX = 255


Signature = tuple[int, int]  # (size in bytes, mtime in nanoseconds)


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def signature_of(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns)


def folder_within(root: Path, parts: tuple[str, ...]) -> Path:
    """``root/parts...``, made where missing, never through a symbolic link.

    The folders below ``root`` are writable by whoever can write the inbox: a link planted
    there (``_refused/x -> /etc``) must not carry later writes outside it.
    """
    folder = root
    for part in parts:
        folder = folder / part
        if folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir()):
            raise OSError(f"{folder} is a symbolic link or not a folder: not written through")
        folder.mkdir(exist_ok=True)
    return folder


def free_name(folder: Path, prefix: str, name: str) -> Path:
    """``folder/<prefix><name>``, numbered if taken, shortened to fit a file-name limit.

    Nothing already there is ever overwritten: a partner may send the same name twice.
    """
    stem, suffix = os.path.splitext(name)
    n = 1
    while True:
        tag = "" if n == 1 else f" ({n})"
        room = NAME_MAX - len((prefix + tag + suffix + REASON_SUFFIX).encode())
        short = stem.encode()[: max(room, 1)].decode(errors="ignore")
        candidate = folder / f"{prefix}{short}{tag}{suffix}"
        reason = candidate.with_name(candidate.name + REASON_SUFFIX)
        if not os.path.lexists(candidate) and not os.path.lexists(reason):
            return candidate
        n += 1


def move_file(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``: a rename on one file system, else copy-then-rename-then-delete.

    Across file systems the copy lands under a hidden temporary name first, so ``dst`` never
    exists half-written; the source is removed only after the copy is complete.
    """
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = dst.with_name(f".{dst.name}.part")
    try:
        shutil.copy2(src, tmp, follow_symlinks=False)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    src.unlink()
