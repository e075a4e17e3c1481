"""Alembic's environment: migrations run on the connection the caller hands over (storage.migrations)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import TypeDecorator
from sqlmodel import SQLModel

from storage import models  # noqa: F401  (registers the tables)


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write our column types (UTCDateTime, EnumText, sqlmodel's AutoString) as the plain SQLAlchemy types
    they store, so that migration scripts never import the application's code."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl!r}"
    return False


connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it, which Alembic's batch mode does.
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True,
                  render_item=render_item)
with context.begin_transaction():
    context.run_migrations()
