"""The pipeline's events: a stable vocabulary other systems (and Prefect triggers) can rely on.

Every stage announces what it did as a Prefect event. Triggers match an event's *name* and its
resource *labels*, never payload values, so everything a trigger may need to select on is a
label (``ci.partner``, ``ci.period``, ``ci.measure``, ``ci.geography`` …) and everything else
is in the payload. The builders here are pure: they return :class:`EventSpec` values, and only
:func:`emit` (given an emitter) sends them, so tests collect specs with a list.

============================  =======================================  ===========================
event                         resource (labels)                        payload
============================  =======================================  ===========================
``ci.submission.received``    ``ci.upload.<partner>.<period>.<sha12>``  path, file name, encoding,
                              ci.partner, ci.period, ci.source          locale, content hash, size,
                                                                       source
``ci.submission.accepted``    ``ci.submission.<id>``                    the receipt
``ci.submission.rejected``    ci.partner, ci.period, ci.status; related
``ci.submission.duplicate``   measure and geography resources
``ci.indicators.updated``     ``ci.indicators.<measure>.<period>``      cells written
                              ci.measure, ci.period
``ci.indicator.regressed``    ``ci.alert.<id>``: ci.measure,            sentence and evidence
``ci.partner.late``           ci.geography, ci.period, ci.kind,
``ci.quality.failed``         ci.initiative, ci.verified, ci.partner
                              (late partner only)
``ci.alert.resolved``
``ci.alert.delivered``        ``ci.channel.<redacted url>``: ci.channel alerts sent, their ids
``ci.alert.delivery-failed``  related: the alerts                       and the error
============================  =======================================  ===========================

The events that start the next step (received, the verdicts, new alerts) also carry
``ci.lane``: ``queued`` when the deployments' triggers start that step, ``warm`` when the process
that announced it takes the step itself (``serve``'s warm lane: :mod:`ci_pipeline.serve.warm`),
so the triggers, which select ``ci.lane: queued``, leave it alone and nothing runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SUBMISSION_RECEIVED = "ci.submission.received"
SUBMISSION_ACCEPTED = "ci.submission.accepted"
SUBMISSION_REJECTED = "ci.submission.rejected"
SUBMISSION_DUPLICATE = "ci.submission.duplicate"
INDICATORS_UPDATED = "ci.indicators.updated"
INDICATOR_REGRESSED = "ci.indicator.regressed"
PARTNER_LATE = "ci.partner.late"
QUALITY_FAILED = "ci.quality.failed"
ALERT_RESOLVED = "ci.alert.resolved"
ALERT_DELIVERED = "ci.alert.delivered"
ALERT_DELIVERY_FAILED = "ci.alert.delivery-failed"

#: The events that open an alert: alert delivery runs on any of them.
ALERT_OPENED = (INDICATOR_REGRESSED, PARTNER_LATE, QUALITY_FAILED)

#: Alert kinds and the event that announces a new alert of that kind.
KIND_EVENTS = {
    "step": INDICATOR_REGRESSED,
    "seasonal_step": INDICATOR_REGRESSED,
    "drift": INDICATOR_REGRESSED,
    "off_track": INDICATOR_REGRESSED,
    "missing": PARTNER_LATE,
    "quality": QUALITY_FAILED,
}

#: The label that says who takes the next step, and its two values (see the module docstring).
LANE = "ci.lane"
QUEUED, WARM = "queued", "warm"

#: Prefect drops an event with more related resources than this (and ``emit_event`` never
#: raises): a file touching 250 localities would never start the indicators run.
MAX_RELATED = 100

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventSpec:
    """One event, ready to emit: its name, the resource it is about, related resources, details."""

    event: str
    resource: dict[str, str]
    payload: dict[str, Any] = field(default_factory=dict)
    related: list[dict[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {k: v for k, v in self.resource.items() if not k.startswith("prefect.")}


Emitter = Callable[[EventSpec], Any]


def _resource(resource_id: str, name: str | None = None, **labels: str | None) -> dict[str, str]:
    out = {"prefect.resource.id": resource_id}
    if name:
        out["prefect.resource.name"] = name
    out.update({f"ci.{k}": str(v) for k, v in labels.items() if v is not None and v != ""})
    return out


def in_lane(spec: EventSpec, lane: str) -> EventSpec:
    """``spec`` with its ``ci.lane`` label set to ``lane`` (:data:`QUEUED` or :data:`WARM`)."""
    if lane not in (QUEUED, WARM):
        raise ValueError(f"unknown lane {lane!r}")
    return replace(spec, resource={**spec.resource, LANE: lane})


def _related(role: str, values: Iterable[str]) -> list[dict[str, str]]:
    return [
        {"prefect.resource.id": f"ci.{role}.{v}", "prefect.resource.role": role, f"ci.{role}": v}
        for v in sorted(set(values))
    ]


def submission_received(
    *,
    submission_id: int,
    partner_id: str,
    period: str,
    file_name: str,
    content_hash: str,
    size_bytes: int,
    source: str,
) -> EventSpec:
    """A file has landed (inbox or upload): its bytes and ``received`` submission are stored,
    and it waits to be ingested. The event names the submission, never a path: the ingest
    reads the bytes from the database, and only a ``received`` submission."""
    return EventSpec(
        SUBMISSION_RECEIVED,
        _resource(
            f"ci.upload.{submission_id}",
            file_name,
            partner=partner_id,
            period=period,
            source=source,
            submission=str(submission_id),
            lane=QUEUED,
        ),
        {
            "submission_id": submission_id,
            "partner_id": partner_id,
            "period": period,
            "file_name": file_name,
            "content_hash": content_hash,
            "size_bytes": size_bytes,
            "source": source,
        },
    )


def submission_outcome(
    receipt: Mapping[str, Any], *, measures: Iterable[str] = (), geographies: Iterable[str] = ()
) -> EventSpec:
    """A file's verdict: accepted, rejected or a duplicate, with the receipt as the payload."""
    status = str(receipt["status"])
    name = {
        "accepted": SUBMISSION_ACCEPTED,
        "rejected": SUBMISSION_REJECTED,
        "duplicate": SUBMISSION_DUPLICATE,
    }[status]
    return EventSpec(
        name,
        _resource(
            f"ci.submission.{receipt['submission_id']}",
            str(receipt["file_name"]),
            partner=str(receipt["partner_id"]),
            period=str(receipt["period"]),
            status=status,
            lane=QUEUED,
        ),
        {**receipt, "measures": sorted(set(measures)), "geographies": sorted(set(geographies))},
        # emit() sends the first MAX_RELATED of these; the payload carries them all.
        [*_related("measure", measures), *_related("geography", geographies)],
    )


def indicators_updated(slices: Iterable[tuple[str, str]], rows: int) -> list[EventSpec]:
    """One event per recomputed (measure, period) slice."""
    return [
        EventSpec(
            INDICATORS_UPDATED,
            _resource(f"ci.indicators.{m}.{p}", f"{m} {p}", measure=m, period=p),
            {"measure_id": m, "period": p, "cells_in_run": rows},
        )
        for m, p in slices
    ]


def alert_event(
    alert: Mapping[str, Any], *, resolved: bool = False, lane: str = QUEUED
) -> EventSpec:
    """A new alert (by its kind: regressed, late, quality) or a resolved one; ``lane`` says
    whether the on-alert deployment delivers it (:data:`QUEUED`) or the run that found it
    does (:data:`WARM`)."""
    name = ALERT_RESOLVED if resolved else KIND_EVENTS.get(str(alert["kind"]), INDICATOR_REGRESSED)
    kind = str(alert["kind"])
    return EventSpec(
        name,
        _resource(
            f"ci.alert.{alert['id']}",
            f"{kind} {alert['measure_id']} {alert['geo_code']} {alert['period']}",
            measure=str(alert["measure_id"]),
            geography=str(alert["geo_code"]),
            period=str(alert["period"]),
            kind=kind,
            partner=str(alert.get("subject") or "") if kind == "missing" else None,
            verified=str(bool(alert.get("verified", True))).lower(),
            initiative=alert.get("initiative_id"),
            lane=lane,
        ),
        {
            k: alert.get(k)
            for k in ("id", "kind", "measure_id", "geo_code", "disaggregation", "period")
        }
        | {"message": alert.get("message"), "evidence": alert.get("evidence")},
    )


def delivered(
    channel: str, alert_ids: Iterable[int], *, ok: bool, error: str | None = None
) -> EventSpec:
    """A channel took (or refused) one message carrying these alerts. ``channel`` is redacted."""
    ids = sorted(set(alert_ids))
    return EventSpec(
        ALERT_DELIVERED if ok else ALERT_DELIVERY_FAILED,
        _resource(f"ci.channel.{channel}", channel, channel=channel),
        {"channel": channel, "alerts": len(ids), "alert_ids": ids, "error": error},
        [{"prefect.resource.id": f"ci.alert.{i}", "prefect.resource.role": "alert"} for i in ids],
    )


def emit(specs: EventSpec | Iterable[EventSpec], *, emitter: Emitter) -> int:
    """Send events through ``emitter``; return how many were sent.

    An event that cannot be sent is logged and skipped: the data is already committed, and the
    periodic schedules catch up on whatever an event would have started.
    """
    batch = [specs] if isinstance(specs, EventSpec) else list(specs)
    sent = 0
    for spec in batch:
        if len(spec.related) > MAX_RELATED:  # Prefect would drop the whole event, silently
            logger.info(
                "%s for %s: %d related resources, the first %d sent",
                spec.event,
                spec.resource.get("prefect.resource.id"),
                len(spec.related),
                MAX_RELATED,
            )
            spec = replace(spec, related=spec.related[:MAX_RELATED])
        try:
            emitter(spec)
            sent += 1
        except Exception:  # an events outage must not undo or fail committed work
            logger.exception("could not emit %s for %s", spec.event, spec.resource)
    return sent


def prefect_emitter(spec: EventSpec) -> Any:
    """Emit through Prefect (the API in ``PREFECT_API_URL``, or the run's own server)."""
    from prefect.events import emit_event

    return emit_event(
        event=spec.event, resource=spec.resource, payload=spec.payload, related=spec.related
    )
