"""The inbox's layout and rules: which folder means which partner and period, what is skipped,
what is refused and in which words, and the README partners find in the inbox.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ci_pipeline.config import Settings
from ci_pipeline.errors import InvalidPeriod
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.read import FORMATS

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
    text = readme_text(settings, initiative).encode("utf-8")
    # Rewrite only when it changed: an unchanged write would still wake every watcher.
    if _read_no_link(inbox / README) != text:
        # A new file renamed over the name: a link planted there is replaced, not written through.
        tmp = inbox / f".{README}.tmp"
        tmp.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(tmp, flags, 0o644), "wb") as fh:
            fh.write(text)
        os.replace(tmp, inbox / README)
    return folders


def _read_no_link(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a link), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read() if stat.S_ISREG(os.fstat(fh.fileno()).st_mode) else None


def formats_text() -> str:
    return ", ".join(sorted(FORMATS))


def example_partner(initiative: Initiative, partner_id: str | None = None) -> str:
    if partner_id:
        return partner_id
    return min(initiative.partners) if initiative.partners else "<partner id>"


def layout_text(initiative: Initiative, partner_id: str | None = None) -> str:
    """The partner-facing sentence that says where a file must go."""
    example = example_partner(initiative, partner_id)
    return (
        "Put each file in your partner folder, inside a folder named for the period the data "
        f"covers: inbox/<partner id>/<period>/<file>, for example inbox/{example}/2025-Q4/data.csv. "
        "A period is a month (2025-09), a quarter (2025-Q4) or a year (2025). "
        f"Files must be one of: {formats_text()}."
    )


def readme_text(settings: Settings, initiative: Initiative) -> str:
    partners = "\n".join(f"  {pid}  ({p.name})" for pid, p in sorted(initiative.partners.items()))
    return (
        f"Inbox of {initiative.info.name.en}\n"
        "\n"
        f"{layout_text(initiative)}\n"
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


def route(
    rel: tuple[str, ...], st: os.stat_result, settings: Settings, initiative: Initiative
) -> tuple[str, str] | str:
    """``(partner id, canonical period)`` for a file that can be taken, else why it cannot."""
    name = rel[-1]
    if stat.S_ISLNK(st.st_mode):
        # It could point anywhere on the server: moved aside as the link itself, never followed.
        return (
            f"{name!r} is a symbolic link, not a regular file (or folder): links are never "
            "followed; send the file itself."
        )
    if len(rel) == 1:
        return (
            f"The file {name!r} was put directly in the inbox, not in a partner folder, so it "
            "is not known who sent it."
        )
    partner_id = partner_for(rel[0], initiative)
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
            f"The file {name!r} is {mib(st.st_size)}, larger than the "
            f"{mib(settings.max_file_bytes)} a submission may be; it was not read."
        )
    return partner_id, period


def partner_for(folder: str, initiative: Initiative) -> str | None:
    """The partner a folder belongs to; its case is forgiven (ids are lower-case slugs)."""
    if folder in initiative.partners:
        return folder
    wanted = folder.strip().casefold()
    return next((pid for pid in initiative.partners if pid.casefold() == wanted), None)


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"
