"""Concerns keep their content and enterprise folded (lower case, no diacritics) for /find.

Revision ID: 45b761a259db
Revises: 40446a30d315
Create Date: 2026-11-26

An officer types "luong" on a phone without Vietnamese keys, or "Lương" with a capital; SQL's LIKE folds
neither SQLite's nor PostgreSQL's Vietnamese letters. The concerns already stored get the folded copy
here, a thousand at a time; new ones get it when they are stored (storage.concerns.create_concern).
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "45b761a259db"
down_revision = "40446a30d315"
branch_labels = None
depends_on = None

BATCH = 1000


def fold(text: str) -> str:
    """storage.reference.search_key, as of this revision (a migration does not import the app's code)."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join("".join(ch if ch.isalnum() else " " for ch in plain.lower()).split())


def upgrade() -> None:
    """Change the schema to this revision's, and fold the words of the concerns already stored."""
    with op.batch_alter_table("concern", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.String(length=3300), nullable=True))
    concern = sa.table("concern", sa.column("id", sa.Integer), sa.column("description", sa.String),
                       sa.column("enterprise", sa.String), sa.column("search_text", sa.String))
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(sa.select(concern.c.id, concern.c.description, concern.c.enterprise)
                                  .where(concern.c.id > last).order_by(concern.c.id).limit(BATCH)).all()
        if not rows:
            return
        connection.execute(concern.update().where(concern.c.id == sa.bindparam("row_id"))
                           .values(search_text=sa.bindparam("folded")),
                           [{"row_id": row.id, "folded": fold(f"{row.description or ''} {row.enterprise or ''}")}
                            for row in rows])
        last = rows[-1].id


def downgrade() -> None:
    """Change the schema back to the previous revision's."""
    with op.batch_alter_table("concern", schema=None) as batch_op:
        batch_op.drop_column("search_text")
