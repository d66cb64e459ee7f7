"""The periodic notices without Prefect: who is late, reminders, the digest, quiet intake.

Most tests read the demo's database — 24 months of partner files, Kurkum's last quarter never
sent, indicators computed and the three injected alerts recorded as of the demo's day — built
once per session (from the ingested demo of tests/conftest.py) and copied into each test's data
folder. Every submission in it is dated 2026-03-12 09:00 UTC, so windows and quiet periods are
exact. Messages go through a fake sender that keeps (url, title, body), except where the
local-file channel is exercised.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, update
from sqlmodel import col

from ci_pipeline import aggregate, alert, demo, notices, store
from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.periods import parse_period
from ci_pipeline.store import AlertStatus, Submission
from tests.helpers import RECEIVED
from tests.test_pipeline import ALERT_SETTINGS, Outbox, ingest_small

NOTICE_SETTINGS = (*ALERT_SETTINGS, "CI_PIPELINE_REMINDER_URL", "CI_PIPELINE_QUIET_DAYS")
BACKBONE = "json://backbone.example.org/hook"
ENGINEERS = "json://engineers.example.org/hook"
REMINDER = "mailtos://backbone:s3cret@smtp.example.org?to={email}&name={partner}"

#: (partner, measure, period, due date, days overdue) as of the demo's day, 2026-03-15. Kurkum's
#: December figure (its missing Q4 file) — the missing-data alert the process run raises — and,
#: for every monthly reporter, January 2026: due 2026-02-15, nobody has sent it yet.
LATE_ON_DEMO_DAY = [
    ("braude-college", "starter-businesses-served", "2026-01", date(2026, 2, 15), 28),
    ("braude-college", "starter-students-trained", "2026-01", date(2026, 2, 15), 28),
    ("kurkum", "kurkum-women-employed", "2025-12", date(2026, 1, 15), 59),
    ("kurkum", "kurkum-women-employed", "2026-01", date(2026, 2, 15), 28),
    ("online-commerce-centre", "ecommerce-centre-employees", "2026-01", date(2026, 2, 15), 28),
    ("online-commerce-centre", "ecommerce-owners-served", "2026-01", date(2026, 2, 15), 28),
    ("online-commerce-centre", "ecommerce-residents-trained", "2026-01", date(2026, 2, 15), 28),
]


@pytest.fixture(autouse=True)
def default_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notices go to the default local files, whatever the environment configures."""
    for name in NOTICE_SETTINGS:
        monkeypatch.delenv(name, raising=False)


def copy_demo(demo_database: Path, settings: Settings) -> None:
    """Put the demo's database where the settings point."""
    settings.home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(demo_database, settings.home / "ci_pipeline.db")


@pytest.fixture
def demo_engine(demo_database: Path, settings: Settings) -> Iterator[Engine]:
    """The demo's database, a fresh copy, where the settings point."""
    copy_demo(demo_database, settings)
    engine = store.make_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


def configured(settings: Settings, **update: object) -> Settings:
    return settings.model_copy(update=update)


def rows(late: pl.DataFrame) -> list[tuple[object, ...]]:
    return list(
        late.select("partner_id", "measure_id", "period", "due_date", "days_overdue").iter_rows()
    )


# --- who is late --------------------------------------------------------------------------------


def test_a_day_after_the_quarter_deadline_only_kurkum_is_late(
    demo_engine: Engine, initiative: Initiative
) -> None:
    """As the process run finds it: Kurkum's December figure, and nothing else."""
    late = notices.late_partners(initiative, engine=demo_engine, today=date(2026, 2, 15))

    assert late.schema == pl.Schema(notices.LATE_SCHEMA)
    assert late.drop("message").to_dicts() == [
        {
            "partner_id": "kurkum",
            "partner_name": "Kurkum social catering",
            "contact_name": "Kurkum manager",
            "contact_email": "hello@kurkum.example.org",
            "measure_id": "kurkum-women-employed",
            "measure_title": "Women employed by Kurkum catering",
            "period": "2025-12",
            "due_date": date(2026, 1, 15),
            "days_overdue": 31,
        }
    ]
    assert late["message"][0] == (
        "Kurkum social catering has not reported Women employed by Kurkum catering for 2025-12; "
        "it was due on 2026-01-15 (31 days ago)"
    )


def test_on_the_demo_day_every_overdue_period_is_late(
    demo_engine: Engine, initiative: Initiative
) -> None:
    late = notices.late_partners(initiative, engine=demo_engine, today=demo.DEMO_AS_OF)

    assert rows(late) == LATE_ON_DEMO_DAY
    # The process run's missing-data alert is among them.
    [missing] = [a for a in alert.list_alerts(engine=demo_engine) if a.kind == "missing"]
    assert (missing.subject, missing.measure_id, missing.period) in {r[:3] for r in rows(late)}


def test_a_period_nobody_has_sent_is_late_for_everyone(
    demo_engine: Engine, initiative: Initiative
) -> None:
    """No data for 2025-Q4 at all: the indicator run has no such period to judge, but the
    completeness check still finds every quarterly reporter late once the deadline passed."""
    reported = store.reported_cells(initiative.info.id, engine=demo_engine).filter(
        pl.col("period") != "2025-Q4"
    )

    late = notices.find_late(initiative, reported, date(2026, 2, 20))

    quarterly = late.filter(pl.col("period") == "2025-Q4")
    assert sorted(set(quarterly.select("partner_id", "measure_id").iter_rows())) == sorted(
        [("employment-service", "arab-women-lfp"), ("employment-service", "part-time-share")]
        + [("galilee-foundation", "new-resources-nis")]
        + [
            (f"{p}", "smb-digital-presence")
            for p in (
                "biina-council",
                "deir-al-asad-council",
                "karmiel-municipality",
                "majd-al-krum-council",
                "misgav-council",
                "nahf-council",
                "rameh-council",
            )
        ]
    )
    # Below the minimum wage is due 60 days after the quarter: 2026-03-01, not yet.
    assert "national-insurance" not in quarterly["partner_id"].to_list()


def test_the_periods_checked(initiative: Initiative) -> None:
    kurkum = initiative.measures["kurkum-women-employed"]  # monthly, due 15 days after
    assert notices.latest_due_period(kurkum, date(2026, 2, 15)).label == "2025-12"  # due today
    assert notices.latest_due_period(kurkum, date(2026, 2, 16)).label == "2026-01"
    lfp = initiative.measures["arab-women-lfp"]  # quarterly, due 45 days after
    assert notices.latest_due_period(lfp, date(2026, 3, 15)).label == "2025-Q4"

    reported = pl.DataFrame(
        {"partner_id": ["kurkum"], "measure_id": [kurkum.id], "period": ["2025-11"]}
    )
    checked = notices.checked_periods(initiative, reported, date(2026, 3, 15))
    # From the latest period with data to the latest overdue one; with no data, that one.
    assert [p.label for p in checked[kurkum.id]] == ["2025-11", "2025-12", "2026-01"]
    assert [p.label for p in checked[lfp.id]] == ["2025-Q4"]
    # Data already in for a period not due yet does not hide the one that is.
    early = pl.DataFrame(
        {"partner_id": ["kurkum"], "measure_id": [kurkum.id], "period": ["2026-03"]}
    )
    checked = notices.checked_periods(initiative, early, date(2026, 3, 15))
    assert [p.label for p in checked[kurkum.id]] == ["2026-01"]
    assert all(p == parse_period(p.label) for ps in checked.values() for p in ps)


# --- the completeness check ---------------------------------------------------------------------


def test_each_late_partner_gets_one_reminder_and_the_backbone_a_summary(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    settings = configured(settings, reminder_url=REMINDER, alert_urls=[BACKBONE])
    sender = Outbox()

    result = notices.completeness(
        initiative, engine=demo_engine, settings=settings, today=demo.DEMO_AS_OF, sender=sender
    )

    reminders, [backbone] = sender.calls[:-1], sender.calls[-1:]
    assert [url for url, _, _ in reminders] == [
        "mailtos://backbone:s3cret@smtp.example.org?to=starter@braude.example.ac.il&name=braude-college",
        "mailtos://backbone:s3cret@smtp.example.org?to=director@ecommerce-centre.example.org&name=online-commerce-centre",
        "mailtos://backbone:s3cret@smtp.example.org?to=hello@kurkum.example.org&name=kurkum",
    ]
    [(_, title, body)] = [c for c in reminders if "kurkum.example.org" in c[0]]
    assert title.startswith("Reminder: Kurkum social catering's data for 2025-12, 2026-01")
    assert body.startswith("Dear Kurkum manager,\n")
    assert (
        "• 2025-12: Women employed by Kurkum catering (kurkum-women-employed) — due 2026-01-15, 59 days ago\n"
        "• 2026-01: Women employed by Kurkum catering (kurkum-women-employed) — due 2026-02-15, 28 days ago"
    ) in body
    for period in ("2025-12", "2026-01"):
        assert f"inbox/kurkum/{period}/" in body
        assert f"POST /v1/submissions?period={period}&filename=<your file name>" in body
    assert "Authorization: Bearer <your token>" in body and "Thank you" in body
    assert "Braude" not in body  # one partner's reminder names no other partner

    url, title, body = backbone
    assert url == BACKBONE
    assert title == "ci-pipeline: 3 partner(s) late with their data (as of 2026-03-15)"
    assert (
        "• Kurkum social catering (contact: Kurkum manager <hello@kurkum.example.org>): "
        "Women employed by Kurkum catering 2025-12, 2026-01 (2 periods; the oldest 59 days "
        "overdue) — reminded"
    ) in body
    assert "Braude College of Engineering" in body and "online-commerce centre" in body

    assert rows(result.late) == LATE_ON_DEMO_DAY
    assert (result.late_partners, result.reminders_sent, result.failures) == (3, 3, [])
    assert result.notice == notices.Notice(title, body)
    summary = result.as_dict()
    assert [s["channel"] for s in summary["reminders"]] == ["mailtos://smtp.example.org/…"] * 3
    assert summary["backbone"] == [
        {"channel": "json://backbone.example.org/…", "ok": True, "error": None, "partner_id": None}
    ]
    assert summary["backbone_notified"] is True
    assert "s3cret" not in json.dumps(summary) and "s3cret" not in result.markdown()
    assert (
        "| Kurkum social catering | Kurkum manager (hello@kurkum.example.org) | kurkum-women-employed | 2025-12 | 2026-01-15 | 59 |"
        in (result.markdown())
    )


def test_reminders_default_to_the_local_reminders_file(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    """Through apprise and the local-file channel, as an installation without mail sees it."""
    result = notices.completeness(
        initiative, engine=demo_engine, settings=settings, today=date(2026, 2, 15)
    )

    assert [s.channel for s in result.reminders] == [
        alert.file_channel(settings.partner_reminders_file)
    ]
    assert [s.channel for s in result.backbone] == [alert.file_channel(settings.alerts_file)]
    assert not result.failures
    reminders = settings.partner_reminders_file.read_text(encoding="utf-8")
    assert "Reminder: Kurkum social catering's data for 2025-12" in reminders
    assert "Dear Kurkum manager," in reminders
    backbone = settings.alerts_file.read_text(encoding="utf-8")
    assert "ci-pipeline: 1 partner(s) late with their data (as of 2026-02-15)" in backbone
    assert "Women employed by Kurkum catering 2025-12 (31 days overdue) — reminded" in backbone


def test_nothing_is_sent_when_nobody_is_late(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    sender = Outbox()

    # Every deadline that has passed by then was met (Kurkum's October is due on the 15th).
    result = notices.completeness(
        initiative, engine=demo_engine, settings=settings, today=date(2025, 11, 10), sender=sender
    )

    assert sender.calls == []
    assert result.late.is_empty() and result.late.schema == pl.Schema(notices.LATE_SCHEMA)
    assert (result.reminders, result.backbone, result.notice) == ([], [], None)
    assert result.note == "nobody is late: nothing was sent, not even to the backbone"
    assert result.as_dict()["backbone_notified"] is False
    assert "No partner is late." in result.markdown()


def test_a_failing_channel_does_not_stop_the_others(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    broken = "json://broken.example.org/hook"
    settings = configured(
        settings,
        reminder_url="json://reminders.example.org/{partner}",
        alert_urls=[broken, BACKBONE],
    )
    calls: list[str] = []

    def sender(url: str, title: str, body: str) -> bool:
        calls.append(url)
        if url.endswith("/kurkum"):
            raise ConnectionError("connection refused")
        return url != broken

    result = notices.completeness(
        initiative, engine=demo_engine, settings=settings, today=demo.DEMO_AS_OF, sender=sender
    )

    assert calls == [
        "json://reminders.example.org/braude-college",
        "json://reminders.example.org/online-commerce-centre",
        "json://reminders.example.org/kurkum",
        broken,
        BACKBONE,
    ]
    assert result.reminders_sent == 2
    assert [(s.partner_id, s.channel, s.error) for s in result.failures] == [
        ("kurkum", "json://reminders.example.org/…", "ConnectionError: connection refused"),
        (None, "json://broken.example.org/…", "the channel did not accept the message"),
    ]
    assert result.notice is not None
    assert "Kurkum social catering" in result.notice.body
    assert "— the reminder could NOT be sent" in result.notice.body
    assert result.notice.body.count("— reminded") == 2
    assert "2 of 3 reminder(s) sent; the backbone notified on 1 of 2 channel(s)" in result.note


def test_a_reminder_url_that_cannot_be_filled_is_reported(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    settings = configured(settings, reminder_url="json://example.org/{mail}")
    sender = Outbox()

    result = notices.completeness(
        initiative, engine=demo_engine, settings=settings, today=date(2026, 2, 15), sender=sender
    )

    [failure] = result.failures
    assert (failure.partner_id, failure.channel) == ("kurkum", "reminder_url")
    assert failure.error is not None and "reminder_url template" in failure.error
    assert [url for url, _, _ in sender.calls] == [alert.file_channel(settings.alerts_file)]


def test_a_contact_address_is_encoded_into_the_reminder_url(
    initiative: Initiative, settings: Settings
) -> None:
    partner = initiative.partners["kurkum"].model_copy(
        update={
            "contact": initiative.partners["kurkum"].contact.model_copy(
                update={"email": "a+b@x.org"}
            )
        }
    )
    settings = configured(settings, reminder_url="mailtos://smtp.example.org?to={email}")
    assert (
        notices.reminder_channel(settings, partner) == "mailtos://smtp.example.org?to=a%2Bb@x.org"
    )


def test_a_long_overdue_partner_gets_one_compact_reminder(initiative: Initiative) -> None:
    reported = pl.DataFrame(
        {"partner_id": ["kurkum"], "measure_id": ["kurkum-women-employed"], "period": ["2025-09"]}
    )
    late = notices.find_late(initiative, reported, date(2026, 3, 15)).filter(
        pl.col("measure_id") == "kurkum-women-employed"
    )
    [group] = notices.late_by_partner(late).to_dicts()

    notice = notices.reminder(group, initiative)

    assert group["periods"] == ["2025-10", "2025-11", "2025-12", "2026-01"]
    assert len(group["item"]) == 4 and all(i in notice.body for i in group["item"])
    assert "2025-10 to 2026-01" in notice.title
    assert "inbox/kurkum/<period>/" in notice.body and "e.g. 2025-10" in notice.body
    assert group["summary"] == [
        "Women employed by Kurkum catering 2025-10 … 2026-01 (4 periods; the oldest 120 days overdue)"
    ]


# --- the weekly digest --------------------------------------------------------------------------


def test_the_digest_of_the_demo_week(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    digest = notices.digest(initiative, engine=demo_engine, today=demo.DEMO_AS_OF)

    assert digest.title == "ci-pipeline: weekly digest, 2026-03-09 to 2026-03-15"
    body = digest.body
    assert body.startswith(
        "Weekly digest of Beit HaKerem valley — Route 85 shared prosperity, 2026-03-09 to 2026-03-15."
    )
    assert (
        "Submissions received: 132 — 130 accepted (1 since superseded by a revision), "
        "1 rejected, 1 duplicate.\n"
    ) in body
    assert "  Rejected: Deir al-Asad online-commerce centre (1)\n" in body
    assert "  Duplicate: Galilee Shared Prosperity Fund (1)\n" in body
    assert "Kurkum social catering (9)" in body  # its Q4 file never came

    stored = alert.list_alerts(engine=demo_engine)
    assert "Open alerts: 3 (1 regression, 1 sustained drift, 1 missing data)." in body
    for a in stored:
        assert f"#{a.id} {a.message}" in body
    assert "Alerts resolved in the period: none." in body

    assert "Late partners (as of 2026-03-15): 3.\n" in body
    assert (
        "  • Kurkum social catering: Women employed by Kurkum catering 2025-12, 2026-01 "
        "(2 periods; the oldest 59 days overdue)"
    ) in body

    # The cluster headline of the indicators updated: as a run's headline shows it.
    indicators = store.read_indicators(initiative.info.id, engine=demo_engine)
    head = aggregate.headline(indicators, initiative, {"arab-women-lfp": "2025-Q4"})
    [cluster] = head.filter(pl.col("geo_code") == "beit-hakerem").to_dicts()
    value = f"{cluster['value'] * 100:.1f}%"
    assert (
        f"  • Arab women's labour-force participation, Beit HaKerem cluster, 2025-Q4: {value} "
        f"({cluster['partners_reported']} of {cluster['partners_expected']} partners reported)"
    ) in body
    assert f"Indicators updated: {len(initiative.measures)} measure(s)" in body
    assert "… and 13 more (ci-pipeline indicators)" in body


def test_the_digest_counts_acknowledged_and_resolved_alerts(
    demo_engine: Engine, initiative: Initiative
) -> None:
    by_kind = {a.kind: a for a in alert.list_alerts(engine=demo_engine)}
    step, drift, missing = by_kind["step"], by_kind["drift"], by_kind["missing"]
    alert.acknowledge(_id(drift), "dana", engine=demo_engine)
    with demo_engine.begin() as conn:
        conn.execute(
            update(store.Alert)
            .where(col(store.Alert.id) == missing.id)
            .values(status=AlertStatus.resolved, resolved_at=datetime(2026, 3, 14, tzinfo=UTC))
        )
        conn.execute(  # resolved before the week: not in it
            update(store.Alert)
            .where(col(store.Alert.id) == step.id)
            .values(status=AlertStatus.resolved, resolved_at=datetime(2026, 3, 1, tzinfo=UTC))
        )

    body = notices.digest(initiative, engine=demo_engine, today=demo.DEMO_AS_OF).body

    assert "Open alerts: 1 (1 sustained drift); 1 acknowledged." in body
    assert f"Alerts resolved in the period: 1.\n  • #{missing.id} {missing.message}" in body
    assert step.message not in body


def test_the_digest_of_a_quiet_week(demo_engine: Engine, initiative: Initiative) -> None:
    digest = notices.digest(initiative, engine=demo_engine, today=date(2026, 3, 11), days=14)

    assert digest.title == "ci-pipeline: digest of 14 days, 2026-02-26 to 2026-03-11"
    assert "Submissions received: none." in digest.body
    assert "Indicators updated: none." in digest.body
    assert "Open alerts: 3 " in digest.body  # still open, whatever the window


def test_a_digest_covers_at_least_a_day(sqlite_engine: Engine, initiative: Initiative) -> None:
    with pytest.raises(PipelineError, match="at least 1 day, not 0"):
        notices.digest(initiative, engine=sqlite_engine, today=date(2026, 3, 15), days=0)


def test_a_digest_shows_no_suppressed_value(initiative: Initiative) -> None:
    headline = pl.DataFrame(
        {
            "measure_id": ["starter-students-trained", "new-resources-nis"],
            "geo_code": ["beit-hakerem", "beit-hakerem"],
            "period": ["2025-03", "2025-Q2"],
            "value": [None, 260000.0],
            "numerator": [None, None],
            "denominator": [None, None],
            "partners_reported": [1, 1],
            "partners_expected": [1, 1],
            "suppressed": [True, False],
        }
    )
    empty = pl.DataFrame(schema=store.RECEIVED_SCHEMA)
    digest = notices.compose_digest(
        initiative,
        today=date(2025, 9, 1),
        days=7,
        submissions=empty,
        alerts=pl.DataFrame(schema=store.ALERTS_SINCE_SCHEMA),
        late=pl.DataFrame(schema=notices.LATE_SCHEMA),
        headline=headline,
    )
    assert "Students trained by Galilee Starter, Beit HaKerem cluster, 2025-03: suppressed" in (
        digest.body
    )
    assert "260,000 NIS" in digest.body
    assert "Late partners (as of 2025-09-01): none." in digest.body
    assert "Open alerts: none." in digest.body


def test_the_digest_goes_to_every_backbone_channel(settings: Settings) -> None:
    other = "json://steering.example.org/hook"
    settings = configured(settings, alert_urls=[BACKBONE, other])
    sender = Outbox()
    digest = notices.Digest("ci-pipeline: weekly digest", "body")

    sent = notices.send_digest(digest, settings=settings, sender=sender)

    assert sender.calls == [(BACKBONE, digest.title, "body"), (other, digest.title, "body")]
    assert [(s.channel, s.ok) for s in sent] == [
        ("json://backbone.example.org/…", True),
        ("json://steering.example.org/…", True),
    ]


# --- quiet intake -------------------------------------------------------------------------------


def test_quiet_intake_tells_the_engineers_only_when_truly_quiet(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    settings = configured(settings, engineer_urls=[ENGINEERS])
    sender = Outbox()

    # 13 days after the last file: the automation fired early, or raced a submission.
    recent = notices.quiet_intake(
        initiative, engine=demo_engine, settings=settings, today=date(2026, 3, 25), sender=sender
    )
    assert sender.calls == []
    assert (recent.quiet, recent.notice, recent.sent, recent.days_since) == (False, None, [], 13)
    assert recent.last is not None and recent.last.received_at == RECEIVED
    assert "not quiet" in recent.markdown()

    quiet = notices.quiet_intake(
        initiative, engine=demo_engine, settings=settings, today=date(2026, 3, 26), sender=sender
    )
    [(url, title, body)] = sender.calls
    assert url == ENGINEERS
    assert title == "ci-pipeline: no submission received for 14 days"
    assert "in the last 14 days (as of 2026-03-26)" in body
    assert "The last submission was received on 2026-03-12, 14 days ago" in body
    assert quiet.as_dict() == {
        "as_of": "2026-03-26",
        "quiet": True,
        "last_received": "2026-03-12",
        "days_since": 14,
        "notified": True,
        "sent": [
            {
                "channel": "json://engineers.example.org/…",
                "ok": True,
                "error": None,
                "partner_id": None,
            }
        ],
        "failures": [],
    }


def test_quiet_days_come_from_the_settings(
    demo_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    sender = Outbox()
    result = notices.quiet_intake(
        initiative,
        engine=demo_engine,
        settings=configured(settings, quiet_days=3),
        today=date(2026, 3, 15),
        sender=sender,
    )
    assert result.quiet and len(sender.calls) == 1
    assert "in the last 3 days" in sender.calls[0][2]

    # The automation's own window, when it passes one, wins.
    longer = notices.quiet_intake(
        initiative,
        engine=demo_engine,
        settings=configured(settings, quiet_days=3),
        today=date(2026, 3, 15),
        quiet_days=5,
        sender=sender,
    )
    assert not longer.quiet and len(sender.calls) == 1
    with pytest.raises(PipelineError, match="at least 1 day, not 0"):
        notices.quiet_intake(
            initiative, engine=demo_engine, settings=settings, today=date(2026, 3, 15), quiet_days=0
        )


def test_quiet_intake_when_nothing_ever_arrived(
    sqlite_engine: Engine, initiative: Initiative, settings: Settings
) -> None:
    """Through apprise to the engineers' local file."""
    result = notices.quiet_intake(
        initiative, engine=sqlite_engine, settings=settings, today=date(2026, 3, 15)
    )

    assert result.quiet and result.last is None and result.days_since is None
    assert result.as_dict()["last_received"] is None
    assert [s.channel for s in result.sent] == [alert.file_channel(settings.engineers_file)]
    written = settings.engineers_file.read_text(encoding="utf-8")
    assert "ci-pipeline: no submission has ever been received" in written
    assert "(the last one: never)" in written


# --- the queries, on SQLite and PostgreSQL ------------------------------------------------------


def test_the_windows_on_each_database(
    engine: Engine, initiative: Initiative, settings: Settings, tmp_path: Path
) -> None:
    """Day boundaries are UTC: the start day is in, the day after ``today`` is not."""
    receipts = ingest_small(
        tmp_path / "files", initiative=initiative, settings=settings, engine=engine
    )
    moments = [
        datetime(2026, 3, 9, 0, 0, tzinfo=UTC),  # the window's first instant
        datetime(2026, 3, 8, 23, 59, 59, tzinfo=UTC),  # just before it
        datetime(2026, 3, 15, 23, 59, 59, tzinfo=UTC),  # the window's last second
        datetime(2026, 3, 16, 0, 0, tzinfo=UTC),  # the day after
        datetime(2026, 3, 12, 12, 0, tzinfo=UTC),
    ]
    with engine.begin() as conn:
        for receipt, moment in zip(receipts, moments, strict=True):
            conn.execute(
                update(Submission)
                .where(col(Submission.id) == receipt.submission_id)
                .values(received_at=moment)
            )
    start, end = notices.digest_window(date(2026, 3, 15), 7)

    inside = store.submissions_between(initiative.info.id, start, end, engine=engine)

    assert sorted(inside["received_at"].to_list()) == sorted([moments[0], moments[2], moments[4]])
    assert set(inside["status"].to_list()) == {"accepted"}
    last = notices.last_submission(initiative, engine=engine)
    assert last is not None and last.received_at == moments[3]
    assert (last.partner_id, last.status) == (
        receipts[3].partner_id,
        "accepted",
    )
    assert (
        notices.last_submission(
            initiative.model_copy(
                update={"info": initiative.info.model_copy(update={"id": "other"})}
            ),
            engine=engine,
        )
        is None
    )


def _id(a: store.Alert) -> int:
    assert a.id is not None
    return a.id


def test_the_digest_leads_to_the_report_card(demo_engine: Engine, initiative: Initiative) -> None:
    url = "http://ci.example.org:8420/report/"
    digest = notices.digest(
        initiative, engine=demo_engine, today=date(2026, 3, 11), days=14, report_url=url
    )
    assert f"The report card: {url}en/summary.html (one page)" in digest.body
    assert f"עברית: {url}he/" in digest.body and f"العربية: {url}ar/" in digest.body
    plain = notices.digest(initiative, engine=demo_engine, today=date(2026, 3, 11), days=14)
    assert "report card" not in plain.body
