"""The notice flows on a temporary Prefect server: results, run names, tasks, artifacts, and the
local-file channels they write.

Each test copies the demo's database (built once, see tests/helpers.py) into the data
folder the environment points the flows at.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import Artifact

from ci_pipeline import alert, demo
from ci_pipeline.config import Settings
from ci_pipeline.flows.notices import check_completeness, notify_quiet_intake, weekly_digest
from tests.helpers import artifact, read_run, run_flow, task_names
from tests.notices.test_notices import NOTICE_SETTINGS, copy_demo

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(autouse=True)
def default_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notices go to the default local files, whatever the environment configures."""
    for name in NOTICE_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def demo_home(demo_database: Path, settings: Settings) -> Settings:
    """The demo's database where the flows' settings point."""
    copy_demo(demo_database, settings)
    return settings


def markdown(key: str, flow_run_id: UUID) -> str:
    found = artifact(key, flow_run_id)
    assert isinstance(found, Artifact) and found.type == "markdown"
    assert isinstance(found.data, str)
    return found.data


def test_check_completeness_reminds_the_late_partners(demo_home: Settings) -> None:
    result, flow_run_id = run_flow(check_completeness, as_of=demo.DEMO_AS_OF)

    assert result["as_of"] == "2026-03-15"
    assert result["late_partners"] == 3 and result["reminders_sent"] == 3
    assert {(r["partner_id"], r["measure_id"], r["period"]) for r in result["late"]} >= {
        ("kurkum", "kurkum-women-employed", "2025-12")
    }
    assert [r["channel"] for r in result["reminders"]] == [
        alert.file_channel(demo_home.partner_reminders_file)
    ] * 3
    assert result["backbone_notified"] is True and result["failures"] == []
    reminders = demo_home.partner_reminders_file.read_text(encoding="utf-8")
    assert reminders.count("Reminder: ") == 3
    assert "Dear Kurkum manager," in reminders and "inbox/kurkum/2025-12/" in reminders
    backbone = demo_home.alerts_file.read_text(encoding="utf-8")
    assert "ci-pipeline: 3 partner(s) late with their data (as of 2026-03-15)" in backbone

    assert read_run(flow_run_id).name == "completeness 2026-03-15"
    assert task_names(flow_run_id) == ["find-late-partners", "send-reminders"]
    table = markdown("late-partners", flow_run_id)
    assert (
        "| Kurkum social catering | Kurkum manager (hello@kurkum.example.org) | "
        "kurkum-women-employed | 2025-12 | 2026-01-15 | 59 |"
    ) in table
    assert "3 partner(s) late with their data" in table


def test_check_completeness_when_nobody_is_late_sends_nothing(demo_home: Settings) -> None:
    result, _ = run_flow(check_completeness, as_of=date(2025, 11, 10))

    assert result["late_partners"] == 0 and result["late"] == []
    assert result["backbone"] == [] and result["backbone_notified"] is False
    assert "nothing was sent" in result["note"]
    assert not demo_home.partner_reminders_file.exists()
    assert not demo_home.alerts_file.exists()


def test_weekly_digest_goes_to_the_backbone(demo_home: Settings) -> None:
    result, flow_run_id = run_flow(weekly_digest, as_of=demo.DEMO_AS_OF)

    assert result["title"] == "ci-pipeline: weekly digest, 2026-03-09 to 2026-03-15"
    assert "Submissions received: 132" in result["body"]
    assert "Open alerts: 3 " in result["body"]
    assert result["sent"] == [
        {
            "channel": alert.file_channel(demo_home.alerts_file),
            "ok": True,
            "error": None,
            "partner_id": None,
        }
    ]
    written = demo_home.alerts_file.read_text(encoding="utf-8")
    assert result["title"] in written and result["body"] in written

    assert read_run(flow_run_id).name == "digest week to 2026-03-15"
    assert task_names(flow_run_id) == ["compose-digest", "send-digest"]
    assert result["body"] in markdown("weekly-digest", flow_run_id)

    _, other = run_flow(weekly_digest, as_of=demo.DEMO_AS_OF, days=14)
    assert read_run(other).name == "digest 14 days to 2026-03-15"


def test_notify_quiet_intake_only_when_quiet(demo_home: Settings) -> None:
    # A file arrived on 2026-03-12: a day later intake is not quiet, and nothing is sent.
    result, flow_run_id = run_flow(notify_quiet_intake, as_of=date(2026, 3, 13))
    assert (result["quiet"], result["sent"], result["last_received"]) == (
        False,
        [],
        "2026-03-12",
    )
    assert not demo_home.engineers_file.exists()
    assert read_run(flow_run_id).name == "quiet intake 2026-03-13"
    assert task_names(flow_run_id) == ["last-submission", "notify-engineers"]
    assert "not quiet" in markdown("quiet-intake", flow_run_id)

    # The automation passes its own window: 60 days back from 2026-04-30 includes 2026-03-12.
    result, _ = run_flow(notify_quiet_intake, as_of=date(2026, 4, 30), days=60)
    assert result["quiet"] is False and not demo_home.engineers_file.exists()

    result, flow_run_id = run_flow(notify_quiet_intake, as_of=date(2026, 4, 30))
    assert result["quiet"] is True and result["days_since"] == 49 and result["notified"]
    written = demo_home.engineers_file.read_text(encoding="utf-8")
    assert "ci-pipeline: no submission received for 49 days" in written
    assert "The last submission was received on 2026-03-12" in markdown("quiet-intake", flow_run_id)


def test_the_flows_run_on_an_empty_database(settings: Settings) -> None:
    """A fresh installation: no partner has sent anything; every flow completes."""
    result, _ = run_flow(notify_quiet_intake, as_of=date(2026, 3, 15))
    assert result["quiet"] is True and result["last_received"] is None
    digest, _ = run_flow(weekly_digest, as_of=date(2026, 3, 15))
    assert "Submissions received: none." in digest["body"]
