"""An alert's lifecycle: one record per finding, resolved by itself when it no longer holds,
acknowledged by someone who owns it.

:func:`record_findings` turns a run's findings into alert records keyed by (kind, measure,
geography, breakdown, period, partner): re-running never duplicates one. Alerts the quality gate
held are stored as unverified. Open alerts a run no longer finds are resolved by themselves (the
indicator recovered; the late partner reported).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.clock import utcnow
from ci_pipeline.detect.findings import is_gap
from ci_pipeline.model.initiative import Initiative
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
    # One transaction: the alerts are read, changed and written together.
    with store.transaction(engine=engine) as session:
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
            existing = store.find_alert(ini, fields, session=session)
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
                new.append(store.add_alert(row, session=session))
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
        for alert in store.unresolved_alerts(ini, session=session):
            key = tuple(getattr(alert, k) for k in ALERT_KEY)
            if key in seen or not recovered(alert, initiative, judged, seen, current, reported):
                continue
            alert.status, alert.resolved_at = AlertStatus.resolved, now
            resolved.append(alert_id(alert))
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
    if alert.kind in ("step", "seasonal_step") and not is_gap(alert.disaggregation):
        # Recovered when the series is back to where it was before the fall. (An equity gap's
        # series is derived, not a stored cell: it recovers as a drift does, below.)
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
    # drift, off track, quality, a gap's step: the condition is not found in the later period.
    return not series_found


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
