"""The inbox: a folder partners (or a sync job) drop files into, watched as an event source.

Layout::

    HOME/inbox/<partner id>/<period>/<file>      e.g. inbox/nahf-council/2025-Q4/lfp.csv

A file is taken only once it is complete — its size and modification time unchanged for
``settle_seconds`` — so a file still being copied or saved is never read half-way. A taken file
is *moved* to ``HOME/received/<partner>/<period>/<UTC stamp>-<sha12>-<name>`` and announced with
a ``ci.submission.received`` event; the ingest flow reads it from there. A file that cannot be
routed (unknown partner, a folder that is not a period, an unreadable format, an empty file …)
is moved to ``HOME/inbox/_refused/…`` next to a ``<name>.reason.txt`` that tells the partner
why and what the layout must be. A partner's file is never deleted and never overwritten.

:func:`scan` is the core: one pass over the inbox with an explicit clock and an explicit table
of files being watched, so tests drive the settle logic without sleeping. :class:`InboxWatcher`
runs it on a background thread, woken promptly by watchdog's file-system events and rescanning
periodically for files present at start-up or events the OS did not deliver. Nothing here reads
rows: judging the data is the ingest flow's job.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.errors import InvalidPeriod
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.read import FORMATS

logger = logging.getLogger(__name__)

#: Sub-folder of the inbox that holds refused files and their reasons (never scanned).
REFUSED = "_refused"
#: The note :func:`prepare` writes in the inbox root (never taken).
README = "README.txt"
#: Suffix of the note written next to each refused file.
REASON_SUFFIX = ".reason.txt"

#: Names of files being written by another program (browsers, sync clients, editors, Office).
#: They are left alone: the finished file appears under its real name when the writer is done.
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".swp", ".swx")
#: Operating-system clutter that is not a submission and not worth a refusal note.
JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})

#: Shortest wait between scans, so ``settle_seconds = 0`` does not become a busy loop.
MIN_WAIT_SECONDS = 0.05
#: After a file-system event, wait this long for more before scanning: a copy emits many.
COALESCE_SECONDS = 0.05
#: Longest file name most file systems allow, in bytes.
NAME_MAX = 255

Signature = tuple[int, int]  # (size in bytes, mtime in nanoseconds)


@dataclass
class Seen:
    """A file being watched until it settles: its signature and since when it has had it."""

    signature: Signature
    since: float
    failures: int = 0  # consecutive failed attempts to take it, to log the first one loudly


#: What :func:`scan` remembers between passes, keyed by the file's path in the inbox.
Pending = dict[Path, Seen]


@dataclass(frozen=True)
class Taken:
    """A file moved to ``received`` and announced (``emitted`` says whether the event went)."""

    source: Path
    path: Path
    partner_id: str
    period: str
    file_name: str
    content_hash: str
    size_bytes: int
    emitted: bool


@dataclass(frozen=True)
class Refused:
    """A file moved to ``inbox/_refused`` with a note saying why."""

    source: Path
    path: Path
    reason_path: Path | None
    reason: str


@dataclass
class ScanResult:
    """What one pass did: files taken, refused, and still settling."""

    taken: list[Taken] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    waiting: list[Path] = field(default_factory=list)
    #: The earliest clock value at which a waiting file may have settled (None: none waiting).
    next_due: float | None = None


# --- layout ------------------------------------------------------------------------------------


def prepare(settings: Settings, initiative: Initiative) -> list[Path]:
    """Create ``inbox/<partner>/`` for every partner and a README in the inbox root.

    Idempotent; returns the partner folders. Creating them up front shows partners (and a sync
    job) exactly where files go, so a typo in a partner id does not become a new folder.
    """
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    settings.received_dir.mkdir(parents=True, exist_ok=True)
    folders = []
    for partner_id in sorted(initiative.partners):
        folder = inbox / partner_id
        folder.mkdir(exist_ok=True)
        folders.append(folder)
    readme = inbox / README
    text = _readme_text(settings, initiative)
    # Rewrite only when it changed: an unchanged write would still wake every watcher.
    if not readme.is_file() or readme.read_text(encoding="utf-8") != text:
        readme.write_text(text, encoding="utf-8")
    return folders


def _formats() -> str:
    return ", ".join(sorted(FORMATS))


def _example_partner(initiative: Initiative, partner_id: str | None = None) -> str:
    if partner_id:
        return partner_id
    return min(initiative.partners) if initiative.partners else "<partner id>"


def _layout(initiative: Initiative, partner_id: str | None = None) -> str:
    """The partner-facing sentence that says where a file must go."""
    example = _example_partner(initiative, partner_id)
    return (
        "Put each file in your partner folder, inside a folder named for the period the data "
        f"covers: inbox/<partner id>/<period>/<file>, for example inbox/{example}/2025-Q4/data.csv. "
        "A period is a month (2025-09), a quarter (2025-Q4) or a year (2025). "
        f"Files must be one of: {_formats()}."
    )


def _readme_text(settings: Settings, initiative: Initiative) -> str:
    partners = "\n".join(f"  {pid}  ({p.name})" for pid, p in sorted(initiative.partners.items()))
    return (
        f"Inbox of {initiative.info.name.en}\n"
        "\n"
        f"{_layout(initiative)}\n"
        "\n"
        "Partner folders:\n"
        f"{partners}\n"
        "\n"
        "A file is taken once it has not changed for "
        f"{settings.settle_seconds:g} seconds, so a file still being copied is never read "
        "half-way. Taken files leave this folder and are validated; the result is reported to "
        "you separately. Temporary and hidden files (names starting with '.' or '~$', ending "
        f"in {', '.join(TEMPORARY_SUFFIXES)}) are left alone.\n"
        "\n"
        f"A file that cannot be taken is moved to {REFUSED}/, with a note next to it "
        f"(<file name>{REASON_SUFFIX}) saying why. Nothing is ever deleted.\n"
    )


# --- the scan ----------------------------------------------------------------------------------


def is_ignored(name: str) -> bool:
    """Whether a file (or folder) name belongs to a writer still at work, or is OS clutter.

    Hidden names (``.x``, which includes LibreOffice's ``.~lock.*#``), Office lock files
    (``~$x.xlsx``) and download/sync/editor temporaries are skipped, not refused: the real file
    appears under its own name when the writer finishes.
    """
    lower = name.casefold()
    return (
        name.startswith((".", "~$"))
        or lower.endswith(TEMPORARY_SUFFIXES)
        or lower.endswith("~")  # editor backups (file.csv~)
        or lower in JUNK_NAMES
    )


def scan(
    settings: Settings,
    initiative: Initiative,
    *,
    emitter: events.Emitter,
    pending: Pending,
    now: float,
) -> ScanResult:
    """One pass over the inbox: take or refuse every settled file, note the others.

    ``pending`` carries the files being watched from one pass to the next (the caller keeps it)
    and ``now`` is the caller's clock (monotonic seconds): a file is handled once its signature
    was the same at two passes at least ``settle_seconds`` apart. Neither blocks nor sleeps.
    """
    result = ScanResult()
    inbox = settings.inbox_dir
    present: set[Path] = set()
    for path, rel in _candidates(inbox):
        present.add(path)
        try:
            st = path.lstat()
        except FileNotFoundError:  # taken away between listing and looking: nothing to do
            continue
        signature = (st.st_size, st.st_mtime_ns)
        seen = pending.get(path)
        if seen is None or seen.signature != signature:
            # New, or still being written: (re)start its settle clock.
            pending[path] = Seen(signature, now)
            result.waiting.append(path)
            continue
        if now - seen.since < settings.settle_seconds:
            result.waiting.append(path)
            continue
        outcome = _handle(
            path, rel, st, settings, initiative, emitter=emitter, retrying=seen.failures > 0
        )
        if isinstance(outcome, Taken):
            result.taken.append(outcome)
        elif isinstance(outcome, Refused):
            result.refused.append(outcome)
        elif isinstance(outcome, _Gone):
            pending.pop(path, None)
            continue
        else:  # changed while we looked, or an I/O error: try again after another settle period
            failures = seen.failures + 1 if outcome.failed else 0
            pending[path] = Seen(outcome.signature, now, failures)
            result.waiting.append(path)
            continue
        pending.pop(path, None)
    for path in list(pending):
        if path not in present:  # deleted or renamed by the partner before it settled
            del pending[path]
    if pending:
        result.next_due = min(s.since for s in pending.values()) + settings.settle_seconds
    return result


def _candidates(inbox: Path) -> list[tuple[Path, tuple[str, ...]]]:
    """Every file under the inbox worth looking at, with its path relative to the inbox.

    Skips ``_refused``, the README, hidden/temporary names and the insides of hidden folders.
    Symbolic links are listed (so they can be refused) but never followed.
    """
    out: list[tuple[Path, tuple[str, ...]]] = []
    stack: list[tuple[Path, tuple[str, ...]]] = [(inbox, ())]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("inbox: cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            name = entry.name
            if is_ignored(name):
                continue
            if not rel and name in (REFUSED, README):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                stack.append((Path(entry.path), (*rel, name)))
            else:
                out.append((Path(entry.path), (*rel, name)))
    out.sort()
    return out


class _Gone:
    """The file disappeared while being handled (the partner removed it): forget it."""


@dataclass(frozen=True)
class _Retry:
    """Not handled this time: the file changed (``failed`` False) or an I/O error occurred."""

    signature: Signature
    failed: bool


def _handle(
    path: Path,
    rel: tuple[str, ...],
    st: os.stat_result,
    settings: Settings,
    initiative: Initiative,
    *,
    emitter: events.Emitter,
    retrying: bool = False,
) -> Taken | Refused | _Retry | _Gone:
    """Route one settled file: take it, refuse it, or return its new signature to retry."""
    signature = (st.st_size, st.st_mtime_ns)
    routed = _route(rel, st, settings, initiative)
    try:
        if isinstance(routed, str):
            return _refuse(path, rel, routed, settings, initiative)
        partner_id, period = routed
        return _take(path, partner_id, period, signature, settings, emitter=emitter)
    except FileNotFoundError:
        logger.info("inbox: %s disappeared before it could be handled", path)
        return _Gone()
    except OSError as exc:
        # E.g. still open by a writer on a share that locks it, or a full disk: keep the file
        # where it is and retry after another settle period; say so loudly only once.
        log = logger.debug if retrying else logger.warning
        log("inbox: could not handle %s (will retry): %s", path, exc)
        return _Retry(signature, failed=True)


def _route(
    rel: tuple[str, ...], st: os.stat_result, settings: Settings, initiative: Initiative
) -> tuple[str, str] | str:
    """``(partner id, canonical period)`` for a file that can be taken, else why it cannot."""
    name = rel[-1]
    if len(rel) == 1:
        return (
            f"The file {name!r} was put directly in the inbox, not in a partner folder, so it "
            "is not known who sent it."
        )
    partner_id = _partner_for(rel[0], initiative)
    if partner_id is None:
        known = ", ".join(sorted(initiative.partners))
        return (
            f"{rel[0]!r} is not a partner of this initiative, so it is not known who sent "
            f"{name!r}. Partner folders are: {known}."
        )
    if len(rel) == 2:
        return (
            f"The file {name!r} was put directly in the partner folder {rel[0]!r}, without a "
            "period folder, so it is not known which period it reports."
        )
    try:
        period = parse_period(rel[1]).label
    except InvalidPeriod:
        return f"The folder {rel[1]!r} is not a period, so it is not known which period {name!r} reports."
    if len(rel) > 3:
        inner = "/".join(rel[2:-1])
        return (
            f"The file {name!r} is inside a sub-folder ({inner}) of the period folder; files "
            "must be directly in the period folder."
        )
    if not stat.S_ISREG(st.st_mode):
        # A link could point anywhere on the server; a pipe would block the reader forever.
        return f"{name!r} is not a regular file (a link, pipe or device); send the file itself."
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        what = f"a {suffix} file" if suffix else "a file without an extension"
        return f"{name!r} is {what}, which the pipeline cannot read."
    if st.st_size == 0:
        return f"The file {name!r} is empty (0 bytes)."
    if st.st_size > settings.max_file_bytes:
        return (
            f"The file {name!r} is {_mib(st.st_size)}, larger than the "
            f"{_mib(settings.max_file_bytes)} a submission may be; it was not read."
        )
    return partner_id, period


def _partner_for(folder: str, initiative: Initiative) -> str | None:
    """The partner a folder belongs to; its case is forgiven (ids are lower-case slugs)."""
    if folder in initiative.partners:
        return folder
    wanted = folder.strip().casefold()
    return next((pid for pid in initiative.partners if pid.casefold() == wanted), None)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _take(
    path: Path,
    partner_id: str,
    period: str,
    signature: Signature,
    settings: Settings,
    *,
    emitter: events.Emitter,
) -> Taken | _Retry:
    """Fingerprint, move to ``received`` and announce one settled file.

    The hash is taken before the move (it names the received file) from one open handle whose
    size and mtime must match the settled signature before and after reading: a writer that
    resumed makes us wait another settle period rather than announce bytes that are not final.
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        opened = _signature(os.fstat(fh.fileno()))
        if opened != signature:
            return _Retry(opened, failed=False)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
        after = _signature(os.fstat(fh.fileno()))
    if after != signature or size != signature[0]:
        logger.info("inbox: %s changed while being read; waiting for it to settle again", path)
        return _Retry(after, failed=False)
    content_hash = digest.hexdigest()
    folder = settings.received_dir / partner_id / period
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, f"{_utc_stamp()}-{content_hash[:12]}-", path.name)
    _move(path, target)
    logger.info(
        "inbox: took %s for %s %s (%d bytes, sha256 %s) -> %s",
        path.name,
        partner_id,
        period,
        size,
        content_hash[:12],
        target,
    )
    spec = events.submission_received(
        partner_id=partner_id,
        period=period,
        path=str(target),
        file_name=path.name,
        content_hash=content_hash,
        size_bytes=size,
        source="inbox",
        encoding=None,
    )
    emitted = events.emit(spec, emitter=emitter) == 1
    if not emitted:
        # events.emit logged the cause; say what it means for this file and how to recover.
        logger.error(
            "inbox: %s is safe in %s but its %s event was not sent, so no ingest was started; "
            "submit it by hand: ci-pipeline submit %s --partner %s --period %s",
            path.name,
            target,
            events.SUBMISSION_RECEIVED,
            target,
            partner_id,
            period,
        )
    return Taken(path, target, partner_id, period, path.name, content_hash, size, emitted)


def _signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns)


def _refuse(
    path: Path, rel: tuple[str, ...], reason: str, settings: Settings, initiative: Initiative
) -> Refused:
    """Move a file that cannot be taken to ``_refused`` (same sub-path) and explain why."""
    folder = settings.inbox_dir / REFUSED
    for part in rel[:-1]:
        folder = folder / part
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, "", path.name)
    _move(path, target)
    partner_id = _partner_for(rel[0], initiative) if len(rel) > 1 else None
    note = (
        f"{path.name} was not taken: {reason}\n"
        "\n"
        f"{_layout(initiative, partner_id)}\n"
        "\n"
        f"It was found at: inbox/{'/'.join(rel)}\n"
        f"Refused at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}\n"
        "Nothing in it was read. Put a corrected copy in the right folder to send it again; "
        "this file and this note can then be removed.\n"
    )
    reason_path: Path | None = target.with_name(target.name + REASON_SUFFIX)
    try:
        target.with_name(target.name + REASON_SUFFIX).write_text(note, encoding="utf-8")
    except OSError as exc:  # the file itself is safe; the note is a courtesy
        logger.error("inbox: could not write the reason next to %s: %s", target, exc)
        reason_path = None
    logger.warning("inbox: refused %s -> %s: %s", "/".join(rel), target, reason)
    return Refused(path, target, reason_path, reason)


def _free_name(folder: Path, prefix: str, name: str) -> Path:
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


def _move(src: Path, dst: Path) -> None:
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


# --- the watcher -------------------------------------------------------------------------------


class InboxWatcher:
    """Watch the inbox on a background thread and take files as they settle.

    Watchdog's observer wakes the thread as soon as something is created, written, closed or
    moved; a rescan also runs every ``min(settle_seconds, 1)`` seconds (and when a waiting file
    is due), so files present at start-up and events the OS dropped are handled too. Between
    scans the thread waits on an event, so an idle inbox costs no CPU. Use as a context manager
    or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        settings: Settings,
        initiative: Initiative,
        *,
        emitter: events.Emitter,
        use_observer: bool = True,
    ) -> None:
        self.settings = settings
        self.initiative = initiative
        self.emitter = emitter
        self.use_observer = use_observer
        self.pending: Pending = {}
        self._lock = threading.Lock()  # one scan at a time, whoever calls it
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
            return scan(
                self.settings,
                self.initiative,
                emitter=self.emitter,
                pending=self.pending,
                now=time.monotonic() if now is None else now,
            )

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
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
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
                if not (ours(event.src_path) or (event.dest_path and ours(event.dest_path))):
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
