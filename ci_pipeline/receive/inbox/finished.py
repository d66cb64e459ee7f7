"""Which inbox files their writers have finished, from the file system's open and close events.

A file is *finished* when the last handle opened on it was closed after writing (inotify's
close-write) or it was renamed into place, no handle is open on it now, and it still has the
size and time it had then. The watcher lets such a file settle in a fraction of a second
instead of the whole settle period. Anything else — a handle still open (``echo header > f;
slow_query >> f`` reopens it before writing), a file changed since, events lost — leaves it
to the full settle period, the safe default: the worst an error here can do is wait longer.
Thread-safe: the observer's thread reports, the scanning thread asks.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ci_pipeline.receive.inbox.moves import Signature, signature_of


class FinishedFiles:
    """Open handles per file and the signature each had when it was last finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Path, int] = {}
        self._finished: dict[Path, Signature] = {}

    def opened(self, path: Path) -> None:
        """A handle was opened on ``path`` (for reading or writing: inotify does not say)."""
        with self._lock:
            self._open[path] = self._open.get(path, 0) + 1
            self._finished.pop(path, None)

    def closed(self, path: Path, *, wrote: bool) -> None:
        """A handle on ``path`` was closed, after writing or not."""
        with self._lock:
            left = max(0, self._open.pop(path, 0) - 1)
            if left:
                self._open[path] = left
            elif wrote:
                self._finish(path)

    def moved(self, source: Path, dest: Path) -> None:
        """``source`` was renamed to ``dest``: its handles follow it; with none, it is finished."""
        with self._lock:
            self._finished.pop(source, None)
            handles = self._open.pop(source, 0)
            if handles:
                self._open[dest] = handles
            else:
                self._finish(dest)

    def signatures(self) -> dict[Path, Signature]:
        """The finished files and their signatures then (a copy)."""
        with self._lock:
            return dict(self._finished)

    def forget(self, keep: set[Path]) -> None:
        """Drop what is known about files not in ``keep`` (taken, refused or gone)."""
        with self._lock:
            for table in (self._open, self._finished):
                for path in [p for p in table if p not in keep]:
                    del table[path]

    def _finish(self, path: Path) -> None:
        try:
            self._finished[path] = signature_of(os.lstat(path))
        except OSError:  # gone already
            self._finished.pop(path, None)
