"""A Redis database of the deploy tests' own (6): their stacks run agents, beat and sweeps,
which must not meet the session's workers (database 11) or another module's stack."""

from __future__ import annotations

import pytest

DEPLOY_REDIS_DB = 6


@pytest.fixture(scope="session")
def deploy_redis_url(redis_url: str) -> str:
    import redis

    url = f"{redis_url.rsplit('/', 1)[0]}/{DEPLOY_REDIS_DB}"
    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    return url
