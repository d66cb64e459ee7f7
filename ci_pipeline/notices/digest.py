"""The backbone team's weekly digest: submissions received, open and resolved alerts, late
partners and the cluster headline of the indicators updated in the window.

:func:`digest` reads the frames and :func:`compose_digest` writes the text from them (pure);
:func:`send_digest` delivers it to the backbone team's channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import polars as pl
from sqlalchemy import Engine

from ci_pipeline import aggregate, alert, detect, store
from ci_pipeline.alert import Sender, apprise_sender
from ci_pipeline.config import Settings
from ci_pipeline.detect import KIND_LABELS
from ci_pipeline.errors import PipelineError
from ci_pipeline.model import frames
from ci_pipeline.model.initiative import GeoLevel, Initiative
from ci_pipeline.model.periods import period_start
from ci_pipeline.notices.common import Notice, Sent, deliver_notice, late_by_partner
from ci_pipeline.notices.completeness import late_partners
from ci_pipeline.store import AlertStatus

TOP_ALERTS = 5  # alert sentences a digest quotes
TOP_HEADLINES = 25  # headline lines a digest lists before "… and N more"


@dataclass(frozen=True)
class Digest(Notice):
    """The weekly digest for the backbone team."""


def _utc_day(day: date) -> datetime:
    """Midnight UTC at the start of ``day`` (timestamps are stored, and compared, in UTC)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def digest_window(today: date, days: int) -> tuple[datetime, datetime]:
    """[start, end) of the ``days`` calendar days ending with ``today``, in UTC."""
    return _utc_day(today - timedelta(days=days - 1)), _utc_day(today + timedelta(days=1))


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
    report_url: str | None = None,
) -> Digest:
    """The digest's text from its frames (pure): see :func:`digest`. ``submissions`` is
    :data:`store.RECEIVED_SCHEMA`, ``alerts`` :data:`store.ALERTS_SINCE_SCHEMA`, ``late``
    :data:`~ci_pipeline.notices.completeness.LATE_SCHEMA`."""
    first = today - timedelta(days=days - 1)
    start = _utc_day(first)
    span = f"{first.isoformat()} to {today.isoformat()}"
    name = initiative.info.name.en
    names = {p.id: p.name for p in initiative.partners.values()}
    sections = [_received(submissions, names), _alerts(alerts, start), _late(late, today)]
    sections.append(_headline(headline, initiative))
    if report_url:  # the report card: every measure's trend, its path to target, the alerts
        sections.append(
            f"The report card: {report_url}en/summary.html (one page) and {report_url} "
            f"(every measure, in English; עברית: {report_url}he/, العربية: {report_url}ar/)."
        )
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


def digest(
    initiative: Initiative,
    *,
    engine: Engine,
    today: date,
    days: int = 7,
    report_url: str | None = None,
) -> Digest:
    """The weekly digest for the backbone team, for the ``days`` days ending with ``today``:
    submissions received (accepted / rejected / duplicate, by partner), open alerts by kind
    with the top few sentences, alerts resolved, late partners, and the cluster headline of
    the indicators updated."""
    if days < 1:
        raise PipelineError(f"a digest covers at least 1 day, not {days}")
    ini = initiative.info.id
    start, end = digest_window(today, days)
    updated = store.updated_slices(ini, start, end, engine=engine)
    indicators = (
        store.read_indicators(ini, engine=engine)
        if not updated.is_empty()
        else pl.DataFrame(schema=frames.STORED_INDICATOR_SCHEMA)
    )
    return compose_digest(
        initiative,
        today=today,
        days=days,
        submissions=store.submissions_between(ini, start, end, engine=engine),
        alerts=store.alerts_since(ini, start, engine=engine),
        late=late_partners(initiative, engine=engine, today=today),
        headline=cluster_headline(indicators, updated, initiative),
        report_url=report_url,
    )


def send_digest(
    digest: Digest, *, settings: Settings, sender: Sender = apprise_sender
) -> list[Sent]:
    """Deliver the digest to the backbone team's channels."""
    return deliver_notice(alert.routing(settings).backbone, digest, sender)
