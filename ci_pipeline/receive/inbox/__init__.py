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

The modules: ``layout`` (routing rules, refusal wording, the README), ``moves`` (safe moves and
names), ``scan`` (one pass) and ``watcher`` (the thread). This namespace re-exports their
public names.
"""

from __future__ import annotations

from ci_pipeline.receive.inbox.layout import (
    JUNK_NAMES,
    README,
    REASON_SUFFIX,
    REFUSED,
    TEMPORARY_SUFFIXES,
    example_partner,
    formats_text,
    is_ignored,
    layout_text,
    mib,
    partner_for,
    prepare,
    readme_text,
    route,
)
from ci_pipeline.receive.inbox.moves import (
    NAME_MAX,
    LinkRefused,
    Signature,
    create_file,
    folder_within,
    free_name,
    move_between,
    open_file,
    opened_folder,
    signature_of,
    utc_stamp,
)
from ci_pipeline.receive.inbox.scan import Pending, Refused, ScanResult, Seen, Taken, scan
from ci_pipeline.receive.inbox.watcher import COALESCE_SECONDS, MIN_WAIT_SECONDS, InboxWatcher

__all__ = [
    "COALESCE_SECONDS",
    "JUNK_NAMES",
    "MIN_WAIT_SECONDS",
    "NAME_MAX",
    "README",
    "REASON_SUFFIX",
    "REFUSED",
    "TEMPORARY_SUFFIXES",
    "InboxWatcher",
    "LinkRefused",
    "Pending",
    "Refused",
    "ScanResult",
    "Seen",
    "Signature",
    "Taken",
    "create_file",
    "example_partner",
    "folder_within",
    "formats_text",
    "free_name",
    "is_ignored",
    "layout_text",
    "mib",
    "move_between",
    "open_file",
    "opened_folder",
    "partner_for",
    "prepare",
    "readme_text",
    "route",
    "scan",
    "signature_of",
    "utc_stamp",
]
