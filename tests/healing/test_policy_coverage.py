"""Policy coverage: under the chaos scenarios, every agent action in the audit log has an ALLOW
policy decision before it, for the same action and subject — 100 %.

The scenarios are the chaos tests' own (a prover SIGKILLed mid-proof, a wedged pool, an agent
that crashes at every start), the circuit breakers on a live agent, a GA run started by the
supervisor's trigger and promoted, and agents spawned and stopped through the client.  An
audit event that looks like an action (:data:`~hms_celery.policy.engine.ACTION_PREFIXES`) but
is not declared in :data:`~hms_celery.policy.engine.ACTION_EVENTS` fails the test too.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hms_celery import client
from hms_celery.client.local_stack import LocalStack
from hms_celery.healing import breakers
from hms_celery.policy.engine import ACTION_EVENTS, ACTION_PREFIXES, DECISION_EVENT
from hms_celery.store.db import connection_scope
from hms_celery.store.models import AuditEvent
from tests.genetic import test_ga_stack as ga_scenarios
from tests.healing import test_chaos as chaos
from tests.support import FAST_SETTINGS, configure_process, stack_redis_url, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]


def policy_broker(stack_env: dict[str, str]) -> str:
    """The broker database of the policy tests (5 unless HMS_TEST_STACK_REDIS_URL says)."""
    return stack_redis_url(stack_env["HMS_BROKER_URL"], db=5)


def last_audit_id() -> int:
    with connection_scope() as conn:
        return int(conn.execute(select(func.max(AuditEvent.id))).scalar() or 0)


def events_after(first_id: int) -> list[dict[str, Any]]:
    with connection_scope() as conn:
        rows = conn.execute(
            select(AuditEvent.id, AuditEvent.action, AuditEvent.subject, AuditEvent.details)
            .where(AuditEvent.id > first_id)
            .order_by(AuditEvent.id)
        )
        return [dict(r._mapping) for r in rows]


def is_action(name: str) -> bool:
    return name in ACTION_EVENTS or name.startswith(ACTION_PREFIXES)


def assert_every_action_decided(first_id: int) -> Counter[str]:
    """Every action event after ``first_id`` follows an ALLOW for its kind and subject;
    returns how many of each action there were."""
    allowed: list[dict[str, Any]] = []
    actions: Counter[str] = Counter()
    problems = []
    for event in events_after(first_id):
        details = event["details"] or {}
        if event["action"] == DECISION_EVENT:
            if details.get("outcome") == "allow":
                allowed.append(event)
            continue
        if not is_action(event["action"]):
            continue
        actions[event["action"]] += 1
        kinds = ACTION_EVENTS.get(event["action"])
        if kinds is None:
            problems.append(f"undeclared action event {event['action']} #{event['id']}")
            continue
        if not any(
            d["details"].get("kind") in kinds
            and (d["subject"] == event["subject"] or event["subject"] in d["details"]["also"])
            for d in allowed
        ):
            problems.append(
                f"{event['action']} of {event['subject']} (#{event['id']}) has no earlier "
                f"ALLOW for {kinds}"
            )
    assert not problems, "\n".join(problems)
    return actions


# ----------------------------------------------------------------------------- scenarios
def breaker_scenario(stack: LocalStack) -> None:
    from hms_celery.healing.heartbeats import redis_client

    agent = stack.spawn(["prove.z3"])
    redis = redis_client()
    key = breakers.agent_key(agent)

    def seen(action: str) -> bool:
        return any(
            e["action"] == action and e["subject"] == key for e in events_after(stack.first_id)
        )

    for _ in range(3):
        breakers.report_outcome(redis, agent, "z3", ok=False)
    wait_until(lambda: seen("breaker.open"), 30, "the breaker to open")
    wait_until(lambda: seen("breaker.half_open"), 30, "the half-open trial")
    breakers.report_outcome(redis, agent, "z3", ok=True)
    wait_until(lambda: seen("breaker.closed"), 30, "the breaker to close")


def client_agents_scenario(stack: LocalStack) -> None:
    from hms_celery.agents import registry

    agent = client.spawn_agent(["prove.z3"], {"concurrency": 1})
    client.wait_for_agent(agent, timeout=60)
    client.stop_agent(agent)
    wait_until(lambda: registry.get_agent(agent)["state"] == "TERMINATED", 60, "the stopped agent")


Scenario = tuple[dict[str, str], Callable[[LocalStack], None], set[str]]
SCENARIOS: dict[str, Scenario] = {
    "sigkill-mid-proof": (
        {},
        chaos.test_sigkill_mid_proof_reruns_once_elsewhere_and_respawns,
        {"recovery.respawn", "task.requeued", "agent.spawned"},
    ),
    "wedged-pool": (
        {},
        chaos.test_wedged_pool_is_degraded_then_restarted,
        {"recovery.restart", "agent.spawned"},
    ),
    "crash-loop": (
        {},
        chaos.test_crash_looping_agent_hits_the_restart_limit_and_alerts,
        {"recovery.respawn", "recovery.alert", "agent.spawned"},
    ),
    "breakers": (
        {"HMS_BREAKER_THRESHOLD": "3", "HMS_BREAKER_COOLDOWN": "2"},
        breaker_scenario,
        {"breaker.open", "breaker.half_open", "breaker.closed"},
    ),
    "ga-trigger-and-promotion": (
        {
            "HMS_DEFAULT_STRATEGY": "z3-default",
            "HMS_PROVER_RLIMIT": "200000",
            "HMS_GA_TRIGGER_FAILURES": "3",
            "HMS_GA_TRIGGER_WINDOW": "300",
            "HMS_GA_POPULATION": "8",
            "HMS_GA_GENERATIONS": "4",
            "HMS_GA_RLIMIT": "200000",
            "HMS_GA_TIMEOUT": "5",
            "HMS_GA_AUTO_PROMOTE": "true",
            "HMS_GA_STALL_AFTER": "5",
        },
        ga_scenarios.test_failing_family_triggers_a_run_whose_winner_is_used,
        {"ga.triggered", "ga.run.started", "strategy.promoted"},
    ),
    "client-spawn-and-stop": (
        {},
        client_agents_scenario,
        {"agent.spawned", "agent.stopped"},
    ),
}


@pytest.fixture
def policy_stack(
    request: pytest.FixtureRequest, stack_env: dict[str, str], tmp_path: Path
) -> Iterator[LocalStack]:
    settings = SCENARIOS[request.param][0]
    env = {**stack_env, **FAST_SETTINGS, "HMS_BROKER_URL": policy_broker(stack_env), **settings}
    configure_process(env)
    from hms_celery.healing.heartbeats import redis_client

    redis_client().flushdb()
    first_id = last_audit_id()
    stack = LocalStack(env, tmp_path)
    stack.first_id = first_id  # type: ignore[attr-defined]
    try:
        stack.spawn(["supervisor"])
        yield stack
    finally:
        stack.close()
        for name in set(env) - set(stack_env):  # configure_process only adds variables
            os.environ.pop(name, None)
        configure_process(stack_env)


@pytest.mark.parametrize("policy_stack", list(SCENARIOS), indirect=True)
def test_every_action_of_the_scenario_was_policy_checked_first(
    policy_stack: LocalStack, request: pytest.FixtureRequest
) -> None:
    name = request.node.callspec.params["policy_stack"]
    _settings, scenario, expected = SCENARIOS[name]
    scenario(policy_stack)
    first_id = policy_stack.first_id  # type: ignore[attr-defined]
    policy_stack.close()  # the shutdown's own events are checked too
    policy_stack.close = lambda *a, **k: None  # type: ignore[method-assign]
    actions = assert_every_action_decided(first_id)
    assert expected <= set(actions), (expected, actions)


def test_an_undeclared_action_event_fails_the_coverage_check(stack_env: dict[str, str]) -> None:
    from hms_celery.store.repository import audit

    first_id = last_audit_id()
    with connection_scope() as conn:
        audit(conn, "test", "recovery.reboot", "agent-x")  # looks like an action, not declared
    with pytest.raises(AssertionError, match=r"undeclared action event recovery\.reboot"):
        assert_every_action_decided(first_id)


def test_an_action_without_a_decision_fails_the_coverage_check(stack_env: dict[str, str]) -> None:
    from hms_celery.store.repository import audit

    first_id = last_audit_id()
    with connection_scope() as conn:
        audit(conn, "test", "task.requeued", "task-without-decision")
    with pytest.raises(AssertionError, match=r"task\.requeued of task-without-decision"):
        assert_every_action_decided(first_id)
