"""One pass over the inbox with an explicit clock and an explicit table of files being watched:
settled files are taken (their bytes and ``received`` submission committed, then moved to
``received`` and announced), unroutable ones refused.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ci_pipeline import events
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.receive.inbox.layout import (
    README,
    REASON_SUFFIX,
    REFUSED,
    is_ignored,
    layout_text,
    partner_for,
    route,
)
from ci_pipeline.receive.inbox.moves import (
    Signature,
    create_file,
    free_name,
    move_between,
    open_file,
    opened_folder,
    signature_of,
    utc_stamp,
)

logger = logging.getLogger(__name__)


#: How long a file its writer has finished (closed after writing, or renamed into place, with
#: no handle open since: :mod:`.finished`) must stay unchanged before it is taken: long enough
#: for two passes to see the same size and time, where a file nobody said was finished waits
#: ``settle_seconds``.
FINISHED_SETTLE_SECONDS = 0.2


@dataclass
class Seen:
    """A file being watched until it settles: its signature and since when it has had it."""

    signature: Signature
    since: float
    failures: int = 0  # consecutive failed attempts to take it, to log the first one loudly
    finished: bool = False  # its writer closed it (or renamed it in) with this signature

    def settle(self, settings: Settings) -> float:
        """How long it must keep its signature before it is taken."""
        if self.finished:
            return min(settings.settle_seconds, FINISHED_SETTLE_SECONDS)
        return settings.settle_seconds


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


def scan(
    settings: Settings,
    initiative: Initiative,
    *,
    emitter: events.Emitter,
    engine: Engine,
    pending: Pending,
    now: float,
    finished: Mapping[Path, Signature] | None = None,
) -> ScanResult:
    """One pass over the inbox: take or refuse every settled file, note the others.

    ``pending`` carries the files being watched from one pass to the next (the caller keeps it)
    and ``now`` is the caller's clock (monotonic seconds): a file is handled once its signature
    was the same at two passes at least ``settle_seconds`` apart — or
    :data:`FINISHED_SETTLE_SECONDS` apart for a file whose writer finished it: ``finished``
    maps such files (closed after writing or renamed into place, no handle open since:
    :mod:`.finished`) to their signature then, and only a file that still has it counts.
    Neither blocks nor sleeps.
    """
    result = ScanResult()
    done = finished or {}
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
            pending[path] = Seen(signature, now, finished=done.get(path) == signature)
            result.waiting.append(path)
            continue
        # Asked afresh each pass: a writer that opened it again since has not finished it.
        seen.finished = done.get(path) == signature
        if now - seen.since < seen.settle(settings):
            result.waiting.append(path)
            continue
        outcome = _handle(
            path,
            rel,
            st,
            settings,
            initiative,
            emitter=emitter,
            engine=engine,
            retrying=seen.failures > 0,
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
        result.next_due = min(s.since + s.settle(settings) for s in pending.values())
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
    engine: Engine,
    retrying: bool = False,
) -> Taken | Refused | _Retry | _Gone:
    """Route one settled file: take it, refuse it, or return its new signature to retry."""
    signature = (st.st_size, st.st_mtime_ns)
    routed = route(rel, st, settings, initiative)
    try:
        if isinstance(routed, str):
            return _refuse(path, rel, routed, settings, initiative)
        partner_id, period = routed
        return _take(
            path,
            rel,
            partner_id,
            period,
            signature,
            settings,
            initiative,
            emitter=emitter,
            engine=engine,
        )
    except FileNotFoundError:
        logger.info("inbox: %s disappeared before it could be handled", path)
        return _Gone()
    except (OSError, SQLAlchemyError) as exc:
        # E.g. still open by a writer on a share that locks it, or a full disk: keep the file
        # where it is and retry after another settle period; say so loudly only once.
        log = logger.debug if retrying else logger.warning
        log("inbox: could not handle %s (will retry): %s", path, exc)
        return _Retry(signature, failed=True)


def _take(
    path: Path,
    rel: tuple[str, ...],
    partner_id: str,
    period: str,
    signature: Signature,
    settings: Settings,
    initiative: Initiative,
    *,
    emitter: events.Emitter,
    engine: Engine,
) -> Taken | _Retry:
    """Fingerprint, move to ``received`` and announce one settled file.

    The hash is taken before the move (it names the received file) from one open handle whose
    size and mtime must match the settled signature before and after reading: a writer that
    resumed makes us wait another settle period rather than announce bytes that are not final.
    The file is opened, and moved, relative to its folder reached without following a link
    (:func:`opened_folder`): a link swapped in for it, or for a folder above it, after it was
    listed is never read through (an :class:`OSError`; the next pass refuses the link).
    """
    with opened_folder(settings.inbox_dir, rel[:-1]) as source:
        with os.fdopen(open_file(source, rel[-1]), "rb") as fh:
            st = os.fstat(fh.fileno())
            opened = signature_of(st)
            if opened != signature or not stat.S_ISREG(st.st_mode):
                return _Retry(opened, failed=False)
            content = fh.read()
            after = signature_of(os.fstat(fh.fileno()))
        size = len(content)
        if after != signature or size != signature[0]:
            logger.info("inbox: %s changed while being read; waiting for it to settle again", path)
            return _Retry(after, failed=False)
        # The bytes and the received submission are committed before the file leaves the
        # inbox: if this fails (the database is down), the file stays and is tried again.
        row = intake.take_bytes(
            content,
            partner_id,
            period,
            file_name=path.name,
            initiative=initiative,
            settings=settings,
            engine=engine,
        )
        assert row.id is not None
        content_hash = row.content_hash
        folder = settings.received_dir / partner_id / period
        with opened_folder(settings.received_dir, (partner_id, period), create=True) as received:
            target = free_name(folder, f"{utc_stamp()}-{content_hash[:12]}-", path.name)
            move_between(source, rel[-1], received, target.name)
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
        submission_id=row.id,
        partner_id=partner_id,
        period=period,
        file_name=path.name,
        content_hash=content_hash,
        size_bytes=size,
        source="inbox",
    )
    emitted = events.emit(spec, emitter=emitter) == 1
    if not emitted:
        # events.emit logged the cause; say what it means for this file and who recovers it.
        logger.error(
            "inbox: %s is stored as submission #%d, but its %s event was not sent: the "
            "reconciler will start its ingest (ci-pipeline reconcile does it now)",
            path.name,
            row.id,
            events.SUBMISSION_RECEIVED,
        )
    return Taken(path, target, partner_id, period, path.name, content_hash, size, emitted)


def _refuse(
    path: Path, rel: tuple[str, ...], reason: str, settings: Settings, initiative: Initiative
) -> Refused:
    """Move a file that cannot be taken to ``_refused`` (same sub-path) and explain why.

    A link is moved as a link, never followed; nothing is written through a link planted under
    ``_refused`` (:func:`opened_folder`).
    """
    folder = settings.inbox_dir.joinpath(REFUSED, *rel[:-1])
    with (
        opened_folder(settings.inbox_dir, rel[:-1]) as source,
        opened_folder(settings.inbox_dir, (REFUSED, *rel[:-1]), create=True) as refused,
    ):
        target = free_name(folder, "", path.name)
        move_between(source, rel[-1], refused, target.name)
        reason_path: Path | None = _write_reason(refused, target, rel, reason, initiative)
    logger.warning("inbox: refused %s -> %s: %s", "/".join(rel), target, reason)
    return Refused(path, target, reason_path, reason)


def _write_reason(
    folder: int, target: Path, rel: tuple[str, ...], reason: str, initiative: Initiative
) -> Path | None:
    """Write ``<refused name>.reason.txt`` next to the refused file; its path, or None if it
    could not be written (the file itself is safe; the note is a courtesy)."""
    partner_id = partner_for(rel[0], initiative) if len(rel) > 1 else None
    note = (
        f"{rel[-1]} was not taken: {reason}\n"
        "\n"
        f"{layout_text(initiative, partner_id)}\n"
        "\n"
        f"It was found at: inbox/{'/'.join(rel)}\n"
        f"Refused at: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}\n"
        "Nothing in it was read. Put a corrected copy in the right folder to send it again; "
        "this file and this note can then be removed.\n"
    )
    reason_path = target.with_name(target.name + REASON_SUFFIX)
    try:
        create_file(folder, reason_path.name, note.encode("utf-8"))
    except OSError as exc:
        logger.error("inbox: could not write the reason next to %s: %s", target, exc)
        return None
    return reason_path
