"""Shared fixtures: real Redis, real PostgreSQL, real Celery worker processes.

Service tests use the machine's Redis (127.0.0.1:6379, a dedicated database number) and
PostgreSQL (127.0.0.1:5432, a fresh database per test session, dropped afterwards).  Override
with HMS_TEST_REDIS_URL / HMS_TEST_PG_ADMIN_URL.  Tests on RabbitMQ (127.0.0.1:5672, override
with HMS_TEST_AMQP_URL) get a virtual host of their own, made and deleted with rabbitmqctl.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    AMQP_URL,
    BROKERS,
    PG_ADMIN_URL,
    REDIS_URL,
    REPO,
    WorkerProcess,
    configure_process,
    rabbitmq_vhost,
    rabbitmqctl,
    stack_redis_url,
)

__all__ = [
    "AMQP_URL",
    "BROKERS",
    "PG_ADMIN_URL",
    "REDIS_URL",
    "REPO",
    "WorkerProcess",
    "configure_process",
    "rabbitmq_vhost",
    "rabbitmqctl",
    "stack_redis_url",
]

# Tests must never pick up a developer's own configuration or a running `hms up`.
for _name in list(os.environ):
    if _name.startswith("HMS_") and not _name.startswith("HMS_TEST_"):
        del os.environ[_name]


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL}: {exc} (.ci/run starts it)")
    client.flushdb()
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    import psycopg2

    from tests.support import scratch_database

    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL}: {exc} (.ci/run starts it)")
    with scratch_database(PG_ADMIN_URL, "hms_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hms.db'}"


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own."""
    with rabbitmq_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def stack_env(
    redis_url: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Environment of the service tests: local Redis broker, fresh PostgreSQL store."""
    from hms_celery.store.migrate import upgrade

    data_dir = tmp_path_factory.mktemp("hms-data")
    env = {
        "HMS_BROKER_URL": redis_url,
        "HMS_DATABASE_URL": pg_url,
        "HMS_DATA_DIR": str(data_dir),
        "HMS_PROVER_TIMEOUT": "60",
    }
    configure_process(env)
    upgrade(pg_url)
    return env


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """One prove.z3 worker for the whole session."""
    proc = WorkerProcess(stack_env)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def ga_worker(stack_env: dict[str, str], worker: WorkerProcess) -> Iterator[WorkerProcess]:
    """A worker on the ``ga`` queue for the session (the ``worker`` fixture proves)."""
    proc = WorkerProcess(stack_env, queues="ga", concurrency=1)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
