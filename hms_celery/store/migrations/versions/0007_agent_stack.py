"""agent stack: which stack (broker database) an agent belongs to

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: agents registered before this revision have no stack, and no supervisor
    # judges them (their heartbeats could be in any broker).
    op.add_column("agents", sa.Column("stack", sa.String(200), nullable=True))
    op.create_index("ix_agents_stack", "agents", ["stack"])


def downgrade() -> None:
    op.drop_index("ix_agents_stack", table_name="agents")
    with op.batch_alter_table("agents") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("stack")
