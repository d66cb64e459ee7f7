"""``ci-pipeline tokens``: issue, revoke and list the partners' API tokens.

A sub-app registered by :mod:`ci_pipeline.cli`; it imports only config, store, initiative and
tokens (never the main CLI), so there is no import cycle. Settings, initiative and engine are
built the way the main CLI builds them.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from ci_pipeline import store
from ci_pipeline.config import Settings, get_settings
from ci_pipeline.errors import PipelineError
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.model.load import load_initiative
from ci_pipeline.receive import tokens

tokens_app = typer.Typer(
    help="Partners' API tokens for the intake API: issue, revoke, list.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text.")]
PartnerOpt = Annotated[str, typer.Option("--partner", "-p", help="The partner's id.")]
TOKEN_COLUMNS = [
    "id",
    "partner_id",
    "prefix",
    "label",
    "active",
    "created_at",
    "last_used_at",
    "revoked_at",
]


def _settings_and_engine() -> tuple[Settings, Engine]:
    """Settings from the environment and the app database, with its tables created."""
    settings = get_settings()
    return settings, store.engine_for(settings.resolved_database_url)


def _initiative(settings: Settings) -> Initiative:
    return load_initiative(settings.initiative)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _fail(exc: PipelineError) -> typer.Exit:
    """A pipeline error as a red message and exit code 1, as the main CLI reports them."""
    err.print(f"[red]error:[/red] {exc}", highlight=False)
    return typer.Exit(1)


@tokens_app.command("issue")
def issue(
    partner: PartnerOpt,
    label: Annotated[
        str | None, typer.Option("--label", help="A note for operators: who holds it, where.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue a new API token for a partner and print its secret — shown this once, never stored."""
    settings, engine = _settings_and_engine()
    try:
        issued = tokens.issue(_initiative(settings), partner, engine=engine, label=label)
    except PipelineError as exc:
        raise _fail(exc) from None
    warning = (
        "Copy the secret now: it is shown only this once and is not stored (only its hash is)."
    )
    if json_out:
        _print_json(
            {
                "id": issued.id,
                "partner_id": issued.partner_id,
                "prefix": issued.prefix,
                "label": issued.label,
                "created_at": issued.created_at.isoformat(timespec="seconds"),
                "secret": issued.secret,
                "warning": warning,
            }
        )
        return
    out.print(f"Token #{issued.id} for {issued.partner_id} (prefix {issued.prefix}):")
    out.print(issued.secret, highlight=False, soft_wrap=True)
    err.print(f"[yellow]warning:[/yellow] {warning}")


@tokens_app.command("revoke")
def revoke(
    partner: PartnerOpt,
    token_id: Annotated[
        int | None,
        typer.Option("--token-id", help="Only this token (see `tokens list`); default: all."),
    ] = None,
) -> None:
    """Revoke a partner's active tokens (or one of them): they stop working at once."""
    _, engine = _settings_and_engine()
    count = tokens.revoke(partner, engine=engine, token_id=token_id)
    if token_id is not None and count == 0:
        err.print(f"[red]error:[/red] no active token #{token_id} for {partner}", highlight=False)
        raise typer.Exit(1)
    out.print(f"Revoked {count} token(s) for {partner}", highlight=False)


@tokens_app.command("list")
def list_(
    partner: Annotated[
        str | None, typer.Option("--partner", "-p", help="Only this partner's tokens.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List tokens (prefix, label, when issued, last used, revoked): never their secrets."""
    _, engine = _settings_and_engine()
    rows = tokens.list_tokens(engine=engine, partner_id=partner)
    if json_out:
        _print_json(rows)
        return
    table = Table(title=f"API tokens ({len(rows)})", title_justify="left")
    for c in TOKEN_COLUMNS:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in TOKEN_COLUMNS))
    out.print(table)
