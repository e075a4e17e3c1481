"""The store's schema history: Alembic migrations in `versions/`, configured here without an alembic.ini.

`storage.db.upgrade_store` applies them (at every start, and `kiennghi db upgrade`);
`python -m storage.migrations revision "what changed"` writes a new one from the models."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

# The revision that creates the schema of the stores made before migrations (create_all).
BASELINE = "8d3c0e5a1b2f"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration: the scripts in this package, run on `connection` (see env.py)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


@cache
def scripts() -> ScriptDirectory:
    """The migration scripts (read once: every engine the process opens checks them)."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision: the schema of today's models."""
    head = scripts().get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the store is at; None when it has no `alembic_version` (empty, or made before migrations)."""
    return MigrationContext.configure(connection).get_current_revision()


def baseline_schema() -> MetaData:
    """The tables of the baseline revision: what a store made before migrations is repaired to."""
    baseline = scripts().get_revision(BASELINE)
    assert baseline is not None
    schema: MetaData = baseline.module.schema()
    return schema
