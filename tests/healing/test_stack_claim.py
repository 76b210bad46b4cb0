"""The stack's claim on its Redis database: kept while an agent of the stack lives, released
when the last one stops cleanly, refused to another store meanwhile (real Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from hms_celery.healing import stack_claim
from hms_celery.settings import load_settings

pytestmark = pytest.mark.services

CLAIM_REDIS_DB = 15  # this module's own database


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    db = redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{CLAIM_REDIS_DB}")
    db.flushdb()
    return db


def _settings(tmp_path: Path, store: str):  # type: ignore[no-untyped-def]
    return load_settings(
        broker_url=f"redis://127.0.0.1:6379/{CLAIM_REDIS_DB}",
        database_url=f"sqlite:///{tmp_path / store}.db",
        data_dir=tmp_path,
    )


def test_the_last_agent_to_stop_releases_the_claim(client: redis.Redis, tmp_path: Path) -> None:
    mine, other = _settings(tmp_path, "a"), _settings(tmp_path, "b")
    stack_claim.claim(client, mine, claimant="prover@h")
    stack_claim.claim(client, mine, claimant="supervisor@h")
    with pytest.raises(stack_claim.StackConflictError, match=r"a\.db"):
        stack_claim.claim(client, other, claimant="intruder@h")
    assert not stack_claim.release(client, "prover@h", mine)  # the supervisor still holds it
    with pytest.raises(stack_claim.StackConflictError):
        stack_claim.check(client, other)
    assert stack_claim.release(client, "supervisor@h", mine)  # the last one: released
    assert client.get(stack_claim.CLAIM_KEY) is None
    stack_claim.claim(client, other, claimant="next@h")  # the database is free at once
    stack_claim.check(client, other)


def test_a_dead_claimant_does_not_hold_the_claim_after_the_ttl(
    client: redis.Redis, tmp_path: Path
) -> None:
    mine = _settings(tmp_path, "a")
    stack_claim.claim(client, mine, claimant="alive@h")
    # An agent SIGKILLed long ago: its last renewal is older than the claim's TTL.
    stale_ms = (float(client.time()[0]) - 2 * stack_claim.CLAIM_TTL_S) * 1000
    client.zadd(stack_claim.CLAIMANTS_KEY, {"killed@h": stale_ms})
    assert stack_claim.release(client, "alive@h", mine)
    assert client.get(stack_claim.CLAIM_KEY) is None


def test_release_never_drops_another_stores_claim(client: redis.Redis, tmp_path: Path) -> None:
    mine, other = _settings(tmp_path, "a"), _settings(tmp_path, "b")
    stack_claim.claim(client, other, claimant="theirs@h")
    assert not stack_claim.release(client, "theirs@h", mine)  # a claimant of another store
    with pytest.raises(stack_claim.StackConflictError):
        stack_claim.check(client, mine)
