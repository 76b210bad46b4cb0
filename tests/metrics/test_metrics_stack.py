"""HMS metrics on a real stack: the endpoint `hms up` gives its supervisor agent, scraped over
HTTP while real proof tasks run and a real prover agent is SIGKILLed.

The stack is :class:`EmbeddedStack` (what `hms up` runs) on the test Redis and a PostgreSQL
database of this module's own (so every figure starts from this module's work alone): a
``prove.z3`` agent, the supervisor agent (serving the metrics from its main process) and
Celery beat sending sweeps.  Every check compares two scrapes: the figures must move by
exactly what the test did.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from hms_celery import client
from hms_celery.agents import registry
from hms_celery.cli.stack import EmbeddedStack
from hms_celery.healing import breakers
from hms_celery.runtime.skills import load_skills
from hms_celery.settings import get_settings
from hms_celery.store import repository
from tests.metrics.support import Samples, private_database, scrape, value
from tests.support import BOUNDED_ONLY, FAST_SETTINGS, PG_ADMIN_URL, configure_process, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

METRICS_REDIS_DB = 2
#: The family label of this module's tasks: a prefix no other task has.
FAMILY = f"metrics{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("HMS_")}
    with private_database(PG_ADMIN_URL) as database:
        env = {
            **FAST_SETTINGS,
            # A broker database of this module's own (2): the session's workers (db 11) serve
            # another store and would refuse this stack, or take its tasks.
            "HMS_BROKER_URL": f"{redis_url.rsplit('/', 1)[0]}/{METRICS_REDIS_DB}",
            "HMS_DATABASE_URL": database,
            "HMS_DATA_DIR": str(tmp_path_factory.mktemp("metrics-stack")),
            "HMS_PROVER_TIMEOUT": "60",
        }
        configure_process(env)
        from hms_celery.healing.heartbeats import redis_client

        redis_client().flushdb()  # this module's broker database: no queued leftovers
        # One prover agent, prove.z3 only: nothing consumes prove.cvc5 (see the depth test).
        stack = EmbeddedStack(settings=get_settings(), skills=("prove.z3",), concurrency=1)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
            for name in set(os.environ) - set(saved):
                if name.startswith("HMS_"):
                    del os.environ[name]
            configure_process(saved)


@pytest.fixture(scope="module")
def metrics_url(stack: EmbeddedStack) -> str:
    url = stack.urls["metrics"]
    wait_until(lambda: _answers(url), 60, "the supervisor agent's metrics endpoint")
    return url


def _answers(url: str) -> bool:
    from tests.metrics.support import fetch

    try:
        return fetch(url, timeout=5)[0] == 200
    except OSError:
        return False


def _prover(stack: EmbeddedStack) -> str:
    """The live prove.z3 agent of the stack (after a respawn: the replacement)."""
    assert stack.host is not None
    (agent,) = stack.host.running("prove.z3")
    return agent


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# ----------------------------------------------------------------------------- tests
def test_hms_up_names_the_metrics_url_and_it_answers(
    stack: EmbeddedStack, metrics_url: str
) -> None:
    assert metrics_url.startswith("http://127.0.0.1:") and metrics_url.endswith("/metrics")
    samples = scrape(metrics_url)
    assert value(samples, "hms_up", component="store") == 1
    assert value(samples, "hms_up", component="broker") == 1
    queues = {s.queue for s in load_skills().values() if not s.broadcast}
    assert {"prove.z3", "prove.cvc5", "supervisor", "ga"} <= queues
    for queue in queues:  # every skill queue of the registry has a depth
        assert ("hms_queue_depth", frozenset({("queue", queue)})) in samples, queue
    # The supervisor agent serves from its worker's main process, not a pool process.
    supervisor = next(a for a in stack.agent_ids if a.startswith("supervisor"))
    assert registry.get_agent(supervisor)["state"] in ("READY", "BUSY")


def test_proof_tasks_move_verdicts_histogram_and_task_states(metrics_url: str) -> None:
    before = scrape(metrics_url)
    statements = {
        f"{FAMILY}-square": "∀ x : ℝ, x * x ≥ 0",
        f"{FAMILY}-shift": "∀ a b : ℝ, a ≤ b → a + 1 ≤ b + 1",
        f"{FAMILY}-false": "∀ x : ℝ, x * x > x",
    }
    ids = [client.submit_proof_task(name, text) for name, text in statements.items()]
    results = [client.wait_for_result(task_id, timeout=120) for task_id in ids]
    assert [r["verdict"] for r in results] == ["PROVED", "PROVED", "REFUTED"]
    after = scrape(metrics_url)

    labels = {"backend": "z3", "family": FAMILY, "kind": "proof"}
    assert value(before, "hms_verdicts_total", verdict="PROVED", **labels) == 0
    assert value(after, "hms_verdicts_total", verdict="PROVED", **labels) == 2
    assert value(after, "hms_verdicts_total", verdict="REFUTED", **labels) == 1
    assert _delta(after, before, "hms_proof_seconds_count", backend="z3") == 3
    prover_s = sum(r["timings"]["prover_s"] for r in results)
    assert _delta(after, before, "hms_proof_seconds_sum", backend="z3") == pytest.approx(prover_s)
    assert _delta(after, before, "hms_proof_seconds_bucket", backend="z3", le="+Inf") == 3
    # Cumulative buckets: each bound counts the results at or below it.
    for bound in ("0.1", "1.0", "10.0", "300.0"):
        fast = sum(1 for r in results if r["timings"]["prover_s"] <= float(bound))
        moved = _delta(after, before, "hms_proof_seconds_bucket", backend="z3", le=bound)
        assert moved == fast, bound
    assert _delta(after, before, "hms_tasks", state="DONE", kind="proof") == 3
    assert value(after, "hms_tasks", state="PENDING", kind="proof") == value(
        before, "hms_tasks", state="PENDING", kind="proof"
    )
    assert value(after, "hms_attempts_in_flight", queue="prove.z3") == 0


def test_queue_depth_counts_waiting_messages(metrics_url: str) -> None:
    from hms_celery.app import app

    before = scrape(metrics_url)
    waiting = [
        client.submit_proof_task(f"{FAMILY}-waiting{i}", "∀ x : ℝ, x ≤ x + 1", backend="cvc5")
        for i in range(2)
    ]
    try:
        after = scrape(metrics_url)  # no agent consumes prove.cvc5 in this stack
        assert _delta(after, before, "hms_queue_depth", queue="prove.cvc5") == 2
        assert _delta(after, before, "hms_tasks", state="PENDING", kind="proof") == 2
        assert value(after, "hms_queue_depth", queue="prove.z3") == 0
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("prove.cvc5")
    assert value(scrape(metrics_url), "hms_queue_depth", queue="prove.cvc5") == 0
    assert len(waiting) == 2


def test_killed_prover_moves_agent_states_and_recovery_actions(
    stack: EmbeddedStack, metrics_url: str
) -> None:
    victim = _prover(stack)
    before = scrape(metrics_url)
    task_id = client.submit_proof_task(f"{FAMILY}-slow", BOUNDED_ONLY, max_size=200, timeout=120)

    def running() -> bool:
        status = client.query_task_status(task_id)
        return any(a["ended_at"] is None for a in status["attempts"])

    wait_until(running, 60, "the slow proof to start")
    during = scrape(metrics_url)
    assert value(during, "hms_attempts_in_flight", queue="prove.z3") == 1
    assert _delta(during, before, "hms_tasks", state="RUNNING", kind="proof") == 1

    assert stack.host is not None
    os.killpg(stack.host.children[victim].process.pid, signal.SIGKILL)  # worker + pool
    status = client.wait_for_result(task_id, timeout=180)
    assert status["verdict"] == "BOUNDED" and status["agent"] != victim
    replacement = wait_until(
        lambda: [
            a
            for a in registry.list_agents(include_ended=False)
            if a["lineage"] == victim and a["id"] != victim and a["state"] == "READY"
        ],
        90,
        "the respawned prover",
    )
    after = scrape(metrics_url)

    assert _delta(after, before, "hms_agents", state="FAILED") == 1
    live = sum(_delta(after, before, "hms_agents", state=s) for s in ("READY", "BUSY"))
    assert live == 0  # one lost, one new (the supervisor agent is READY or BUSY: sweeping)
    assert _delta(after, before, "hms_recovery_actions_total", kind="respawn") == 1
    assert _delta(after, before, "hms_recovery_actions_total", kind="requeue") == 1

    # A loaded machine may also see a wedged pool restarted meanwhile: whatever happened,
    # the figures are the audit log's (this module's store has nothing else in it).
    def agrees_with_the_audit_log() -> bool:
        events = [e["action"] for e in repository.audit_events(limit=None)]
        now = scrape(metrics_url)
        expected = {k: events.count(f"recovery.{k}") for k in ("restart", "respawn", "alert")}
        expected["requeue"] = events.count("task.requeued")
        return all(
            value(now, "hms_recovery_actions_total", kind=k) == n for k, n in expected.items()
        )

    wait_until(agrees_with_the_audit_log, 30, "the recovery counters to match the audit log")
    assert value(after, "hms_attempts_in_flight", queue="prove.z3") == 0
    labels = {"backend": "z3", "family": FAMILY, "kind": "proof"}
    assert _delta(after, before, "hms_verdicts_total", verdict="BOUNDED", **labels) == 1
    assert _delta(after, before, "hms_tasks", state="DONE", kind="proof") == 1
    assert replacement[0]["skills"] == ["prove.z3"]


def test_breaker_states_follow_the_supervisor(metrics_url: str) -> None:
    from hms_celery.healing.heartbeats import redis_client

    before = scrape(metrics_url)
    # Failures reported the way workers report them, for an agent and a backend of their
    # own (no real route is cancelled): the next sweep opens both breakers.
    probe_agent = f"metrics-probe-{uuid.uuid4().hex[:6]}@nowhere"
    for _ in range(get_settings().breaker_threshold):
        breakers.report_outcome(redis_client(), probe_agent, "metricsprobe", ok=False)

    def opened() -> Samples | None:
        now = scrape(metrics_url)
        moved = [
            _delta(now, before, "hms_breakers", kind=kind, state="OPEN")
            for kind in ("agent", "backend")
        ]
        return now if moved == [1, 1] else None

    after = wait_until(opened, 60, "the sweep to open the probe's breakers")
    assert _delta(after, before, "hms_breakers", kind="backend", state="CLOSED") == 0


def test_sweeps_fill_the_sweep_histogram(metrics_url: str) -> None:
    first = scrape(metrics_url)
    second = wait_until(
        lambda: (
            s
            if value(s := scrape(metrics_url), "hms_sweep_seconds_count")
            > value(first, "hms_sweep_seconds_count")
            else None
        ),
        60,
        "another sweep (beat sends one every second)",
    )
    assert value(first, "hms_sweep_seconds_count") > 0  # sweeps ran since the stack started
    assert _delta(second, first, "hms_sweep_seconds_sum") > 0
    count = value(second, "hms_sweep_seconds_count")
    assert value(second, "hms_sweep_seconds_bucket", le="+Inf") == count
    assert value(second, "hms_sweep_seconds_bucket", le="10.0") <= count
    assert value(second, "hms_sweep_last_timestamp_seconds") > value(
        first, "hms_sweep_last_timestamp_seconds"
    )


def test_a_ga_run_moves_runs_generations_and_fitness_verdicts(metrics_url: str) -> None:
    before = scrape(metrics_url)
    run_id = client.start_ga_run(
        "drp-baseline", population=4, generations=2, seed=1, rlimit=100_000, timeout=2
    )
    run = client.wait_for_ga_run(run_id, timeout=300)  # the supervisor agent takes queue ga
    assert run["status"] == "DONE", run["error"]
    after = scrape(metrics_url)
    assert _delta(after, before, "hms_ga_runs", state="DONE") == 1
    assert value(after, "hms_ga_runs", state="RUNNING") == 0
    assert _delta(after, before, "hms_ga_generations_total") == 2
    evaluations = sum(g["evaluations"] for g in run["generation_records"])
    assert evaluations > 0
    assert _delta(after, before, "hms_ga_evaluations_total") == evaluations
    fitness = sum(
        v - before.get(key, 0.0)
        for key, v in after.items()
        if key[0] == "hms_verdicts_total" and ("kind", "fitness") in key[1]
    )
    assert fitness == evaluations  # each evaluation is a proof task with one result


def _listens(pid: int, port: int) -> bool:
    import psutil

    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port
        for c in psutil.Process(pid).net_connections(kind="tcp")
    )


def test_only_the_supervisor_main_process_holds_the_port(
    stack: EmbeddedStack, metrics_url: str
) -> None:
    """Last in the module: it restarts the supervisor's pool (a sweep may be cut short)."""
    import psutil

    from hms_celery.app import app

    port = int(metrics_url.rsplit(":", 1)[1].split("/")[0])
    supervisor = next(a for a in stack.agent_ids if a.startswith("supervisor"))
    main_pid = registry.get_agent(supervisor)["pid"]
    assert _listens(main_pid, port)
    old_pool = {p.pid for p in psutil.Process(main_pid).children()}
    # New pool processes fork from the serving main process; each must close its copy.
    app.control.broadcast("hms_restart_pool", destination=[supervisor], reply=False)
    new_pool = wait_until(
        lambda: {p.pid for p in psutil.Process(main_pid).children()} - old_pool,
        60,
        "fresh pool processes",
    )
    wait_until(lambda: not any(_listens(pid, port) for pid in new_pool), 30, "closed copies")
    assert _listens(main_pid, port)
    assert value(scrape(metrics_url), "hms_up", component="store") == 1
