"""Reception: a file's bytes and its ``received`` submission committed before anyone is told
"received" (:func:`take`), and the audit copy the ingest keeps of them (:func:`write_archive`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ci_pipeline import read, store
from ci_pipeline.clock import utcnow
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.receive import blobs


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_target(
    settings: Settings, partner_id: str, period: str, content_hash: str, name: str
) -> Path:
    """Where the audit copy of a received file is kept: under its hash, by the partner's own
    name (the name every message about the file uses)."""
    return settings.archive_dir / partner_id / period / content_hash[:12] / name


def take(
    path: Path,
    partner_id: str,
    period: str,
    *,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    file_name: str | None = None,
    options: dict[str, Any] | None = None,
) -> store.Submission:
    """Receive the file at ``path`` (see :func:`take_bytes`); a file over the size limit is
    recorded without its bytes, and its ingest refuses it."""
    path = Path(path)
    size = path.stat().st_size
    content = path.read_bytes() if size <= settings.max_file_bytes else None
    return take_bytes(
        content,
        partner_id,
        period,
        file_name=file_name or path.name,
        size_bytes=size,
        content_hash=sha256_of(path) if content is None else None,
        initiative=initiative,
        settings=settings,
        engine=engine,
        options=options,
    )


def take_bytes(
    content: bytes | None,
    partner_id: str,
    period: str,
    *,
    file_name: str,
    initiative: Initiative,
    settings: Settings,
    engine: Engine,
    size_bytes: int | None = None,
    content_hash: str | None = None,
    options: dict[str, Any] | None = None,
) -> store.Submission:
    """Receive a file: check who and when, then commit its bytes and a ``received`` submission
    in one transaction. Only then may anyone be told "received" (the API's 202, the inbox's
    move): whatever crashes next, the submission is in the database and will reach a verdict.

    ``file_name`` is the name the partner gave the file; ``options`` what the submitter
    declared for this file alone (``encoding``). ``content`` None: the file was too large to
    keep (``size_bytes`` and ``content_hash`` say what it was), and its ingest refuses it.
    """
    initiative.partner(partner_id)  # raises UnknownPartner
    canonical = parse_period(period).label  # raises InvalidPeriod
    if content is not None:
        content_hash = hashlib.sha256(content).hexdigest()
        size_bytes = len(content)
    assert content_hash is not None and size_bytes is not None
    suffix = Path(file_name).suffix.lower()
    new = store.NewSubmission(
        initiative_id=initiative.info.id,
        partner_id=partner_id,
        period=canonical,
        content_hash=content_hash,
        file_name=file_name,
        file_format=read.FORMATS.get(suffix, suffix.lstrip(".")),
        encoding=None,
        received_at=utcnow(),
        archive_path=(
            str(archive_target(settings, partner_id, canonical, content_hash, file_name))
            if content is not None
            else None
        ),
    )
    declared = {k: v for k, v in (options or {}).items() if v is not None}
    content_url = None
    if content is not None and settings.received_url:
        # The object first: a submission never names bytes that are not there.
        content_url, content = blobs.put(settings.received_url, content), None
    return store.record_received(
        new,
        content=content,
        size_bytes=size_bytes,
        options=declared,
        content_url=content_url,
        engine=engine,
    )


def write_archive(content: bytes, target: Path, content_hash: str) -> None:
    """Keep the audit copy at ``target``: written whole under a temporary name, checked against
    the hash and moved into place, so a failed write never leaves a truncated copy; a copy
    already there is kept only when its bytes are the file's (re-running repairs one that is
    not). Each writer has a temporary name of its own: two ingests of the same file at once
    (sent twice) never remove or overwrite each other's copy before it is checked."""
    if target.is_file() and sha256_of(target) == content_hash:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    partial = Path(name)
    try:
        partial.write_bytes(content)
        if sha256_of(partial) != content_hash:
            raise OSError(f"the copy written to {partial} does not match its SHA-256")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
