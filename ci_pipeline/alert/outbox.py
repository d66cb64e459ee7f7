"""Delivering alerts through an outbox: queue a round per alert and channel, send what is due.

- :func:`enqueue` adds an outbox row per (alert, channel, round): new verified alerts go to the
  backbone's channels (routable per working group or measure), held ones to the data
  engineers', and still-open alerts are repeated no more often than ``repeat_interval``; an
  alert that resolves is announced once to the channels that were told of it.
- :func:`deliver` claims what is due, sends it grouped into one message per channel
  (Alertmanager's grouping), records success per row, and schedules failures for a retry with
  exponential backoff. A row recorded as sent is never sent again.

Two deliveries at once (a ``ci-pipeline process`` run by hand beside the ``on-alert``
deployment) never send the same row: the due rows are *claimed* in one short locked
transaction (:func:`store.claim_due_messages`), which moves their next attempt to the end of a
lease of :data:`CLAIM_LEASE`, before anything is sent and outside any transaction while sending.
The outcome then replaces the lease: sent, or due again after its backoff. A sender that dies
after claiming and before recording (a crash, a kill mid-send) leaves its rows claimed until the
lease ends; the next delivery after that sends them. So such a crash delays those messages by
at most the lease and can repeat each once (the channel may have had it before the crash), and
loses none. Sending one channel's message takes seconds (apprise's timeouts), far less than the
lease, so a live sender never loses its claim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.alert.channels import Sender, apprise_sender
from ci_pipeline.alert.lifecycle import alert_id
from ci_pipeline.clock import aware, utcnow
from ci_pipeline.detect import KIND_LABELS
from ci_pipeline.store import Alert, OutboxMessage

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)
#: How long a claimed delivery stays another sender's: a claim whose sender died becomes due
#: again this long after it was made (longer than any send, shorter than a missed morning).
CLAIM_LEASE = timedelta(minutes=15)
#: The audience of a resolution notice (the backbone team that was told of the alert).
RESOLVED = "resolved"
#: Resolutions older than this are not announced (a database from before these notices does
#: not announce its history at once).
RESOLVED_NOTICE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Routing:
    """Which channels an alert goes to."""

    backbone: list[str]  # default channels of the backbone team
    engineers: list[str]  # where held (unverified) alerts and gate failures go
    routes: dict[str, list[str]]  # working group or measure id -> extra channels

    def channels(self, alert: Alert) -> list[str]:
        if not alert.verified:
            return list(dict.fromkeys(self.engineers))
        extra = self.routes.get(alert.measure_id, []) + self.routes.get(
            alert.working_group or "", []
        )
        return list(dict.fromkeys([*self.backbone, *extra]))


def enqueue(
    routing: Routing, *, repeat_interval: timedelta, engine: Engine, now: datetime | None = None
) -> int:
    """Queue deliveries: open alerts never notified, and open ones due for a repeat."""
    now = now or utcnow()
    queued = 0
    with store.transaction(engine=engine) as session:
        pending = store.pending_alert_ids(session=session)
        for alert in store.open_alerts(session=session):
            last = aware(alert.last_notified_at)
            due = last is None or now - last >= repeat_interval
            if not due or alert.id in pending:
                continue
            messages = [
                OutboxMessage(
                    alert_id=alert_id(alert),
                    channel=channel,
                    round=alert.notifications,
                    audience="backbone" if alert.verified else "engineers",
                    next_attempt_at=now,
                    created_at=now,
                )
                for channel in routing.channels(alert)
            ]
            store.add_messages(messages, session=session)
            queued += len(messages)
            alert.notifications += 1
            alert.last_notified_at = now
        # A resolution is news too: whoever was told of an alert is told it is over, once.
        for alert in store.unannounced_resolutions(now - RESOLVED_NOTICE_WINDOW, session=session):
            notices = [
                OutboxMessage(
                    alert_id=alert_id(alert),
                    channel=channel,
                    round=-alert.notifications,
                    audience=RESOLVED,
                    next_attempt_at=now,
                    created_at=now,
                )
                for channel in routing.channels(alert)
            ]
            store.add_messages(notices, session=session)
            queued += len(notices)
    return queued


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at six hours (however many attempts failed)."""
    doublings = min(max(0, attempts - 1), 20)  # 30 s × 2**20 is far past the cap
    return min(BACKOFF_BASE * 2**doublings, BACKOFF_MAX)


@dataclass(frozen=True)
class Delivery:
    channel: str
    alerts: int
    ok: bool
    error: str | None = None
    alert_ids: tuple[int, ...] = ()


def compose(
    alerts: Iterable[Alert],
    audience: str,
    ack_link: Callable[[int], str] | None = None,
    headline: Callable[[Alert], str] | None = None,
) -> tuple[str, str]:
    """One message for a channel: every alert of this delivery, most severe kinds first, each
    with its acknowledgement link where ``ack_link`` makes them (see :mod:`.ack`); or, for the
    ``resolved`` audience, the notice that they are over. ``headline`` (a channel that reads
    Hebrew or Arabic: :mod:`.headlines`) puts each alert's plain-words headline first and its
    English sentence under it as the details."""
    order = {k: i for i, k in enumerate(KIND_LABELS)}
    items = sorted(alerts, key=lambda a: (order.get(a.kind, 9), a.measure_id, a.geo_code))
    if audience == RESOLVED:
        title = f"ci-pipeline: {len(items)} alert(s) resolved"
        intro = (
            "What these alerts reported is over: the indicator recovered, or stopped "
            "worsening for a year (a new fall will be a new alert), or the data arrived. "
            "Nothing to do.\n\n"
        )
        return title, intro + "\n".join(
            f"• [Resolved] {headline(a)}" if headline else f"• [Resolved] #{a.id} {a.message}"
            for a in items
        )
    if audience == "engineers":
        title = f"ci-pipeline: {len(items)} alert(s) held by the data-quality gate (unverified)"
        intro = "The quality gate failed for these measures, so their alerts were not sent to the backbone team. Check the Data Docs, fix the data, and re-run.\n\n"
    else:
        title = f"ci-pipeline: {len(items)} indicator alert(s)"
        intro = ""
    lines = [
        (
            f"• {headline(a)}\n  {a.message}"
            if headline
            else f"• [{_label(a.kind)}] #{a.id} {a.message}"
        )
        + (f"\n  Acknowledge #{a.id}: {ack_link(alert_id(a))}" if ack_link else "")
        for a in items
    ]
    footer = (
        "\n\nAcknowledging says someone owns it: it is not repeated."
        if ack_link
        else "\n\nAcknowledge with: ci-pipeline alerts ack ID"
    )
    return title, intro + "\n".join(lines) + footer


def _label(kind: str) -> str:
    """A kind as a message heads it: its label, capitalised."""
    label = KIND_LABELS.get(kind, kind)
    return label[:1].upper() + label[1:]


def deliver(
    *,
    engine: Engine,
    sender: Sender = apprise_sender,
    now: datetime | None = None,
    ack_link: Callable[[int], str] | None = None,
    headlines: Callable[[str], Callable[[Alert], str] | None] | None = None,
) -> list[Delivery]:
    """Claim every due outbox row, send them as one message per (channel, audience), and record
    each channel's outcome as soon as it is known (see the module's docstring for the claim).
    ``ack_link`` gives each alert's acknowledgement link (none: the command to type);
    ``headlines`` gives a channel's headline function, for a channel whose readers read another
    language than English (:func:`.headlines.headline`)."""
    now = now or utcnow()
    due, stored = store.claim_due_messages(now, now + CLAIM_LEASE, engine=engine)
    groups: dict[tuple[str, str], list[OutboxMessage]] = {}
    for m in due:
        groups.setdefault((m.channel, m.audience), []).append(m)
    results = []
    for (channel, audience), messages in sorted(groups.items()):
        alerts = [stored[m.alert_id] for m in messages if m.alert_id in stored]
        title, body = compose(alerts, audience, ack_link, headlines(channel) if headlines else None)
        try:
            ok, error = sender(channel, title, body), None
        except Exception as exc:  # a channel's failure must not stop the others
            ok, error = False, f"{type(exc).__name__}: {exc}"
        ids = [m.id for m in messages if m.id is not None]
        # Recorded per channel, so a crash later in this loop cannot re-send this one.
        if ok:
            store.record_sent(ids, now, engine=engine)
        else:
            store.record_failed(
                {m.id: now + backoff(m.attempts) for m in messages if m.id is not None},
                error or "the channel did not accept the message",
                engine=engine,
            )
        results.append(
            Delivery(
                channel,
                len(alerts),
                ok,
                None if ok else (error or "not accepted"),
                tuple(alert_id(a) for a in alerts),
            )
        )
    return results
