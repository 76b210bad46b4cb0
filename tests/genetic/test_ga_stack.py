"""GA runs under the self-healing stack (agent host, supervisor, beat): a killed worker loses
no generation and scores none twice; a failing family triggers a run whose winner is then used.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hms_celery import client
from hms_celery.client.local_stack import LocalStack
from hms_celery.genetic import families
from hms_celery.store import ga as ga_store
from hms_celery.store import repository
from tests.support import isolated_stack, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def kill_stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[LocalStack]:
    # Redis database 9 (or HMS_TEST_STACK_REDIS_URL): the session's `worker` must not take it.
    with isolated_stack(
        stack_env, tmp_path, db=9, HMS_GA_TRIGGER_FAILURES="0", HMS_GA_STALL_AFTER="2"
    ) as stack:
        yield stack


def _open_fitness_attempt(run_id: str, agent: str) -> str | None:
    """A fitness proof of ``run_id`` that ``agent`` is running right now."""
    from sqlalchemy import select

    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Attempt, Task

    with connection_scope() as conn:
        return conn.execute(
            select(Attempt.task_id)
            .join(Task, Task.id == Attempt.task_id)
            .where(
                Task.family == ga_store.run_label(run_id),
                Task.kind == "fitness",
                Attempt.agent == agent,
                Attempt.ended_at.is_(None),
            )
            .limit(1)
        ).scalar()


def test_killing_the_generation_worker_loses_and_double_counts_nothing(
    kill_stack: LocalStack,
) -> None:
    # One agent runs the GA steps and the evaluations; non-linearising genomes on n = 8 take
    # seconds each, so it is killed with an evaluation in flight.
    victim = kill_stack.spawn(["ga", "prove.z3"])
    training = families.instances("war-abs", (3, 8))
    run_id = client.start_ga_run(
        f"kill{uuid.uuid4().hex[:6]}",
        instances=training,
        population=4,
        generations=2,
        seed=3,
        rlimit=50_000_000,
        timeout=3.0,
    )
    lost = wait_until(lambda: _open_fitness_attempt(run_id, victim), 120, "an evaluation")
    os.killpg(kill_stack.pid(victim), signal.SIGKILL)

    run = client.wait_for_ga_run(run_id, timeout=300)
    assert run["status"] == "DONE", run["error"]
    assert [(g["number"], g["status"]) for g in run["generation_records"]] == [
        (0, "SCORED"),
        (1, "SCORED"),
    ]
    events = repository.audit_events(run_id, limit=500)
    scored = [e["details"]["generation"] for e in events if e["action"] == "ga.generation.scored"]
    assert scored == [0, 1]  # each generation scored exactly once
    status = client.query_task_status(lost)
    assert status["state"] == "DONE" and repository.count_results(lost) == 1
    assert status["attempts"][0]["outcome"] == "LOST"
    assert any(e["action"] == "task.requeued" for e in repository.audit_events(lost))
    for gen in run["generation_records"]:
        assert len(gen["fitness"]) == 4  # every genome scored, none missing


@pytest.fixture
def trigger_stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[LocalStack]:
    with isolated_stack(
        stack_env,
        tmp_path,
        db=9,
        # Proofs use Z3's plain solver under a small deterministic budget: war-abs fails.
        HMS_DEFAULT_STRATEGY="z3-default",
        HMS_PROVER_RLIMIT="200000",
        HMS_GA_TRIGGER_FAILURES="3",
        HMS_GA_TRIGGER_WINDOW="300",
        HMS_GA_POPULATION="8",
        HMS_GA_GENERATIONS="4",
        HMS_GA_RLIMIT="200000",
        HMS_GA_TIMEOUT="5",
        HMS_GA_AUTO_PROMOTE="true",
        HMS_GA_STALL_AFTER="5",
    ) as stack:
        yield stack


def test_failing_family_triggers_a_run_whose_winner_is_used(trigger_stack: LocalStack) -> None:
    trigger_stack.spawn(["ga"])
    trigger_stack.spawn(["prove.z3"])
    family = f"wab{uuid.uuid4().hex[:6]}"

    def submit(n: int) -> str:
        inst = families.instance("war-abs", n)["request"]
        return client.submit_proof_task(
            f"{family}-n{n}", inst["statement"], inst["assumptions"], variables=inst["variables"]
        )

    failing = [submit(n) for n in (3, 4, 5)]
    verdicts = {client.wait_for_result(t, timeout=60)["verdict"] for t in failing}
    assert verdicts <= {"UNKNOWN", "TIMEOUT"}, verdicts

    run = wait_until(lambda: ga_store.list_runs(family), 30, "the supervisor to start a run")[0]
    assert run["trigger"] == "supervisor"
    done = client.wait_for_ga_run(run["id"], timeout=300)
    assert done["status"] == "DONE" and done["promotion"] == "promoted", done
    assert done["best_fitness"]["solved"] == len(failing), done["best_fitness"]
    promoted = ga_store.family_strategy(family)
    assert promoted is not None and promoted["name"].startswith(f"ga-{family}-")

    # Later proofs of the family use the evolved strategy: what failed now succeeds.
    later = client.wait_for_result(submit(5), timeout=60)
    assert later["verdict"] == "PROVED", (later["strategy"], later["reason"], promoted)
    assert later["strategy"]["name"] == promoted["name"]

    actions = [e["action"] for e in repository.audit_events(family)]
    assert "ga.triggered" in actions and "strategy.promoted" in actions
    run_actions = [e["action"] for e in repository.audit_events(run["id"], limit=500)]
    assert {"ga.run.started", "ga.run.done"} <= set(run_actions)
    assert ga_store.active_run(family) is None
    # The old failures do not start a second run once the family has had its run.
    assert len(ga_store.list_runs(family)) == 1
