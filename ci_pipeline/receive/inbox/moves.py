"""Moving partners' files safely: free names (never overwrite), moves that survive a change of
file system, and the signature that says a file has settled.

Nothing here follows a symbolic link below the folder it starts from. Whoever can write the
inbox can put a link anywhere in it (``inbox/p/2025-Q4 -> /etc``, ``_refused/x -> /srv``), and
swap a checked folder or file for one between a check and its use. So folders are walked one
step at a time from an open descriptor, each step opened with ``O_NOFOLLOW``, and files are read,
moved and written relative to the folder descriptors reached that way: a link met anywhere is an
:class:`OSError`, never a way out. (The roots themselves, ``CI_PIPELINE_HOME``'s ``inbox`` and
``received``, are the operator's to place, on another disk through a link if they like.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
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


class LinkRefused(OSError):
    """A symbolic link (or something else that is not a folder) where a folder was expected."""


@contextlib.contextmanager
def opened_folder(root: Path, parts: tuple[str, ...], *, create: bool = False) -> Iterator[int]:
    """A descriptor of the folder ``root/parts...``, reached without following a link below
    ``root`` (each missing step made first when ``create``); closed on exit.

    Raises :class:`LinkRefused` when a step is a symbolic link or not a folder.
    """
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, part in enumerate(parts, 1):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    where = root.joinpath(*parts[:depth])
                    raise LinkRefused(
                        exc.errno, f"{where} is a symbolic link or not a folder: not followed"
                    ) from None
                raise
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def folder_within(root: Path, parts: tuple[str, ...]) -> Path:
    """``root/parts...``, made where missing, never through a symbolic link.

    The folders below ``root`` are writable by whoever can write the inbox: a link planted
    there (``_refused/x -> /etc``) must not carry later writes outside it.
    """
    with opened_folder(root, parts, create=True):
        return root.joinpath(*parts)


def open_file(folder: int, name: str) -> int:
    """A descriptor for reading ``name`` in the folder ``folder``, never through a link.

    Non-blocking, so a pipe swapped in for the file cannot hang the reader; a caller checks
    with ``fstat`` that what it opened is a regular file.
    """
    return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)


def create_file(folder: int, name: str, data: bytes) -> None:
    """Write ``data`` to a new file ``name`` in ``folder``: never over an existing file or link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(name, flags, 0o644, dir_fd=folder), "wb") as fh:
        fh.write(data)


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


def move_between(src_folder: int, name: str, dst_folder: int, new_name: str) -> None:
    """Move ``name`` (a file, or a link itself: never what it points to) from one open folder to
    another: a rename on one file system, else copy-then-rename-then-delete.

    Across file systems the copy lands under a hidden temporary name first, so ``new_name``
    never exists half-written; the source is removed only after the copy is complete.
    """
    try:
        os.replace(name, new_name, src_dir_fd=src_folder, dst_dir_fd=dst_folder)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = f".{new_name}.part"
    st = os.stat(name, dir_fd=src_folder, follow_symlinks=False)
    try:
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_folder), tmp, dir_fd=dst_folder)
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with (
                os.fdopen(open_file(src_folder, name), "rb") as src,
                os.fdopen(os.open(tmp, flags, 0o600, dir_fd=dst_folder), "wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
                os.fchmod(dst.fileno(), stat.S_IMODE(st.st_mode))
                os.utime(dst.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, new_name, src_dir_fd=dst_folder, dst_dir_fd=dst_folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dst_folder)
        raise
    os.unlink(name, dir_fd=src_folder)
