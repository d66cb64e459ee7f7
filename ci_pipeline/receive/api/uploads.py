"""Taking an upload safely: a file name that cannot escape its folder, an encoding that exists,
a declared content type and first bytes that agree with the name, and the body streamed to disk
under the size limit.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ci_pipeline import read

UPLOAD_TYPES = (
    "text/csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.apache.parquet",
    "application/octet-stream",
)


#: Declared types that say nothing about the file: no check. ``curl --data-binary`` declares
#: ``application/x-www-form-urlencoded`` unless told otherwise, so it is one of them.
GENERIC_TYPES = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/x-www-form-urlencoded"}
)


#: The types a file of each format (:data:`read.FORMATS`) may be declared as. Windows declares
#: a .csv as ``application/vnd.ms-excel`` where Excel is installed.
DECLARED_TYPES: dict[str, frozenset[str]] = {
    "csv": frozenset(
        {
            "text/csv",
            "text/plain",
            "text/tab-separated-values",
            "text/comma-separated-values",
            "text/x-csv",
            "application/csv",
            "application/vnd.ms-excel",
        }
    ),
    "xlsx": frozenset(
        {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/zip",
            "application/x-zip-compressed",
        }
    ),
    "parquet": frozenset(
        {"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"}
    ),
}


#: How a file of each binary format starts: an XLSX workbook is a zip archive; Parquet's magic.
SIGNATURES = {"xlsx": b"PK\x03\x04", "parquet": b"PAR1"}


#: What each signature means, for a message.
SIGNATURE_NAMES = {"xlsx": "a zip archive (an Excel workbook?)", "parquet": "a Parquet file"}


#: How many of a body's first bytes :func:`spool` keeps for :func:`checked_signature`.
HEAD_BYTES = 8


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


def unsupported(detail: str) -> HTTPException:
    return HTTPException(415, detail=detail)


def file_format(file_name: str) -> str:
    """The format a (safe) file name's suffix says: ``csv``, ``xlsx`` or ``parquet``."""
    return read.FORMATS[PurePosixPath(file_name).suffix.lower()]


def checked_content_type(content_type: str | None, file_name: str) -> str | None:
    """The declared media type, if it says something; 415 if it contradicts the file's name.

    Absent and generic types (:data:`GENERIC_TYPES`) are fine: the name says the format. A
    form (``multipart/…``) is refused: its body is an envelope, not the file, and would be
    stored as if it were.
    """
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if not declared or declared in GENERIC_TYPES:
        return None
    if declared.startswith("multipart/"):
        raise unsupported(
            f"the body is declared as a form ({declared}): send the file's bytes as the body "
            "itself (curl --data-binary @file), not as a form field"
        )
    fmt = file_format(file_name)
    if declared not in DECLARED_TYPES[fmt]:
        allowed = ", ".join(sorted(DECLARED_TYPES[fmt]))
        raise unsupported(
            f"the declared Content-Type {declared!r} is not that of a {fmt} file, but the name "
            f"{file_name!r} says it is one: declare one of {allowed}, or "
            "application/octet-stream"
        )
    return declared


def checked_signature(head: bytes, file_name: str) -> None:
    """415 unless the body's first bytes fit the format its name says.

    An XLSX file must start like a zip archive and a Parquet file with ``PAR1``; a text file
    must not start like either (a workbook renamed ``.csv`` would be read as text).
    """
    fmt = file_format(file_name)
    expected = SIGNATURES.get(fmt)
    if expected is not None and not head.startswith(expected):
        raise unsupported(
            f"{file_name!r} is named as {'an' if fmt == 'xlsx' else 'a'} {fmt} file, but its "
            f"bytes are not {SIGNATURE_NAMES[fmt]}: send the file itself, with its own name"
        )
    found = next((f for f, sig in SIGNATURES.items() if head.startswith(sig)), None)
    if expected is None and found is not None:
        raise unsupported(
            f"{file_name!r} is named as a text file, but its bytes are {SIGNATURE_NAMES[found]}: "
            f"send it with the name it has (….{found})"
        )


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, detail=f"the file is larger than the limit of {limit} bytes")


class Spooled(NamedTuple):
    """A body streamed to disk: the temporary file, its SHA-256, size and first bytes."""

    path: Path
    content_hash: str
    size: int
    head: bytes


async def spool(request: Request, folder: Path, limit: int) -> Spooled:
    """Stream the body into a temporary file in ``folder`` (which exists).

    Counting as it goes, it stops with 413 the moment the body passes ``limit`` (a chunked
    upload has no Content-Length to check first); on any failure the partial file is deleted.
    """
    fd, name = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    partial = Path(name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                if len(head) < HEAD_BYTES:
                    head = (head + chunk)[:HEAD_BYTES]
                digest.update(chunk)
                await run_in_threadpool(fh.write, chunk)
            await run_in_threadpool(flush_to_disk, fh)
    except BaseException:  # a refusal, a client gone mid-upload, a full disk
        partial.unlink(missing_ok=True)
        raise
    return Spooled(partial, digest.hexdigest(), size, head)


def flush_to_disk(fh: Any) -> None:
    """Make the bytes durable before the rename makes them visible."""
    fh.flush()
    os.fsync(fh.fileno())
