"""The store's Alembic environment, run by :mod:`ci_pipeline.store.migrate` (never by hand).

``migrate`` hands over a live connection in ``config.attributes["connection"]``, already inside
the transaction that holds the migration lock: this file only configures the context on it, so
Alembic neither opens connections nor commits on its own.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel.sql.sqltypes import AutoString

from ci_pipeline.store import migrate


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes SQLModel's ``AutoString`` as the plain ``sa.String`` it stands for."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False  # Alembic's default rendering


connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "run the store's migrations through ci_pipeline.store.migrate "
        "(python -m ci_pipeline.store.migrate --help)"
    )
context.configure(
    connection=connection,
    target_metadata=migrate.metadata(),
    # SQLite alters little in place: later revisions rebuild its tables ("batch" operations).
    render_as_batch=connection.dialect.name == "sqlite",
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
