"""The quiet-intake notice: tell the data engineers that no submission at all has arrived for
``quiet_days`` days. A Prefect automation triggers it; it checks the database itself and sends
nothing when a submission did arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from ci_pipeline import alert, store
from ci_pipeline.alert import Sender, apprise_sender
from ci_pipeline.clock import aware
from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.notices.common import Notice, Sent, deliver_notice


@dataclass(frozen=True)
class LastSubmission:
    """The most recent submission received, whatever became of it."""

    received_at: datetime  # UTC
    partner_id: str
    period: str
    status: str


def last_submission(initiative: Initiative, *, engine: Engine) -> LastSubmission | None:
    """The submission received last for this initiative, or None if none ever was."""
    row = store.last_submission(initiative.info.id, engine=engine)
    if row is None:
        return None
    received = aware(row.received_at)
    assert received is not None
    return LastSubmission(received, row.partner_id, row.period, row.status)


@dataclass(frozen=True)
class QuietResult:
    """Whether intake was quiet, and what the data engineers were sent."""

    as_of: date
    quiet: bool
    last: LastSubmission | None
    notice: Notice | None  # None: not quiet, nothing sent
    sent: list[Sent] = field(default_factory=list)

    @property
    def days_since(self) -> int | None:
        return None if self.last is None else (self.as_of - self.last.received_at.date()).days

    @property
    def failures(self) -> list[Sent]:
        return [s for s in self.sent if not s.ok]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (a flow's result)."""
        return {
            "as_of": self.as_of.isoformat(),
            "quiet": self.quiet,
            "last_received": self.last.received_at.date().isoformat() if self.last else None,
            "days_since": self.days_since,
            "notified": bool(self.sent) and all(s.ok for s in self.sent),
            "sent": [s.as_dict() for s in self.sent],
            "failures": [s.as_dict() for s in self.failures],
        }

    def markdown(self) -> str:
        if self.notice is None:
            when = self.last.received_at.date().isoformat() if self.last else "never"
            return (
                f"**Intake is not quiet** as of {self.as_of.isoformat()}: the last submission was "
                f"received on {when}. Nothing was sent."
            )
        sent = "\n".join(
            f"- `{s.channel}`: " + ("sent" if s.ok else f"**FAILED** ({s.error})")
            for s in self.sent
        )
        return f"```text\n{self.notice.title}\n\n{self.notice.body}\n```\n\n{sent}"


def quiet_notice(
    initiative: Initiative, last: LastSubmission | None, *, quiet_days: int, today: date
) -> Notice | None:
    """The data engineers' notice when nothing at all has arrived for ``quiet_days`` days, or
    None when a submission was received within them (pure)."""
    name = initiative.info.name.en
    if last is not None and (today - last.received_at.date()).days < quiet_days:
        return None
    if last is None:
        title = "ci-pipeline: no submission has ever been received"
        since = "No submission has ever been received (the last one: never)."
    else:
        days = (today - last.received_at.date()).days
        partner = initiative.partners.get(last.partner_id)
        who = partner.name if partner else last.partner_id
        title = f"ci-pipeline: no submission received for {days} days"
        since = (
            f"The last submission was received on {last.received_at.date().isoformat()}, "
            f"{days} days ago: {who}'s file for {last.period} ({last.status})."
        )
    body = (
        f"No partner file at all has reached {name} in the last {quiet_days} days "
        f"(as of {today.isoformat()}). {since}\n\n"
        "Partners may simply be between deadlines, but please check that intake still works: "
        "the inbox watcher and the intake API are running, files dropped into "
        "inbox/<partner>/<period>/ are picked up, partners' sync jobs still deliver, and recent "
        "ingest-submission runs in Prefect did not fail."
    )
    return Notice(title, body)


def notify_quiet(
    initiative: Initiative,
    last: LastSubmission | None,
    *,
    settings: Settings,
    today: date,
    quiet_days: int | None = None,
    sender: Sender = apprise_sender,
) -> QuietResult:
    """Tell the data engineers intake is quiet — unless ``last`` was received within the quiet
    window of ``today`` (``quiet_days``, default ``settings.quiet_days``): then nothing is
    sent."""
    days = settings.quiet_days if quiet_days is None else quiet_days
    if days < 1:
        raise PipelineError(f"the quiet window is at least 1 day, not {days}")
    notice = quiet_notice(initiative, last, quiet_days=days, today=today)
    if notice is None:
        return QuietResult(today, False, last, None)
    sent = deliver_notice(alert.routing(settings).engineers, notice, sender)
    return QuietResult(today, True, last, notice, sent)


def quiet_intake(
    initiative: Initiative,
    *,
    engine: Engine,
    settings: Settings,
    today: date,
    quiet_days: int | None = None,
    sender: Sender = apprise_sender,
) -> QuietResult:
    """The quiet-intake notice to the data engineers, after checking the database: nothing is
    sent when a submission was in fact received in the last ``quiet_days`` days (default
    ``settings.quiet_days``)."""
    last = last_submission(initiative, engine=engine)
    return notify_quiet(
        initiative, last, settings=settings, today=today, quiet_days=quiet_days, sender=sender
    )
