"""Flows for the periodic notices: the completeness check, the weekly digest, quiet intake.

Wiring only: every step calls :mod:`ci_pipeline.notices`. The steps that read the database
retry; the steps that send do not (a retry would repeat the messages that did go out — each
channel's failure is reported in the result instead). Each flow publishes a markdown artifact
with what it found and sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ci_pipeline import notices
from ci_pipeline.flows import names
from ci_pipeline.flows.runtime import RETRYING, context
from ci_pipeline.flows.runtime import passthrough as quote

find_late = task(name="find-late-partners", **RETRYING)(notices.late_partners)
remind = task(name="send-reminders", cache_policy=NO_CACHE)(notices.notify_late)
compose_digest = task(name="compose-digest", **RETRYING)(notices.digest)
send_digest = task(name="send-digest", cache_policy=NO_CACHE)(notices.send_digest)
find_last = task(name="last-submission", **RETRYING)(notices.last_submission)
notify_quiet = task(name="notify-engineers", cache_policy=NO_CACHE)(notices.notify_quiet)


def _named(flow: str) -> Callable[[], str]:
    """The run-name function of ``flow`` (:func:`names.run_name`, with today for ``as_of``)."""
    return lambda: names.run_name(flow, flow_run.parameters, today=date.today()) or flow


_completeness_run_name = _named("check-completeness")
_digest_run_name = _named("weekly-digest")
_quiet_run_name = _named("notify-quiet-intake")


@flow(name="check-completeness", flow_run_name=_completeness_run_name, log_prints=True)
def check_completeness(
    as_of: date | None = None, initiative_dir: str | None = None
) -> dict[str, Any]:
    """Remind every partner late with its data, and tell the backbone team who is late."""
    settings, initiative, engine = context(initiative_dir)
    today = as_of or date.today()
    late = find_late(quote(initiative), engine=quote(engine), today=today)
    result = remind(quote(late), quote(initiative), settings=quote(settings), today=today)
    create_markdown_artifact(
        key="late-partners",
        markdown=result.markdown(),
        description=f"Partners late with their data as of {today.isoformat()}",
    )
    print(result.note)
    return result.as_dict()


@flow(name="weekly-digest", flow_run_name=_digest_run_name, log_prints=True)
def weekly_digest(
    as_of: date | None = None, days: int = 7, initiative_dir: str | None = None
) -> dict[str, Any]:
    """Compose the backbone team's digest of the ``days`` days to ``as_of`` and send it."""
    settings, initiative, engine = context(initiative_dir)
    today = as_of or date.today()
    digest = compose_digest(
        quote(initiative),
        engine=quote(engine),
        today=today,
        days=days,
        report_url=f"{settings.api_base_url}/report/",
    )
    sent = send_digest(quote(digest), settings=quote(settings))
    create_markdown_artifact(
        key="weekly-digest",
        markdown=f"```text\n{digest.title}\n\n{digest.body}\n```",
        description=digest.title,
    )
    for s in sent:
        print(f"{s.channel}: {'sent' if s.ok else 'FAILED: ' + str(s.error)}")
    return {
        "as_of": today.isoformat(),
        "days": days,
        "title": digest.title,
        "body": digest.body,
        "sent": [s.as_dict() for s in sent],
        "failures": [s.as_dict() for s in sent if not s.ok],
    }


@flow(name="notify-quiet-intake", flow_run_name=_quiet_run_name, log_prints=True)
def notify_quiet_intake(
    as_of: date | None = None, days: int | None = None, initiative_dir: str | None = None
) -> dict[str, Any]:
    """Tell the data engineers no submission has arrived for ``days`` days (default: the
    ``quiet_days`` setting; the automation passes its own window) — after checking the
    database: nothing is sent when one did arrive (the automation may be late, or have raced a
    submission)."""
    settings, initiative, engine = context(initiative_dir)
    today = as_of or date.today()
    last = find_last(quote(initiative), engine=quote(engine))
    result = notify_quiet(
        quote(initiative), last, settings=quote(settings), today=today, quiet_days=days
    )
    create_markdown_artifact(
        key="quiet-intake",
        markdown=result.markdown(),
        description=f"Quiet-intake check as of {today.isoformat()}",
    )
    if result.quiet:
        for s in result.sent:
            print(f"intake quiet: {s.channel}: {'sent' if s.ok else 'FAILED: ' + str(s.error)}")
    else:
        print(f"not quiet: a submission was received {result.days_since} day(s) ago; nothing sent")
    return result.as_dict()
