"""Periodic notices: the daily completeness check, the weekly digest, the quiet-intake notice.

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
- :func:`digest` / :func:`send_digest` — the backbone team's weekly digest: submissions
  received, open and resolved alerts, late partners and the cluster headline of the indicators
  updated in the window.
- :func:`quiet_intake` — tell the data engineers that no submission at all has arrived for
  ``quiet_days`` days. A Prefect automation triggers it; it checks the database itself and
  sends nothing when a submission did arrive.

Reading (``engine``) and sending (``sender``) are keyword-only edges; composing each text is a
pure function of polars frames. A channel that fails is reported and does not stop the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import polars as pl
from sqlalchemy import Engine, func, or_, select
from sqlmodel import col

from ci_pipeline import aggregate, alert, detect, store
from ci_pipeline.alert import Sender, apprise_sender, file_channel, redact_channel
from ci_pipeline.config import Settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import GeoLevel, Initiative, Measure, Partner
from ci_pipeline.model.periods import Period, period_containing, period_start, shift
from ci_pipeline.store import Alert, AlertStatus, IndicatorValue, Submission

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
SUBMISSION_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "partner_id": pl.Utf8,
    "period": pl.Utf8,
    "status": pl.Utf8,
    "received_at": pl.Datetime("us", "UTC"),
}
ALERT_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "kind": pl.Utf8,
    "status": pl.Utf8,
    "verified": pl.Boolean,
    "message": pl.Utf8,
    "resolved_at": pl.Datetime("us", "UTC"),
}
UPDATED_SCHEMA: dict[str, Any] = {"measure_id": pl.Utf8, "period": pl.Utf8}

#: Alert kinds as the backbone reads them, most severe first (the order a digest lists them).
KIND_LABELS = {
    "quality": "quality gate",
    "step": "regression",
    "seasonal_step": "regression (vs a year before)",
    "drift": "sustained drift",
    "off_track": "off track",
    "missing": "missing data",
}
TOP_ALERTS = 5  # alert sentences a digest quotes
TOP_HEADLINES = 25  # headline lines a digest lists before "… and N more"


@dataclass(frozen=True)
class Notice:
    """One message: a title and a plain-text body, readable in an email or a chat."""

    title: str
    body: str


@dataclass(frozen=True)
class Digest(Notice):
    """The weekly digest for the backbone team."""


@dataclass(frozen=True)
class Sent:
    """The outcome of one message to one channel; the channel redacted, safe to show."""

    channel: str
    ok: bool
    error: str | None = None
    partner_id: str | None = None  # the partner a reminder was for

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "ok": self.ok,
            "error": self.error,
            "partner_id": self.partner_id,
        }


def _deliver(
    channels: list[str], notice: Notice, sender: Sender, *, partner_id: str | None = None
) -> list[Sent]:
    """Send one notice to each channel; a failing channel is recorded and the others still go."""
    out = []
    for channel in dict.fromkeys(channels):
        try:
            ok, error = sender(channel, notice.title, notice.body), None
        except Exception as exc:  # a channel's failure must not stop the others
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if not ok and error is None:
            error = "the channel did not accept the message"
        out.append(Sent(redact_channel(channel), ok, error, partner_id))
    return out


def _days(days: pl.Expr) -> pl.Expr:
    """``1 day`` / ``12 days``."""
    return pl.when(days == 1).then(pl.lit("1 day")).otherwise(pl.format("{} days", days))


def _utc_day(day: date) -> datetime:
    """Midnight UTC at the start of ``day`` (timestamps are stored, and compared, in UTC)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


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


def late_by_partner(late: pl.DataFrame) -> pl.DataFrame:
    """One row per late partner (:func:`late_partners`' frame grouped), by name: its contact,
    its overdue items as short text lines (``item``: one per measure and period, for the
    partner; ``summary``: one per measure, for the backbone), the periods it owes (oldest
    first) and its longest delay."""
    item = pl.format(
        "• {}: {} ({}) — due {}, {} ago",
        "period",
        "measure_title",
        "measure_id",
        "due_date",
        _days(pl.col("days_overdue")),
    )
    ordered = late.with_columns(start=period_start(pl.col("period")))
    items = (
        ordered.with_columns(item=item)
        .sort("partner_id", "start", "measure_id")
        .group_by(
            "partner_id", "partner_name", "contact_name", "contact_email", maintain_order=True
        )
        .agg(
            pl.col("item"),
            pl.col("period").unique(maintain_order=True).alias("periods"),
            pl.col("days_overdue").max().alias("most_overdue"),
        )
    )
    # Per measure: "Title 2025-12 (59 days overdue)", or, for several periods, the first ones
    # (or the first and the last) with how many and the oldest delay.
    periods, oldest = pl.col("period"), _days(pl.col("oldest"))
    n = periods.list.len()
    listed = (
        pl.when(n <= 3)
        .then(periods.list.join(", "))
        .otherwise(pl.format("{} … {}", periods.list.first(), periods.list.last()))
    )
    summaries = (
        ordered.sort("partner_id", "measure_id", "start")
        .group_by("partner_id", "measure_id", maintain_order=True)
        .agg(
            pl.col("measure_title").first(),
            periods,
            pl.col("days_overdue").max().alias("oldest"),
        )
        .select(
            "partner_id",
            pl.when(n == 1)
            .then(pl.format("{} {} ({} overdue)", "measure_title", listed, oldest))
            .otherwise(
                pl.format(
                    "{} {} ({} periods; the oldest {} overdue)", "measure_title", listed, n, oldest
                )
            )
            .alias("summary"),
        )
        .group_by("partner_id", maintain_order=True)
        .agg("summary")
    )
    return items.join(summaries, on="partner_id", how="left").sort("partner_name")


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
        reminders += _deliver([channel], notice, sender, partner_id=partner.id)
    if late.is_empty():
        return CompletenessResult(
            today, late, [], [], None, "nobody is late: nothing was sent, not even to the backbone"
        )
    summary = backbone_summary(late, initiative, today=today, reminders=reminders)
    backbone = _deliver(alert.routing(settings).backbone, summary, sender)
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


# --- the weekly digest --------------------------------------------------------------------------


def _window(today: date, days: int) -> tuple[datetime, datetime]:
    """[start, end) of the ``days`` calendar days ending with ``today``, in UTC."""
    return _utc_day(today - timedelta(days=days - 1)), _utc_day(today + timedelta(days=1))


def submissions_between(
    initiative_id: str, start: datetime, end: datetime, *, engine: Engine
) -> pl.DataFrame:
    """Submissions received in [start, end), whatever became of them."""
    query = select(
        col(Submission.id),
        col(Submission.partner_id),
        col(Submission.period),
        col(Submission.status),
        col(Submission.received_at),
    ).where(
        col(Submission.initiative_id) == initiative_id,
        col(Submission.received_at) >= start,
        col(Submission.received_at) < end,
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(rows, schema=SUBMISSION_SCHEMA, orient="row")


def alerts_for_digest(initiative_id: str, start: datetime, *, engine: Engine) -> pl.DataFrame:
    """Alerts not resolved, and those resolved since ``start``."""
    query = select(
        col(Alert.id),
        col(Alert.kind),
        col(Alert.status),
        col(Alert.verified),
        col(Alert.message),
        col(Alert.resolved_at),
    ).where(
        col(Alert.initiative_id) == initiative_id,
        or_(col(Alert.status) != AlertStatus.resolved, col(Alert.resolved_at) >= start),
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(rows, schema=ALERT_SCHEMA, orient="row")


def updated_slices(
    initiative_id: str, start: datetime, end: datetime, *, engine: Engine
) -> pl.DataFrame:
    """(measure_id, period) indicator slices computed in [start, end)."""
    query = (
        select(col(IndicatorValue.measure_id), col(IndicatorValue.period))
        .where(
            col(IndicatorValue.initiative_id) == initiative_id,
            col(IndicatorValue.computed_at) >= start,
            col(IndicatorValue.computed_at) < end,
        )
        .group_by(col(IndicatorValue.measure_id), col(IndicatorValue.period))
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pl.DataFrame(rows, schema=UPDATED_SCHEMA, orient="row")


def cluster_headline(
    indicators: pl.DataFrame, updated: pl.DataFrame, initiative: Initiative
) -> pl.DataFrame:
    """The cluster's headline cell of each measure updated, at its latest updated period
    (masked: a suppressed value is blank)."""
    if updated.is_empty():
        return aggregate.headline(indicators.clear(), initiative, {})
    latest = (
        updated.sort(period_start(pl.col("period")))
        .group_by("measure_id")
        .agg(pl.col("period").last())
        .sort("measure_id")
    )
    judged = dict(latest.iter_rows())
    clusters = [g.code for g in initiative.geographies.values() if g.level is GeoLevel.cluster]
    return aggregate.headline(indicators, initiative, judged).filter(
        pl.col("geo_code").is_in(clusters)
    )


def compose_digest(
    initiative: Initiative,
    *,
    today: date,
    days: int,
    submissions: pl.DataFrame,
    alerts: pl.DataFrame,
    late: pl.DataFrame,
    headline: pl.DataFrame,
) -> Digest:
    """The digest's text from its frames (pure): see :func:`digest`."""
    first = today - timedelta(days=days - 1)
    start = _utc_day(first)
    span = f"{first.isoformat()} to {today.isoformat()}"
    name = initiative.info.name.en
    names = {p.id: p.name for p in initiative.partners.values()}
    sections = [_received(submissions, names), _alerts(alerts, start), _late(late, today)]
    sections.append(_headline(headline, initiative))
    week = "Weekly digest" if days == 7 else f"Digest of {days} days"
    return Digest(
        f"ci-pipeline: {week.lower()}, {span}",
        f"{week} of {name}, {span}.\n\n" + "\n\n".join(sections),
    )


def _received(submissions: pl.DataFrame, names: dict[str, str]) -> str:
    if submissions.is_empty():
        return "Submissions received: none."
    counted = submissions.with_columns(
        outcome=pl.col("status").replace({store.Status.superseded: store.Status.accepted}),
        partner=pl.col("partner_id").replace_strict(names, default=pl.col("partner_id")),
    )
    by_outcome = (
        counted.group_by("outcome", "partner")
        .agg(pl.len().alias("files"))
        .sort("outcome", "partner")
        .group_by("outcome", maintain_order=True)
        .agg(
            pl.col("files").sum(),
            pl.format("{} ({})", "partner", "files").str.join(", ").alias("partners"),
        )
    )
    rows = {r["outcome"]: r for r in by_outcome.iter_rows(named=True)}
    superseded = submissions.filter(pl.col("status") == store.Status.superseded).height
    counts = [
        f"{rows[o]['files'] if o in rows else 0} {o}"
        for o in (store.Status.accepted, store.Status.rejected, store.Status.duplicate)
    ]
    if superseded:
        counts[0] += f" ({superseded} since superseded by a revision)"
    lines = [
        f"  {o.capitalize()}: {rows[o]['partners']}"
        for o in (store.Status.accepted, store.Status.rejected, store.Status.duplicate)
        if o in rows
    ]
    return f"Submissions received: {submissions.height} — {', '.join(counts)}.\n" + "\n".join(lines)


def _alerts(alerts: pl.DataFrame, start: datetime) -> str:
    order = {k: i for i, k in enumerate(KIND_LABELS)}
    unresolved = alerts.filter(pl.col("status") != AlertStatus.resolved).with_columns(
        rank=pl.col("kind").replace_strict(order, default=len(order), return_dtype=pl.Int64),
        label=pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")),
    )
    resolved = alerts.filter(
        (pl.col("status") == AlertStatus.resolved) & (pl.col("resolved_at") >= start)
    )
    if unresolved.is_empty():
        text = "Open alerts: none."
    else:
        kinds = (
            unresolved.group_by("rank", "label")
            .agg(pl.len().alias("n"))
            .sort("rank")
            .select(pl.format("{} {}", "n", "label"))
            .to_series()
            .to_list()
        )
        acknowledged = unresolved.filter(pl.col("status") == AlertStatus.acknowledged).height
        held = unresolved.filter(~pl.col("verified")).height
        notes = [f"{acknowledged} acknowledged"] if acknowledged else []
        notes += [f"{held} held by the quality gate"] if held else []
        top = (
            unresolved.sort("rank", pl.col("id"), descending=[False, True])
            .head(TOP_ALERTS)
            .select(pl.format("  • [{}] #{} {}", "label", "id", "message"))
            .to_series()
            .to_list()
        )
        more = unresolved.height - len(top)
        text = (
            f"Open alerts: {unresolved.height} ({', '.join(kinds)})"
            + (f"; {', '.join(notes)}" if notes else "")
            + ".\n"
            + "\n".join(top)
            + (f"\n  … and {more} more (ci-pipeline alerts)" if more > 0 else "")
        )
    if resolved.is_empty():
        return text + "\nAlerts resolved in the period: none."
    lines = resolved.sort("id").select(pl.format("  • #{} {}", "id", "message")).to_series()
    return text + f"\nAlerts resolved in the period: {resolved.height}.\n" + "\n".join(lines)


def _late(late: pl.DataFrame, today: date) -> str:
    if late.is_empty():
        return f"Late partners (as of {today.isoformat()}): none."
    groups = late_by_partner(late)
    lines = [
        f"  • {g['partner_name']}: " + "; ".join(g["summary"]) for g in groups.iter_rows(named=True)
    ]
    return f"Late partners (as of {today.isoformat()}): {groups.height}.\n" + "\n".join(lines)


def _headline(headline: pl.DataFrame, initiative: Initiative) -> str:
    if headline.is_empty():
        return "Indicators updated: none."
    geos = {g.code: g.name.en for g in initiative.geographies.values()}
    lines = []
    for r in headline.head(TOP_HEADLINES).iter_rows(named=True):
        m = initiative.measures[r["measure_id"]]
        value = (
            "suppressed (too few to publish)"
            if r["suppressed"]
            else detect.format_value(m, r["value"])
        )
        lines.append(
            f"  • {m.title}, {geos.get(r['geo_code'], r['geo_code'])}, {r['period']}: {value} "
            f"({r['partners_reported']} of {r['partners_expected']} partners reported)"
        )
    more = headline.height - len(lines)
    return (
        f"Indicators updated: {headline.height} measure(s); the cluster's headline:\n"
        + "\n".join(lines)
        + (f"\n  … and {more} more (ci-pipeline indicators)" if more > 0 else "")
    )


def digest(initiative: Initiative, *, engine: Engine, today: date, days: int = 7) -> Digest:
    """The weekly digest for the backbone team, for the ``days`` days ending with ``today``:
    submissions received (accepted / rejected / duplicate, by partner), open alerts by kind
    with the top few sentences, alerts resolved, late partners, and the cluster headline of
    the indicators updated."""
    if days < 1:
        raise PipelineError(f"a digest covers at least 1 day, not {days}")
    ini = initiative.info.id
    start, end = _window(today, days)
    updated = updated_slices(ini, start, end, engine=engine)
    indicators = (
        store.read_indicators(ini, engine=engine)
        if not updated.is_empty()
        else pl.DataFrame(schema=frames.STORED_INDICATOR_SCHEMA)
    )
    return compose_digest(
        initiative,
        today=today,
        days=days,
        submissions=submissions_between(ini, start, end, engine=engine),
        alerts=alerts_for_digest(ini, start, engine=engine),
        late=late_partners(initiative, engine=engine, today=today),
        headline=cluster_headline(indicators, updated, initiative),
    )


def send_digest(
    digest: Digest, *, settings: Settings, sender: Sender = apprise_sender
) -> list[Sent]:
    """Deliver the digest to the backbone team's channels."""
    return _deliver(alert.routing(settings).backbone, digest, sender)


# --- quiet intake -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastSubmission:
    """The most recent submission received, whatever became of it."""

    received_at: datetime  # UTC
    partner_id: str
    period: str
    status: str


def last_submission(initiative: Initiative, *, engine: Engine) -> LastSubmission | None:
    """The submission received last for this initiative, or None if none ever was."""
    ini = initiative.info.id
    latest = (
        select(func.max(col(Submission.received_at)))
        .where(col(Submission.initiative_id) == ini)
        .scalar_subquery()
    )
    query = (
        select(
            col(Submission.received_at),
            col(Submission.partner_id),
            col(Submission.period),
            col(Submission.status),
        )
        .where(col(Submission.initiative_id) == ini, col(Submission.received_at) == latest)
        .order_by(col(Submission.id).desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    received_at, partner_id, period, status = row
    return LastSubmission(received_at.astimezone(UTC), partner_id, period, status)


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
    sent = _deliver(alert.routing(settings).engineers, notice, sender)
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
