"""The SQL store (SQLAlchemy + Alembic): tasks, attempts, proof results, audit log."""
