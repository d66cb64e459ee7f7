"""What every command shares: the consoles, the options spelled once, turning the pipeline's
own errors into messages and exit codes (here and nowhere else), and the output helpers.
"""

from __future__ import annotations

import difflib
import errno
import functools
import json
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Annotated, Any, NamedTuple, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.config import Settings, ensure_home, get_settings
from ci_pipeline.errors import (
    DefinitionError,
    InvalidPeriod,
    PipelineError,
    SubmissionRefused,
)
from ci_pipeline.model.initiative import Initiative, normalise_name
from ci_pipeline.model.load import load_initiative

out = Console()


err = Console(stderr=True)


def warm_prefect(settings: Settings) -> None:
    """Run this command's flows on a warm local Prefect server, not a temporary one of their
    own (20-36 s each time): ``PREFECT_API_URL`` when set (``serve``'s server is found before
    any command runs), else the command line's daemon (:mod:`ci_pipeline.serve.daemon`),
    started now by the first command that needs it. With the daemon off, nothing changes."""
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:  # set, or found (serve's), or a test harness's
        return
    from ci_pipeline.serve import auth, daemon, local_server

    def starting() -> None:
        minutes = settings.prefect_daemon_idle_seconds / 60
        err.print(
            f"Starting a local Prefect server for this and later commands (once; it stops "
            f"after {minutes:g} idle minutes). UI: {settings.local_prefect_api_url.removesuffix('/api')}"
        )

    url = daemon.ensure(settings, on_start=starting)
    if url:
        local_server.use_api(url, auth.client_auth_string(settings, url))


F = TypeVar("F", bound=Callable[..., Any])


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


# Filters shared by the listings, declared once so every command spells them the same way.
MeasureFilter = Annotated[str | None, typer.Option("--measure", "-m", help="Only this measure.")]


GeoFilter = Annotated[str | None, typer.Option("--geo", "-g", help="Only this geography code.")]


PartnerFilter = Annotated[str | None, typer.Option("--partner", "-p", help="Only this partner.")]


PeriodFilter = Annotated[
    str | None,
    typer.Option("--period", help="Only this period (canonical: 2025-09, 2025-Q3, 2025)."),
]


# Exit codes (README.md's *Commands*, and the epilogue of `ci-pipeline --help`).
#: The pipeline or this machine failed: definitions, a port, the data folder, a run.
EXIT_ERROR = 1
#: The command line was wrong: an unknown option value, measure, partner, period ... (click's
#: own usage errors exit 2 as well).
EXIT_USAGE = 2
#: The file was submitted and rejected (its report says why), or refused unread.
EXIT_REJECTED = 3


EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 an error of the pipeline or of this machine (definitions, a busy "
    "port, the data folder); 2 a usage error (an unknown option, measure, partner or period); "
    "3 a submitted file rejected or refused. --verbose shows the traceback of an error."
)


class UsageProblem(PipelineError):
    """The command line named something that is not there (a measure, a partner, a status)
    or wrote a value in a shape the option does not take: exit 2, like click's own."""


#: The file errors a command meets in the data folder or a file it was told to write (a
#: folder that is not there, not a folder, not writable): a sentence naming the file.
FILE_ERRORS = (
    FileNotFoundError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
)
#: And the disk's own: read-only, full, over quota.
DISK_ERRNOS = (errno.EROFS, errno.ENOSPC, errno.EDQUOT)


#: The global ``--verbose``: set by the app's callback for one invocation (False outside it).
VERBOSE: ContextVar[bool] = ContextVar("verbose", default=False)


def verbose() -> bool:
    """Whether this invocation was given ``--verbose``."""
    return VERBOSE.get()


def handle_errors(fn: F) -> F:
    """Turn the pipeline's own errors, and the operator's file and port mistakes, into one red
    line and an exit code; with ``--verbose`` they keep their traceback (usage errors excepted:
    they are about the command line, not the code)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UsageProblem as exc:
            fail(str(exc), EXIT_USAGE)
        except DefinitionError as exc:
            if verbose():
                raise
            err.print(
                f"[red]The initiative's definitions have {len(exc.problems)} problem(s):[/red]"
            )
            for problem in exc.problems:
                err.print(f"  • {problem}", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
        except SubmissionRefused as exc:
            if verbose():
                raise
            fail(str(exc), EXIT_REJECTED)
        except PipelineError as exc:
            if verbose():
                raise
            fail(str(exc), EXIT_ERROR)
        except FILE_ERRORS as exc:
            if verbose():
                raise
            fail(file_error(exc), EXIT_ERROR)
        except OSError as exc:
            if verbose() or exc.errno not in DISK_ERRNOS:
                raise
            fail(file_error(exc), EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int) -> NoReturn:
    """Print ``error: message`` on stderr (the message as written: no markup) and exit
    with ``code``."""
    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


def file_error(exc: OSError) -> str:
    """A file error as one sentence: what the system said, of which file, and how to learn
    more."""
    if isinstance(exc, FileExistsError) and exc.filename:  # mkdir(exist_ok=True) on a file
        said = f"{exc.filename} is a file, where a folder is needed"
    else:
        said = f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}"
    return f"{said} (--verbose shows where it happened)"


# --- the filters, checked against the initiative's definitions ----------------------------------


class Filters(NamedTuple):
    """A command's filters as the store spells them: known ids, the canonical period."""

    measure: str | None
    geo: str | None
    partner: str | None
    period: str | None


def check_filters(
    initiative: Initiative | None = None,
    *,
    measure: str | None = None,
    geo: str | None = None,
    partner: str | None = None,
    period: str | None = None,
) -> Filters:
    """The filters, each checked before anything is queried or started: an unknown measure,
    geography or partner is a :class:`UsageProblem` that suggests the nearest ids, a period
    not in a canonical shape one that names them. A geography may be given by any of its
    names; a period as parse_period reads it (``2025q3``). The initiative is loaded only when
    an id must be checked against it."""
    if initiative is None and any(v is not None for v in (measure, geo, partner)):
        _, initiative = load_context()
    if measure is not None:
        assert initiative is not None
        known_id(initiative, "measure", measure, initiative.measures, see="ci-pipeline measures")
    if geo is not None:
        assert initiative is not None
        geo = initiative.geo_aliases().get(normalise_name(geo)) or known_id(
            initiative, "geography", geo, initiative.geographies
        )
    if partner is not None:
        assert initiative is not None
        known_id(initiative, "partner", partner, initiative.partners, see="ci-pipeline partners")
    return Filters(measure, geo, partner, None if period is None else canonical_period(period))


def canonical_period(text: str) -> str:
    """A period's canonical label (``2025-Q3`` for ``2025q3``), or a :class:`UsageProblem`
    that names the canonical forms."""
    from ci_pipeline.model.periods import parse_period

    try:
        return parse_period(text).label
    except InvalidPeriod as exc:
        raise UsageProblem(str(exc)) from None


def known_id(
    initiative: Initiative, kind: str, value: str, valid: Iterable[str], *, see: str = ""
) -> str:
    """``value`` if it is one of ``valid``; else a :class:`UsageProblem` with the closest ids
    (or, when none is close, the first few) and the command that lists them all."""
    choices = sorted(valid)
    if value in choices:
        return value
    close = difflib.get_close_matches(value, choices, n=3)
    if close:
        hint = "did you mean " + " or ".join(f'"{c}"' for c in close) + "?"
    else:
        more = f", … ({len(choices)} in all)" if len(choices) > MAX_LISTED else ""
        hint = f"known: {', '.join(choices[:MAX_LISTED])}{more}"
    if see:
        hint += f" (`{see}` lists them)"
    raise UsageProblem(f'no {kind} "{value}" in {initiative.info.id}; {hint}')


#: How many valid ids an error lists when none is close to what was typed.
MAX_LISTED = 8


def known_choice(option: str, value: str | None, choices: Iterable[str]) -> str | None:
    """An option's value if it is one of ``choices`` (or None), else a :class:`UsageProblem`
    naming them all."""
    listed = list(choices)
    if value is None or value in listed:
        return value
    close = difflib.get_close_matches(value, listed, n=1)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    raise UsageProblem(f'{option} takes {", ".join(listed)}, not "{value}"{hint}')


def load_context() -> tuple[Settings, Initiative]:
    """The settings from the environment, and the initiative they name."""
    settings = get_settings()
    return settings, load_initiative(settings.initiative)


def open_engine(settings: Settings) -> Engine:
    """The process's engine on the settings' database (schema brought up to date). The
    default database lives in the data folder: a folder that cannot be used is told first."""
    if not settings.database_url:
        ensure_home(settings)
    return store.engine_for(settings.resolved_database_url)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def make_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    return table


def print_process(result: dict[str, Any]) -> None:
    aggregated, detected, delivered = result["aggregated"], result["detected"], result["delivered"]
    out.print(
        f"Indicators: {len(aggregated['slices'])} slice(s) recomputed, {aggregated['rows']} cells"
    )
    from ci_pipeline.aggregate.privacy import Unaudited, privacy_notes  # scipy: not for --help

    unaudited = [
        Unaudited(str(m), str(p), int(n), int(b)) for m, p, n, b in aggregated.get("unaudited", [])
    ]
    for line in privacy_notes(unaudited):
        out.print(f"[yellow]{line}[/yellow]", highlight=False)
    gate = (
        "[green]passed[/green]"
        if detected["gate_passed"]
        else f"[red]failed[/red] ({len(detected['gate_failures'])} problem(s); alerts of those measures held)"
    )
    out.print(f"Quality gate: {gate}. Data Docs: {detected['data_docs']}", soft_wrap=True)
    for measure_id, why in sorted(detected.get("gate_excused", {}).items()):
        out.print(f"  {measure_id}: excused from the presence and coverage checks ({why})")
    if result.get("report"):
        out.print(
            f"Report card (English, Hebrew, Arabic): file://{result['report']}",
            soft_wrap=True,
            highlight=False,
        )
    out.print(
        f"Alerts: {detected['findings']} finding(s), {len(detected['new_alerts'])} new, {len(detected['resolved_alerts'])} resolved"
    )
    for d in delivered:
        status = (
            "[green]sent[/green]" if d["ok"] else f"[red]failed[/red]: {d['error']} (will retry)"
        )
        out.print(f"  {d['channel']}: {d['alerts']} alert(s) {status}", soft_wrap=True)
    if not delivered:
        out.print("  nothing new to deliver")


def indicator_rows(frame: Any, initiative: Initiative) -> list[dict[str, Any]]:
    from ci_pipeline.aggregate.privacy import mask
    from ci_pipeline.detect import format_value

    rows = mask(frame).to_dicts()
    for r in rows:
        m = initiative.measures.get(r["measure_id"])
        r["shown"] = (
            "suppressed" if r["suppressed"] else (format_value(m, r["value"]) if m else r["value"])
        )
        r["coverage"] = f"{r['partners_reported']}/{r['partners_expected']}"
    return rows
