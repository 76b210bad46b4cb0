"""open attempts by agent: a partial index for the supervisor's in-flight queries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OPEN = sa.text("ended_at IS NULL")


def upgrade() -> None:
    # Every sweep counts each agent's open attempts: only the open ones are indexed.
    op.create_index(
        "ix_attempts_open_agent",
        "attempts",
        ["agent"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_attempts_open_agent", "attempts", sqlite_where=_OPEN, postgresql_where=_OPEN)
