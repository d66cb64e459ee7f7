"""Regression episodes: a fall that goes on for several periods is one alert, updated each
period, resolved once on recovery (issue 10, item 5).

The series: Arab women's labour-force participation in Nahf (a proportion, higher is better,
quarterly, ``alert.min_change`` 0.02). Hand-made findings and indicator cells, as a run judging
one quarter at a time would record them. Every test that touches a database takes ``engine``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ci_pipeline import aggregate, alert, detect, store
from ci_pipeline.alert import Routing, episodes
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import intake
from ci_pipeline.store import Alert, AlertStatus, OutboxMessage
from tests import helpers
from tests.helpers import ingest

MEASURE = "arab-women-lfp"
GEO = "nahf"
ROUTING = Routing(backbone=["json://backbone.example.org/hook"], engineers=[], routes={})
DAY = timedelta(hours=24)
T0 = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)

#: The fall: 30% in 2024-Q4, then one point lower every quarter for six quarters, each flagged
#: by one of the regression detectors: (period, kind, value, reference, reference period).
#: A step's reference is the quarter before; the CUSUM's (sustained) the level before the fall;
#: the drift's the start of its window.
FALL = [
    ("2025-Q1", "step", 0.27, 0.30, "2024-Q4"),
    ("2025-Q2", "sustained", 0.26, 0.30, "2024-Q4"),
    ("2025-Q3", "sustained", 0.25, 0.30, "2024-Q4"),
    ("2025-Q4", "drift", 0.24, 0.27, "2025-Q1"),
    ("2026-Q1", "step", 0.23, 0.24, "2025-Q4"),
    ("2026-Q2", "sustained", 0.22, 0.30, "2024-Q4"),
]
Fall = tuple[str, str, float, float, str]


# --- helpers ------------------------------------------------------------------------------------


def row(initiative: Initiative, fall: Fall, message: str | None = None) -> dict[str, Any]:
    period, kind, value, reference, reference_period = fall
    return helpers.finding(
        initiative,
        kind,
        MEASURE,
        GEO,
        period,
        value=value,
        reference=reference,
        reference_period=reference_period,
        change=value - reference,
        statistic=3.0,
        message=message or f"{kind}: {value:.2f} in {period} from {reference:.2f}",
    )


def cells(initiative: Initiative, period: str, value: float) -> pl.DataFrame:
    """The series' published cell for the judged period."""
    return pl.DataFrame(
        {
            "measure_id": [MEASURE],
            "geo_code": [GEO],
            "disaggregation": [initiative.measures[MEASURE].total_key],
            "period": [period],
            "value": [value],
            "suppressed": [False],
        }
    )


def run(
    initiative: Initiative, engine: Engine, period: str, value: float, *falls: Fall
) -> alert.Recorded:
    """One run judging ``period`` (the series at ``value``) that found ``falls``."""
    rows = [row(initiative, f) for f in falls]
    return alert.record_findings(
        helpers.findings_frame(rows),
        initiative,
        {MEASURE: period},
        unverified_measures=set(),
        engine=engine,
        current=cells(initiative, period, value),
    )


def fall_run(initiative: Initiative, engine: Engine, fall: Fall) -> alert.Recorded:
    return run(initiative, engine, fall[0], fall[2], fall)


def alerts(engine: Engine) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).order_by(col(Alert.id))).all())


def outbox(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage)).all())


def episode(a: Alert) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(a.evidence)["episode"]
    return stored


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    """Everything a re-run could change about the alerts (not when they were last seen)."""
    return [
        (a.id, a.kind, a.period, a.status, a.message, a.evidence, a.notifications, a.resolved_at)
        for a in alerts(engine)
    ] + [("outbox", len(outbox(engine)))]


# --- the pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "count"),
    [
        ("2025-03", "2025-03", 1),
        ("2025-03", "2025-05", 3),  # March, April, May
        ("2025-11", "2026-02", 4),  # Nov, Dec, Jan, Feb
        ("2025-Q4", "2026-Q2", 3),  # Q4, Q1, Q2
        ("2024", "2025", 2),
    ],
)
def test_periods_between_counts_both_ends(first: str, last: str, count: int) -> None:
    assert episodes.periods_between(first, last) == count


def test_back_to_start_is_direction_aware(initiative: Initiative) -> None:
    """Below-minimum-wage share: lower is better, min_change 0.02; the episode started from 10%."""
    measure = initiative.measures["below-min-wage-share"]
    assert measure.alert.min_change == 0.02
    start = episodes.begin(
        {"kind": "step", "period": "2025-Q2", "value": 0.14, "reference": 0.10,
         "reference_period": "2025-Q1"}
    )  # fmt: skip
    assert not episodes.back_to_start(measure, start, 0.125)  # +2.5 points: still worse
    assert episodes.back_to_start(measure, start, 0.115)  # +1.5 points: less than min_change
    assert episodes.back_to_start(measure, start, 0.08)  # better than before the rise


def test_the_episode_sentence_leads_the_latest_finding(initiative: Initiative) -> None:
    measure = initiative.measures[MEASURE]
    first = episodes.begin(row(initiative, FALL[0]))
    assert episodes.episode_message("the step", first, measure) == "the step"  # one period
    later = episodes.extend(first, row(initiative, FALL[2]))
    # Started 2025-Q1 from 30% (the quarter before); now 25% in 2025-Q3: three quarters.
    assert episodes.episode_message("the cusum", later, measure) == (
        "Worsening since 2025-Q1 (3 quarters): from 30.0% to 25.0%. the cusum"
    )
    assert (later.start_kind, later.latest_kind, later.latest_period) == (
        "step",
        "sustained",
        "2025-Q3",
    )
    assert later.change == pytest.approx(0.25 - 0.30)


# --- the lifecycle ------------------------------------------------------------------------------


def test_a_fall_over_six_periods_is_one_alert_updated_each_period(
    engine: Engine, initiative: Initiative
) -> None:
    messages: list[str] = []
    evidences: list[str] = []
    for i, fall in enumerate(FALL):
        recorded = fall_run(initiative, engine, fall)
        # Delivery runs after every judgement, hours apart (within the 24 h repeat interval).
        alert.enqueue(ROUTING, repeat_interval=DAY, engine=engine, now=T0 + timedelta(hours=i))

        [only] = alerts(engine)
        assert (only.kind, only.period, only.status) == ("step", "2025-Q1", AlertStatus.open)
        if i == 0:
            assert (recorded.new, recorded.updated) == ([only.id], [])
        else:
            assert (recorded.new, recorded.updated, recorded.resolved) == ([], [only.id], [])
        ep = episode(only)
        period, kind, value, _, _ = fall
        assert (ep["start_period"], ep["start_kind"], ep["start_reference"]) == (
            "2025-Q1",
            "step",
            0.30,
        )
        assert (ep["latest_period"], ep["latest_kind"], ep["latest_value"]) == (
            period,
            kind,
            value,
        )
        assert ep["periods"] == i + 1
        assert ep["change"] == pytest.approx(value - 0.30)
        assert json.loads(only.evidence)["period"] == period  # the latest finding's columns
        messages.append(only.message)
        evidences.append(only.evidence)

    assert len(set(messages)) == len(set(evidences)) == 6  # changed every period
    # 2025-Q1 .. 2026-Q2 is six quarters; from 30% before the fall to 22% now.
    assert messages[-1] == (
        "Worsening since 2025-Q1 (6 quarters): from 30.0% to 22.0%. "
        "sustained: 0.22 in 2026-Q2 from 0.30"
    )
    assert messages[0] == "step: 0.27 in 2025-Q1 from 0.30"
    # One notification round, one outbox row (one channel): the updates queued nothing more.
    [only] = alerts(engine)
    assert only.notifications == 1
    assert len(outbox(engine)) == 1


def test_an_episode_resolves_once_on_recovery_and_a_new_fall_is_a_new_alert(
    engine: Engine, initiative: Initiative
) -> None:
    for fall in FALL:
        fall_run(initiative, engine, fall)
    [first] = alerts(engine)

    # 2026-Q3: no finding, but 25% is still 5 points below the 30% the fall started from
    # (at least min_change 2 points worse): not recovered.
    assert run(initiative, engine, "2026-Q3", 0.25).resolved == []
    assert alerts(engine)[0].status == AlertStatus.open
    # 2026-Q4: 29%, 1 point below 30%, less than min_change: recovered.
    assert run(initiative, engine, "2026-Q4", 0.29).resolved == [first.id]
    [resolved] = alerts(engine)
    assert resolved.status == AlertStatus.resolved
    assert episode(resolved)["resolved_period"] == "2026-Q4"
    assert episode(resolved)["latest_period"] == "2026-Q2"
    assert episode(resolved)["ended"] == "recovered"
    before = snapshot(engine)

    # Re-running the recovery's period, or a period of the fall, changes nothing.
    again = run(initiative, engine, "2026-Q4", 0.29)
    assert (again.new, again.updated, again.resolved) == ([], [], [])
    history = fall_run(initiative, engine, FALL[-1])
    assert (history.new, history.updated, history.resolved) == ([], [], [])
    assert snapshot(engine) == before

    # A new fall: 2027-Q1 steps down to 25% from 29% — a second episode, a second alert.
    second = fall_run(initiative, engine, ("2027-Q1", "step", 0.25, 0.29, "2026-Q4"))
    assert len(second.new) == 1 and second.new != [first.id]
    old, new = alerts(engine)
    assert (old.id, old.status) == (first.id, AlertStatus.resolved)
    assert (new.period, new.status) == ("2027-Q1", AlertStatus.open)
    assert (episode(new)["start_reference"], episode(new)["periods"]) == (0.29, 1)
    assert alert.enqueue(ROUTING, repeat_interval=DAY, engine=engine, now=T0) == 1


def test_one_period_without_a_finding_is_not_recovery(
    engine: Engine, initiative: Initiative
) -> None:
    """The detectors stay quiet on a quarter that is still low (the fall levelled off): the
    episode goes on, and a finding the quarter after updates it, not a new alert."""
    fall_run(initiative, engine, FALL[0])
    fall_run(initiative, engine, FALL[1])
    # 2025-Q3 without a finding at 26%, 4 points below 30%.
    assert run(initiative, engine, "2025-Q3", 0.26).resolved == []
    recorded = fall_run(initiative, engine, FALL[3])
    [only] = alerts(engine)
    assert recorded.updated == [only.id]
    assert (episode(only)["latest_period"], episode(only)["periods"]) == ("2025-Q4", 4)


@pytest.mark.parametrize(
    ("latest", "judged", "done"),
    [
        ("2026-Q2", "2027-Q1", False),  # three quarters without a finding
        ("2026-Q2", "2027-Q2", True),  # four: a year
        ("2025-03", "2026-02", False),  # eleven months
        ("2025-03", "2026-03", True),  # twelve
        ("2020", "2021", False),  # a yearly series: two years at least
        ("2020", "2022", True),
    ],
)
def test_an_episode_settles_after_a_year_without_a_finding(
    latest: str, judged: str, done: bool
) -> None:
    e = episodes.begin(
        {"kind": "step", "period": latest, "value": 0.2, "reference": 0.3, "reference_period": ""}
    )
    assert episodes.settled(e, judged) is done


def test_an_episode_that_stopped_worsening_ends_and_the_next_fall_is_a_new_alert(
    engine: Engine, initiative: Initiative
) -> None:
    """After the fall to 22% (2026-Q2) the series stays at 22%, 8 points below where it fell
    from, and no detector flags it: after a year of quarters without a finding (2026-Q3 ..
    2027-Q2) the episode has settled — it ends, as "settled", not "recovered" — and the fall
    of 2027-Q3 is a new alert with its own notification, not a silent update of the old one."""
    for fall in FALL:
        fall_run(initiative, engine, fall)
    [first] = alerts(engine)
    for period in ("2026-Q3", "2026-Q4", "2027-Q1"):
        assert run(initiative, engine, period, 0.22).resolved == []
    assert run(initiative, engine, "2027-Q2", 0.22).resolved == [first.id]
    [ended] = alerts(engine)
    assert episode(ended)["ended"] == "settled"
    assert episode(ended)["resolved_period"] == "2027-Q2"

    second = fall_run(initiative, engine, ("2027-Q3", "step", 0.19, 0.22, "2027-Q2"))
    assert len(second.new) == 1
    assert [a.status for a in alerts(engine)] == [AlertStatus.resolved, AlertStatus.open]
    assert episode(alerts(engine)[1])["ended"] is None  # the new one goes on


def test_rerunning_a_period_is_idempotent(engine: Engine, initiative: Initiative) -> None:
    for i, fall in enumerate(FALL[:3]):
        fall_run(initiative, engine, fall)
        alert.enqueue(ROUTING, repeat_interval=DAY, engine=engine, now=T0 + timedelta(hours=i))
    before = snapshot(engine)

    # The latest period again, then earlier ones (re-judged history), then the latest again.
    for fall in (FALL[2], FALL[1], FALL[0], FALL[2]):
        recorded = fall_run(initiative, engine, fall)
        alert.enqueue(ROUTING, repeat_interval=DAY, engine=engine, now=T0 + timedelta(hours=5))
        assert recorded.new == [] and recorded.resolved == []
        assert snapshot(engine) == before
    [only] = alerts(engine)
    assert episode(only)["latest_period"] == "2025-Q3"


def test_an_acknowledged_episode_stays_acknowledged_while_updated(
    engine: Engine, initiative: Initiative
) -> None:
    fall_run(initiative, engine, FALL[0])
    alert.enqueue(ROUTING, repeat_interval=DAY, engine=engine, now=T0)
    [opened] = alerts(engine)
    assert opened.id is not None
    alert.acknowledge(opened.id, "dana", engine=engine)

    recorded = fall_run(initiative, engine, FALL[1])

    [updated] = alerts(engine)
    assert recorded.updated == [opened.id] and recorded.new == []
    assert (updated.status, updated.acknowledged_by) == (AlertStatus.acknowledged, "dana")
    assert updated.message != opened.message
    assert episode(updated)["latest_period"] == "2025-Q2"
    # Acknowledged: neither a new round now nor a repeat later.
    assert alert.enqueue(ROUTING, repeat_interval=DAY, engine=engine, now=T0 + 2 * DAY) == 0
    assert (updated.notifications, len(outbox(engine))) == (1, 1)


def test_several_regression_kinds_in_one_run_are_one_alert(
    engine: Engine, initiative: Initiative
) -> None:
    """A step, a CUSUM and a drift on the same series and quarter: the step speaks for them."""
    period = "2025-Q1"
    found = [
        (period, "drift", 0.27, 0.31, "2024-Q2"),
        (period, "step", 0.27, 0.30, "2024-Q4"),
        (period, "sustained", 0.27, 0.30, "2024-Q4"),
    ]
    recorded = run(initiative, engine, period, 0.27, *found)
    [only] = alerts(engine)
    assert recorded.new == [only.id]
    assert (only.kind, only.message) == ("step", "step: 0.27 in 2025-Q1 from 0.30")
    assert run(initiative, engine, period, 0.27, *found).new == []
    assert len(alerts(engine)) == 1


def test_the_opening_period_rejudged_without_its_finding_resolves_as_before(
    engine: Engine, initiative: Initiative
) -> None:
    """Data revised so the opening quarter's finding is gone: the alert resolves (it was never
    a regression); revised back, the same alert reopens and is notified again."""
    fall_run(initiative, engine, FALL[0])
    [opened] = alerts(engine)
    assert run(initiative, engine, "2025-Q1", 0.295).resolved == [opened.id]
    assert episode(alerts(engine)[0])["ended"] == "withdrawn"
    back = fall_run(initiative, engine, FALL[0])
    [reopened] = alerts(engine)
    assert back.new == [opened.id]
    assert reopened.status == AlertStatus.open


def test_an_alert_recorded_before_episodes_becomes_the_episode(
    engine: Engine, initiative: Initiative
) -> None:
    """An open step alert stored by the code before episodes (its evidence has no episode): the
    next quarter's finding updates it, starting the episode from its own finding."""
    first = row(initiative, FALL[0])
    evidence = {k: v for k, v in first.items() if k != "message"}
    with store.transaction(engine=engine) as session:
        store.add_alert(
            Alert(
                initiative_id=initiative.info.id,
                kind="step",
                measure_id=MEASURE,
                geo_code=GEO,
                disaggregation=first["disaggregation"],
                period="2025-Q1",
                message=first["message"],
                evidence=json.dumps(evidence),
            ),
            session=session,
        )
    recorded = fall_run(initiative, engine, FALL[1])
    [only] = alerts(engine)
    assert recorded.updated == [only.id]
    assert (episode(only)["start_reference"], episode(only)["periods"]) == (0.30, 2)


def test_a_sustained_alert_has_its_label(engine: Engine, initiative: Initiative) -> None:
    run(initiative, engine, "2025-Q2", 0.26, FALL[1])
    _, body = alert.compose(alerts(engine), "backbone")
    assert "[Sustained regression]" in body


# --- end to end: files in, judged month by month -------------------------------------------------

#: Braude College's students trained in Karmiel (female, male): a steady year, a fall for six
#: months, then back.
STEADY = {f"2024-{m:02d}": (25, 15) for m in range(1, 13)}
FALLING = {"2025-01": (12, 8), "2025-02": (9, 6), "2025-03": (7, 5), "2025-04": (6, 4),
           "2025-05": (5, 3), "2025-06": (4, 2)}  # fmt: skip
BACK = {"2025-07": (25, 15)}


def test_a_fall_through_ingest_and_judgement_is_one_alert_per_series(
    sqlite_engine: Engine, settings: Settings, initiative: Initiative, tmp_path: Path
) -> None:
    """The real detectors on real files: each month of the fall may flag the series with a
    different kind (a step, later a drift); each series falling stays one alert, and the
    month the value is back resolves each once."""
    intake.prepare_database(initiative, engine=sqlite_engine)

    def month(period: str, female: int, male: int) -> None:
        path = tmp_path / f"braude_{period}.csv"
        path.write_text(
            "measure_id,geo_code,period,sex,value\n"
            f"starter-students-trained,karmiel,{period},female,{female}\n"
            f"starter-students-trained,karmiel,{period},male,{male}\n",
            encoding="utf-8",
        )
        receipt = ingest(
            path, "braude-college", period, initiative=initiative, settings=settings,
            engine=sqlite_engine,
        )  # fmt: skip
        assert receipt.status == "accepted", receipt.first_issues

    def process(period: str) -> alert.Recorded:
        aggregate.refresh_indicators(initiative, engine=sqlite_engine)
        # Judged on the first of the month: nothing is due yet, so no missing-data alerts.
        as_of = date.fromisoformat(f"{period}-01")
        judgement = detect.judge(
            initiative, engine=sqlite_engine, settings=settings, period=period, as_of=as_of
        )
        recorded, _ = alert.record_alerts(
            judgement, initiative, settings=settings, engine=sqlite_engine
        )
        return recorded

    for period, (female, male) in STEADY.items():
        month(period, female, male)
    flagged: dict[tuple[str, str, str], set[str]] = {}  # series -> kinds found
    for period, (female, male) in FALLING.items():
        month(period, female, male)
        process(period)
        regression = [a for a in alerts(sqlite_engine) if a.kind in alert.REGRESSION_KINDS]
        for a in regression:
            flagged.setdefault((a.measure_id, a.geo_code, a.disaggregation), set()).add(
                json.loads(a.evidence)["kind"]
            )
        # One alert per series, never resolved while the fall goes on.
        assert len(regression) == len({(a.geo_code, a.disaggregation) for a in regression})
        assert {a.status for a in regression} <= {AlertStatus.open}
    regression = [a for a in alerts(sqlite_engine) if a.kind in alert.REGRESSION_KINDS]
    assert regression, "the detectors found nothing in a fall from 40 to 6 students"
    lasted = [episode(a)["periods"] for a in regression]
    assert max(lasted) > 1, "no episode outlasted its first month"
    assert ("starter-students-trained", "karmiel", "sex=total") in flagged
    before = snapshot(sqlite_engine)

    # Re-processing the last month of the fall changes nothing.
    assert process("2025-06").new == []
    assert snapshot(sqlite_engine) == before

    # Back to 40 students: every episode resolves, once.
    for period, (female, male) in BACK.items():
        month(period, female, male)
    recorded = process("2025-07")
    assert sorted(recorded.resolved) == sorted(a.id for a in regression if a.id is not None)
    assert process("2025-07").resolved == []
    assert len([a for a in alerts(sqlite_engine) if a.kind in alert.REGRESSION_KINDS]) == len(
        regression
    )
