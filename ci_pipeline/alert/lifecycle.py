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

The default channel is a local file (``cifile://``, a small apprise plugin registered here), so
the demo works offline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import apprise
import polars as pl
from apprise.decorators import notify
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ci_pipeline.clock import aware, utcnow
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.store import Alert, AlertStatus, OutboxMessage

FILE_SCHEME = "cifile"
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=6)

#: Sends one message to one channel; True when the channel accepted it.
Sender = Callable[[str, str, str], bool]


@notify(on=FILE_SCHEME, name="ci-pipeline local file")
def _write_file(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """``cifile:///abs/path.log``: append the message to a local file."""
    # apprise splits the path into a host and the rest, percent-encoded (see file_channel).
    path = Path(unquote("/" + str(meta.get("host") or "") + str(meta.get("fullpath") or "")))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"=== {utcnow().isoformat(timespec='seconds')} {title}\n{body}\n\n")
    return True


def file_channel(path: Path) -> str:
    """The apprise URL of the local-file channel; the path percent-encoded, so a folder with a
    space, ``#`` or ``?`` in its name is not cut or mangled by URL parsing."""
    return f"{FILE_SCHEME}://{quote(str(path.resolve()))}"


def apprise_sender(url: str, title: str, body: str) -> bool:
    """Deliver through apprise (email, Slack, Teams, a JSON webhook, a local file …)."""
    client = apprise.Apprise()
    if not client.add(url):
        return False
    return bool(client.notify(title=title, body=body))


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


# --- the lifecycle ------------------------------------------------------------------------------

ALERT_KEY = ("kind", "measure_id", "geo_code", "disaggregation", "period", "subject")


@dataclass(frozen=True)
class Recorded:
    new: list[int]
    updated: list[int]
    resolved: list[int]


def record_findings(
    findings: pl.DataFrame,
    initiative: Initiative,
    judged: dict[str, str],
    *,
    unverified_measures: set[str],
    engine: Engine,
    current: pl.DataFrame | None = None,
    reported: pl.DataFrame | None = None,
) -> Recorded:
    """Store a run's findings as alerts and resolve the open ones that no longer hold.

    ``judged`` maps each measure to the period this run judged. An open alert resolves itself
    (see :func:`recovered`) when, for the judged period, its finding is gone; for an earlier
    period, when the indicator is back (``current``: indicator cells of the judged periods) or
    the late partner has reported (``reported``: partner, measure, period that count).
    """
    ini = initiative.info.id
    seen: set[tuple[str, ...]] = set()
    new: list[int] = []
    updated: list[int] = []
    resolved: list[int] = []
    now = utcnow()
    with Session(engine) as session:
        for f in findings.iter_rows(named=True):
            key = tuple(str(f[k] or "") for k in ALERT_KEY)
            fields = dict(zip(ALERT_KEY, key, strict=True))
            seen.add(key)
            # Missing data needs no gate; a gate failure itself goes to the engineers.
            verified = f["kind"] == "missing" or (
                f["kind"] != "quality" and f["measure_id"] not in unverified_measures
            )
            evidence = json.dumps(
                {k: _finite(v) for k, v in f.items() if k != "message"},
                default=str,
                ensure_ascii=False,
                allow_nan=False,
            )
            existing = session.exec(
                select(Alert).where(
                    Alert.initiative_id == ini,
                    *[getattr(Alert, k) == v for k, v in zip(ALERT_KEY, key, strict=True)],
                )
            ).first()
            if existing is None:
                row = Alert(
                    initiative_id=ini,
                    kind=fields["kind"],
                    measure_id=fields["measure_id"],
                    geo_code=fields["geo_code"],
                    disaggregation=fields["disaggregation"],
                    period=fields["period"],
                    subject=fields["subject"],
                    working_group=initiative.measures[f["measure_id"]].working_group,
                    verified=verified,
                    message=f["message"],
                    evidence=evidence,
                )
                session.add(row)
                session.flush()
                assert row.id is not None
                new.append(row.id)
                continue
            existing.last_seen_at = now
            existing.message = f["message"]
            existing.evidence = evidence
            if existing.status == AlertStatus.resolved:  # it came back: notify again now
                existing.status, existing.resolved_at = AlertStatus.open, None
                # Rounds keep counting (each is an outbox key); no last round makes it due.
                existing.last_notified_at = None
                new.append(alert_id(existing))
            elif verified and not existing.verified:  # the gate passes now: send it
                existing.last_notified_at = None
                new.append(alert_id(existing))
            else:
                updated.append(alert_id(existing))
            existing.verified = verified
            session.add(existing)
        for alert in session.exec(
            select(Alert).where(
                Alert.initiative_id == ini, col(Alert.status) != AlertStatus.resolved
            )
        ).all():
            key = tuple(getattr(alert, k) for k in ALERT_KEY)
            if key in seen or not recovered(alert, initiative, judged, seen, current, reported):
                continue
            alert.status, alert.resolved_at = AlertStatus.resolved, now
            session.add(alert)
            resolved.append(alert_id(alert))
        session.commit()
    return Recorded(new, updated, resolved)


def _finite(value: Any) -> Any:
    """NaN (an off-track finding's progress when the target equals the baseline) and infinities
    become null: the evidence is JSON that every reader accepts."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def recovered(
    alert: Alert,
    initiative: Initiative,
    judged: dict[str, str],
    seen: set[tuple[str, ...]],
    current: pl.DataFrame | None,
    reported: pl.DataFrame | None,
) -> bool:
    """Whether an open alert no longer holds, given what this run judged and found."""
    from ci_pipeline.model.periods import parse_period

    period = judged.get(alert.measure_id)
    if period is None:
        return False
    now_p, then_p = parse_period(period), parse_period(alert.period)
    if then_p.periodicity is not now_p.periodicity or then_p > now_p:
        return False
    if then_p == now_p:  # judged again: the finding is gone (data revised, partner reported)
        return True
    if alert.kind == "missing":
        return (
            reported is not None
            and not reported.filter(
                (pl.col("partner_id") == alert.subject)
                & (pl.col("measure_id") == alert.measure_id)
                & (pl.col("period") == alert.period)
            ).is_empty()
        )
    series_found = any(
        k[1:4] == (alert.measure_id, alert.geo_code, alert.disaggregation) and k[4] == period
        for k in seen
    )
    if alert.kind in ("step", "seasonal_step"):
        # Recovered when the series is back to where it was before the fall.
        if current is None or series_found:
            return False
        cell = current.filter(
            (pl.col("measure_id") == alert.measure_id)
            & (pl.col("geo_code") == alert.geo_code)
            & (pl.col("disaggregation") == alert.disaggregation)
            & (pl.col("period") == period)
        )
        reference = json.loads(alert.evidence).get("reference")
        if (
            cell.is_empty()
            or cell["suppressed"][0]
            or cell["value"][0] is None
            or reference is None
        ):
            return False
        m = initiative.measures[alert.measure_id]
        from ci_pipeline.detect import worse

        gap = float(cell["value"][0]) - float(reference)
        return not (worse(m.direction, gap) and abs(gap) >= m.alert.min_change)
    # drift, off track, quality: the condition is not found in the later period.
    return not series_found


def alert_id(alert: Alert) -> int:
    assert alert.id is not None
    return alert.id


def acknowledge(alert_id: int, by: str, *, engine: Engine) -> Alert | None:
    """Mark an alert acknowledged: someone owns it; it is not repeated any more."""
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        if alert.status == AlertStatus.open:
            alert.status, alert.acknowledged_at, alert.acknowledged_by = (
                AlertStatus.acknowledged,
                utcnow(),
                by,
            )
            session.add(alert)
            session.commit()
            session.refresh(alert)
        return alert


def read_alerts(ids: Iterable[int], *, engine: Engine) -> list[dict[str, Any]]:
    """These alerts as plain dicts (for events and artifacts), in id order."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    with Session(engine) as session:
        rows = session.exec(select(Alert).where(col(Alert.id).in_(wanted))).all()
        return [alert_dict(a) for a in sorted(rows, key=alert_id)]


def list_alerts(*, engine: Engine, status: str | None = None, limit: int = 200) -> list[Alert]:
    with Session(engine) as session:
        query = select(Alert).order_by(col(Alert.id).desc()).limit(limit)
        if status:
            query = query.where(Alert.status == status)
        return list(session.exec(query).all())


# --- the outbox ---------------------------------------------------------------------------------


def enqueue(
    routing: Routing, *, repeat_interval: timedelta, engine: Engine, now: datetime | None = None
) -> int:
    """Queue deliveries: open alerts never notified, and open ones due for a repeat."""
    now = now or utcnow()
    queued = 0
    with Session(engine) as session:
        for alert in session.exec(select(Alert).where(Alert.status == AlertStatus.open)).all():
            last = aware(alert.last_notified_at)
            due = last is None or now - last >= repeat_interval
            if not due or _has_pending(session, alert.id):
                continue
            for channel in routing.channels(alert):
                session.add(
                    OutboxMessage(
                        alert_id=alert_id(alert),
                        channel=channel,
                        round=alert.notifications,
                        audience="backbone" if alert.verified else "engineers",
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                queued += 1
            alert.notifications += 1
            alert.last_notified_at = now
            session.add(alert)
        session.commit()
    return queued


def _has_pending(session: Session, alert_id: int | None) -> bool:
    return (
        session.exec(
            select(OutboxMessage.id).where(
                OutboxMessage.alert_id == alert_id, OutboxMessage.status == "pending"
            )
        ).first()
        is not None
    )


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


def compose(alerts: Iterable[Alert], audience: str) -> tuple[str, str]:
    """One message for a channel: every alert of this delivery, most severe kinds first."""
    order = {"quality": -1, "step": 0, "seasonal_step": 1, "drift": 2, "off_track": 3, "missing": 4}
    items = sorted(alerts, key=lambda a: (order.get(a.kind, 9), a.measure_id, a.geo_code))
    label = {
        "quality": "Quality gate",
        "step": "Regression",
        "seasonal_step": "Regression (vs a year before)",
        "drift": "Sustained drift",
        "off_track": "Off track",
        "missing": "Missing data",
    }
    if audience == "engineers":
        title = f"ci-pipeline: {len(items)} alert(s) held by the data-quality gate (unverified)"
        intro = "The quality gate failed for these measures, so their alerts were not sent to the backbone team. Check the Data Docs, fix the data, and re-run.\n\n"
    else:
        title = f"ci-pipeline: {len(items)} indicator alert(s)"
        intro = ""
    lines = [f"• [{label.get(a.kind, a.kind)}] #{a.id} {a.message}" for a in items]
    footer = "\n\nAcknowledge with: ci-pipeline alerts ack ID"
    return title, intro + "\n".join(lines) + footer


def deliver(
    *, engine: Engine, sender: Sender = apprise_sender, now: datetime | None = None
) -> list[Delivery]:
    """Send every due outbox row, one message per (channel, audience); record each outcome."""
    now = now or utcnow()
    with Session(engine) as session:
        due = [
            m
            for m in session.exec(
                select(OutboxMessage).where(OutboxMessage.status == "pending")
            ).all()
            if (aware(m.next_attempt_at) or now) <= now
        ]
        groups: dict[tuple[str, str], list[OutboxMessage]] = {}
        for m in due:
            groups.setdefault((m.channel, m.audience), []).append(m)
        results = []
        for (channel, audience), messages in sorted(groups.items()):
            alerts = [
                a for a in (session.get(Alert, m.alert_id) for m in messages) if a is not None
            ]
            title, body = compose(alerts, audience)
            try:
                ok, error = sender(channel, title, body), None
            except Exception as exc:  # a channel's failure must not stop the others
                ok, error = False, f"{type(exc).__name__}: {exc}"
            for m in messages:
                m.attempts += 1
                if ok:
                    m.status, m.sent_at, m.last_error = "sent", now, None
                else:
                    m.last_error = error or "the channel did not accept the message"
                    m.next_attempt_at = now + backoff(m.attempts)
                session.add(m)
            # Recorded per channel, so a crash later in this loop cannot re-send this one.
            session.commit()
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


def redact_channel(url: str) -> str:
    """A channel URL safe to print: credentials and tokens hidden.

    Only a host name (and port) is kept. Many apprise URLs carry a token where a host would be
    (``tgram://BOT_TOKEN/…``, ``slack://TokenA/…``, ``pover://user@token``), so anything
    that does not look like a host name is hidden too.
    """
    scheme, _, rest = url.partition("://")
    if scheme == FILE_SCHEME:
        return url
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = netloc.rpartition("@")[2]
    return f"{scheme}://{host}/…" if _HOST.fullmatch(host) else f"{scheme}://…"


#: A DNS name with at least one dot, or localhost, with an optional port.
_HOST = re.compile(r"(?:localhost|[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+)(?::\d{1,5})?")


def alert_dict(alert: Alert) -> dict[str, Any]:
    out = alert.model_dump()
    out["evidence"] = json.loads(alert.evidence)
    for key, value in list(out.items()):
        if isinstance(value, datetime):
            out[key] = value.isoformat(timespec="seconds")
        elif isinstance(value, float) and math.isnan(value):
            out[key] = None
    return out
