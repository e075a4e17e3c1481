"""The database engine: SQLite (WAL, durable commits) by default, PostgreSQL when configured."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import MetaData, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine

from storage import models  # noqa: F401  (registers the tables)
from storage.migrations import BASELINE, alembic_config, baseline_schema, current_revision, head_revision, scripts

logger = logging.getLogger(__name__)
# Any fixed number, the same in every kiennghi process: whoever holds it is upgrading the store.
MIGRATION_LOCK = 4_640_212_001
# Alembic keeps the running migration's context in module globals: one upgrade at a time in a process.
_upgrading = threading.Lock()


def create_db_engine(url: str, *, synchronous: str = "FULL", upgrade: bool = True) -> Engine:
    """Create the engine and bring the schema up to date (upgrade_store); for SQLite, create the file's
    folder and set WAL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
    else:
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the worker is shown its tracking code.
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    if upgrade:
        for line in upgrade_store(engine):
            logger.info("store: %s", line)
    return engine


def upgrade_store(engine: Engine) -> list[str]:
    """Apply the pending migrations (storage/migrations) and say what was done, one line each.

    A store made before kiennghi had migrations (tables, but no `alembic_version`) is first repaired as
    kiennghi used to at each start: the missing tables, columns and indexes of the baseline revision are
    created and too narrow text columns widened (create_schema); then it is stamped with the baseline
    and the later revisions run on it as on any other store. All of it is one transaction, taken by one
    process at a time: on PostgreSQL an advisory lock, on SQLite its write lock (BEGIN IMMEDIATE)."""
    done: list[str] = []
    with engine.connect() as connection:
        if current_revision(connection) == head_revision():  # every start: a single read
            return done
        connection.rollback()  # ends the read's transaction: the upgrade's own begins below
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # tables rebuilt by batch migrations are dropped and renamed: no cascades meanwhile
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            with _upgrading, batch_transaction(connection):
                if connection.dialect.name == "postgresql":  # held until the commit
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config = alembic_config(connection)
                before = current_revision(connection)
                baseline = baseline_schema()
                if before is None and set(inspect(connection).get_table_names()) & set(baseline.tables):
                    create_schema(connection, baseline)
                    command.stamp(config, BASELINE)
                    done.append(f"a store made before migrations was brought to the baseline {BASELINE} and stamped")
                    before = BASELINE
                command.upgrade(config, "head")
                after = current_revision(connection)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    for script in reversed(list(scripts().iterate_revisions(after, before))):
        done.append(f"applied {script.revision}: {' '.join(script.doc.split())}")  # its docstring's first paragraph
    return done


def create_schema(connection: Connection, metadata: MetaData) -> None:
    """Create missing tables, and the columns and indexes added since an existing table was made
    (how stores were kept up to date before migrations)."""
    metadata.create_all(connection)
    add_missing_columns(connection, metadata)
    widen_text_columns(connection, metadata)
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)


def add_missing_columns(connection: Connection, metadata: MetaData) -> None:
    """Add to existing tables the columns the schema has and they lack (create_all never alters a table).

    Only nullable columns can be added this way: existing rows get NULL. A NOT NULL column needs a
    value for those rows, so it is refused here rather than guessed."""
    for table in metadata.sorted_tables:
        present = _column_names(connection, table.name)
        for column in [c for c in table.columns if c.name not in present]:
            if not column.nullable or column.primary_key:
                raise RuntimeError(f"{table.name}.{column.name} is not in the database and cannot be NULL: "
                                   "add it to the existing table by hand")
            prepare = connection.dialect.identifier_preparer
            connection.exec_driver_sql(
                f"ALTER TABLE {prepare.quote(table.name)} ADD COLUMN {prepare.quote(column.name)} "
                f"{column.type.compile(dialect=connection.dialect)}")


def widen_text_columns(connection: Connection, metadata: MetaData) -> None:
    """Let an existing PostgreSQL table's text columns hold what the schema allows (SQLite does not
    enforce lengths). Only ever widens: a shorter one would need data moved by hand."""
    if connection.dialect.name != "postgresql":
        return
    for table in metadata.sorted_tables:
        stored = {c["name"]: getattr(c["type"], "length", None) for c in inspect(connection).get_columns(table.name)}
        for column in table.columns:
            wanted, present = getattr(column.type, "length", None), stored.get(column.name)
            if wanted and present and present < wanted:
                prepare = connection.dialect.identifier_preparer
                connection.exec_driver_sql(
                    f"ALTER TABLE {prepare.quote(table.name)} ALTER COLUMN {prepare.quote(column.name)} "
                    f"TYPE VARCHAR({wanted})")


def _column_names(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


def new_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit (replies are built from them)."""
    return Session(engine, expire_on_commit=False)


@contextmanager
def batch_transaction(connection: Connection) -> Iterator[None]:
    """One transaction for several events, each of which runs in its own savepoint; commits at the end.

    pysqlite begins transactions itself, late, and mishandles savepoints: for this one transaction
    the connection says BEGIN IMMEDIATE itself (taking the write lock at once, so it waits its
    turn instead of failing on a stale snapshot), then gives the driver its usual ways back."""
    if connection.dialect.name != "sqlite":
        with connection.begin():
            yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    usual = raw.isolation_level
    raw.isolation_level = None
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
    finally:
        raw.isolation_level = usual
