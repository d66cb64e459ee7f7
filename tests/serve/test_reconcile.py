"""The reconciler: every received submission reaches a verdict, whatever was lost on the way."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from ci_pipeline import store
from ci_pipeline.clock import utcnow
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.serve import reconcile
from tests.helpers import ingest_received, write_fund_file

FUND, QUARTER = "galilee-foundation", "2025-Q1"
# reconcile_after_seconds is 120 and ingest_lease_seconds 900 by default.
OLD = timedelta(minutes=5)


def receive(
    db: Engine,
    initiative: Initiative,
    settings: Settings,
    tmp_path: Path,
    value: int,
    age: timedelta,
) -> int:
    """A file received ``age`` ago (its event lost: nothing took it)."""
    path = write_fund_file(tmp_path / f"fund-{value}.csv", value)
    row = intake.take(path, FUND, QUARTER, initiative=initiative, settings=settings, engine=db)
    assert row.id is not None
    with db.begin() as conn:
        conn.execute(
            text("UPDATE submission SET received_at = :at WHERE id = :id"),
            {"at": utcnow() - age, "id": row.id},
        )
    return row.id


def claim(db: Engine, submission_id: int, age: timedelta) -> None:
    """An ingest took the submission ``age`` ago (and, past the lease, died)."""
    with db.begin() as conn:
        conn.execute(
            text("UPDATE submission SET claimed_at = :at WHERE id = :id"),
            {"at": utcnow() - age, "id": submission_id},
        )


def test_only_submissions_nobody_is_deciding_are_started(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    lost = receive(db, initiative, settings, tmp_path, 1, OLD)  # its event was lost
    fresh = receive(db, initiative, settings, tmp_path, 2, timedelta(0))  # its run may come
    running = receive(db, initiative, settings, tmp_path, 3, OLD)
    claim(db, running, timedelta(minutes=1))  # taken a minute ago: within the lease
    dead = receive(db, initiative, settings, tmp_path, 4, timedelta(hours=1))
    claim(db, dead, timedelta(minutes=20))  # taken 20 minutes ago: its ingest died
    started: list[int] = []

    assert reconcile.reconcile(settings, initiative, engine=db, start=started.append) == [
        lost,
        dead,
    ]
    assert started == [lost, dead]
    # Started runs are claimed: the next pass leaves them to those runs.
    assert reconcile.reconcile(settings, initiative, engine=db, start=started.append) == []
    assert fresh not in started and running not in started


def test_a_start_that_fails_claims_nothing_and_the_next_pass_tries_again(
    db: Engine,
    initiative: Initiative,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = receive(db, initiative, settings, tmp_path, 1, OLD)
    second = receive(db, initiative, settings, tmp_path, 2, OLD)

    def down(_submission_id: int) -> None:
        raise ConnectionError("the Prefect API is down")

    with caplog.at_level(logging.WARNING):
        assert reconcile.reconcile(settings, initiative, engine=db, start=down) == []
    assert "could not start an ingest for submission" in caplog.text
    assert "2 received submission(s) wait" in caplog.text
    started: list[int] = []
    assert reconcile.reconcile(settings, initiative, engine=db, start=started.append) == [
        first,
        second,
    ]


def test_every_lost_submission_reaches_one_verdict(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    """Three files received while the events were lost: the reconciler ingests them in order,
    the second supersedes the first, the third is a duplicate of the second; a second ingest of
    one of them (the late event's run) changes nothing."""
    ids = [receive(db, initiative, settings, tmp_path, v, OLD) for v in (1, 2, 2)]

    def ingest(submission_id: int) -> None:
        ingest_received(submission_id, initiative=initiative, settings=settings, engine=db)

    assert reconcile.reconcile(settings, initiative, engine=db, start=ingest) == ids
    before = store.list_submissions(engine=db)
    assert [r.status for r in reversed(before)] == ["superseded", "accepted", "duplicate"]
    ingest(ids[1])  # the lost event's run, arriving late
    assert store.list_submissions(engine=db) == before
    values = store.current_observations(engine=db, partner_id=FUND)["value"].to_list()
    assert values == [2.0]  # counted once


def test_the_first_pass_of_the_sole_runner_takes_every_received_submission(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    """``serve`` with its own Prefect server is the only runner: at start, a submission its
    last run took a minute ago (then SIGTERM) and one received just now are both started; the
    later passes wait for the lease and the grace again."""
    taken = receive(db, initiative, settings, tmp_path, 1, OLD)
    claim(db, taken, timedelta(minutes=1))
    fresh = receive(db, initiative, settings, tmp_path, 2, timedelta(0))
    started: list[int] = []
    reconciler = reconcile.Reconciler(
        settings, initiative, engine=db, start=started.append, sole_runner=True
    )

    assert reconciler.pass_once() == [taken, fresh]
    store.claim_received(taken, engine=db)
    assert reconciler.pass_once() == []
    assert (
        reconcile.Reconciler(settings, initiative, engine=db, start=started.append).pass_once()
        == []
    )  # not the sole runner: it waits


def test_one_submission_that_fails_does_not_hold_up_the_others(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    """Its ingest fails before taking it (say its bytes are unreadable): the pass goes on with
    the next, and the reconciler leaves the failed one out for a while instead of trying it
    first on every pass."""
    bad = receive(db, initiative, settings, tmp_path, 1, OLD)
    good = receive(db, initiative, settings, tmp_path, 2, OLD)
    tried: list[int] = []

    def start(submission_id: int) -> None:
        tried.append(submission_id)
        if submission_id == bad:
            raise OSError("its bytes could not be read")

    reconciler = reconcile.Reconciler(settings, initiative, engine=db, start=start)
    assert reconciler.pass_once() == [good]
    assert reconciler.pass_once() == []
    assert tried == [bad, good]  # the second pass left the failed one out


def test_an_outage_stops_the_pass_after_three_failures_in_a_row(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    ids = [receive(db, initiative, settings, tmp_path, v, OLD) for v in range(1, 6)]
    tried: list[int] = []

    def down(submission_id: int) -> None:
        tried.append(submission_id)
        raise ConnectionError("the Prefect API is down")

    assert reconcile.reconcile(settings, initiative, engine=db, start=down) == []
    assert tried == ids[: reconcile.OUTAGE]


def test_serve_decides_a_stranded_submission_in_its_own_process_and_announces_it(
    db: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    """No orchestrator needed (it may be what is down): the steps run here, and the outcome
    is announced as the ingest flow announces it."""
    from ci_pipeline import events

    lost = receive(db, initiative, settings, tmp_path, 7, OLD)
    sent: list[events.EventSpec] = []
    ingest = reconcile.ingest_here(settings, initiative, db, emitter=sent.append)

    assert reconcile.reconcile(settings, initiative, engine=db, start=ingest) == [lost]

    row = store.get_submission(lost, engine=db)
    assert row is not None and row.status == "accepted"
    [spec] = sent
    assert spec.event == events.SUBMISSION_ACCEPTED
    assert spec.labels["ci.partner"] == FUND and spec.payload["submission_id"] == lost
