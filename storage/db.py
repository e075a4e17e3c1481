"""The database engine: SQLite (WAL, durable commits) by default, PostgreSQL when configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
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
    """Create missing tables, and indexes added since an existing table was made."""
    SQLModel.metadata.create_all(engine)
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)


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
