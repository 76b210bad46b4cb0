"""Fixtures of the broker tests: an AMQP stack per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hms_celery.healing.heartbeats import redis_client
from tests.support import configure_process, rabbitmq_vhost, stack_redis_url


@pytest.fixture(scope="module")
def amqp_env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The session's store, a fresh vhost as the broker, the stacks' Redis database for HMS's
    keys; this process (the client side) points at them, and back afterwards.

    That database must not be the session's (HMS_TEST_REDIS_URL) while the session `worker`
    runs: its claim names the session's Redis stack, so these agents would be refused (by
    design: one coordination database per stack).  The defaults keep them apart (11 and 10).
    """
    coordination = stack_redis_url(stack_env["HMS_BROKER_URL"])
    with rabbitmq_vhost("hms_amqp") as broker:
        env = {**stack_env, "HMS_BROKER_URL": broker, "HMS_REDIS_URL": coordination}
        configure_process(env)
        redis_client().flushdb()
        try:
            yield env
        finally:
            configure_process(stack_env, unset=["HMS_REDIS_URL"])
