"""Racing solvers on real agents (``backend="race"``): a Z3 worker and a cvc5 worker take the
legs of one task; the first decisive leg wins, the others are terminated and recorded
CANCELLED, one result is committed; the CLI shows the winner and the legs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from hms_celery import client
from hms_celery.agents.race.store import NOT_STARTED
from hms_celery.store import repository
from hms_celery.verification import smtlib
from tests.support import WorkerProcess, configure_process, stack_redis_url, wait_until

pytestmark = pytest.mark.services
HMS = [sys.executable, "-m", "hms_celery.cli.main"]

#: Z3's default strategy linearises the power and cvc5 then confirms it in milliseconds; cvc5
#: proves it as fast; Z3's nlsat proves it too, but cvc5 cannot confirm nlsat's nonlinear
#: assertions, so that leg spends the whole time limit (60 s here) confirming: a slow leg.
POWER = "∀ (B r : ℝ), 0 ≤ B → 0 ≤ r → r ≤ 1 → 0 ≤ B * (1 - r) ^ 3 ∧ B * (1 - r) ^ 3 ≤ B"
#: No leg decides it: Z3's models are irrational (UNKNOWN), cvc5 times out.
UNDECIDED = "∀ (x y : ℝ), x * x * x - 2 * y * y * y ≠ 1 ∨ x ≤ 1"


@pytest.fixture(scope="module")
def stack_env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The session's services with a broker database of the race tests' own: the session's
    ``worker`` (which consumes ``prove.z3`` too) must not take these legs."""
    broker = stack_redis_url(stack_env["HMS_BROKER_URL"], db=13)
    env = {**stack_env, "HMS_BROKER_URL": broker}
    # Settings earlier modules left in os.environ (workers inherit it) must not reach these
    # agents: a leaked HMS_PROVER_RLIMIT or strategy changes which leg wins.
    leaked = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("HMS_")}
    configure_process(env)
    from hms_celery.healing.heartbeats import redis_client

    redis_client().flushdb()
    try:
        yield env
    finally:
        for k in [k for k in os.environ if k.startswith("HMS_")]:
            del os.environ[k]
        os.environ.update(leaked)
        configure_process(stack_env)


@pytest.fixture(scope="module")
def z3_agent(stack_env: dict[str, str]) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(stack_env, queues="prove.z3", concurrency=2)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def cvc5_agent(stack_env: dict[str, str]) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(stack_env, queues="prove.cvc5", concurrency=1)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def agents(z3_agent: WorkerProcess, cvc5_agent: WorkerProcess) -> dict[str, WorkerProcess]:
    for proc in (z3_agent, cvc5_agent):  # registered (the race plans legs for live agents)
        wait_until(
            lambda p=proc: client.query_agent_status(p.name)["state"] in ("READY", "BUSY"),
            30,
            f"{proc.name} READY",
        )
    return {"z3": z3_agent, "cvc5": cvc5_agent}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _settled(task_id: str) -> dict[str, Any]:
    """The task's status once every attempt has ended (the winner closes the losers after
    its commit)."""

    def settled() -> dict[str, Any] | None:
        status = client.query_task_status(task_id)
        done = status["state"] == "DONE" and all(a["ended_at"] for a in status["attempts"])
        return status if done else None

    return wait_until(settled, 30, f"every leg of {task_id} ended")


def _leg(status: dict[str, Any], label: str) -> dict[str, Any]:
    return next(x for x in status["race"]["legs"] if x["label"] == label)


@pytest.fixture(scope="module")
def won_race(agents: dict[str, WorkerProcess]) -> dict[str, Any]:
    """One race of POWER, settled."""
    task_id = client.submit_proof_task("race-power", POWER, backend="race")
    client.wait_for_result(task_id, timeout=60)
    return _settled(task_id)


def test_the_first_decisive_leg_wins_and_the_slow_leg_is_cancelled_within_a_second(
    won_race: dict[str, Any], agents: dict[str, WorkerProcess]
) -> None:
    status = won_race
    assert status["verdict"] == "PROVED", status["reason"]
    assert status["confirmed_by"]["status"] == "confirmed"
    race = status["race"]
    assert [x["label"] for x in race["legs"]] == ["z3/default", "z3/nlsat", "cvc5"]
    winner = race["winner"]
    assert winner["label"] in ("z3/default", "cvc5")  # the two fast legs
    assert race["decided"] == "first decisive leg"
    # the result names the winning leg's agent and backend (and they are the real agents)
    assert (status["agent"], status["backend"]) == (winner["agent"], winner["backend"])
    assert winner["agent"] == agents[winner["backend"]].name
    assert repository.count_results(status["task_id"]) == 1
    committed_at = _ts(status["timings"]["finished_at"])
    slow = _leg(status, "z3/nlsat")
    assert slow["outcome"] == "CANCELLED"
    assert "terminated (SIGTERM)" in slow["note"]
    for leg in race["legs"]:
        if leg is winner or leg["leg"] == winner["leg"]:
            continue
        attempt = next(a for a in status["attempts"] if a["number"] == leg["attempt"])
        if leg["outcome"] == "CANCELLED":
            lag = (_ts(attempt["ended_at"]) - committed_at).total_seconds()
            assert 0 <= lag <= 1.0, (leg, lag)
        else:  # the other fast leg may finish before it can be stopped: then it agrees, late
            assert (leg["outcome"], leg["late"]) == ("PROVED", True), leg
    # one attempt per leg, each naming its backend and strategy
    assert sorted((a["leg"]["backend"], a["leg"]["strategy"]) for a in status["attempts"]) == [
        ("cvc5", "default"),
        ("z3", "default"),
        ("z3", "nlsat"),
    ]


def test_a_terminated_leg_leaves_no_prover_child_and_its_agent_takes_the_next_task(
    won_race: dict[str, Any], agents: dict[str, WorkerProcess], stack_env: dict[str, str]
) -> None:
    slow = _leg(won_race, "z3/nlsat")
    attempt = next(a for a in won_race["attempts"] if a["number"] == slow["attempt"])
    pool_pid = attempt["pid"]
    assert slow["agent"] == agents["z3"].name
    worker = psutil.Process(agents["z3"].process.pid)
    # the pool process that ran the leg is gone, replaced by a fresh one
    wait_until(lambda: pool_pid not in {p.pid for p in worker.children()}, 10, "pool replaced")
    wait_until(lambda: len(worker.children()) == 2, 30, "two pool processes again")
    # …and no prover child is left computing the cancelled problem (it would take 60 s)
    since = worker.create_time()
    wait_until(
        lambda: not _orphan_provers(stack_env["HMS_DATA_DIR"], since), 10, "no orphan prover"
    )
    # the agent takes the next tasks, on both of its pool processes
    ids = [client.submit_proof_task(f"after-race-{i}", "∀ x : ℝ, x * x ≥ 0") for i in range(4)]
    done = client.wait_for_results(ids, timeout=120)
    assert {s["verdict"] for s in done.values()} == {"PROVED"}
    assert {s["agent"] for s in done.values()} == {agents["z3"].name}
    assert agents["z3"].alive()


def _orphan_provers(data_dir: str, since: float) -> list[int]:
    """Prover children started since ``since`` (this module's agents) for ``data_dir`` whose
    parent is no Celery worker: a terminated pool process's child left behind.  Children of
    this test process (an in-process sandbox of another test) are not this test's concern."""
    found = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        try:
            if "hms_celery.verification.sandbox" not in " ".join(proc.info["cmdline"] or []):
                continue
            if proc.info["create_time"] < since or proc.environ().get("HMS_DATA_DIR") != data_dir:
                continue
            parent = proc.parent()
            if parent is not None and parent.pid == os.getpid():
                continue
            if parent is None or "worker" not in " ".join(parent.cmdline()):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _hms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HMS, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_hms_prove_race_shows_the_winner_and_the_legs(
    agents: dict[str, WorkerProcess], stack_env: dict[str, str]
) -> None:
    done = _hms("prove", POWER, "--race", "--json", env=stack_env)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    winner = status["race"]["winner"]
    assert status["verdict"] == "PROVED" and winner["label"] in ("z3/default", "cvc5")
    assert status["agent"] == winner["agent"] == agents[winner["backend"]].name
    assert {x["backend"] for x in status["race"]["legs"]} == {"z3", "cvc5"}
    status = _settled(status["task_id"])
    winner = status["race"]["winner"]
    # `hms status` prints who won and every leg
    shown = _hms("status", status["task_id"], env=stack_env)
    assert shown.returncode == 0, shown.stderr
    assert f"won by {winner['label']} (backend {winner['backend']}" in shown.stdout
    # the legs table: a row per leg, on the real agents of both backends
    rows = [line for line in shown.stdout.splitlines() if line.count("│") >= 6]
    for leg in status["race"]["legs"]:
        assert any(
            leg["backend"] in row
            and leg["strategy"] in row
            and leg["agent"] in row
            and leg["outcome"] in row
            for row in rows
        ), (leg, shown.stdout)
    assert agents["z3"].name in shown.stdout
    # cvc5's leg ran on its agent, unless z3 won before it started (a loaded machine):
    # then it is recorded CANCELLED on no agent, and says so
    cvc5_leg = _leg(status, "cvc5")
    if cvc5_leg["agent"] == NOT_STARTED:
        assert cvc5_leg["outcome"] == "CANCELLED", cvc5_leg
        assert any(NOT_STARTED in row and "CANCELLED" in row for row in rows), shown.stdout
    else:
        assert cvc5_leg["agent"] == agents["cvc5"].name, cvc5_leg
    # and the plain `hms prove --race` output
    plain = _hms("prove", POWER, "--race", env=stack_env)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("PROVED")
    assert "won by z3/default" in plain.stdout or "won by cvc5" in plain.stdout
    # printed as soon as the result is in: the slow leg is being (or has been) cancelled
    assert "nlsat" in plain.stdout
    assert "CANCELLED" in plain.stdout or "RUNNING" in plain.stdout


def test_hms_check_race_checks_a_catalogue(
    agents: dict[str, WorkerProcess], stack_env: dict[str, str], tmp_path: Path
) -> None:
    claims = [
        {
            "theorem_id": "race-square",
            "natural_language": "squares are non-negative",
            "formal_expression": "∀ x : ℝ, x * x ≥ 0",
            "expected": "PROVED",
        },
        {
            "theorem_id": "race-cube",
            "natural_language": "x³ > x for positive x (false)",
            "formal_expression": "∀ x : ℝ, x > 0 → x * x * x > x",
            "expected": "REFUTED",
        },
    ]
    path = tmp_path / "race-claims.json"
    path.write_text(json.dumps(claims), encoding="utf-8")
    done = _hms("check", str(path), "--race", "--json", env=stack_env)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {r["theorem_id"]: r for r in json.loads(done.stdout)}
    assert rows["race-square"]["verdict"] == "PROVED" and rows["race-cube"]["verdict"] == "REFUTED"
    for row in rows.values():
        assert row["agrees"] and row["race"]["winner"]["agent"] in (a.name for a in agents.values())
        assert repository.count_results(row["task_id"]) == 1
    table = _hms("check", str(path), "--race", env=stack_env)
    assert table.returncode == 0, table.stdout + table.stderr
    assert "(won by " in table.stdout and "2/2 claims agree" in table.stdout


def test_hms_prove_smt2_race_races_the_z3_strategies(
    agents: dict[str, WorkerProcess], stack_env: dict[str, str], tmp_path: Path
) -> None:
    problem = tmp_path / "empty-interval.smt2"
    problem.write_text(
        "(set-logic QF_NRA)\n(declare-const x Real)\n"
        "(assert (> (* x x) 4))\n(assert (< x 2))\n(assert (> x (- 2)))\n(check-sat)\n",
        encoding="utf-8",
    )
    done = _hms("prove-smt2", str(problem), "--race", "--json", env=stack_env)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["verdict"] == "PROVED"
    race = status["race"]
    winner = race["winner"]
    assert (status["agent"], status["backend"]) == (winner["agent"], winner["backend"])
    assert winner["agent"] == agents[winner["backend"]].name
    if "cvc5" in smtlib.BACKENDS:  # cvc5 reads SMT-LIB too: a leg of its own
        assert [x["label"] for x in race["legs"]] == ["z3/default", "z3/nlsat", "cvc5"]
        assert race["skipped"] == []
    else:
        assert [x["label"] for x in race["legs"]] == ["z3/default", "z3/nlsat"]
        assert race["skipped"] == [{"label": "cvc5", "why": "cvc5 does not read SMT-LIB problems"}]


def test_the_family_promoted_strategy_takes_part(agents: dict[str, WorkerProcess]) -> None:
    from hms_celery.store import ga as ga_store
    from hms_celery.verification.strategy import NAMED_STRATEGIES

    promoted = NAMED_STRATEGIES["portfolio"].to_json()
    ga_store.promote("racefam", promoted, run_id=None, fitness=None, actor="test")
    task_id = client.submit_proof_task("racefam-square", "∀ x : ℝ, x * x ≥ 0", backend="race")
    status = _settled(client.wait_for_result(task_id, timeout=60)["task_id"])
    assert status["verdict"] == "PROVED"
    legs = {x["label"]: x for x in status["race"]["legs"]}
    assert list(legs) == ["z3/default", "z3/nlsat", "cvc5", "z3/promoted:racefam"]
    mine = legs["z3/promoted:racefam"]
    assert (mine["backend"], mine["queue"], mine["strategy"]) == (
        "z3",
        "prove.z3",
        "promoted:racefam",
    )
    plan = status["payload"]["race"]["legs"]
    assert plan[3]["strategy"] == promoted  # the leg runs exactly the promoted strategy
    assert repository.count_results(task_id) == 1


def test_a_race_no_leg_decides_ends_once_every_leg_has_finished(
    agents: dict[str, WorkerProcess],
) -> None:
    task_id = client.submit_proof_task("race-undecided", UNDECIDED, backend="race", timeout=5)
    status = client.wait_for_result(task_id, timeout=60)
    assert status["verdict"] == "UNKNOWN", status["reason"]  # UNKNOWN > cvc5's TIMEOUT
    legs = {x["label"]: x for x in status["race"]["legs"]}
    assert legs["cvc5"]["outcome"] == "TIMEOUT" and legs["cvc5"]["agent"] == agents["cvc5"].name
    assert {legs["z3/default"]["outcome"], legs["z3/nlsat"]["outcome"]} == {"UNKNOWN"}
    assert not any(x["outcome"] == "CANCELLED" for x in legs.values())
    assert status["race"]["winner"]["backend"] == "z3"
    assert status["race"]["decided"].startswith("every leg finished")
    assert repository.count_results(task_id) == 1


def test_a_leg_on_a_dead_agent_is_requeued_and_the_race_still_ends(
    agents: dict[str, WorkerProcess], stack_env: dict[str, str]
) -> None:
    from hms_celery.healing import supervisor

    doomed = WorkerProcess(stack_env, queues="prove.cvc5", concurrency=1)
    agents["cvc5"].process.send_signal(signal.SIGSTOP)  # only the doomed agent takes the leg
    try:
        doomed.wait_ready()
        task_id = client.submit_proof_task("race-lost", UNDECIDED, backend="race", timeout=5)

        def cvc5_running() -> dict[str, Any] | None:
            status = client.query_task_status(task_id)
            leg = _leg(status, "cvc5")
            return leg if leg["outcome"] == "RUNNING" else None

        running = wait_until(cvc5_running, 60, "the cvc5 leg running")
        assert running["agent"] == doomed.name
        for proc in [*psutil.Process(doomed.process.pid).children(recursive=True)]:
            proc.kill()
        doomed.process.kill()
        doomed.process.wait()
    finally:
        agents["cvc5"].process.send_signal(signal.SIGCONT)
        doomed.stop()
    # the supervisor's requeue (as its sweep does for a FAILED agent)
    summary: dict[str, Any] = {"actions": []}
    supervisor._requeue({"id": doomed.name, "state_reason": "killed by the test"}, summary)
    assert summary["actions"] == [{"kind": "REQUEUE", "task": task_id}]
    status = client.wait_for_result(task_id, timeout=60)
    assert status["verdict"] == "UNKNOWN"
    cvc5 = [a for a in status["attempts"] if a["leg"]["backend"] == "cvc5"]
    assert [(a["agent"], a["outcome"]) for a in cvc5] == [
        (doomed.name, "LOST"),
        (agents["cvc5"].name, "TIMEOUT"),
    ]
    assert repository.count_results(task_id) == 1
    events = [e["action"] for e in repository.audit_events(subject=task_id)]
    assert events == ["policy.decision", "task.requeued"]  # the policy allowed it, first
