"""The daily completeness check: who is late with their data, a polite reminder to each late
partner, and a summary to the backbone team.

- :func:`late_partners` — which expected partners have not reported a measure's overdue
  periods, by detect's own rules (:func:`ci_pipeline.detect.due_date`,
  :func:`ci_pipeline.detect.missing_data`). For each measure the periods checked run from the
  one the indicator run judges (:func:`ci_pipeline.detect.judged_periods`: the latest with
  data, where the missing-data alerts are raised) up to the latest whose due date has passed —
  so a late partner is reminded of what the backbone was alerted to, and a period nobody has
  sent yet is not missed because no data for it exists.
- :func:`completeness` — one polite reminder per late partner, to its contact, listing every
  overdue measure and period and how to send the file; one summary to the backbone team (none
  when nobody is late).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import alert, detect, store
from ci_pipeline.alert import Sender, apprise_sender, file_channel
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative, Measure, Partner
from ci_pipeline.model.periods import Period, period_containing, period_start, shift
from ci_pipeline.notices.common import Notice, Sent, deliver_notice, late_by_partner

#: One row per late (partner, measure, period): what :func:`late_partners` returns.
LATE_SCHEMA: dict[str, Any] = {
    "partner_id": pl.Utf8,
    "partner_name": pl.Utf8,
    "contact_name": pl.Utf8,
    "contact_email": pl.Utf8,
    "measure_id": pl.Utf8,
    "measure_title": pl.Utf8,
    "period": pl.Utf8,
    "due_date": pl.Date,
    "days_overdue": pl.Int64,
    "message": pl.Utf8,  # detect's sentence for the backbone
}


# --- who is late --------------------------------------------------------------------------------


def latest_due_period(measure: Measure, today: date) -> Period:
    """The latest period of the measure whose data was due before ``today`` (detect's due date:
    the period's last day plus the measure's ``deadline_days``)."""
    p = period_containing(today.year * 12 + today.month - 1, measure.periodicity)
    while today <= detect.due_date(measure, p):
        p = shift(p, -1)
    return p


def checked_periods(
    initiative: Initiative, reported: pl.DataFrame, today: date
) -> dict[str, list[Period]]:
    """For each measure, the periods a completeness check looks at, oldest first: from the
    period the indicator run judges (the latest with data) up to the latest now overdue.

    The judged period keeps reminders in step with the missing-data alerts; the latest overdue
    one catches a period that nobody has reported yet (there is no data to judge it by).
    """
    judged = detect.judged_periods(reported, initiative)
    out: dict[str, list[Period]] = {}
    for m in initiative.measures.values():
        last = latest_due_period(m, today)
        p = min(judged.get(m.id, last), last)
        out[m.id] = []
        while p <= last:
            out[m.id].append(p)
            p = shift(p, 1)
    return out


def _partners_frame(initiative: Initiative) -> pl.DataFrame:
    partners = list(initiative.partners.values())
    return pl.DataFrame(
        {
            "partner_id": [p.id for p in partners],
            "partner_name": [p.name for p in partners],
            "contact_name": [p.contact.name for p in partners],
            "contact_email": [p.contact.email for p in partners],
        },
        schema={
            k: pl.Utf8 for k in ("partner_id", "partner_name", "contact_name", "contact_email")
        },
    )


def _measures_frame(initiative: Initiative) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "measure_id": list(initiative.measures),
            "measure_title": [m.title for m in initiative.measures.values()],
        },
        schema={"measure_id": pl.Utf8, "measure_title": pl.Utf8},
    )


def find_late(initiative: Initiative, reported: pl.DataFrame, today: date) -> pl.DataFrame:
    """Late (partner, measure, period) rows from what counts (``reported``: partner_id,
    measure_id, period), as of ``today``. Pure: :func:`late_partners` reads ``reported``."""
    periods = checked_periods(initiative, reported, today)
    depth = max((len(v) for v in periods.values()), default=0)
    missing = [
        detect.missing_data(
            reported,
            initiative,
            {m: ps[k] for m, ps in periods.items() if k < len(ps)},
            today,
        )
        for k in range(depth)
    ]
    if not missing:
        return pl.DataFrame(schema=LATE_SCHEMA)
    found = pl.concat(missing).select(
        pl.col("subject").alias("partner_id"),
        "measure_id",
        "period",
        pl.col("reference_period").str.to_date().alias("due_date"),  # detect: the due date
        pl.col("statistic").cast(pl.Int64).alias("days_overdue"),  # detect: days past it
        "message",
    )
    return (
        found.join(_partners_frame(initiative), on="partner_id", how="left")
        .join(_measures_frame(initiative), on="measure_id", how="left")
        .unique(["partner_id", "measure_id", "period"])
        .sort("partner_id", "measure_id", period_start(pl.col("period")))
        .select(list(LATE_SCHEMA))
    )


def late_partners(initiative: Initiative, *, engine: Engine, today: date) -> pl.DataFrame:
    """Expected partners that have not reported a measure's overdue periods, as of ``today``.

    One row per (partner, measure, period) with the partner's name, its contact, the measure,
    the period, the due date and the days overdue (see :data:`LATE_SCHEMA`).
    """
    reported = store.reported_cells(initiative.info.id, engine=engine)
    return find_late(initiative, reported, today)


def late_markdown(late: pl.DataFrame) -> str:
    """A markdown table of late partners, for an operator's artifact."""
    if late.is_empty():
        return "No partner is late."
    rows = late.select(
        pl.format(
            "| {} | {} ({}) | {} | {} | {} | {} |",
            "partner_name",
            "contact_name",
            "contact_email",
            "measure_id",
            "period",
            "due_date",
            "days_overdue",
        )
    ).to_series()
    header = (
        "| partner | contact | measure | period | due | days overdue |\n|---|---|---|---|---|---|"
    )
    return "\n".join([header, *rows.to_list()])


# --- the completeness check ---------------------------------------------------------------------


def reminder_channel(settings: Settings, partner: Partner) -> str:
    """Where a partner's reminder goes: ``reminder_url`` with the contact's address and the
    partner filled in, or the local reminders file."""
    if not settings.reminder_url:
        return file_channel(settings.partner_reminders_file)
    # Percent-encoded (a ``+`` in an address would read as a space in a query string).
    email = quote(partner.contact.email, safe="@.")
    return settings.reminder_url.format(email=email, partner=partner.id)


def reminder(partner: dict[str, Any], initiative: Initiative) -> Notice:
    """The reminder to one late partner's contact: what is overdue, what to send, and where.

    ``partner`` is a row of :func:`late_by_partner`.
    """
    name = initiative.info.name.en
    periods: list[str] = partner["periods"]
    # Each period's folder and upload, or the pattern with an example when there are many.
    shown = periods if len(periods) <= 3 else ["<period>"]
    inbox = "\n".join(f"      inbox/{partner['partner_id']}/{p}/" for p in shown)
    api = "\n".join(
        f"      POST /v1/submissions?period={p}&filename=<your file name>" for p in shown
    )
    if len(periods) > 3:
        example = f"      (<period> as listed above, e.g. {periods[0]})"
        inbox, api = f"{inbox}\n{example}", f"{api}\n{example}"
    span = ", ".join(periods) if len(periods) <= 3 else f"{periods[0]} to {periods[-1]}"
    title = f"Reminder: {partner['partner_name']}'s data for {span} — {name}"
    body = (
        f"Dear {partner['contact_name']},\n\n"
        f"We hope all is well. This is a friendly reminder from the backbone team of {name}: "
        f"according to our records, the following data from {partner['partner_name']} has not "
        "reached us yet.\n\n"
        + "\n".join(partner["item"])
        + "\n\nWhat to send: one file per period (CSV, Excel or Parquet) with a row per measure, "
        "locality and period — measure_id, geo_code, period and the values — as in your usual "
        "submissions.\n\n"
        "Where to send it, whichever suits you:\n"
        "  • put the file in your inbox folder:\n"
        f"{inbox}\n"
        "  • or upload it to the intake API — the file as the request body, with your partner "
        "token (Authorization: Bearer <your token>):\n"
        f"{api}\n\n"
        "If you have already sent it, or something prevents you from reporting it this time, "
        "please reply and let us know — we are glad to help. Thank you: your figures are what "
        "let every partner see how the initiative is doing.\n\n"
        f"With thanks,\nThe backbone team, {name}"
    )
    return Notice(title, body)


def backbone_summary(
    late: pl.DataFrame, initiative: Initiative, *, today: date, reminders: list[Sent]
) -> Notice:
    """The backbone team's notice: who is late for what, and whether each reminder went out."""
    failed = {s.partner_id for s in reminders if not s.ok}
    groups = late_by_partner(late)
    lines = [
        f"• {g['partner_name']} (contact: {g['contact_name']} <{g['contact_email']}>): "
        + "; ".join(g["summary"])
        + (" — the reminder could NOT be sent" if g["partner_id"] in failed else " — reminded")
        for g in groups.iter_rows(named=True)
    ]
    title = (
        f"ci-pipeline: {groups.height} partner(s) late with their data (as of {today.isoformat()})"
    )
    body = (
        f"{groups.height} partner(s) of {initiative.info.name.en} have not sent data that is "
        f"past its due date, as of {today.isoformat()}:\n\n"
        + "\n".join(lines)
        + "\n\nEach was sent a reminder listing what is overdue and how to send it."
    )
    return Notice(title, body)


@dataclass(frozen=True)
class CompletenessResult:
    """What a completeness check found and sent."""

    as_of: date
    late: pl.DataFrame  # LATE_SCHEMA
    reminders: list[Sent]  # one per late partner
    backbone: list[Sent]  # one per backbone channel; empty when nobody is late
    notice: Notice | None  # the backbone's notice; None when nobody is late
    note: str  # a sentence for the operator

    @property
    def late_partners(self) -> int:
        return int(self.late["partner_id"].n_unique())

    @property
    def reminders_sent(self) -> int:
        return sum(s.ok for s in self.reminders)

    @property
    def failures(self) -> list[Sent]:
        return [s for s in [*self.reminders, *self.backbone] if not s.ok]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (a flow's result)."""
        return {
            "as_of": self.as_of.isoformat(),
            "late_partners": self.late_partners,
            "late": [
                {**row, "due_date": row["due_date"].isoformat()}
                for row in self.late.drop("message").to_dicts()
            ],
            "reminders_sent": self.reminders_sent,
            "reminders": [s.as_dict() for s in self.reminders],
            "backbone_notified": bool(self.backbone) and all(s.ok for s in self.backbone),
            "backbone": [s.as_dict() for s in self.backbone],
            "failures": [s.as_dict() for s in self.failures],
            "note": self.note,
        }

    def markdown(self) -> str:
        """The operator's view: the late partners' table and what was sent."""
        sent = "\n".join(
            f"- {s.partner_id or 'backbone'} → `{s.channel}`: "
            + ("sent" if s.ok else f"**FAILED** ({s.error})")
            for s in [*self.reminders, *self.backbone]
        )
        notice = (
            f"\n\n```text\n{self.notice.title}\n\n{self.notice.body}\n```" if self.notice else ""
        )
        return (
            f"**Completeness as of {self.as_of.isoformat()}** — {self.note}\n\n"
            f"{late_markdown(self.late)}" + (f"\n\n{sent}" if sent else "") + notice
        )


def notify_late(
    late: pl.DataFrame,
    initiative: Initiative,
    *,
    settings: Settings,
    today: date,
    sender: Sender = apprise_sender,
) -> CompletenessResult:
    """Send each late partner its reminder and the backbone team its summary (if anyone is
    late). ``late`` is :func:`late_partners`' frame."""
    reminders: list[Sent] = []
    for g in late_by_partner(late).iter_rows(named=True):
        partner = initiative.partners[g["partner_id"]]
        notice = reminder(g, initiative)
        try:
            channel = reminder_channel(settings, partner)
        except (KeyError, IndexError, ValueError) as exc:  # a reminder_url it cannot fill
            reminders.append(
                Sent("reminder_url", False, f"reminder_url template: {exc!r}", partner.id)
            )
            continue
        reminders += deliver_notice([channel], notice, sender, partner_id=partner.id)
    if late.is_empty():
        return CompletenessResult(
            today, late, [], [], None, "nobody is late: nothing was sent, not even to the backbone"
        )
    summary = backbone_summary(late, initiative, today=today, reminders=reminders)
    backbone = deliver_notice(alert.routing(settings).backbone, summary, sender)
    partners = len(reminders)
    note = (
        f"{partners} partner(s) late; {sum(s.ok for s in reminders)} of {partners} reminder(s) "
        f"sent; the backbone notified on {sum(s.ok for s in backbone)} of {len(backbone)} channel(s)"
    )
    return CompletenessResult(today, late, reminders, backbone, summary, note)


def completeness(
    initiative: Initiative,
    *,
    engine: Engine,
    settings: Settings,
    today: date,
    sender: Sender = apprise_sender,
) -> CompletenessResult:
    """The daily completeness check: remind every late partner, tell the backbone who is late."""
    late = late_partners(initiative, engine=engine, today=today)
    return notify_late(late, initiative, settings=settings, today=today, sender=sender)
