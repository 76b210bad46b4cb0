"""attempt race legs: which leg of a raced task an attempt ran, and that leg's outcome

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: every attempt that is not a race leg keeps NULL (a plain ADD COLUMN, also on
    # SQLite: no table copy, the partial index of 0004 stays as it is).
    op.add_column("attempts", sa.Column("leg", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("leg")
