"""The event vocabulary: names, resource labels triggers can match, payloads, emission."""

from __future__ import annotations

from typing import Any

import pytest

from ci_pipeline import events


def receipt(status: str = "accepted", **extra: Any) -> dict[str, Any]:
    return {
        "submission_id": 7,
        "status": status,
        "partner_id": "nahf-council",
        "period": "2025-Q4",
        "file_name": "lfp.csv",
        "rows_accepted": 3,
        **extra,
    }


def test_received_names_the_stored_submission_never_a_path() -> None:
    spec = events.submission_received(
        submission_id=41,
        partner_id="nahf-council",
        period="2025-Q4",
        file_name="x.csv",
        content_hash="ab" * 32,
        size_bytes=12,
        source="inbox",
    )
    assert spec.event == "ci.submission.received"
    assert spec.resource["prefect.resource.id"] == "ci.upload.41"
    assert spec.labels == {
        "ci.partner": "nahf-council",
        "ci.period": "2025-Q4",
        "ci.source": "inbox",
        "ci.submission": "41",
        "ci.lane": "queued",
    }
    assert "path" not in spec.payload and spec.payload["submission_id"] == 41


@pytest.mark.parametrize(
    ("status", "name"),
    [
        ("accepted", "ci.submission.accepted"),
        ("rejected", "ci.submission.rejected"),
        ("duplicate", "ci.submission.duplicate"),
    ],
)
def test_an_outcome_is_named_by_its_status(status: str, name: str) -> None:
    spec = events.submission_outcome(
        receipt(status), measures=["b", "a", "a"], geographies=["nahf"]
    )
    assert spec.event == name
    assert spec.resource["prefect.resource.id"] == "ci.submission.7"
    assert spec.labels == {
        "ci.partner": "nahf-council",
        "ci.period": "2025-Q4",
        "ci.status": status,
        "ci.lane": "queued",
    }
    assert [r["prefect.resource.id"] for r in spec.related] == [
        "ci.measure.a",
        "ci.measure.b",
        "ci.geography.nahf",
    ]
    assert spec.payload["rows_accepted"] == 3


def test_an_outcome_touching_more_than_prefects_limit_still_goes_out() -> None:
    """Prefect drops an event with over 100 related resources: a national file touching 250
    localities keeps 100 of them as related resources and every one in its payload."""
    localities = [f"loc-{i:03d}" for i in range(250)]
    spec = events.submission_outcome(receipt(), measures=["m2", "m1"], geographies=localities)
    sent: list[events.EventSpec] = []
    assert events.emit(spec, emitter=sent.append) == 1
    [out] = sent
    assert len(out.related) == events.MAX_RELATED == 100
    assert [r["prefect.resource.id"] for r in out.related[:3]] == [
        "ci.measure.m1",
        "ci.measure.m2",
        "ci.geography.loc-000",
    ]
    assert out.payload["geographies"] == localities and out.payload["measures"] == ["m1", "m2"]


def test_emit_never_passes_prefect_more_related_resources_than_it_takes() -> None:
    many = [
        {"prefect.resource.id": f"ci.alert.{i}", "prefect.resource.role": "alert"}
        for i in range(150)
    ]
    spec = events.EventSpec("ci.x", {"prefect.resource.id": "ci.x.1"}, {}, many)
    sent: list[events.EventSpec] = []
    assert events.emit(spec, emitter=sent.append) == 1
    assert [len(s.related) for s in sent] == [100] and sent[0].related == many[:100]


def test_indicators_updated_is_one_event_per_slice() -> None:
    specs = events.indicators_updated([("m1", "2025-Q4"), ("m2", "2025-Q4")], rows=40)
    assert [s.labels for s in specs] == [
        {"ci.measure": "m1", "ci.period": "2025-Q4"},
        {"ci.measure": "m2", "ci.period": "2025-Q4"},
    ]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("step", "ci.indicator.regressed"),
        ("drift", "ci.indicator.regressed"),
        ("off_track", "ci.indicator.regressed"),
        ("missing", "ci.partner.late"),
        ("quality", "ci.quality.failed"),
    ],
)
def test_a_new_alert_is_announced_by_its_kind(kind: str, name: str) -> None:
    row = {
        "id": 3,
        "kind": kind,
        "measure_id": "arab-women-lfp",
        "geo_code": "nahf",
        "disaggregation": "total",
        "period": "2025-Q4",
        "subject": "employment-service" if kind == "missing" else "",
        "initiative_id": "beit-hakerem",
        "verified": True,
        "message": "fell",
        "evidence": {"p": 0.001},
    }
    spec = events.alert_event(row)
    assert spec.event == name
    assert spec.labels["ci.measure"] == "arab-women-lfp"
    assert spec.labels["ci.geography"] == "nahf"
    assert spec.labels["ci.initiative"] == "beit-hakerem"  # what the delivery trigger groups by
    assert ("ci.partner" in spec.labels) == (kind == "missing")
    assert spec.payload["evidence"] == {"p": 0.001}
    assert events.alert_event(row, resolved=True).event == "ci.alert.resolved"


def test_delivered_or_failed_names_the_redacted_channel_and_the_alerts() -> None:
    ok = events.delivered("slack://…", [2, 1, 2], ok=True)
    assert ok.event == "ci.alert.delivered"
    assert ok.payload["alert_ids"] == [1, 2]
    assert [r["prefect.resource.id"] for r in ok.related] == ["ci.alert.1", "ci.alert.2"]
    failed = events.delivered("slack://…", [1], ok=False, error="timeout")
    assert failed.event == "ci.alert.delivery-failed" and failed.payload["error"] == "timeout"


def test_emit_sends_each_and_survives_a_failing_emitter() -> None:
    sent: list[events.EventSpec] = []
    specs = events.indicators_updated([("m", "2025-Q4"), ("n", "2025-Q4")], rows=1)
    assert events.emit(specs, emitter=sent.append) == 2
    assert sent == specs

    def broken(spec: events.EventSpec) -> None:
        raise ConnectionError("no server")

    # Committed work must not fail because an event could not be sent.
    assert events.emit(specs[0], emitter=broken) == 0


def test_a_lane_is_queued_or_warm_and_nothing_else() -> None:
    spec = events.submission_outcome(receipt("accepted"))
    warm = events.in_lane(spec, events.WARM)
    assert warm.labels["ci.lane"] == "warm" and spec.labels["ci.lane"] == "queued"
    assert {k: v for k, v in warm.resource.items() if k != "ci.lane"} == {
        k: v for k, v in spec.resource.items() if k != "ci.lane"
    }
    with pytest.raises(ValueError, match="unknown lane"):
        events.in_lane(spec, "fast")
