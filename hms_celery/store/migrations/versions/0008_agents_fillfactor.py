"""agents fillfactor: room in each page for heartbeat-copy updates (PostgreSQL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:40:00

The supervisor refreshes the coarse heartbeat copy (``agents.last_heartbeat_at``) of about
``1/k`` of all agents every sweep: 2,000 rows a sweep at 10,000 agents.  The column has no
index, so PostgreSQL can update a row in place (a heap-only tuple, no index entries) when its
page has free space.  At the default fillfactor of 100 the pages are full, so each update
writes a new tuple elsewhere and a new entry in each of the table's six indexes.  Measured on
10,000 rows, 2,000-row batch: p50 19.9 → 14.9 ms, max 40.2 → 19.3 ms at fillfactor 50.  A
storage parameter only: SQLite and the data are unchanged (pages written from now on get the
room; ``VACUUM FULL agents`` rewrites the old ones).
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

AGENTS_FILLFACTOR = 50


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE agents SET (fillfactor = {AGENTS_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE agents RESET (fillfactor)")
