"""The incremental sweep on the real store and Redis: it looks only at what changed, and what
changed is what a sweep over every agent would have acted on.

No worker runs: the test writes registry rows, heartbeats (as the heartbeat monitor does) and a
health round itself, sweeps once in full, changes a few agents in every way a sweep must
notice, and sweeps again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from tests.support import configure_process, stack_redis_url

pytestmark = pytest.mark.services

QUIET = 40  # healthy agents nothing happens to


@pytest.fixture
def stack(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    # A broker database of its own: its stack's agents are the only ones this sweep judges.
    broker = stack_redis_url(stack_env["HMS_BROKER_URL"], db=8)
    env = {
        **stack_env,
        "HMS_BROKER_URL": broker,
        "HMS_HEARTBEAT_TIMEOUT": "6",
        "HMS_REPORT_TIMEOUT": "10",
    }
    configure_process(env)
    from hms_celery.healing.heartbeats import redis_client

    redis_client().flushdb()
    try:
        yield env
    finally:
        redis_client().flushdb()
        configure_process(stack_env)


def _register(names: list[str], stack_id: str, **backdate: float) -> None:
    """READY agents on another machine (no process probe), registered a minute ago."""
    from hms_celery.agents import registry
    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Agent

    for name in names:
        registry.register_agent(
            name, host="elsewhere", pid=None, skills=["prove.z3"], queues=["prove.z3"],
            config={"concurrency": 2}, version="test", state=registry.READY, reason="test",
            stack=stack_id,
        )  # fmt: skip
    _set(names, started_at=time.time() - 60, updated_at=time.time() - 60, **backdate)
    with connection_scope() as conn:
        conn.execute(
            update(Agent.__table__)
            .where(Agent.__table__.c.id.in_(names))
            .values(last_report={"status": "Healthy", "problems": []})
        )


def _set(names: list[str], **epochs: float) -> None:
    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Agent

    table = Agent.__table__
    values = {k: datetime.fromtimestamp(v, UTC) for k, v in epochs.items()}
    with connection_scope() as conn:
        conn.execute(update(table).where(table.c.id.in_(names)).values(**values))


def _beats(names: list[str], at: float, changed: bool = False, **fields: Any) -> None:
    from hms_celery.healing.heartbeats import HeartbeatStore, redis_client

    beats = {n: {"seen": at, "state": "online", "active": 0, "pid": None, **fields} for n in names}
    HeartbeatStore(redis_client()).record_many(
        beats, now=time.time(), changed=beats if changed else []
    )


def test_an_incremental_sweep_acts_on_every_change_and_reads_only_those(
    stack: dict[str, str],
) -> None:
    from hms_celery.agents import registry
    from hms_celery.healing.health import LAST_ROUND_KEY
    from hms_celery.healing.heartbeats import BEATS_KEY, SEEN_KEY, redis_client
    from hms_celery.healing.supervisor import sweep
    from hms_celery.settings import get_settings
    from hms_celery.store import repository
    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Agent

    rc = redis_client()
    tag = uuid.uuid4().hex[:6]
    quiet = [f"quiet{i}-{tag}@elsewhere" for i in range(QUIET)]
    dead, lost, sick, wedged, busy, gone, bye = (
        f"{n}-{tag}@elsewhere" for n in ("dead", "lost", "sick", "wedged", "busy", "gone", "bye")
    )
    changing = [dead, lost, sick, wedged, busy, gone, bye]
    everyone = quiet + changing
    _register(everyone, get_settings().stack_id)
    now = time.time()
    _beats(everyone, now - 1, changed=True)  # first beats: the monitor marks them changed
    rc.set(LAST_ROUND_KEY, now - 30)  # every agent answered the last round
    _set(everyone, last_report_at=now - 2)
    task_id = f"t-{tag}"
    repository.record_submission(
        task_id, queue="prove.z3", payload={"statement": "∀ x : ℝ, x + 0 = x", "timeout": 5},
        theorem_id=None, family=None, actor="test",
    )  # fmt: skip
    repository.begin_attempt(task_id, agent=gone, pid=None, payload={}, queue="prove.z3")

    first = sweep(rc, now=now)  # no cursor yet: every agent
    assert first["full"] and first["agents"] == len(everyone) and first["transitions"] == []
    assert all(registry.get_agent(n)["last_heartbeat_at"] for n in everyone)  # copies stored

    # The changes, 4 s later.  Quiet agents keep beating (nothing new in their beats).
    now += 4
    _beats([*quiet, sick, wedged, gone], now - 0.5)
    _beats([dead], now - 7)  # its last beat, now 7 s old: stale
    rc.hdel(BEATS_KEY, lost)  # its beat vanished with Redis …
    rc.zrem(SEEN_KEY, lost)
    _set([lost], last_heartbeat_at=now - 60)  # … and the stored copy is old
    _beats([busy], now - 0.5, changed=True, active=1)
    _beats([bye], now - 0.2, changed=True, state="offline")
    rc.set(LAST_ROUND_KEY, now - 15)  # a round nobody but the quiet agents answered …
    _set([*quiet, dead, lost, sick, busy, gone, bye], last_report_at=now - 1)
    _set([wedged], last_report_at=now - 20)  # … and wedged never did
    with connection_scope() as conn:
        conn.execute(
            update(Agent.__table__)
            .where(Agent.__table__.c.id == sick)
            .values(last_report={"status": "Degraded", "problems": ["z3 down"]})
        )
    registry.transition(gone, registry.FAILED, "process exited with code -9")  # its host said

    second = sweep(rc, now=now)
    assert not second["full"]
    got = {t["agent"]: t["to"] for t in second["transitions"]}
    assert got == {
        dead: "FAILED",
        lost: "FAILED",
        sick: "DEGRADED",
        wedged: "DEGRADED",
        busy: "BUSY",
        bye: "TERMINATED",
    }
    assert second["agents"] < len(changing) + 5  # the quiet agents were not read
    status = repository.task_status(task_id)
    assert status["attempts"][0]["outcome"] == "LOST"  # the failed agent's work: requeued
    assert any(e["action"] == "task.requeued" for e in repository.audit_events(task_id))

    third = sweep(rc, now=now + 2)  # nothing new: no failure handled twice
    assert third["transitions"] == [] and not third["full"]
    assert not [a for a in third["actions"] if a["kind"] in ("REQUEUE", "RESPAWN", "ALERT")]
    # (a pool restarted and still degraded is restarted again, after its backoff: the policy)
    assert third["agents"] < len(changing) + 5
