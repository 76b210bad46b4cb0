"""Approvals end to end: a rule parks a respawn, `hms approvals` (the console script) lists it,
a person approves or denies it, or nobody does and it expires — on real workers, with the
supervisor carrying the approved respawn out; every step audited in order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hms_celery.agents import registry
from hms_celery.client.local_stack import LocalStack
from hms_celery.store import approvals as approval_store
from hms_celery.store import repository
from tests.healing.test_policy_coverage import assert_every_action_decided, last_audit_id
from tests.healing.test_policy_coverage import policy_broker as broker_for
from tests.support import FAST_SETTINGS, REPO, configure_process, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

HMS = str(Path(sys.executable).parent / "hms")
RULES = """
[rules.respawn-needs-a-person]
kind = "require_approval"
description = "a person approves every respawn"
actions = ["respawn"]
"""


def hms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script."""
    return subprocess.run(
        [HMS, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def make_stack(stack_env: dict[str, str], tmp_path: Path, ttl: str) -> LocalStack:
    rules = tmp_path / "policy.toml"
    rules.write_text(RULES)
    env = {
        **stack_env,
        **FAST_SETTINGS,
        "HMS_BROKER_URL": broker_for(stack_env),
        "HMS_POLICY_FILE": str(rules),
        "HMS_APPROVAL_TTL": ttl,
    }
    configure_process(env)
    from hms_celery.healing.heartbeats import redis_client

    redis_client().flushdb()
    stack = LocalStack(env, tmp_path)
    try:
        stack.spawn(["supervisor"])
    except BaseException:
        stack.close()
        raise
    return stack


def restore(stack_env: dict[str, str]) -> None:
    """Back to the session's settings: without this module's rules file (configure_process
    only adds variables), so later tests do not park their respawns."""
    for name in ("HMS_POLICY_FILE", "HMS_APPROVAL_TTL"):
        os.environ.pop(name, None)
    configure_process(stack_env)


@pytest.fixture
def stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[LocalStack]:
    s = None
    try:
        s = make_stack(stack_env, tmp_path, ttl="600")
        yield s
    finally:
        if s is not None:
            s.close()
        restore(stack_env)


@pytest.fixture
def short_ttl_stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[LocalStack]:
    s = None
    try:
        s = make_stack(stack_env, tmp_path, ttl="3")
        yield s
    finally:
        if s is not None:
            s.close()
        restore(stack_env)


def pending_for(agent: str) -> dict[str, Any] | None:
    """The pending approval about ``agent``, as `hms approvals --json` lists it."""
    listed = hms("approvals", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout) if r["subject"] == agent]
    return rows[0] if rows else None


def kill(stack: LocalStack, agent: str) -> None:
    os.killpg(stack.pid(agent), signal.SIGKILL)
    wait_until(lambda: registry.get_agent(agent)["state"] == "FAILED", 30, "FAILED")


def lineage(agent: str) -> list[dict[str, Any]]:
    return [a for a in registry.list_agents() if a["lineage"] == agent]


def actions_of(agent: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e["action"], e["details"]) for e in repository.audit_events(agent, limit=500)]


def index(events: list[tuple[str, dict[str, Any]]], action: str, **match: Any) -> int:
    for i, (name, details) in enumerate(events):
        if name == action and all(details.get(k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no {action} {match} in {[n for n, _ in events]}")


def test_a_parked_respawn_runs_once_approved_and_a_denied_one_never(stack: LocalStack) -> None:
    first_id = last_audit_id()
    victim = stack.spawn(["prove.z3"])
    kill(stack, victim)
    parked = wait_until(lambda: pending_for(victim), 30, "the parked respawn")
    assert (parked["kind"], parked["status"], parked["rule"]) == (
        "respawn",
        "PENDING",
        "respawn-needs-a-person",
    )
    table = hms("approvals")
    assert table.returncode == 0 and victim in table.stdout and "respawn" in table.stdout
    assert [a["id"] for a in lineage(victim)] == [victim]  # nothing respawned meanwhile

    approved = hms("approvals", "approve", str(parked["id"]))
    assert approved.returncode == 0, approved.stderr
    assert f"approval {parked['id']}: approved respawn of {victim}" in approved.stdout
    new = wait_until(
        lambda: [a for a in lineage(victim) if a["id"] != victim and a["state"] == "READY"],
        60,
        "the approved respawn",
    )
    assert new[0]["skills"] == ["prove.z3"]
    wait_until(
        lambda: approval_store.get(parked["id"])["status"] == "DONE", 30, "the approval done"
    )

    events = actions_of(victim)
    asked = index(events, "policy.decision", kind="respawn", outcome="approval")
    assert events[asked][1]["rule"] == "respawn-needs-a-person"
    said_yes = index(events, "approval.approved", approval_id=parked["id"])
    allowed = index(events, "policy.decision", kind="respawn", outcome="allow")
    assert events[allowed][1]["rule"] == f"approval:{parked['id']}"
    respawned = index(events, "recovery.respawn")
    done = index(events, "approval.done", approval_id=parked["id"])
    assert asked < said_yes < allowed < respawned < done
    assert events[respawned][1]["new_agent"] == new[0]["id"]

    again = hms("approvals", "approve", str(parked["id"]))
    assert again.returncode == 2 and "is DONE" in again.stderr
    unknown = hms("approvals", "deny", "987654321")
    assert unknown.returncode == 2 and "no approval 987654321" in unknown.stderr

    # The second kill of the line is denied by a person: no agent is started for it.
    second = new[0]["id"]
    kill(stack, second)
    parked_again = wait_until(lambda: pending_for(second), 30, "the second parked respawn")
    denied = hms("approvals", "deny", str(parked_again["id"]))
    assert denied.returncode == 0 and "dropped" in denied.stdout, denied.stderr
    assert approval_store.get(parked_again["id"])["status"] == "DENIED"
    events = actions_of(second)
    assert index(events, "approval.denied") > index(events, "policy.decision", outcome="approval")
    assert "recovery.respawn" not in [name for name, _ in events]
    everyone = hms("approvals", "--all", "--json")
    statuses = {r["id"]: r["status"] for r in json.loads(everyone.stdout)}
    assert statuses[parked["id"]] == "DONE" and statuses[parked_again["id"]] == "DENIED"
    assert {a["id"] for a in lineage(victim) if a["state"] == "READY"} == set()
    assert_every_action_decided(first_id)


def test_an_undecided_approval_expires_and_is_dropped(short_ttl_stack: LocalStack) -> None:
    victim = short_ttl_stack.spawn(["prove.z3"])
    kill(short_ttl_stack, victim)
    parked = wait_until(
        lambda: approval_store.open_for("respawn", victim), 30, "the parked respawn"
    )
    expired = wait_until(
        lambda: approval_store.get(parked["id"])["status"] == "EXPIRED", 30, "the expiry"
    )
    assert expired
    events = actions_of(victim)
    assert index(events, "approval.expired") > index(events, "policy.decision", outcome="approval")
    assert "recovery.respawn" not in [name for name, _ in events]
    assert [a["id"] for a in lineage(victim)] == [victim]
    late = hms("approvals", "approve", str(parked["id"]))
    assert late.returncode == 2 and "is EXPIRED" in late.stderr


def test_a_broken_policy_file_stops_the_cli_and_a_worker_naming_the_rule(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad-policy.toml"
    bad.write_text('[rules.cap]\nkind = "max_agents_per_host"\nlimit = -1\n')
    env = {**stack_env, "HMS_POLICY_FILE": str(bad)}
    listed = hms("approvals", env=env)
    assert listed.returncode == 2
    assert f"{bad}: rule 'cap': limit:" in " ".join(listed.stderr.split())

    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "hms_celery", "worker", "-Q", "prove.z3",
         "-n", "policy-check@%h", "--without-mingle", "--without-gossip"],
        env={**os.environ, **env, "HMS_BROKER_URL": broker_for(stack_env)},
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert worker.returncode != 0
    assert "rule 'cap': limit:" in worker.stdout + worker.stderr
