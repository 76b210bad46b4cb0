"""Test support shared by the service tests: waiting, and fast self-healing settings."""

from __future__ import annotations

import base64
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

#: Self-healing settings fast enough for tests.
FAST_SETTINGS = {
    "HMS_SWEEP_INTERVAL": "1",
    "HMS_HEALTH_INTERVAL": "1",
    "HMS_HEARTBEAT_TIMEOUT": "4",
    "HMS_REPORT_TIMEOUT": "5",
    "HMS_RESTART_BACKOFF": "0.5",
    # The session's store holds other tests' failures: no GA run unless a test asks for one.
    "HMS_GA_TRIGGER_FAILURES": "0",
}


#: A true claim over a symbolic size that no argument for every size covers today (a sum over
#: ``Finset.range (n + 1)``), so HMS checks it size by size: BOUNDED — and slow with a large
#: max_size (about 14 s for 200 on this machine), which the healing tests use to keep a task
#: in flight.
BOUNDED_ONLY = "∀ (n : ℕ) (f : ℕ → ℝ), 0 ≤ ∑ i in Finset.range (n + 1), f i * f i"


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def decide_text(text: str, timeout_s: float = 20) -> tuple[Any, str, dict | None]:
    """HMS's verdict, reason and counterexample for a statement text, in process, through the
    whole path ``parse_statement`` → ``prove`` (a ``StatementError`` counts as ERROR)."""
    from hms_celery.errors import StatementError
    from hms_celery.verification import parse_statement
    from hms_celery.verification.prover import prove
    from hms_celery.verification.verdict import Verdict

    try:
        statement = parse_statement(text)
    except StatementError as exc:
        return Verdict.ERROR, exc.message, None
    out = prove(statement, timeout_s=timeout_s)
    return out.verdict, out.reason, out.counterexample


def http_get(
    url: str, auth: tuple[str, str] | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    """GET ``url`` with optional basic auth: (status, body); an HTTP error status is
    returned, not raised."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def scratch_database(admin_url: str, prefix: str, *, migrate: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database on the test server (migrated if asked), dropped
    afterwards; yields its SQLAlchemy URL."""
    import psycopg2

    from hms_celery.store.db import dispose_engines
    from hms_celery.store.migrate import upgrade

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(admin_url, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()  # a fresh connection drops it: tests may restart PostgreSQL meanwhile
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    url = f"{base}/{name}"
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        dispose_engines()
        admin = psycopg2.connect(admin_url, connect_timeout=10)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
