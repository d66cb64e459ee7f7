"""Periodic notices: the daily completeness check, the weekly digest, the quiet-intake notice.

- :func:`late_partners` — which expected partners have not reported a measure's overdue
  periods, by detect's own rules (:func:`ci_pipeline.detect.due_date`,
  :func:`ci_pipeline.detect.missing_data`). For each measure the periods checked run from the
  one the indicator run judges (:func:`ci_pipeline.detect.judged_periods`: the latest with
  data, where the missing-data alerts are raised) up to the latest whose due date has passed —
  so a late partner is reminded of what the backbone was alerted to, and a period nobody has
  sent yet is not missed because no data for it exists.
- :func:`completeness` — one polite reminder per late partner, to its contact, listing every
  overdue measure and period and how to send the file; one summary to the backbone team (none
  when nobody is late).
- :func:`digest` / :func:`send_digest` — the backbone team's weekly digest: submissions
  received, open and resolved alerts, late partners and the cluster headline of the indicators
  updated in the window.
- :func:`quiet_intake` — tell the data engineers that no submission at all has arrived for
  ``quiet_days`` days. A Prefect automation triggers it; it checks the database itself and
  sends nothing when a submission did arrive.

Reading (``engine``) and sending (``sender``) are keyword-only edges; composing each text is a
pure function of polars frames. A channel that fails is reported and does not stop the others.

The modules, one feature each: ``completeness``, ``digest`` and ``quiet``, and ``common`` (the
notice, its sending, the late partners grouped). Their queries are :mod:`ci_pipeline.store`'s.
This namespace re-exports their public names: callers write ``notices.X`` (``notices.digest``
and ``notices.completeness`` are the functions; their modules are
``ci_pipeline.notices.digest`` and ``ci_pipeline.notices.completeness``).
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
