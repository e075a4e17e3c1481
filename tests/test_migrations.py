"""Migrations: an empty store gets exactly the models' schema, an older store is brought up to date with
its rows, two processes never migrate at once, and `kiennghi db upgrade` does it from the command line."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel, select

from storage.db import create_db_engine, new_session, upgrade_store
from storage.migrations import BASELINE, baseline_schema, current_revision, head_revision
from storage.models import Concern, Person
from tests.test_config_cli import kiennghi

ROOT = Path(__file__).resolve().parent.parent


def schema_differences(url: str) -> list[object]:
    """What Alembic finds different between the store and the models (empty: the same schema)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = list(compare_metadata(MigrationContext.configure(connection), SQLModel.metadata))
        assert current_revision(connection) == head_revision()
    engine.dispose()
    return differences


def test_upgrading_an_empty_store_gives_exactly_the_models_schema(database_url: str) -> None:
    """Fails when storage/models.py changes without a migration: add one (README, Migrations)."""
    engine = create_db_engine(database_url, upgrade=False)
    assert upgrade_store(engine)[0] == (f"applied {BASELINE}: Baseline: the schema of the stores kiennghi made "
                                        "before it had migrations.")
    assert upgrade_store(engine) == []  # the next start has nothing to do
    assert set(inspect(engine).get_table_names()) == set(SQLModel.metadata.tables) | {"alembic_version"}
    engine.dispose()
    assert schema_differences(database_url) == []


def test_a_store_made_before_migrations_is_brought_up_to_date_and_keeps_its_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    baseline_schema().create_all(engine)  # as kiennghi made stores before it had migrations (create_all)...
    with engine.begin() as connection:  # ...before people could mute broadcasts, and one index newer still
        connection.execute(text("ALTER TABLE person DROP COLUMN broadcasts_muted_at"))
        connection.execute(text("DROP INDEX ix_outboxmessage_status_created"))
        connection.execute(text("INSERT INTO person (messenger, external_id, chat_id, display_name, role, created_at) "
                                "VALUES ('telegram', '42', '42', 'Lan', 'worker', '2026-01-05 03:00:00')"))
        connection.execute(text(
            "INSERT INTO concern (tracking_code, author_id, visibility, category_code, enterprise, description, "
            "status, me_too, created_at, updated_at) VALUES ('KN-OLD1-AAAA', 1, 'union', 'wages', '', "
            "'Lương trả chậm.', 'new', 1, '2026-01-05 03:00:00', '2026-01-05 03:00:00')"))
    engine.dispose()

    engine = create_db_engine(database_url)
    assert schema_differences(database_url) == []
    with new_session(engine) as session:
        lan = session.exec(select(Person)).one()
        assert (lan.display_name, lan.broadcasts_muted_at) == ("Lan", None)
        concern = session.exec(select(Concern)).one()
        assert (concern.tracking_code, concern.author_id, concern.description) == ("KN-OLD1-AAAA", lan.id,
                                                                                  "Lương trả chậm.")
        assert concern.search_text == "luong tra cham"  # folded for /find by a later migration
        lan.broadcasts_muted_at = datetime(2026, 2, 1, tzinfo=UTC)  # the added column holds what it is given
        session.commit()
    engine.dispose()
    assert upgrade_store(create_db_engine(database_url, upgrade=False)) == []


# Opens the store, waits for the agreed moment, upgrades it and prints what it did.
UPGRADE_AT = """
import sys, time
from storage.db import create_db_engine, upgrade_store
engine = create_db_engine(sys.argv[1], upgrade=False)
engine.connect().close()
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
for line in upgrade_store(engine):
    print(line)
"""


def test_two_processes_starting_at_once_migrate_the_store_once(database_url: str) -> None:
    # A new SQLite file is switched to WAL by its first connection, which must not race (not migrations' part).
    create_engine(database_url).connect().close()
    moment = str(time.time() + 3)  # both have imported everything by then
    processes = [subprocess.Popen([sys.executable, "-c", UPGRADE_AT, database_url, moment], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outcomes
    # One applied the migrations; the other waited for it and found nothing left to do.
    nothing, everything = sorted(out.strip() for out, _ in outcomes)
    assert nothing == "", outcomes
    assert everything.startswith(f"applied {BASELINE}:"), outcomes
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
    engine.dispose()
    assert schema_differences(database_url) == []


def test_kiennghi_db_upgrade_creates_the_tables_of_a_new_store(tmp_path: Path) -> None:
    result = kiennghi(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert f"applied {BASELINE}" in result.stdout
    assert f"at revision {head_revision()} (up to date)" in result.stdout
    engine = create_engine(f"sqlite:///{tmp_path}/kiennghi.db")
    assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()

    again = kiennghi(tmp_path, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "applied" not in again.stdout
    assert "up to date" in again.stdout
