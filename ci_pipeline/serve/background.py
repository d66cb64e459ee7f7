"""The thread beside ``serve``'s main one that the reconciler and the warm lane each run: a
daemon thread started on entering a ``with`` block, told to stop and joined on leaving it."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self


class Background:
    """Runs :meth:`_run` on a daemon thread named :attr:`thread_name` from ``__enter__``;
    ``__exit__`` sets :attr:`_stop` (which :meth:`_run` watches) and waits up to
    :attr:`join_seconds` for it to return (a daemon thread left running ends with the
    process)."""

    thread_name = "ci-background"
    join_seconds = 5.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.join_seconds)
