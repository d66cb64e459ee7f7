"""Periodic notices: the daily completeness check, the weekly digest, the quiet-intake notice.

The modules, one notice each: ``completeness`` (late partners: a reminder each, a summary to
the backbone), ``digest`` (the backbone's weekly digest), ``quiet`` (no submission for
``quiet_days`` days: the data engineers are told); ``common`` holds what they share (the notice,
its delivery). Reading (``engine``) and sending (``sender``) are keyword-only edges. This
namespace re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.notices.common import Notice, Sent, deliver_notice, late_by_partner
from ci_pipeline.notices.completeness import (
    LATE_SCHEMA,
    CompletenessResult,
    backbone_summary,
    checked_periods,
    completeness,
    find_late,
    late_markdown,
    late_partners,
    latest_due_period,
    notify_late,
    reminder,
    reminder_channel,
)
from ci_pipeline.notices.digest import (
    KIND_LABELS,
    TOP_ALERTS,
    TOP_HEADLINES,
    Digest,
    cluster_headline,
    compose_digest,
    digest,
    digest_window,
    send_digest,
)
from ci_pipeline.notices.quiet import (
    LastSubmission,
    QuietResult,
    last_submission,
    notify_quiet,
    quiet_intake,
    quiet_notice,
)

__all__ = [
    "KIND_LABELS",
    "LATE_SCHEMA",
    "TOP_ALERTS",
    "TOP_HEADLINES",
    "CompletenessResult",
    "Digest",
    "LastSubmission",
    "Notice",
    "QuietResult",
    "Sent",
    "backbone_summary",
    "checked_periods",
    "cluster_headline",
    "completeness",
    "compose_digest",
    "deliver_notice",
    "digest",
    "digest_window",
    "find_late",
    "last_submission",
    "late_by_partner",
    "late_markdown",
    "late_partners",
    "latest_due_period",
    "notify_late",
    "notify_quiet",
    "quiet_intake",
    "quiet_notice",
    "reminder",
    "reminder_channel",
    "send_digest",
]
