"""What the notices share: the message, the outcome of sending it, sending it to each channel
(a channel that fails is reported and does not stop the others), and the late partners' frame
grouped per partner (the reminders and the digest both list it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ci_pipeline.alert import Sender, redact_channel
from ci_pipeline.model.periods import period_start


@dataclass(frozen=True)
class Notice:
    """One message: a title and a plain-text body, readable in an email or a chat."""

    title: str
    body: str


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


def deliver_notice(
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


def late_by_partner(late: pl.DataFrame) -> pl.DataFrame:
    """One row per late partner (the late partners' frame grouped,
    :data:`~ci_pipeline.notices.completeness.LATE_SCHEMA`), by name: its contact, its overdue
    items as short text lines (``item``: one per measure and period, for the partner;
    ``summary``: one per measure, for the backbone), the periods it owes (oldest first) and its
    longest delay."""
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
