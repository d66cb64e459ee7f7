"""The inbox watcher: settle logic, routing, refusals and the background thread.

The settle logic is driven with an explicit clock through :func:`inbox.scan`; one test runs the
real :class:`inbox.InboxWatcher` thread and polls with a deadline instead of sleeping.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ci_pipeline import events, store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import inbox, intake

#: The module (the package's ``scan`` names its function).
scan_module = importlib.import_module("ci_pipeline.receive.inbox.scan")

PARTNER = "nahf-council"
SETTLE = 1.0
CSV = b"measure_id,geo_code,period,value\nsmb-digital-presence,nahf,2025-Q4,0.4\n"


@pytest.fixture
def cfg(home: Path) -> Settings:
    """Settings in an isolated home with a known settle time."""
    return get_settings(settle_seconds=SETTLE)


class Harness:
    """Drives :func:`inbox.scan` with an explicit clock and collects the events."""

    def __init__(self, settings: Settings, initiative: Initiative) -> None:
        self.settings = settings
        self.initiative = initiative
        self.engine = database(settings, initiative)
        self.pending: inbox.Pending = {}
        self.events: list[events.EventSpec] = []

    def scan(
        self,
        now: float,
        emitter: events.Emitter | None = None,
        finished: dict[Path, tuple[int, int]] | None = None,
    ) -> inbox.ScanResult:
        return inbox.scan(
            self.settings,
            self.initiative,
            emitter=emitter or self.events.append,
            engine=self.engine,
            pending=self.pending,
            now=now,
            finished=finished,
        )

    def settle(self, start: float = 0.0) -> inbox.ScanResult:
        """Two scans one settle period apart: first sight, then taken (or refused)."""
        first = self.scan(start)
        assert not first.taken and not first.refused
        return self.scan(start + self.settings.settle_seconds)


def database(settings: Settings, initiative: Initiative) -> Engine:
    """The home's database, with the initiative's definitions."""
    engine = store.engine_for(settings.resolved_database_url)
    intake.prepare_database(initiative, engine=engine)
    return engine


def stored_submission(engine: Engine, spec: events.EventSpec) -> store.Submission:
    """The received submission an event names (its bytes must be stored with it)."""
    row = store.get_submission(spec.payload["submission_id"], engine=engine)
    assert row is not None and row.status == "received"
    return row


@pytest.fixture
def harness(cfg: Settings, initiative: Initiative) -> Harness:
    inbox.prepare(cfg, initiative)
    return Harness(cfg, initiative)


def drop(settings: Settings, rel: str, content: bytes = CSV) -> Path:
    path = settings.inbox_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def drop_link(settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    """The partner's 2025-Q4 ``lfp.csv`` dropped as a symbolic link to ``secret.csv``, a file
    outside the inbox: (the secret, the link)."""
    secret = tmp_path / "secret.csv"
    secret.write_bytes(CSV)
    link = settings.inbox_dir / PARTNER / "2025-Q4" / "lfp.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    return secret, link


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- layout ------------------------------------------------------------------------------------


def test_prepare_creates_a_folder_per_partner_and_a_readme(
    cfg: Settings, initiative: Initiative
) -> None:
    folders = inbox.prepare(cfg, initiative)

    assert sorted(f.name for f in folders) == sorted(initiative.partners)
    assert all(f.is_dir() and f.parent == cfg.inbox_dir for f in folders)
    readme = (cfg.inbox_dir / inbox.README).read_text(encoding="utf-8")
    assert "inbox/<partner id>/<period>/<file>" in readme
    assert PARTNER in readme and "2025-Q4" in readme and inbox.REFUSED in readme
    # Idempotent, and the README itself is never taken or refused.
    mtime = (cfg.inbox_dir / inbox.README).stat().st_mtime_ns
    assert inbox.prepare(cfg, initiative) == folders
    assert (cfg.inbox_dir / inbox.README).stat().st_mtime_ns == mtime
    h = Harness(cfg, initiative)
    assert h.settle() == inbox.ScanResult()


# --- taking a settled file ---------------------------------------------------------------------


def test_a_settled_file_is_moved_and_announced_once(harness: Harness, cfg: Settings) -> None:
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")

    first = harness.scan(0.0)
    assert first.waiting == [source] and first.next_due == SETTLE
    assert source.exists() and harness.events == []

    result = harness.scan(SETTLE)
    assert [t.source for t in result.taken] == [source] and not result.waiting
    assert not source.exists()
    taken = result.taken[0]
    digest = sha(CSV)
    assert taken.path.parent == cfg.received_dir / PARTNER / "2025-Q4"
    assert re.fullmatch(rf"\d{{8}}T\d{{6}}Z-{digest[:12]}-lfp\.csv", taken.path.name)
    assert taken.path.read_bytes() == CSV
    assert taken.emitted

    [spec] = harness.events
    row = stored_submission(harness.engine, spec)
    assert (row.partner_id, row.period, row.file_name, row.size_bytes) == (
        PARTNER,
        "2025-Q4",
        "lfp.csv",
        len(CSV),
    )
    assert store.received_content(digest, engine=harness.engine) == CSV
    assert spec.event == events.SUBMISSION_RECEIVED
    assert spec.resource["prefect.resource.id"] == f"ci.upload.{row.id}"
    assert spec.labels == {
        "ci.partner": PARTNER,
        "ci.period": "2025-Q4",
        "ci.source": "inbox",
        "ci.submission": str(row.id),
        "ci.lane": "queued",  # serve's warm lane relabels it (serve/warm.py)
    }
    assert spec.payload == {
        "submission_id": row.id,
        "partner_id": PARTNER,
        "period": "2025-Q4",
        "file_name": "lfp.csv",
        "content_hash": digest,
        "size_bytes": len(CSV),
        "source": "inbox",
    }
    # Nothing left to do: a later scan neither re-takes nor re-announces.
    assert harness.scan(10 * SETTLE) == inbox.ScanResult()
    assert len(harness.events) == 1 and harness.pending == {}


def test_a_file_still_growing_is_not_taken_until_it_settles(
    harness: Harness, cfg: Settings
) -> None:
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv", CSV[:10])
    assert harness.scan(0.0).waiting == [source]

    with source.open("ab") as fh:  # the writer goes on: the settle clock restarts
        fh.write(CSV[10:30])
    assert harness.scan(0.9).waiting == [source]
    assert harness.scan(1.5).waiting == [source]  # only 0.6 s since the last change

    with source.open("ab") as fh:
        fh.write(CSV[30:])
    assert harness.scan(2.0).waiting == [source]
    assert harness.scan(2.5).waiting == [source]

    result = harness.scan(3.0)
    assert len(result.taken) == 1 and result.taken[0].path.read_bytes() == CSV
    assert harness.events[0].payload["size_bytes"] == len(CSV)


def finished_now(path: Path) -> dict[Path, tuple[int, int]]:
    """``path`` finished by its writer, with the size and time it has now."""
    st = path.lstat()
    return {path: (st.st_size, st.st_mtime_ns)}


def test_a_file_its_writer_finished_settles_sooner(harness: Harness, cfg: Settings) -> None:
    """A file its writer finished (closed after writing, no handle open since) is taken once
    two passes 0.2 s apart see it with the size and time it had then, not after the whole
    settle second. Once it changes again it no longer counts as finished — the finished
    signature is the old one — so it waits the full second, until it is finished again."""
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv", CSV[:10])
    done = finished_now(source)
    first = harness.scan(0.0, finished=done)
    assert first.waiting == [source] and first.next_due == pytest.approx(0.2)
    assert harness.scan(0.1, finished=done).waiting == [source]  # 0.1 s unchanged: not yet

    with source.open("ab") as fh:  # the writer came back
        fh.write(CSV[10:])
    again = harness.scan(0.15, finished=done)  # its finished signature is the old one
    assert again.waiting == [source] and again.next_due == pytest.approx(1.15)
    assert harness.scan(0.5, finished=done).waiting == [source]  # 0.35 s: not finished

    result = harness.scan(0.6, finished=finished_now(source))  # finished again, unchanged
    assert len(result.taken) == 1 and result.taken[0].path.read_bytes() == CSV


def test_a_file_opened_again_is_not_finished(tmp_path: Path) -> None:
    """The open and close events a writer makes: a close after writing with no other handle
    open finishes a file; an open (``>>`` reopening it before writing more) unfinishes it; a
    reader's close (no write) never finishes one; a rename finishes it where no handle is open,
    and carries the handles along otherwise."""
    from ci_pipeline.receive.inbox.finished import FinishedFiles

    f = FinishedFiles()
    path = tmp_path / "lfp.csv"
    path.write_bytes(CSV)
    f.opened(path)
    f.opened(path)  # two writers
    f.closed(path, wrote=True)
    assert f.signatures() == {}  # one still open
    f.closed(path, wrote=True)
    assert list(f.signatures()) == [path]
    f.opened(path)  # reopened to append
    assert f.signatures() == {}
    f.closed(path, wrote=False)  # it only read
    assert f.signatures() == {}

    moved = tmp_path / "moved.csv"
    path.rename(moved)
    f.moved(path, moved)
    assert list(f.signatures()) == [moved]
    f.opened(moved)
    again = tmp_path / "again.csv"
    moved.rename(again)
    f.moved(moved, again)  # still open under its new name
    assert f.signatures() == {}
    f.closed(again, wrote=True)
    assert list(f.signatures()) == [again]
    f.forget(set())
    assert f.signatures() == {}


def test_a_changed_mtime_alone_restarts_the_settle_clock(harness: Harness, cfg: Settings) -> None:
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")
    harness.scan(0.0)
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same size, rewritten

    assert harness.scan(SETTLE).waiting == [source]
    assert len(harness.scan(2 * SETTLE).taken) == 1


def test_a_file_removed_before_it_settles_is_forgotten(harness: Harness, cfg: Settings) -> None:
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")
    harness.scan(0.0)
    source.unlink()

    assert harness.scan(SETTLE) == inbox.ScanResult()
    assert harness.pending == {} and harness.events == []


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.csv",
        "~$lfp.xlsx",
        ".~lock.lfp.xlsx#",
        "lfp.csv.part",
        "lfp.csv.tmp",
        "lfp.csv.crdownload",
        ".lfp.csv.swp",
        "lfp.swp",
        "LFP.CSV.TMP",
        "Thumbs.db",
    ],
)
def test_temporary_and_hidden_files_are_left_alone(
    harness: Harness, cfg: Settings, name: str
) -> None:
    source = drop(cfg, f"{PARTNER}/2025-Q4/{name}")

    assert harness.settle() == inbox.ScanResult()
    assert source.read_bytes() == CSV
    assert harness.events == [] and not (cfg.inbox_dir / inbox.REFUSED).exists()


def test_files_inside_hidden_folders_are_left_alone(harness: Harness, cfg: Settings) -> None:
    source = drop(cfg, f"{PARTNER}/.sync-cache/2025-Q4/lfp.csv")

    assert harness.settle() == inbox.ScanResult()
    assert source.exists()


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("2025-Q4", "2025-Q4"), ("2025-q4", "2025-Q4"), ("2025-9", "2025-09"), ("2025", "2025")],
)
def test_the_period_folder_is_canonicalised(
    harness: Harness, cfg: Settings, folder: str, expected: str
) -> None:
    drop(cfg, f"{PARTNER}/{folder}/lfp.csv")

    [taken] = harness.settle().taken
    assert taken.period == expected
    assert taken.path.parent == cfg.received_dir / PARTNER / expected
    assert harness.events[0].resource["ci.period"] == expected
    assert harness.events[0].payload["period"] == expected


def test_the_partner_folder_case_is_forgiven(harness: Harness, cfg: Settings) -> None:
    drop(cfg, "NAHF-Council/2025-Q4/lfp.csv")

    [taken] = harness.settle().taken
    assert taken.partner_id == PARTNER
    assert harness.events[0].resource["ci.partner"] == PARTNER


def test_the_same_name_twice_keeps_both_files(harness: Harness, cfg: Settings) -> None:
    drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv", CSV)
    [first] = harness.settle(0.0).taken
    second_content = CSV.replace(b"0.4", b"0.5")
    drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv", second_content)
    [second] = harness.settle(10.0).taken

    assert first.path != second.path
    assert first.path.read_bytes() == CSV and second.path.read_bytes() == second_content
    assert [e.payload["content_hash"] for e in harness.events] == [
        sha(CSV),
        sha(second_content),
    ]
    assert [e.payload["file_name"] for e in harness.events] == ["lfp.csv", "lfp.csv"]


def test_the_same_bytes_twice_in_one_second_overwrite_nothing(
    harness: Harness, cfg: Settings
) -> None:
    drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")
    [first] = harness.settle(0.0).taken
    drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")
    [second] = harness.settle(10.0).taken

    assert first.path != second.path
    assert first.path.read_bytes() == second.path.read_bytes() == CSV
    assert len(list((cfg.received_dir / PARTNER / "2025-Q4").iterdir())) == 2


def test_a_failed_emit_leaves_the_file_in_received_and_says_so(
    harness: Harness, cfg: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(spec: events.EventSpec) -> None:
        raise ConnectionError("events API down")

    drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")
    harness.scan(0.0, broken)
    with caplog.at_level(logging.ERROR):
        [taken] = harness.scan(SETTLE, broken).taken

    assert not taken.emitted and taken.path.read_bytes() == CSV
    # The file is stored as a received submission: the reconciler will start its ingest.
    [row] = store.list_submissions(engine=harness.engine)
    assert row.status == "received"
    assert store.received_content(row.content_hash, engine=harness.engine) == CSV
    assert any(
        f"submission #{row.id}" in r.getMessage() and "reconcile" in r.getMessage()
        for r in caplog.records
        if r.name.startswith(inbox.__name__)
    )


def test_a_move_across_file_systems_copies_then_removes(
    harness: Harness, cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def no_cross_device(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
        """A rename between two folders fails as between two file systems."""
        if os.path.samestat(os.fstat(src_dir_fd), os.fstat(dst_dir_fd)) is False:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", no_cross_device)
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")

    [taken] = harness.settle().taken
    assert not source.exists() and taken.path.read_bytes() == CSV
    assert [p.name for p in taken.path.parent.iterdir()] == [taken.path.name]  # no .part left


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "content", "why"),
    [
        ("acme/2025-Q4/lfp.csv", CSV, "'acme' is not a partner"),
        (f"{PARTNER}/autumn/lfp.csv", CSV, "'autumn' is not a period"),
        (f"{PARTNER}/2025-13/lfp.csv", CSV, "'2025-13' is not a period"),
        (f"{PARTNER}/lfp.csv", CSV, "without a period folder"),
        ("lfp.csv", CSV, "not in a partner folder"),
        (f"{PARTNER}/2025-Q4/lfp.pdf", CSV, "a .pdf file"),
        (f"{PARTNER}/2025-Q4/lfp", CSV, "a file without an extension"),
        (f"{PARTNER}/2025-Q4/lfp.csv", b"", "is empty"),
        (f"{PARTNER}/2025-Q4/old/lfp.csv", CSV, "inside a sub-folder (old)"),
    ],
)
def test_a_file_that_cannot_be_routed_is_refused_with_a_reason(
    harness: Harness, cfg: Settings, rel: str, content: bytes, why: str
) -> None:
    source = drop(cfg, rel, content)

    first = harness.scan(0.0)  # even a file to refuse is first left to settle
    assert first.waiting == [source] and source.exists()
    result = harness.scan(SETTLE)

    [refused] = result.refused
    assert not result.taken and harness.events == []
    assert not source.exists()
    assert refused.path == cfg.inbox_dir / inbox.REFUSED / rel
    assert refused.path.read_bytes() == content  # never deleted, never altered
    assert why in refused.reason
    assert refused.reason_path == refused.path.with_name(refused.path.name + ".reason.txt")
    note = refused.reason_path.read_text(encoding="utf-8")
    assert why in note and "inbox/<partner id>/<period>/<file>" in note
    assert "2025-Q4" in note and ".csv" in note
    # Refused files are not looked at again.
    assert harness.scan(10 * SETTLE) == inbox.ScanResult()


def test_a_file_over_the_size_limit_is_refused_unread(home: Path, initiative: Initiative) -> None:
    settings = get_settings(settle_seconds=SETTLE, max_file_bytes=10)
    h = Harness(settings, initiative)
    drop(settings, f"{PARTNER}/2025-Q4/lfp.csv")

    [refused] = h.settle().refused
    assert "larger than" in refused.reason and h.events == []
    assert refused.path.read_bytes() == CSV


def test_refusing_the_same_name_twice_keeps_both(harness: Harness, cfg: Settings) -> None:
    drop(cfg, "acme/2025-Q4/lfp.csv", b"one")
    [first] = harness.settle(0.0).refused
    drop(cfg, "acme/2025-Q4/lfp.csv", b"two")
    [second] = harness.settle(10.0).refused

    assert first.path.name == "lfp.csv" and second.path.name == "lfp (2).csv"
    assert first.path.read_bytes() == b"one" and second.path.read_bytes() == b"two"
    assert first.reason_path and first.reason_path.exists()
    assert second.reason_path and second.reason_path.exists()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_symbolic_link_is_refused_not_followed(
    harness: Harness, cfg: Settings, tmp_path: Path
) -> None:
    secret, _ = drop_link(cfg, tmp_path)

    [refused] = harness.settle().refused
    assert "not a regular file" in refused.reason
    assert refused.path.is_symlink() and secret.read_bytes() == CSV
    assert harness.events == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_link_planted_in_refused_never_carries_a_refusal_outside_the_inbox(
    harness: Harness, cfg: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can write the inbox can plant ``_refused/acme -> /elsewhere``: the refusal is
    not written through it; the file stays where it was, and the log says why."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cfg.inbox_dir / inbox.REFUSED).mkdir(parents=True)
    (cfg.inbox_dir / inbox.REFUSED / "acme").symlink_to(elsewhere, target_is_directory=True)
    source = drop(cfg, "acme/2025-Q4/lfp.csv")

    with caplog.at_level(logging.WARNING):
        result = harness.settle()

    assert result.refused == [] and result.taken == [] and harness.events == []
    assert list(elsewhere.rglob("*")) == []  # nothing written through the link
    assert source.read_bytes() == CSV  # the partner's file is where it was
    assert any("symbolic link" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_refused_link_is_moved_as_a_link_across_file_systems(
    harness: Harness, cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def no_cross_device(src: str, dst: str, *, src_dir_fd: int, dst_dir_fd: int) -> None:
        if not os.path.samestat(os.fstat(src_dir_fd), os.fstat(dst_dir_fd)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", no_cross_device)
    secret, link = drop_link(cfg, tmp_path)

    [refused] = harness.settle().refused
    assert refused.path.is_symlink() and os.readlink(refused.path) == str(secret)
    assert not os.path.lexists(link) and secret.read_bytes() == CSV


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
@pytest.mark.parametrize("rel", [PARTNER, f"{PARTNER}/2025-Q4"])
def test_a_link_to_a_folder_outside_is_refused_and_never_entered(
    harness: Harness, cfg: Settings, tmp_path: Path, rel: str
) -> None:
    """``inbox/nahf-council -> /outside`` or ``inbox/nahf-council/2025-Q4 -> /outside``: the
    link is moved aside as a link; nothing inside the folder it names is read or moved."""
    outside = tmp_path / "outside"
    (outside / "2025-Q4").mkdir(parents=True)
    (outside / "lfp.csv").write_bytes(CSV)
    (outside / "2025-Q4" / "lfp.csv").write_bytes(CSV)
    link = cfg.inbox_dir / rel
    shutil.rmtree(link, ignore_errors=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)

    [refused] = harness.settle().refused
    assert "symbolic link" in refused.reason and harness.events == []
    assert refused.path == cfg.inbox_dir / inbox.REFUSED / rel and refused.path.is_symlink()
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*")) == [
        "2025-Q4",
        "2025-Q4/lfp.csv",
        "lfp.csv",
    ]
    assert list(cfg.received_dir.rglob("*.csv")) == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_link_planted_in_received_never_carries_a_file_outside(
    harness: Harness, cfg: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cfg.received_dir / PARTNER).symlink_to(elsewhere, target_is_directory=True)
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")

    with caplog.at_level(logging.WARNING):
        result = harness.settle()

    assert result.taken == [] and harness.events == []
    assert list(elsewhere.rglob("*")) == []  # nothing made or moved through the link
    assert source.read_bytes() == CSV  # the partner's file is where it was
    assert any("symbolic link" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
@pytest.mark.parametrize("swapped", ["file", "folder"])
def test_a_link_swapped_in_after_the_file_settled_is_never_read(
    harness: Harness,
    cfg: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    swapped: str,
) -> None:
    """The file settles as a regular file; between the check and the read, it (or its period
    folder) is replaced by a link to an outside file with the same bytes and modification
    time, so the settled signature matches. Nothing is read through the link: no event, the
    outside file stays where it is, and the next pass refuses the link."""
    source = drop(cfg, f"{PARTNER}/2025-Q4/lfp.csv")
    st = source.stat()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "lfp.csv"
    secret.write_bytes(CSV)
    os.utime(secret, ns=(st.st_atime_ns, st.st_mtime_ns))
    real_route = scan_module.route

    def route_then_swap(*args: object, **kwargs: object) -> object:
        routed = real_route(*args, **kwargs)
        if swapped == "file":
            source.unlink()
            source.symlink_to(secret)
        else:
            shutil.rmtree(source.parent)
            source.parent.symlink_to(outside, target_is_directory=True)
        return routed

    harness.scan(0.0)
    with monkeypatch.context() as patch:
        patch.setattr(scan_module, "route", route_then_swap)
        result = harness.scan(SETTLE)

    assert result.taken == [] and harness.events == []
    assert secret.read_bytes() == CSV and list(cfg.received_dir.rglob("*.csv")) == []
    [refused] = harness.settle(10 * SETTLE).refused
    assert refused.path.is_symlink() and harness.events == []
    assert secret.read_bytes() == CSV


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_link_planted_as_the_readme_is_replaced_not_written_through(
    cfg: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me", encoding="utf-8")
    cfg.inbox_dir.mkdir(parents=True)
    (cfg.inbox_dir / inbox.README).symlink_to(outside)

    inbox.prepare(cfg, initiative)

    assert outside.read_text(encoding="utf-8") == "keep me"
    readme = cfg.inbox_dir / inbox.README
    assert not readme.is_symlink() and "Partner folders" in readme.read_text(encoding="utf-8")


# --- the watcher thread ------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], deadline: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or the deadline passes (no fixed sleeps)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_the_watcher_takes_a_file_written_in_two_chunks_once(
    home: Path, initiative: Initiative
) -> None:
    settings = get_settings(settle_seconds=0.5)
    emitted: list[events.EventSpec] = []
    target = settings.inbox_dir / PARTNER / "2025-Q4" / "lfp.csv"

    engine = database(settings, initiative)
    with inbox.InboxWatcher(settings, initiative, emitter=emitted.append, engine=engine) as watcher:
        assert watcher.running
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            fh.write(CSV[:20])
            fh.flush()
            time.sleep(0.1)  # a pause shorter than the settle time, mid-write
            fh.write(CSV[20:])
        assert wait_for(lambda: len(emitted) >= 1), "no event within the deadline"
    assert not watcher.running

    [spec] = emitted
    assert (
        store.received_content(stored_submission(engine, spec).content_hash, engine=engine) == CSV
    )
    assert spec.payload["content_hash"] == sha(CSV) and spec.payload["size_bytes"] == len(CSV)
    assert not target.exists()


def test_the_watcher_takes_a_closed_file_before_the_settle_period(
    home: Path, initiative: Initiative
) -> None:
    """With the file-system observer, a file written and closed in one go is taken about
    0.2 s later (the watcher's finished-file settle), not after the 5 s settle period."""
    settings = get_settings(settle_seconds=5.0)
    emitted: list[events.EventSpec] = []
    target = settings.inbox_dir / PARTNER / "2025-Q4" / "lfp.csv"
    engine = database(settings, initiative)
    with inbox.InboxWatcher(settings, initiative, emitter=emitted.append, engine=engine):
        target.parent.mkdir(parents=True, exist_ok=True)
        time.sleep(0.3)  # the observer watches the new folders
        target.write_bytes(CSV)
        # Not a timing benchmark: without the close event it could not be taken before 5 s.
        assert wait_for(lambda: len(emitted) >= 1, deadline=4.0), "not taken before 4 s"
    [spec] = emitted
    assert spec.payload["size_bytes"] == len(CSV)


def test_the_watcher_waits_for_a_file_reopened_to_append(
    home: Path, initiative: Initiative
) -> None:
    """``echo header > f; slow_query >> f``: the header is written and closed, then the file is
    opened again and written half a second later, twice. The close is no finish — a handle is
    open again — so the file waits the settle second and is taken whole."""
    settings = get_settings(settle_seconds=1.0)
    emitted: list[events.EventSpec] = []
    target = settings.inbox_dir / PARTNER / "2025-Q4" / "lfp.csv"
    header, rows = CSV.split(b"\n", 1)
    engine = database(settings, initiative)
    with inbox.InboxWatcher(settings, initiative, emitter=emitted.append, engine=engine):
        target.parent.mkdir(parents=True, exist_ok=True)
        time.sleep(0.3)  # the observer watches the new folders
        target.write_bytes(header + b"\n")
        with target.open("ab") as fh:
            time.sleep(0.5)
            fh.write(rows[:20])
            fh.flush()
            time.sleep(0.5)
            fh.write(rows[20:])
        assert wait_for(lambda: len(emitted) >= 1), "no event within the deadline"
    [spec] = emitted
    assert spec.payload["size_bytes"] == len(CSV)


def test_the_watcher_takes_files_present_before_it_started_without_events(
    home: Path, initiative: Initiative
) -> None:
    settings = get_settings(settle_seconds=0.1)
    drop(settings, f"{PARTNER}/2025-09/lfp.csv")
    emitted: list[events.EventSpec] = []

    with inbox.InboxWatcher(
        settings,
        initiative,
        emitter=emitted.append,
        engine=database(settings, initiative),
        use_observer=False,
    ):
        assert wait_for(lambda: len(emitted) >= 1), "no event within the deadline"
    assert [e.payload["period"] for e in emitted] == ["2025-09"]
    assert (settings.inbox_dir / PARTNER).is_dir()  # start() prepared the layout
