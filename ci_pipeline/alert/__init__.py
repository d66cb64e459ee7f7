"""Alerts: one record per finding (per episode, for a regression that goes on), a lifecycle,
and delivery through apprise via an outbox.

The modules: ``lifecycle`` (findings recorded once, keyed so a re-run never duplicates one;
resolved on recovery; acknowledged), ``episodes`` (a regression that lasts several periods is one
alert: its start, its latest finding, its sentence, its recovery), ``outbox (a round per alert and channel, delivered
grouped per channel with backoff), ``channels`` (apprise, the local ``cifile://`` channel,
redaction) and ``record`` (a judgement's findings recorded and queued). This namespace
re-exports their public names.
"""

from __future__ import annotations

from ci_pipeline.alert.ack import AckLinkExpired, AckLinkInvalid, ack_key, link_maker, verify
from ci_pipeline.alert.channels import (
    FILE_SCHEME,
    Sender,
    apprise_sender,
    file_channel,
    redact_channel,
)
from ci_pipeline.alert.episodes import REGRESSION_KINDS, Episode, episode_message
from ci_pipeline.alert.lifecycle import (
    ALERT_KEY,
    Recorded,
    acknowledge,
    alert_dict,
    alert_id,
    ending,
    list_alerts,
    read_alerts,
    record_findings,
)
from ci_pipeline.alert.outbox import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    CLAIM_LEASE,
    Delivery,
    Routing,
    backoff,
    compose,
    deliver,
    enqueue,
)
from ci_pipeline.alert.record import record_alerts, routing
from ci_pipeline.report.headlines import headline, headlines_for

__all__ = [
    "ALERT_KEY",
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "CLAIM_LEASE",
    "FILE_SCHEME",
    "REGRESSION_KINDS",
    "AckLinkExpired",
    "AckLinkInvalid",
    "Delivery",
    "Episode",
    "Recorded",
    "Routing",
    "Sender",
    "ack_key",
    "acknowledge",
    "alert_dict",
    "alert_id",
    "apprise_sender",
    "backoff",
    "compose",
    "deliver",
    "ending",
    "enqueue",
    "episode_message",
    "file_channel",
    "headline",
    "headlines_for",
    "link_maker",
    "list_alerts",
    "read_alerts",
    "record_alerts",
    "record_findings",
    "redact_channel",
    "routing",
    "verify",
]
