"""Helpers shared by the benchmark scripts (percentiles, throwaway databases, latencies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``; NaN when empty."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def create_database(name: str) -> str:
    """A fresh PostgreSQL database on the local server; returns its SQLAlchemy URL."""
    import psycopg2

    admin = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    """Drop a database made by :func:`create_database` (after closing our connections)."""
    import psycopg2

    from hms_celery.store.db import dispose_engines

    dispose_engines()
    admin = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def start_latency(status: dict[str, Any]) -> float:
    """Scheduling latency of a task: its first attempt's start − its submission (seconds)."""
    created = datetime.fromisoformat(status["timings"]["created_at"])
    started = datetime.fromisoformat(status["attempts"][0]["started_at"])
    return (started - created).total_seconds()
