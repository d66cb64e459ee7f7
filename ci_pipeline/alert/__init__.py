"""Alerts: one record per finding, a lifecycle, and delivery through apprise via an outbox.

- :func:`record_findings` turns a run's findings into alert records keyed by (kind, measure,
  geography, breakdown, period, partner): re-running never duplicates one. Alerts the quality
  gate held are stored as unverified. Open alerts a run no longer finds are resolved by
  themselves (the indicator recovered; the late partner reported).
- :func:`enqueue` adds an outbox row per (alert, channel, round): new verified alerts go to the
  backbone's channels (routable per working group or measure), held ones to the data
  engineers', and still-open alerts are repeated no more often than ``repeat_interval``.
- :func:`deliver` sends what is due, grouped into one message per channel (Alertmanager's
  grouping), records success per row, and schedules failures for a retry with exponential
  backoff. A crash between sending and recording can repeat a message; nothing is lost, and a
  row recorded as sent is never sent again.

The default channel is a local file (``cifile://``, a small apprise plugin), so the demo works
offline.

The modules, one reason to change each: ``lifecycle`` (record findings, resolve, acknowledge),
``outbox`` (routing, queueing, backoff, composing and delivering messages), ``channels`` (the
apprise sender, the local-file channel, redacting channel URLs) and ``record`` (a judgement's
findings recorded and queued). The SQL is :mod:`ci_pipeline.store.alerts`'. This namespace
re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.alert.channels import (
    FILE_SCHEME,
    Sender,
    apprise_sender,
    file_channel,
    redact_channel,
)
from ci_pipeline.alert.lifecycle import (
    ALERT_KEY,
    Recorded,
    acknowledge,
    alert_dict,
    alert_id,
    list_alerts,
    read_alerts,
    record_findings,
    recovered,
)
from ci_pipeline.alert.outbox import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    Delivery,
    Routing,
    backoff,
    compose,
    deliver,
    enqueue,
)
from ci_pipeline.alert.record import record_alerts, routing

__all__ = [
    "ALERT_KEY",
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "FILE_SCHEME",
    "Delivery",
    "Recorded",
    "Routing",
    "Sender",
    "acknowledge",
    "alert_dict",
    "alert_id",
    "apprise_sender",
    "backoff",
    "compose",
    "deliver",
    "enqueue",
    "file_channel",
    "list_alerts",
    "read_alerts",
    "record_alerts",
    "record_findings",
    "recovered",
    "redact_channel",
    "routing",
]
