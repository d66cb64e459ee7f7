"""``ci-pipeline tokens``: issue, revoke and list the partners' API tokens.

A sub-app registered by :mod:`ci_pipeline.cli`; errors, output and the database are the shared
ones of :mod:`ci_pipeline.cli.common`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ci_pipeline.cli.common import (
    JsonOpt,
    check_filters,
    err,
    handle_errors,
    load_context,
    make_table,
    open_engine,
    out,
    print_json,
)
from ci_pipeline.config import get_settings
from ci_pipeline.receive import tokens

tokens_app = typer.Typer(
    help="Partners' API tokens for the intake API: issue, revoke, list.", no_args_is_help=True
)
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


@tokens_app.command("issue")
@handle_errors
def issue(
    partner: PartnerOpt,
    label: Annotated[
        str | None, typer.Option("--label", help="A note for operators: who holds it, where.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue a new API token for a partner and print its secret — shown this once, never stored."""
    settings, initiative = load_context()
    check_filters(initiative, partner=partner)
    issued = tokens.issue(initiative, partner, engine=open_engine(settings), label=label)
    warning = (
        "Copy the secret now: it is shown only this once and is not stored (only its hash is)."
    )
    if json_out:
        print_json(
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
@handle_errors
def revoke(
    partner: PartnerOpt,
    token_id: Annotated[
        int | None,
        typer.Option("--token-id", help="Only this token (see `tokens list`); default: all."),
    ] = None,
) -> None:
    """Revoke a partner's active tokens (or one of them): they stop working at once."""
    # A partner no longer in the initiative can still have its tokens revoked: no initiative.
    count = tokens.revoke(partner, engine=open_engine(get_settings()), token_id=token_id)
    if token_id is not None and count == 0:
        err.print(f"[red]error:[/red] no active token #{token_id} for {partner}", highlight=False)
        raise typer.Exit(1)
    out.print(f"Revoked {count} token(s) for {partner}", highlight=False)


@tokens_app.command("list")
@handle_errors
def list_(
    partner: Annotated[
        str | None, typer.Option("--partner", "-p", help="Only this partner's tokens.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List tokens (prefix, label, when issued, last used, revoked): never their secrets."""
    rows = tokens.list_tokens(engine=open_engine(get_settings()), partner_id=partner)
    if json_out:
        print_json(rows)
        return
    out.print(make_table(f"API tokens ({len(rows)})", rows, TOKEN_COLUMNS))
