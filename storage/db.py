"""The database engine: SQLite (WAL, durable commits) by default, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, create_engine

from storage import models  # noqa: F401  (registers the tables)


def create_db_engine(url: str, *, synchronous: str = "FULL") -> Engine:
    """Create the engine and the tables; for SQLite, create the file's folder and set WAL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        create_schema(engine)
        return engine
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

    create_schema(engine)
    return engine


def create_schema(engine: Engine) -> None:
    """Create missing tables, and the columns and indexes added since an existing table was made."""
    SQLModel.metadata.create_all(engine)
    add_missing_columns(engine)
    widen_text_columns(engine)
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)


def add_missing_columns(engine: Engine) -> None:
    """Add to existing tables the columns their models have gained since (create_all never alters a table).

    Only nullable columns can be added this way: existing rows get NULL. A new NOT NULL column needs a
    value for those rows, so it is refused here rather than guessed."""
    for table in SQLModel.metadata.sorted_tables:
        present = _column_names(engine, table.name)
        for column in [c for c in table.columns if c.name not in present]:
            if not column.nullable or column.primary_key:
                raise RuntimeError(f"{table.name}.{column.name} is not in the database and cannot be NULL: "
                                   "add it to the existing table by hand")
            prepare = engine.dialect.identifier_preparer
            statement = (f"ALTER TABLE {prepare.quote(table.name)} ADD COLUMN {prepare.quote(column.name)} "
                         f"{column.type.compile(dialect=engine.dialect)}")
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(statement)
            except DBAPIError:
                if column.name not in _column_names(engine, table.name):  # not added by a process starting too
                    raise


def widen_text_columns(engine: Engine) -> None:
    """Let an existing PostgreSQL table's text columns hold what their models now allow (SQLite does not
    enforce lengths). Only ever widens: a shorter model would need data moved by hand."""
    if engine.dialect.name != "postgresql":
        return
    for table in SQLModel.metadata.sorted_tables:
        stored = {c["name"]: getattr(c["type"], "length", None) for c in inspect(engine).get_columns(table.name)}
        for column in table.columns:
            wanted, present = getattr(column.type, "length", None), stored.get(column.name)
            if wanted and present and present < wanted:
                prepare = engine.dialect.identifier_preparer
                with engine.begin() as connection:
                    connection.exec_driver_sql(
                        f"ALTER TABLE {prepare.quote(table.name)} ALTER COLUMN {prepare.quote(column.name)} "
                        f"TYPE VARCHAR({wanted})")


def _column_names(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


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
