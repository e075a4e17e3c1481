"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    """Change the schema to this revision's."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Change the schema back to the previous revision's."""
    ${downgrades if downgrades else "pass"}
