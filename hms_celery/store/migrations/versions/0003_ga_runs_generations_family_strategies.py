"""ga runs generations family strategies

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 07:13:22.275806
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "family_strategies",
        sa.Column("family", sa.String(length=100), nullable=False),
        sa.Column("strategy", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("fitness", sa.JSON(), nullable=True),
        sa.Column("promoted_by", sa.String(length=200), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("family"),
    )
    op.create_table(
        "ga_runs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("training", sa.JSON(), nullable=False),
        sa.Column("population_size", sa.Integer(), nullable=False),
        sa.Column("generations", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("rlimit", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("current_generation", sa.Integer(), nullable=False),
        sa.Column("best_genome", sa.JSON(), nullable=True),
        sa.Column("best_fitness", sa.JSON(), nullable=True),
        sa.Column("baselines", sa.JSON(), nullable=False),
        sa.Column("promotion", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ga_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ga_runs_family"), ["family"], unique=False)
        batch_op.create_index(batch_op.f("ix_ga_runs_status"), ["status"], unique=False)
        batch_op.create_index(
            "ux_ga_runs_active_family",
            ["family"],
            unique=True,
            sqlite_where=sa.text("status = 'RUNNING'"),
            postgresql_where=sa.text("status = 'RUNNING'"),
        )

    op.create_table(
        "ga_generations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("population", sa.JSON(), nullable=False),
        sa.Column("fitness", sa.JSON(), nullable=True),
        sa.Column("best", sa.Float(), nullable=True),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("worst", sa.Float(), nullable=True),
        sa.Column("diversity", sa.Float(), nullable=True),
        sa.Column("evaluations", sa.Integer(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["ga_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ga_generations", schema=None) as batch_op:
        batch_op.create_index("ux_ga_generations_run_number", ["run_id", "number"], unique=True)

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_family"), ["family"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_family"))

    with op.batch_alter_table("ga_generations", schema=None) as batch_op:
        batch_op.drop_index("ux_ga_generations_run_number")

    op.drop_table("ga_generations")
    with op.batch_alter_table("ga_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_ga_runs_active_family",
            sqlite_where=sa.text("status = 'RUNNING'"),
            postgresql_where=sa.text("status = 'RUNNING'"),
        )
        batch_op.drop_index(batch_op.f("ix_ga_runs_status"))
        batch_op.drop_index(batch_op.f("ix_ga_runs_family"))

    op.drop_table("ga_runs")
    op.drop_table("family_strategies")
