"""agents, transitions, hosts, supervisor state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:49:28.386425
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_hosts",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "agent_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("agent_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agent_transitions_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_agent_transitions_at"), ["at"], unique=False)

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("lineage", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("host_id", sa.String(length=200), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_report", sa.JSON(), nullable=True),
        sa.Column("last_report_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_host_id"), ["host_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agents_lineage"), ["lineage"], unique=False)
        batch_op.create_index(batch_op.f("ix_agents_state"), ["state"], unique=False)

    op.create_table(
        "supervisor_state",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("supervisor_state")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_state"))
        batch_op.drop_index(batch_op.f("ix_agents_lineage"))
        batch_op.drop_index(batch_op.f("ix_agents_host_id"))

    op.drop_table("agents")
    with op.batch_alter_table("agent_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_transitions_at"))
        batch_op.drop_index(batch_op.f("ix_agent_transitions_agent_id"))

    op.drop_table("agent_transitions")
    op.drop_table("agent_hosts")
