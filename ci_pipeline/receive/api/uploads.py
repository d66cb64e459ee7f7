"""Taking an upload safely: a file name that cannot escape its folder, an encoding that exists,
and the body streamed to disk under the size limit.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ci_pipeline import read

UPLOAD_TYPES = (
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
)


SAFE_NAME_CHARS = re.compile(r"[^\w.\-]+")  # \w: letters and digits of any script, and _


MAX_NAME_LENGTH = 120
#: A stored name's bytes at most: the received copy adds a 31-byte stamp, and 255 is the limit.
MAX_NAME_BYTES = 200


def safe_file_name(name: str) -> str:
    """The base name of ``name`` reduced to a safe charset; 422 unless it is a readable type.

    Any directory part (``/`` or ``\\``) is dropped, so the name can never leave its folder;
    leading dots go too (no hidden files, no ``..``).
    """
    base = PurePosixPath(unicodedata.normalize("NFC", name).replace("\\", "/")).name
    safe = SAFE_NAME_CHARS.sub("_", base).lstrip(".")
    suffix = PurePosixPath(safe).suffix.lower()
    if suffix not in read.FORMATS:
        kinds = ", ".join(sorted(read.FORMATS))
        raise HTTPException(
            422, detail=f"{name!r} is not a file the pipeline reads: send one ending in {kinds}"
        )
    stem = safe[: -len(suffix)][: MAX_NAME_LENGTH - len(suffix)]
    # File systems count bytes (255 at most), and Hebrew or Arabic letters take two each in
    # UTF-8: cut the stem at a whole character within the byte budget.
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return stem + suffix


def checked_encoding(encoding: str | None) -> str | None:
    """The declared text encoding, checked now so the partner hears about a typo at once."""
    if encoding is None or not encoding.strip():
        return None
    try:
        codecs.lookup(encoding.strip())
    except LookupError:
        raise HTTPException(
            422, detail=f"unknown encoding {encoding!r}: e.g. windows-1255, windows-1256, utf-8"
        ) from None
    return encoding.strip()


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, detail=f"the file is larger than the limit of {limit} bytes")


async def spool(request: Request, folder: Path, limit: int) -> tuple[Path, str, int]:
    """Stream the body into a temporary file in ``folder``: its path, SHA-256 and size.

    Counting as it goes, it stops with 413 the moment the body passes ``limit`` (a chunked
    upload has no Content-Length to check first); on any failure the partial file is deleted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    partial = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                digest.update(chunk)
                await run_in_threadpool(fh.write, chunk)
            await run_in_threadpool(flush_to_disk, fh)
    except BaseException:  # a refusal, a client gone mid-upload, a full disk
        partial.unlink(missing_ok=True)
        raise
    return partial, digest.hexdigest(), size


def flush_to_disk(fh: Any) -> None:
    """Make the bytes durable before the rename makes them visible."""
    fh.flush()
    os.fsync(fh.fileno())
