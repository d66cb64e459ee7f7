"""serve's warm lane (ci_pipeline/serve/warm.py) with a fake handler and a list for events:
what it queues, how it labels what it announces, how it batches, and that a failing batch does
not stop it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ci_pipeline import events
from ci_pipeline.serve.warm import WarmLane


def received(submission_id: int) -> events.EventSpec:
    return events.submission_received(
        submission_id=submission_id,
        partner_id="nahf-council",
        period="2025-Q4",
        file_name=f"f{submission_id}.csv",
        content_hash="ab" * 32,
        size_bytes=12,
        source="inbox",
    )


class Handler:
    """Records each batch; holds the first until released, so a burst queues behind it."""

    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.fail_first = fail_first

    def __call__(self, batch: list[int]) -> None:
        self.batches.append(batch)
        if len(self.batches) == 1:
            self.release.wait(10)
            if self.fail_first:
                raise RuntimeError("Prefect is down")


def wait_until(condition: Any) -> None:
    end = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_a_received_file_is_queued_here_and_announced_as_warm() -> None:
    sent: list[events.EventSpec] = []
    handler = Handler()
    handler.release.set()
    with WarmLane(handler, forward=sent.append) as lane:
        events.emit(received(7), emitter=lane.emit)
        wait_until(lambda: handler.batches)
    assert handler.batches == [[7]]
    (spec,) = sent
    assert spec.event == events.SUBMISSION_RECEIVED
    assert spec.resource[events.LANE] == events.WARM  # the on-received trigger leaves it alone
    assert spec.payload == received(7).payload


def test_other_events_pass_through_unchanged_and_queue_nothing() -> None:
    sent: list[events.EventSpec] = []
    handler = Handler()
    outcome = events.submission_outcome(
        {
            "submission_id": 7,
            "file_name": "f.csv",
            "partner_id": "p",
            "period": "2025-Q4",
            "status": "accepted",
        }
    )
    with WarmLane(handler, forward=sent.append) as lane:
        lane.emit(outcome)
        time.sleep(0.5)  # room for a (wrong) batch to start; none may
    assert sent == [outcome] and handler.batches == []


def test_a_burst_behind_a_busy_batch_is_one_batch_in_arrival_order_each_id_once() -> None:
    handler = Handler()
    with WarmLane(handler, forward=lambda spec: None) as lane:
        lane.emit(received(1))
        wait_until(lambda: handler.batches)  # the first batch is running, held
        for i in (2, 3, 2, 4):  # a repeated event for #2 among them
            lane.emit(received(i))
        handler.release.set()
        wait_until(lambda: len(handler.batches) == 2)
    assert handler.batches == [[1], [2, 3, 4]]


def test_a_failed_batch_is_logged_and_the_lane_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    handler = Handler(fail_first=True)
    with WarmLane(handler, forward=lambda spec: None) as lane:
        lane.emit(received(1))
        wait_until(lambda: handler.batches)
        handler.release.set()
        wait_until(lambda: "#1 not taken in here; the reconciler will" in caplog.text)
        lane.emit(received(2))
        wait_until(lambda: len(handler.batches) == 2)
    assert handler.batches == [[1], [2]]


def test_a_file_is_queued_even_when_its_event_cannot_be_sent() -> None:
    def down(spec: events.EventSpec) -> None:
        raise ConnectionError("events outage")

    handler = Handler()
    handler.release.set()
    with WarmLane(handler, forward=down) as lane:
        assert events.emit(received(5), emitter=lane.emit) == 0  # logged, not raised
        wait_until(lambda: handler.batches)
    assert handler.batches == [[5]]


def test_with_prefect_down_each_file_is_ingested_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ci_pipeline.serve.warm import take_in_here

    ingested: list[int] = []
    handle = take_in_here(without_prefect=ingested.append)
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # nothing there
        assert handle([4, 5]) is None  # the take-in flow would have needed that API
    assert ingested == [4, 5]
    assert "Prefect does not answer; #4, #5 ingested without it" in caplog.text
