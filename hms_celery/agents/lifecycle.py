"""Agent lifecycle from Celery's worker signals: register on start, TERMINATED on shutdown.

An agent's identity is its worker node name.  A worker started by an agent host gets its
lineage, owning host and config through the environment (``HMS_AGENT_LINEAGE``,
``HMS_AGENT_HOST``, ``HMS_AGENT_CONFIG``); a worker started by hand is its own lineage.
Registration failures (the store down at start-up) are logged, never fatal: the sweep
registers nothing by itself, so the worker retries on its next heartbeat-driven report.

An agent records its stack (:attr:`~hms_celery.settings.Settings.stack_id`, its broker
database); before it starts it refuses (exit 2) a broker database that serves another store
(:mod:`hms_celery.healing.stack_claim`) and a node name that a running agent of another stack
has in this store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
from datetime import datetime
from typing import Any

import redis
from celery import signals
from celery.worker.control import control_command

from hms_celery import __version__
from hms_celery.agents import registry
from hms_celery.app import app
from hms_celery.errors import HMSError
from hms_celery.healing import stack_claim
from hms_celery.healing.heartbeats import HeartbeatMonitorStep, redis_client
from hms_celery.settings import get_settings, is_redis_url
from hms_celery.store.db import dispose_engines
from hms_celery.store.models import utcnow

log = logging.getLogger(__name__)

app.steps["worker"].add(HeartbeatMonitorStep)
app.steps["worker"].add(stack_claim.StackClaimStep)  # renews the claim checked below


def agent_config() -> dict[str, Any]:
    """The config this agent was started with (``HMS_AGENT_CONFIG``, JSON)."""
    try:
        return json.loads(os.environ.get("HMS_AGENT_CONFIG") or "{}")
    except ValueError:
        return {}


def _skills_for(queues: list[str]) -> list[str]:
    from hms_celery.runtime.skills import SKILLS

    by_queue = {skill.queue: skill_id for skill_id, skill in SKILLS.items()}
    # Every agent consumes the health broadcast; it is not one of the skills it was given.
    return sorted({by_queue[q] for q in queues if q in by_queue} - {"health"})


def _register(
    nodename: str, state: str, reason: str, queues: list[str], concurrency: int | None = None
) -> None:
    config = agent_config()
    if concurrency:
        config["concurrency"] = concurrency  # what the pool really runs
    try:
        registry.register_agent(
            nodename,
            host=socket.gethostname(),
            pid=os.getpid(),
            skills=_skills_for(queues),
            queues=queues,
            config=config,
            version=__version__,
            lineage=os.environ.get("HMS_AGENT_LINEAGE") or None,
            host_id=os.environ.get("HMS_AGENT_HOST") or None,
            state=state,
            reason=reason,
            stack=get_settings().stack_id,
        )
    except (HMSError, Exception) as exc:  # the store may be down: never stop the worker
        log.error("could not register agent %s as %s: %s", nodename, state, exc)
    finally:
        dispose_engines()  # the pool children fork after this: no shared connections


def consumed_queues(app_queues: Any) -> list[str]:
    """Names of the queues a worker consumes (a broadcast queue by its alias)."""
    return sorted({q.alias or q.name for q in app_queues.consume_from.values()})


@signals.celeryd_init.connect
def _claim_broker_database(**_: Any) -> None:
    """Refuse (exit 2) to serve a broker database (with AMQP: a coordination Redis database)
    that another stack uses."""
    settings = get_settings()
    broker = settings.resolved_broker_url
    if not broker or not (is_redis_url(broker) or settings.redis_url):
        return  # no broker: app.py already refused; no Redis at all (memory://): no claim
    try:
        stack_claim.claim(redis_client())
    except stack_claim.StackConflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except redis.RedisError as exc:  # the worker's own connection retries report it
        log.warning("could not claim the broker database: %s", exc)


#: An agent row of another stack updated this recently is a running agent, not a leftover.
NAME_IN_USE_S = 60.0


@signals.celeryd_init.connect
def _refuse_a_taken_name(sender: str, **_: Any) -> None:
    """Refuse (exit 2) a node name that a running agent of another stack has in this store:
    two stacks would overwrite one agent row and judge each other's worker."""
    settings = get_settings()
    if settings.resolved_broker_url is None:
        return
    try:
        other = registry.get_agent(sender)
    except Exception as exc:  # the store may be down: registration reports it later
        log.warning("could not check the agent name %s: %s", sender, exc)
        return
    finally:
        dispose_engines()
    if not other or other.get("stack") in (None, settings.stack_id):
        return
    if other["state"] in registry.ENDED:
        return
    stamps = (other.get("last_heartbeat_at"), other["updated_at"])
    seen = max(datetime.fromisoformat(t) for t in stamps if t)  # the store's: aware
    age = (utcnow() - seen).total_seconds()
    if age <= NAME_IN_USE_S:
        print(
            f"error: agent name {sender!r} is in use by a running agent of stack "
            f"{other['stack']} in this store ({other['state']}, {age:.0f}s ago); start this "
            "worker with another -n name",
            file=sys.stderr,
        )
        raise SystemExit(2)


@signals.celeryd_after_setup.connect
def _on_setup(sender: str, instance: Any, **_: Any) -> None:
    """Every agent consumes the health broadcast, whatever ``-Q`` says."""
    from hms_celery.runtime.skills import get_skill

    health = get_skill("health").queue
    queues = instance.app.amqp.queues
    if health not in consumed_queues(queues):
        try:
            queues.select_add(queues[health])  # the Broadcast declared by the registry
        except KeyError:
            queues.select_add(health)
    _register(sender, registry.INITIALIZING, "worker starting", consumed_queues(queues))


@signals.worker_ready.connect
def _on_ready(sender: Any, **_: Any) -> None:
    queues = consumed_queues(sender.app.amqp.queues)
    concurrency = getattr(getattr(sender, "controller", None), "concurrency", None)
    _register(sender.hostname, registry.READY, "worker ready", queues, concurrency)


@control_command()
def hms_restart_pool(state: Any, **_: Any) -> dict[str, str]:
    """Remote control: SIGKILL this worker's pool processes; the pool starts fresh ones.

    Celery's own ``pool_restart`` asks each child to exit between tasks, which a wedged child
    never reaches; a killed child's task is requeued (``reject_on_worker_lost``).
    """
    pids = list(state.consumer.pool.info.get("processes") or [])
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return {"ok": f"killed {len(pids)} pool process(es): {pids}"}


@signals.worker_shutdown.connect
def _on_shutdown(sender: Any, **_: Any) -> None:
    try:
        registry.transition(sender.hostname, registry.TERMINATED, "graceful shutdown")
    except Exception as exc:
        log.error("could not record the shutdown of %s: %s", sender.hostname, exc)
