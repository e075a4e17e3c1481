"""Indexes for a large deployment: concerns by when they were raised (and the open ones by age), and their
authors by place and topic.

Revision ID: 40446a30d315
Revises: 8d3c0e5a1b2f
Create Date: 2026-11-26

Measured with tests/bench/explain_postgres.py on 1,000,000 concerns (README, Benchmark): reports and
exports of a period, /find and the audiences of broadcasts to a place or a topic read the whole
`concern` table without them; the queue and the merge candidates read the few open concerns by age from a
partial index (with the first index alone, PostgreSQL walked it from the oldest concern). Written by
`python -m storage.migrations revision`, the partial index's condition added by hand.

On PostgreSQL the outbox's statistics are also kept fresh: by default autovacuum analyses a table once
a tenth of it has changed (300,000 rows of a 3-million-row outbox), so minutes after a broadcast queued
thousands of messages the planner still believed none was waiting, and the sender's statements chose
plans that read every waiting message for each one (README, Benchmark). A storage parameter, not part
of the models' schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "40446a30d315"
down_revision = "8d3c0e5a1b2f"
branch_labels = None
depends_on = None

OPEN_CONCERN = "status IN ('new', 'accepted', 'assigned', 'answered', 'reopened')"  # storage.models.OPEN_CONCERN


def upgrade() -> None:
    """Change the schema to this revision's."""
    with op.batch_alter_table("concern", schema=None) as batch_op:
        batch_op.create_index("ix_concern_category_author", ["category_code", "author_id"], unique=False)
        batch_op.create_index("ix_concern_created_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_concern_open_created", ["created_at", "id"], unique=False,
                              postgresql_where=sa.text(OPEN_CONCERN), sqlite_where=sa.text(OPEN_CONCERN))
        batch_op.create_index("ix_concern_place_author", ["place_code", "author_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":  # analysed after every 5,000 changes, whatever its size
        op.execute("ALTER TABLE outboxmessage SET (autovacuum_analyze_scale_factor = 0, "
                   "autovacuum_analyze_threshold = 5000)")


def downgrade() -> None:
    """Change the schema back to the previous revision's."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outboxmessage RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)")
    with op.batch_alter_table("concern", schema=None) as batch_op:
        batch_op.drop_index("ix_concern_place_author")
        batch_op.drop_index("ix_concern_open_created")
        batch_op.drop_index("ix_concern_created_id")
        batch_op.drop_index("ix_concern_category_author")
