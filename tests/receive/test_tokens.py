"""Partner API tokens: issued once, stored as a hash, authenticated, revoked, listed."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from ci_pipeline import store
from ci_pipeline.cli.tokens import tokens_app
from ci_pipeline.errors import UnknownPartner
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive import tokens
from ci_pipeline.store import migrate

FUND, STARTER = "galilee-foundation", "braude-college"


def test_issue_stores_the_hash_never_the_secret(engine: Engine, initiative: Initiative) -> None:
    issued = tokens.issue(initiative, FUND, engine=engine, label="grants office")

    assert issued.secret.startswith("cip_") and len(issued.secret) == 47
    assert issued.prefix == issued.secret[:8]
    assert issued.secret not in repr(issued)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM api_token")).mappings().one()
    assert stored["token_hash"] == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in json.dumps(dict(stored), default=str)
    assert (stored["partner_id"], stored["label"], stored["prefix"]) == (
        FUND,
        "grants office",
        issued.prefix,
    )


def test_authenticate_names_the_partner_and_records_the_use(
    engine: Engine, initiative: Initiative
) -> None:
    issued = tokens.issue(initiative, FUND, engine=engine)
    assert tokens.list_tokens(engine=engine)[0]["last_used_at"] is None

    assert tokens.authenticate(issued.secret, engine=engine) == FUND
    assert tokens.authenticate(issued.secret, engine=engine, initiative_id="elsewhere") is None
    assert tokens.list_tokens(engine=engine)[0]["last_used_at"] is not None
    for wrong in ("", "cip_", issued.secret[:-1] + "x", "Bearer " + issued.secret, "x" * 47):
        assert tokens.authenticate(wrong, engine=engine) is None


def test_an_unknown_partner_gets_no_token(engine: Engine, initiative: Initiative) -> None:
    with pytest.raises(UnknownPartner):
        tokens.issue(initiative, "nobody", engine=engine)
    assert tokens.list_tokens(engine=engine) == []


def test_revoke_all_or_one(engine: Engine, initiative: Initiative) -> None:
    first, second = (tokens.issue(initiative, FUND, engine=engine) for _ in range(2))
    other = tokens.issue(initiative, STARTER, engine=engine)

    assert tokens.revoke(FUND, engine=engine, token_id=first.id) == 1
    assert tokens.revoke(FUND, engine=engine, token_id=first.id) == 0  # already revoked
    assert tokens.revoke(FUND, engine=engine, token_id=other.id) == 0  # not FUND's
    assert tokens.authenticate(first.secret, engine=engine) is None
    assert tokens.authenticate(second.secret, engine=engine) == FUND

    assert tokens.revoke(FUND, engine=engine) == 1
    assert tokens.authenticate(second.secret, engine=engine) is None
    assert tokens.authenticate(other.secret, engine=engine) == STARTER
    listed = {t["id"]: t for t in tokens.list_tokens(engine=engine)}
    assert [listed[t.id]["active"] for t in (first, second, other)] == [False, False, True]
    assert listed[first.id]["revoked_at"] is not None
    assert [t["id"] for t in tokens.list_tokens(engine=engine, partner_id=STARTER)] == [other.id]


def test_listing_never_shows_hash_or_secret(engine: Engine, initiative: Initiative) -> None:
    issued = tokens.issue(initiative, FUND, engine=engine)
    (row,) = tokens.list_tokens(engine=engine)
    assert "token_hash" not in row and "secret" not in row
    dumped = json.dumps(row)
    assert issued.secret not in dumped and tokens.hash_secret(issued.secret) not in dumped


def test_the_schema_upgrade_adds_the_table_to_a_database_that_predates_it(
    sqlite_engine: Engine, initiative: Initiative
) -> None:
    """A database made before tokens existed gets the table from the upgrade every entry point
    runs (``store.create_schema``), not from the token functions themselves."""
    # The release before Alembic: the first revision's tables, without api_token.
    store.drop_schema(engine=sqlite_engine)
    migrate.upgrade(engine=sqlite_engine, revision="0001")
    with sqlite_engine.begin() as conn:
        conn.execute(text("DROP TABLE api_token"))
        conn.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(OperationalError, match="api_token"):
        tokens.issue(initiative, FUND, engine=sqlite_engine)

    store.create_schema(engine=sqlite_engine)

    issued = tokens.issue(initiative, FUND, engine=sqlite_engine)
    assert tokens.authenticate(issued.secret, engine=sqlite_engine) == FUND


runner = CliRunner()


@pytest.mark.usefixtures("home")
def test_the_tokens_commands() -> None:
    issued = runner.invoke(tokens_app, ["issue", "--partner", FUND, "--label", "ops", "--json"])
    assert issued.exit_code == 0, issued.output
    data = json.loads(issued.stdout)
    assert data["secret"].startswith("cip_") and "not stored" in data["warning"]

    plain = runner.invoke(tokens_app, ["issue", "--partner", FUND])
    assert plain.exit_code == 0, plain.output
    assert "cip_" in plain.stdout and "not stored" in plain.output

    unknown = runner.invoke(tokens_app, ["issue", "--partner", "nobody"])
    assert unknown.exit_code == 2 and 'no partner "nobody"' in unknown.output

    listed = runner.invoke(tokens_app, ["list", "--partner", FUND, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["label"] for r in rows] == ["ops", None]
    assert data["secret"] not in listed.stdout
    assert "API tokens (2)" in runner.invoke(tokens_app, ["list"]).stdout

    one = runner.invoke(tokens_app, ["revoke", "--partner", FUND, "--token-id", str(data["id"])])
    assert one.exit_code == 0 and "Revoked 1 token(s)" in one.stdout
    again = runner.invoke(tokens_app, ["revoke", "--partner", FUND, "--token-id", str(data["id"])])
    assert again.exit_code == 1
    rest = runner.invoke(tokens_app, ["revoke", "--partner", FUND])
    assert rest.exit_code == 0 and "Revoked 1 token(s)" in rest.stdout
    for cmd in ("issue", "revoke", "list"):
        assert runner.invoke(tokens_app, [cmd, "--help"]).exit_code == 0
