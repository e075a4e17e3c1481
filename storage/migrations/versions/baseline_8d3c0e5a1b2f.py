"""Baseline: the schema of the stores kiennghi made before it had migrations.

Revision ID: 8d3c0e5a1b2f
Revises:
Create Date: 2026-11-26

Written by autogenerate against an empty store, then as one `schema()`: storage.db repairs a
store made before migrations to this schema (it creates what is missing, as create_all did) and stamps
this revision, so the later revisions then run on such a store as on any other.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "8d3c0e5a1b2f"
down_revision = None
branch_labels = None
depends_on = None


def schema() -> sa.MetaData:
    """The tables, constraints and indexes of this revision."""
    metadata = sa.MetaData()
    sa.Table("dialogstate", metadata,
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("chat_id", sa.String(length=64), nullable=False),
             sa.Column("flow", sa.String(length=32), nullable=True),
             sa.Column("step", sa.String(length=32), nullable=True),
             sa.Column("data", sa.String(), nullable=False),
             sa.Column("options", sa.String(), nullable=False),
             sa.Column("updated_at", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("messenger", "chat_id"))
    sa.Table("enterprise", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("name", sa.String(length=200), nullable=False),
             sa.Column("search_key", sa.String(length=200), nullable=False),
             sa.PrimaryKeyConstraint("id"),
             sa.UniqueConstraint("search_key"))
    sa.Table("lastwrote", metadata,
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("chat_id", sa.String(length=64), nullable=False),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("messenger", "chat_id"))
    sa.Table("person", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("external_id", sa.String(length=64), nullable=False),
             sa.Column("chat_id", sa.String(length=64), nullable=False),
             sa.Column("display_name", sa.String(length=128), nullable=False),
             sa.Column("locale", sa.String(length=8), nullable=True),
             sa.Column("messenger_locale", sa.String(length=8), nullable=True),
             sa.Column("role", sa.String(length=16), nullable=False),
             sa.Column("agency_code", sa.String(length=32), nullable=True),
             sa.Column("consent_at", sa.DateTime(), nullable=True),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("broadcasts_muted_at", sa.DateTime(), nullable=True),
             sa.PrimaryKeyConstraint("id"),
             sa.UniqueConstraint("messenger", "external_id"),
             sa.Index("ix_person_role", "role"))
    sa.Table("processedupdate", metadata,
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("update_key", sa.String(length=128), nullable=False),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("messenger", "update_key"),
             sa.Index("ix_processedupdate_at", "at"))
    sa.Table("receipt", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("chat_id", sa.String(length=64), nullable=False),
             sa.Column("replies", sa.String(), nullable=False),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("id"),
             sa.Index("ix_receipt_created_at", "created_at"))
    sa.Table("referenceitem", metadata,
             sa.Column("kind", sa.String(length=16), nullable=False),
             sa.Column("code", sa.String(length=32), nullable=False),
             sa.Column("name_vi", sa.String(length=200), nullable=False),
             sa.Column("name_en", sa.String(length=200), nullable=False),
             sa.Column("position", sa.Integer(), nullable=False),
             sa.Column("active", sa.Boolean(), nullable=False),
             sa.Column("valid_from", sa.Date(), nullable=True),
             sa.Column("valid_until", sa.Date(), nullable=True),
             sa.PrimaryKeyConstraint("kind", "code"))
    sa.Table("sentnotice", metadata,
             sa.Column("kind", sa.String(length=16), nullable=False),
             sa.Column("key", sa.String(length=128), nullable=False),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("kind", "key"),
             sa.Index("ix_sentnotice_at", "at"))
    sa.Table("unreachable", metadata,
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("chat_id", sa.String(length=64), nullable=False),
             sa.Column("reason", sa.String(length=500), nullable=False),
             sa.Column("since", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("messenger", "chat_id"))
    sa.Table("zalooatoken", metadata,
             sa.Column("app_id", sa.String(length=64), nullable=False),
             sa.Column("access_token", sa.String(length=2000), nullable=False),
             sa.Column("refresh_token", sa.String(length=2000), nullable=False),
             sa.Column("expires_at", sa.DateTime(), nullable=False),
             sa.Column("version", sa.Integer(), nullable=False),
             sa.Column("renewing_until", sa.DateTime(), nullable=True),
             sa.Column("seed", sa.String(length=64), nullable=False),
             sa.Column("updated_at", sa.DateTime(), nullable=False),
             sa.PrimaryKeyConstraint("app_id"))
    sa.Table("broadcast", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("admin_id", sa.Integer(), nullable=True),
             sa.Column("text", sa.String(length=1000), nullable=False),
             sa.Column("audience", sa.String(length=16), nullable=False),
             sa.Column("audience_code", sa.String(length=32), nullable=True),
             sa.Column("recipients", sa.Integer(), nullable=False),
             sa.Column("unreachable", sa.Integer(), nullable=False),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("progress_at", sa.DateTime(), nullable=True),
             sa.Column("finished_at", sa.DateTime(), nullable=True),
             sa.ForeignKeyConstraint(["admin_id"], ["person.id"]),
             sa.PrimaryKeyConstraint("id"))
    sa.Table("concern", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("tracking_code", sa.String(length=16), nullable=False),
             sa.Column("author_id", sa.Integer(), nullable=True),
             sa.Column("visibility", sa.String(length=16), nullable=False),
             sa.Column("category_code", sa.String(length=32), nullable=False),
             sa.Column("enterprise", sa.String(length=200), nullable=False),
             sa.Column("place_code", sa.String(length=32), nullable=True),
             sa.Column("description", sa.String(length=3000), nullable=False),
             sa.Column("status", sa.String(length=16), nullable=False),
             sa.Column("me_too", sa.Integer(), nullable=False),
             sa.Column("merged_into_id", sa.Integer(), nullable=True),
             sa.Column("reject_reason", sa.String(length=500), nullable=True),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("updated_at", sa.DateTime(), nullable=False),
             sa.ForeignKeyConstraint(["author_id"], ["person.id"]),
             sa.ForeignKeyConstraint(["merged_into_id"], ["concern.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.UniqueConstraint("tracking_code"),
             sa.Index("ix_concern_author_id", "author_id"),
             sa.Index("ix_concern_merged_into_id", "merged_into_id"),
             sa.Index("ix_concern_status", "status"))
    sa.Table("dialoguesession", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("name", sa.String(length=200), nullable=False),
             sa.Column("held_on", sa.Date(), nullable=False),
             sa.Column("deadline", sa.Date(), nullable=False),
             sa.Column("created_by", sa.Integer(), nullable=True),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("closed_at", sa.DateTime(), nullable=True),
             sa.ForeignKeyConstraint(["created_by"], ["person.id"]),
             sa.PrimaryKeyConstraint("id"))
    sa.Table("invitation", metadata,
             sa.Column("token", sa.String(length=32), nullable=False),
             sa.Column("role", sa.String(length=16), nullable=False),
             sa.Column("agency_code", sa.String(length=32), nullable=True),
             sa.Column("created_by", sa.Integer(), nullable=True),
             sa.Column("expires_at", sa.DateTime(), nullable=False),
             sa.Column("used_by", sa.Integer(), nullable=True),
             sa.Column("used_at", sa.DateTime(), nullable=True),
             sa.ForeignKeyConstraint(["created_by"], ["person.id"]),
             sa.ForeignKeyConstraint(["used_by"], ["person.id"]),
             sa.PrimaryKeyConstraint("token"))
    sa.Table("assignment", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("concern_id", sa.Integer(), nullable=False),
             sa.Column("agency_code", sa.String(length=32), nullable=False),
             sa.Column("deadline", sa.Date(), nullable=False),
             sa.Column("status", sa.String(length=16), nullable=False),
             sa.Column("answer_text", sa.String(length=3000), nullable=True),
             sa.Column("answer_file_id", sa.String(length=2048), nullable=True),
             sa.Column("answer_file_kind", sa.String(length=16), nullable=True),
             sa.Column("answer_messenger", sa.String(length=16), nullable=True),
             sa.Column("answered_by", sa.Integer(), nullable=True),
             sa.Column("answered_at", sa.DateTime(), nullable=True),
             sa.Column("extension_requested", sa.Date(), nullable=True),
             sa.Column("extension_reason", sa.String(length=500), nullable=True),
             sa.Column("extension_status", sa.String(length=16), nullable=True),
             sa.Column("relayed_at", sa.DateTime(), nullable=True),
             sa.Column("assigned_by", sa.Integer(), nullable=True),
             sa.Column("assigned_at", sa.DateTime(), nullable=False),
             sa.ForeignKeyConstraint(["answered_by"], ["person.id"]),
             sa.ForeignKeyConstraint(["assigned_by"], ["person.id"]),
             sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.UniqueConstraint("concern_id", "agency_code"),
             sa.Index("ix_assignment_agency_code", "agency_code"),
             sa.Index("ix_assignment_agency_status_deadline", "agency_code", "status", "deadline"),
             sa.Index("ix_assignment_concern_id", "concern_id"),
             sa.Index("ix_assignment_status_deadline", "status", "deadline"),
             sa.Index("ix_assignment_status_relayed", "status", "relayed_at"))
    sa.Table("attachment", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("concern_id", sa.Integer(), nullable=False),
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("file_id", sa.String(length=2048), nullable=False),
             sa.Column("kind", sa.String(length=16), nullable=False),
             sa.Column("size", sa.Integer(), nullable=True),
             sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.Index("ix_attachment_concern_id", "concern_id"))
    sa.Table("casenote", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("concern_id", sa.Integer(), nullable=False),
             sa.Column("kind", sa.String(length=16), nullable=False),
             sa.Column("text", sa.String(length=3000), nullable=False),
             sa.Column("actor_id", sa.Integer(), nullable=True),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.ForeignKeyConstraint(["actor_id"], ["person.id"]),
             sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.Index("ix_casenote_concern_id", "concern_id"))
    sa.Table("concernorigin", metadata,
             sa.Column("concern_id", sa.Integer(), nullable=False),
             sa.Column("session_id", sa.Integer(), nullable=True),
             sa.Column("entered_by", sa.Integer(), nullable=True),
             sa.Column("speaker_name", sa.String(length=128), nullable=True),
             sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
             sa.ForeignKeyConstraint(["entered_by"], ["person.id"]),
             sa.ForeignKeyConstraint(["session_id"], ["dialoguesession.id"]),
             sa.PrimaryKeyConstraint("concern_id"),
             sa.Index("ix_concernorigin_session_id", "session_id"))
    sa.Table("outboxmessage", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("messenger", sa.String(length=16), nullable=False),
             sa.Column("chat_id", sa.String(length=64), nullable=False),
             sa.Column("text", sa.String(), nullable=False),
             sa.Column("options", sa.String(), nullable=False),
             sa.Column("file_id", sa.String(length=2048), nullable=True),
             sa.Column("file_kind", sa.String(length=16), nullable=True),
             sa.Column("status", sa.String(length=16), nullable=False),
             sa.Column("attempts", sa.Integer(), nullable=False),
             sa.Column("last_error", sa.String(length=500), nullable=True),
             sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("sent_at", sa.DateTime(), nullable=True),
             sa.Column("broadcast_id", sa.Integer(), nullable=True),
             sa.ForeignKeyConstraint(["broadcast_id"], ["broadcast.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.Index("ix_outboxmessage_broadcast_id", "broadcast_id"),
             sa.Index("ix_outboxmessage_chat_status", "messenger", "chat_id", "status", "id"),
             sa.Index("ix_outboxmessage_next_attempt_at", "next_attempt_at"),
             sa.Index("ix_outboxmessage_status", "status"),
             sa.Index("ix_outboxmessage_status_created", "status", "created_at"))
    sa.Table("rating", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("concern_id", sa.Integer(), nullable=False),
             sa.Column("person_id", sa.Integer(), nullable=True),
             sa.Column("score", sa.Integer(), nullable=False),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
             sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.Index("ix_rating_concern_id", "concern_id"))
    sa.Table("statuschange", metadata,
             sa.Column("id", sa.Integer(), nullable=False),
             sa.Column("concern_id", sa.Integer(), nullable=False),
             sa.Column("actor_id", sa.Integer(), nullable=True),
             sa.Column("actor_role", sa.String(length=16), nullable=False),
             sa.Column("from_status", sa.String(length=16), nullable=True),
             sa.Column("to_status", sa.String(length=16), nullable=False),
             sa.Column("note", sa.String(length=1000), nullable=True),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.ForeignKeyConstraint(["actor_id"], ["person.id"]),
             sa.ForeignKeyConstraint(["concern_id"], ["concern.id"]),
             sa.PrimaryKeyConstraint("id"),
             sa.Index("ix_statuschange_actor_id", "actor_id"),
             sa.Index("ix_statuschange_concern_id", "concern_id"))
    return metadata


def upgrade() -> None:
    """Create every table (on an empty store: one that holds a table fails rather than being skipped)."""
    schema().create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    """Drop every table."""
    schema().drop_all(op.get_bind(), checkfirst=False)
