"""`python -m storage.migrations revision "what changed"`: write a migration from the models' changes.

It upgrades a scratch SQLite file to the newest revision and lets Alembic compare it with the models;
review the script it writes (versions/) before committing it."""

from __future__ import annotations

import argparse
import sys
import tempfile

from alembic import command
from sqlalchemy import create_engine

from storage.migrations import alembic_config


def main(argv: list[str] | None = None) -> int:
    """Write a new revision that brings the schema of the existing revisions to the models'."""
    parser = argparse.ArgumentParser(prog="python -m storage.migrations")
    parser.add_argument("action", choices=["revision"])
    parser.add_argument("message", help="what the migration changes, a few words")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/head.db")
        with engine.begin() as connection:
            config = alembic_config(connection)
            command.upgrade(config, "head")
            written = command.revision(config, args.message, autogenerate=True)
        engine.dispose()
    for script in written if isinstance(written, list) else [written]:
        if script is not None:
            print(f"written: {script.path} (review it, then run the tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
