"""The watcher thread: :func:`scan` run on a background thread, woken promptly by watchdog's
file-system events and rescanning periodically for what the OS did not report.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive.inbox.finished import FinishedFiles
from ci_pipeline.receive.inbox.layout import REFUSED, prepare
from ci_pipeline.receive.inbox.scan import Pending, ScanResult, scan

logger = logging.getLogger(__name__)


#: Shortest wait between scans, so ``settle_seconds = 0`` does not become a busy loop.
MIN_WAIT_SECONDS = 0.05


#: After a file-system event, wait this long for more before scanning: a copy emits many.
COALESCE_SECONDS = 0.05


class InboxWatcher:
    """Watch the inbox on a background thread and take files as they settle.

    Watchdog's observer wakes the thread as soon as something is created, written, closed or
    moved; its open, close and move events also say which files their writers finished
    (:mod:`.finished`), which settle after :data:`~.scan.FINISHED_SETTLE_SECONDS` instead of
    ``settle_seconds``. A rescan also runs every ``min(settle_seconds, 1)`` seconds (and when a
    waiting file is due), so files present at start-up and events the OS dropped are handled
    too. Between scans the thread waits on an event, so an idle inbox costs no CPU. Use as a
    context manager or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        settings: Settings,
        initiative: Initiative,
        *,
        emitter: events.Emitter,
        engine: Engine,
        use_observer: bool = True,
    ) -> None:
        self.settings = settings
        self.initiative = initiative
        self.emitter = emitter
        self.engine = engine
        self.use_observer = use_observer
        self.pending: Pending = {}
        self._lock = threading.Lock()  # one scan at a time, whoever calls it
        # Which files their writers finished (the observer's open, close and move events).
        self.finished = FinishedFiles()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None

    @property
    def poll_seconds(self) -> float:
        """How often the inbox is rescanned without an event."""
        return max(MIN_WAIT_SECONDS, min(self.settings.settle_seconds, 1.0))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> InboxWatcher:
        """Prepare the layout, start the observer (if the OS allows) and the scanning thread."""
        if self.running:
            return self
        prepare(self.settings, self.initiative)
        self._stop.clear()
        self._wake.set()  # scan at once: files may be waiting from before start-up
        if self.use_observer:
            self._observer = self._start_observer()
        self._thread = threading.Thread(target=self._run, name="ci-inbox-watcher", daemon=True)
        self._thread.start()
        logger.info("inbox: watching %s", self.settings.inbox_dir)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and the observer, waiting at most about ``timeout`` seconds each."""
        self._stop.set()
        self._wake.set()
        observer, self._observer = self._observer, None
        if observer is not None:
            try:
                observer.stop()
                observer.join(timeout)
            except Exception:  # stopping must not fail the caller's shutdown
                logger.exception("inbox: could not stop the file-system observer")
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():  # e.g. hashing a large file; it is a daemon thread
                logger.warning("inbox: watcher thread still busy after %.1f s", timeout)

    def __enter__(self) -> InboxWatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wake(self) -> None:
        """Ask for a scan now (the observer calls this on every relevant event)."""
        self._wake.set()

    def scan_once(self, now: float | None = None) -> ScanResult:
        """Run one scan with the watcher's pending table (thread-safe)."""
        with self._lock:
            result = scan(
                self.settings,
                self.initiative,
                emitter=self.emitter,
                engine=self.engine,
                pending=self.pending,
                now=time.monotonic() if now is None else now,
                finished=self.finished.signatures(),
            )
            # Every file still in the inbox is pending after a scan; forget the others. (A file
            # that appeared during the scan loses its head start: it waits the settle period.)
            self.finished.forget(set(self.pending))
            return result

    def _run(self) -> None:
        while not self._stop.is_set():
            # Clear before scanning: an event during the scan then triggers another one.
            self._wake.clear()
            next_due = None
            try:
                next_due = self.scan_once().next_due
            except Exception:  # one bad pass must not end the watcher
                logger.exception("inbox: scan failed")
            timeout = self.poll_seconds
            if next_due is not None:
                timeout = min(timeout, max(MIN_WAIT_SECONDS, next_due - time.monotonic()))
            if self._wake.wait(timeout) and not self._stop.is_set():
                # A copy emits a burst of events: let it gather, then scan once.
                self._stop.wait(COALESCE_SECONDS)

    def _start_observer(self) -> Any:
        """A recursive watchdog observer on the inbox, or None if the OS refuses one."""
        from watchdog.events import (
            DirCreatedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileClosedNoWriteEvent,
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileOpenedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        refused = str(self.settings.inbox_dir / REFUSED)
        watcher = self

        def ours(raw: str | bytes) -> bool:
            path = os.fsdecode(raw)
            return path == refused or path.startswith(refused + os.sep)

        class _Wake(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # Moves into _refused and writes inside it are the watcher's own: no scan.
                if ours(event.src_path) or (event.dest_path and ours(event.dest_path)):
                    return
                # Opens, closes and renames say when a writer has finished a file: it need
                # not wait the whole settle period (a partner's copy ends with one of these).
                path = Path(os.fsdecode(event.src_path))
                if isinstance(event, FileOpenedEvent):
                    watcher.finished.opened(path)
                    return  # an open changes nothing to scan for
                if isinstance(event, FileClosedNoWriteEvent):
                    watcher.finished.closed(path, wrote=False)
                    return  # a reader (the scan itself, when it hashes a file)
                if isinstance(event, FileClosedEvent):
                    watcher.finished.closed(path, wrote=True)
                elif isinstance(event, FileMovedEvent) and event.dest_path:
                    watcher.finished.moved(path, Path(os.fsdecode(event.dest_path)))
                watcher.wake()

        observer = Observer()
        try:
            observer.schedule(
                _Wake(),
                str(self.settings.inbox_dir),
                recursive=True,
                event_filter=[
                    FileCreatedEvent,
                    FileModifiedEvent,
                    FileMovedEvent,
                    FileClosedEvent,
                    FileClosedNoWriteEvent,
                    FileOpenedEvent,
                    DirCreatedEvent,
                    DirMovedEvent,
                ],
            )
            observer.start()
        except Exception as exc:  # e.g. inotify watch limit reached: polling still works
            logger.warning(
                "inbox: no file-system events (%s); rescanning every %.2f s instead",
                exc,
                self.poll_seconds,
            )
            return None
        return observer
