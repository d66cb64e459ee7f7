"""Secrets the pipeline makes for itself and keeps in its data folder, readable by their owner
only: the local Prefect server's auth string, the key that signs acknowledgement links."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def read_secret(path: Path) -> str | None:
    """The secret stored at ``path``, or None when there is none yet.

    Read without following a link; a file others could read is made the owner's alone.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="utf-8") as fh:
        if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o077:
            os.fchmod(fh.fileno(), 0o600)
        value = fh.read().strip()
    return value or None


def stored_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret at ``path``: the stored one, or ``make()`` stored now (0600).

    Two processes making it at once agree: the file is created exclusively, and the loser
    reads the winner's.
    """
    existing = read_secret(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return read_secret(path) or value
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value
