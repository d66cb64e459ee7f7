"""An alert's lifecycle: one record per finding — one per episode for a regression — resolved
by itself when it no longer holds, acknowledged by someone who owns it.

:func:`record_findings` turns a run's findings into alert records keyed by (kind, measure,
geography, breakdown, period, partner): re-running never duplicates one. A regression (any of
:data:`~ci_pipeline.alert.episodes.REGRESSION_KINDS`) on a series that already has an unresolved
regression alert updates that alert — the episode's — instead of opening another: its key keeps
the episode's first period and kind, its sentence and evidence follow the latest finding, and no
new notification round is queued. The episode resolves once, when the series is back to the
level it fell from or has stopped worsening for a year (:mod:`ci_pipeline.alert.episodes`).
Alerts the quality gate held are stored as unverified. Other open alerts a run no longer finds are resolved by themselves (the late
partner reported; off track no more).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.alert.episodes import (
    REGRESSION_KINDS,
    Episode,
    back_to_start,
    begin,
    episode_message,
    extend,
    from_evidence,
    settled,
)
from ci_pipeline.clock import utcnow
from ci_pipeline.detect.findings import REGRESSIONS, is_gap
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.store import Alert, AlertStatus

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

    ``judged`` maps each measure to the period this run judged. A regression finding on a
    series in an episode updates that episode's alert (:func:`_record_regression`). An open
    alert resolves itself (see :func:`ending`) when, for the judged period, its finding is
    gone; for an earlier period, when the indicator is back (``current``: indicator cells of the
    judged periods) or the late partner has reported (``reported``: partner, measure, period
    that count).
    """
    ini = initiative.info.id
    seen: set[tuple[str, ...]] = set()
    out = Recorded([], [], [])
    now = utcnow()
    chosen = _chosen(findings)
    series_alerts: dict[tuple[str, str, str], list[Alert]] = {}
    # One transaction: the alerts are read, changed and written together.
    with store.transaction(engine=engine) as session:
        for f in findings.iter_rows(named=True):
            key = tuple(str(f[k] or "") for k in ALERT_KEY)
            fields = dict(zip(ALERT_KEY, key, strict=True))
            seen.add(key)
            if f["kind"] in REGRESSION_KINDS:
                series = (fields["measure_id"], fields["geo_code"], fields["disaggregation"])
                if chosen[(*series, fields["period"])] != f["kind"]:
                    continue  # another kind's finding speaks for this series and period
                if series not in series_alerts:
                    series_alerts[series] = store.series_alerts(
                        ini, REGRESSION_KINDS, *series, session=session
                    )
                alerts = series_alerts[series]
                opened = _record_regression(f, alerts, initiative, unverified_measures, now, out)
                if opened is not None:  # a new episode
                    out.new.append(store.add_alert(opened, session=session))
                    alerts.append(opened)
                continue
            existing = store.find_alert(ini, fields, session=session)
            if existing is None:
                row = _new_alert(initiative, f, _evidence(f), _verified(f, unverified_measures))
                out.new.append(store.add_alert(row, session=session))
                continue
            _refresh(existing, f, unverified_measures, now, out, message=f["message"])
            existing.evidence = _evidence(f)
        for alert in store.unresolved_alerts(ini, session=session):
            key = tuple(getattr(alert, k) for k in ALERT_KEY)
            if key in seen:
                continue
            ended = ending(alert, initiative, judged, seen, current, reported)
            if ended is None:
                continue
            alert.status, alert.resolved_at = AlertStatus.resolved, now
            if alert.kind in REGRESSION_KINDS:  # remember where and how the episode ended
                episode = replace(
                    _episode(alert), resolved_period=judged[alert.measure_id], ended=ended
                )
                alert.evidence = _evidence(json.loads(alert.evidence), episode)
            out.resolved.append(alert_id(alert))
    return out


def _chosen(findings: pl.DataFrame) -> dict[tuple[str, str, str, str], str]:
    """Per series and period with regression findings, the kind whose finding the episode
    follows when a run has several: the first of ``detect.REGRESSIONS``, the one that
    :func:`ci_pipeline.detect.fold` keeps too (findings made elsewhere may hold several)."""
    rank = {k: i for i, k in enumerate(REGRESSIONS)}
    chosen: dict[tuple[str, str, str, str], str] = {}
    for kind, *where in findings.select(
        "kind", "measure_id", "geo_code", "disaggregation", "period"
    ).iter_rows():
        if kind not in REGRESSION_KINDS:
            continue
        key = (str(where[0]), str(where[1] or ""), str(where[2] or ""), str(where[3] or ""))
        if key not in chosen or rank.get(kind, len(rank)) < rank.get(chosen[key], len(rank)):
            chosen[key] = kind
    return chosen


def _record_regression(
    f: dict[str, Any],
    alerts: list[Alert],
    initiative: Initiative,
    unverified_measures: set[str],
    now: datetime,
    out: Recorded,
) -> Alert | None:
    """One regression finding on a series whose regression alerts (any status) are ``alerts``;
    the new alert to add if it opens a new episode.

    The series' unresolved alert, if any, is its episode: a finding of its latest period or a
    later one moves the episode on (message, evidence); one of an earlier period is re-judged
    history and changes nothing but when it was last seen. Without one, a finding of a period
    that a resolved episode covered (from its start to the period it resolved in, exclusive) is
    that episode's history, and changes nothing; the alert of a finding that was withdrawn (its
    key resolved because its own period was re-judged without it) reopens; anything else opens a
    new episode with a new alert.
    """
    measure = initiative.measures[f["measure_id"]]
    period = parse_period(f["period"])
    unresolved = [a for a in alerts if a.status != AlertStatus.resolved]
    if unresolved:
        existing = min(unresolved, key=lambda a: (parse_period(a.period), alert_id(a)))
        episode = _episode(existing)
        if period >= parse_period(episode.latest_period):
            episode = extend(episode, f)
            existing.evidence = _evidence(f, episode)
            message = episode_message(f["message"], episode, measure)
        else:
            message = existing.message
        _refresh(existing, f, unverified_measures, now, out, message=message)
        return None
    for past in alerts:
        ended = _episode(past).resolved_period
        if ended and parse_period(past.period) <= period < parse_period(ended):
            return None  # a period of an episode that is over: its history
    fields = {k: str(f[k] or "") for k in ALERT_KEY}
    withdrawn = next(
        (a for a in alerts if all(getattr(a, k) == v for k, v in fields.items())), None
    )
    episode = begin(f)
    if withdrawn is not None:
        withdrawn.evidence = _evidence(f, episode)
        _refresh(withdrawn, f, unverified_measures, now, out, message=f["message"])
        return None
    return _new_alert(initiative, f, _evidence(f, episode), _verified(f, unverified_measures))


def _refresh(
    existing: Alert,
    f: dict[str, Any],
    unverified_measures: set[str],
    now: datetime,
    out: Recorded,
    *,
    message: str,
) -> None:
    """An existing alert found again: seen now, with this message; a resolved one reopens and
    one the gate held and now passes is sent (both notified again at once)."""
    verified = _verified(f, unverified_measures)
    existing.last_seen_at = now
    existing.message = message
    if existing.status == AlertStatus.resolved:  # it came back: notify again now
        existing.status, existing.resolved_at = AlertStatus.open, None
        # Rounds keep counting (each is an outbox key); no last round makes it due.
        existing.last_notified_at = None
        out.new.append(alert_id(existing))
    elif verified and not existing.verified:  # the gate passes now: send it
        existing.last_notified_at = None
        out.new.append(alert_id(existing))
    elif alert_id(existing) not in out.updated:
        out.updated.append(alert_id(existing))
    existing.verified = verified


def _verified(f: dict[str, Any], unverified_measures: set[str]) -> bool:
    """Missing data needs no gate; a gate failure itself goes to the engineers."""
    return f["kind"] == "missing" or (
        f["kind"] != "quality" and f["measure_id"] not in unverified_measures
    )


def _new_alert(initiative: Initiative, f: dict[str, Any], evidence: str, verified: bool) -> Alert:
    return Alert(
        initiative_id=initiative.info.id,
        kind=str(f["kind"]),
        measure_id=str(f["measure_id"]),
        geo_code=str(f["geo_code"] or ""),
        disaggregation=str(f["disaggregation"] or ""),
        period=str(f["period"] or ""),
        subject=str(f["subject"] or ""),
        working_group=initiative.measures[f["measure_id"]].working_group,
        verified=verified,
        message=f["message"],
        evidence=evidence,
    )


def _evidence(f: dict[str, Any], episode: Episode | None = None) -> str:
    """A finding's columns (but its sentence) as strict JSON, with its episode's if it has one."""
    data = {k: _finite(v) for k, v in f.items() if k not in ("message", "episode")}
    if episode is not None:
        data["episode"] = {k: _finite(v) for k, v in episode.as_evidence().items()}
    return json.dumps(data, default=str, ensure_ascii=False, allow_nan=False)


def _episode(alert: Alert) -> Episode:
    return from_evidence(json.loads(alert.evidence), alert.kind, alert.period)


def _finite(value: Any) -> Any:
    """NaN (an off-track finding's progress when the target equals the baseline) and infinities
    become null: the evidence is JSON that every reader accepts."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def ending(
    alert: Alert,
    initiative: Initiative,
    judged: dict[str, str],
    seen: set[tuple[str, ...]],
    current: pl.DataFrame | None,
    reported: pl.DataFrame | None,
) -> str | None:
    """How an open alert ends in this run, None while it still holds: a
    regression episode "withdrawn" (its first period judged again without it: data revised),
    "recovered" or "settled" (:func:`_episode_end`); any other alert "resolved"."""
    period = judged.get(alert.measure_id)
    if period is None:
        return None
    now_p, then_p = parse_period(period), parse_period(alert.period)
    if then_p.periodicity is not now_p.periodicity or then_p > now_p:
        return None
    series = (alert.measure_id, alert.geo_code, alert.disaggregation)
    if alert.kind in REGRESSION_KINDS:
        # An episode goes on while any regression detector flags its series.
        if any(k[0] in REGRESSION_KINDS and k[1:4] == series for k in seen):
            return None
        if then_p == now_p:  # its first period judged again: the finding is gone (revised)
            return "withdrawn"
        episode = _episode(alert)
        if parse_period(episode.latest_period) > now_p:  # a period inside it judged again
            return None
        return _episode_end(alert, episode, initiative, period, current)
    if then_p == now_p:  # judged again: the finding is gone (data revised, partner reported)
        return "resolved"
    if alert.kind == "missing":
        arrived = (
            reported is not None
            and not reported.filter(
                (pl.col("partner_id") == alert.subject)
                & (pl.col("measure_id") == alert.measure_id)
                & (pl.col("period") == alert.period)
            ).is_empty()
        )
        return "resolved" if arrived else None
    # off track, quality: the condition is not found in the later period.
    return None if any(k[1:4] == series and k[4] == period for k in seen) else "resolved"


def _episode_end(
    alert: Alert,
    episode: Episode,
    initiative: Initiative,
    period: str,
    current: pl.DataFrame | None,
) -> str | None:
    """How a regression episode with no finding in ``period`` ends there: "recovered" (back
    to where it started; an equity gap's derived series, once no test finds it widening),
    "settled" (a year without worsening), or None (it goes on)."""
    if is_gap(alert.disaggregation):
        return "recovered"
    value = _value(current, (alert.measure_id, alert.geo_code, alert.disaggregation), period)
    if value is not None and back_to_start(initiative.measures[alert.measure_id], episode, value):
        return "recovered"
    return "settled" if settled(episode, period) else None


def _value(current: pl.DataFrame | None, series: tuple[str, str, str], period: str) -> float | None:
    """The series' published value for the period, None if there is none (or it is hidden)."""
    if current is None:
        return None
    cell = current.filter(
        (pl.col("measure_id") == series[0])
        & (pl.col("geo_code") == series[1])
        & (pl.col("disaggregation") == series[2])
        & (pl.col("period") == period)
    )
    if cell.is_empty() or cell["suppressed"][0] or cell["value"][0] is None:
        return None
    return float(cell["value"][0])


def alert_id(alert: Alert) -> int:
    assert alert.id is not None
    return alert.id


def acknowledge(alert_id: int, by: str, *, engine: Engine) -> Alert | None:
    """Mark an alert acknowledged: someone owns it; it is not repeated any more."""
    return store.acknowledge_alert(alert_id, by, utcnow(), engine=engine)


def read_alerts(ids: Iterable[int], *, engine: Engine) -> list[dict[str, Any]]:
    """These alerts as plain dicts (for events and artifacts), in id order."""
    return [alert_dict(a) for a in store.alerts_by_id(ids, engine=engine)]


def list_alerts(*, engine: Engine, status: str | None = None, limit: int = 200) -> list[Alert]:
    """Alerts, newest first: all, or those of one status."""
    return store.list_alerts(engine=engine, status=status, limit=limit)


def alert_dict(alert: Alert) -> dict[str, Any]:
    """An alert as plain JSON-ready data: its evidence parsed, moments as ISO text."""
    out = alert.model_dump()
    out["evidence"] = json.loads(alert.evidence)
    for key, value in list(out.items()):
        if isinstance(value, datetime):
            out[key] = value.isoformat(timespec="seconds")
        elif isinstance(value, float) and math.isnan(value):
            out[key] = None
    return out
