"""Check the stack: broker, store and the agents that answer a ping."""

from __future__ import annotations

from typing import Any

from hms_celery.app import app, reset_connections
from hms_celery.errors import InfrastructureError
from hms_celery.settings import get_settings
from hms_celery.store.db import check_database, safe_url


def ping_supervisor(timeout: float = 1.0) -> dict[str, Any]:
    """Check the stack: broker, store and the agents (workers) that answer a ping.

    Returns ``{"ok", "broker", "database", "agents", "errors"}``; raises only
    :class:`~hms_celery.settings.NoStackError` when there is no broker to ask at all.
    """
    settings = get_settings()
    report: dict[str, Any] = {
        "broker": safe_url(settings.effective_broker_url),
        "database": safe_url(settings.effective_database_url),
        "agents": {},
        "errors": [],
    }
    for attempt in range(2):  # a pooled connection may be stale after a broker restart
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=settings.connect_timeout)
            replies = app.control.ping(timeout=timeout) or []
            report["agents"] = {name: reply for item in replies for name, reply in item.items()}
            break
        except Exception as exc:  # kombu, redis-py and socket errors alike: report, never raise
            if attempt == 1:
                report["errors"].append(f"broker unreachable at {report['broker']}: {exc}")
            else:
                reset_connections()
    try:
        check_database()
    except InfrastructureError as exc:
        report["errors"].append(str(exc))
    report["ok"] = not report["errors"]
    return report
