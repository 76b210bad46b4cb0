"""Throughput and scheduling latency: bare Celery vs HMS, measured in the same run.

Both use the local Redis (127.0.0.1:6379), one worker process with the same concurrency, JSON,
acks_late and prefetch 1.  Bare Celery runs a no-op task with the Redis result backend; HMS
submits a trivial statement through the client, records it in the store (PostgreSQL by
default, ``--store sqlite`` for the embedded default) and the worker proves it with Z3.

    .venv/bin/python bench/throughput.py [--tasks 500] [--idle 100] [--concurrency 2]

Scheduling latency = task start − submit (wall clock on one machine).  "Idle" latency sends
one task at a time and waits for it; "burst" submits all tasks at once.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import create_database, drop_database, pct, start_latency  # noqa: E402

REDIS = "redis://127.0.0.1:6379"
STATEMENT = "∀ x : ℝ, x + 0 = x"


def start_worker(
    app: str, queue: str, concurrency: int, env: dict[str, str]
) -> tuple[subprocess.Popen, str]:
    name = f"bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-n", name,
         "-c", str(concurrency), "-l", "WARNING", "--without-mingle", "--without-gossip"],
        env={**os.environ, **env}, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, name


def wait_ready(app, name: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """Wait for *our* worker: a stray one on the same broker must not start the clock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(name in reply for reply in app.control.ping([name], timeout=0.5) or []):
            return
    raise RuntimeError(f"worker {name} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench_bare(n: int, idle: int, concurrency: int) -> dict[str, float]:
    os.environ["BENCH_REDIS_URL"] = f"{REDIS}/12"
    sys.path.insert(0, str(REPO / "bench"))
    import bare_app

    bare_app.app.control.purge()
    proc, name = start_worker("bare_app", "bare", concurrency, {"PYTHONPATH": str(REPO / "bench")})
    try:
        wait_ready(bare_app.app, name)
        bare_app.noop.delay(time.time()).get(timeout=30)  # warm up
        idle_lat = []
        for _ in range(idle):
            r = bare_app.noop.delay(time.time()).get(timeout=30)
            idle_lat.append(r["started_at"] - r["sent_at"])
        t0 = time.perf_counter()
        results = [bare_app.noop.delay(time.time()) for _ in range(n)]
        values = [r.get(timeout=300) for r in results]
        elapsed = time.perf_counter() - t0
        burst_lat = [v["started_at"] - v["sent_at"] for v in values]
    finally:
        stop(proc)
    return summary(n, elapsed, idle_lat, burst_lat)


def bench_hms(n: int, idle: int, concurrency: int, store: str) -> dict[str, float]:
    from hms_celery.app import reconfigure

    if store == "sqlite":
        database = f"sqlite:///{tempfile.mkdtemp(prefix='hms-bench-')}/hms.db"
    else:
        db_name = f"hms_bench_{os.getpid()}"
        database = create_database(db_name)
    env = {"HMS_BROKER_URL": f"{REDIS}/13", "HMS_DATABASE_URL": database}
    os.environ.update(env)
    reconfigure()
    from hms_celery import client
    from hms_celery.app import app
    from hms_celery.store.migrate import upgrade

    upgrade(database)
    app.control.purge()
    proc, name = start_worker("hms_celery", "prove.z3", concurrency, env)
    try:
        wait_ready(app, name)
        client.wait_for_result(client.submit_proof_task("warm", STATEMENT), timeout=60)
        idle_lat = []
        for _ in range(idle):
            status = client.wait_for_result(client.submit_proof_task("b", STATEMENT), timeout=60)
            idle_lat.append(start_latency(status))
        t0 = time.perf_counter()
        ids = [client.submit_proof_task("b", STATEMENT) for _ in range(n)]
        done = client.wait_for_results(ids, timeout=600)
        elapsed = time.perf_counter() - t0
        burst_lat = [start_latency(s) for s in done.values()]
        assert all(s["verdict"] == "PROVED" for s in done.values())
    finally:
        stop(proc)
        if store != "sqlite":
            drop_database(db_name)
    return summary(n, elapsed, idle_lat, burst_lat)


def summary(n: int, elapsed: float, idle: list[float], burst: list[float]) -> dict[str, float]:
    return {
        "tasks/s": n / elapsed,
        "idle p50 ms": 1000 * statistics.median(idle),
        "idle p99 ms": 1000 * pct(idle, 99),
        "burst p50 ms": 1000 * statistics.median(burst),
        "burst p99 ms": 1000 * pct(burst, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--idle", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    bare = bench_bare(args.tasks, args.idle, args.concurrency)
    hms = bench_hms(args.tasks, args.idle, args.concurrency, args.store)
    print(f"# {datetime.now().isoformat(timespec='seconds')} on {platform.node()} "
          f"({os.cpu_count()} cores, {platform.python_version()}); tasks={args.tasks} "
          f"idle={args.idle} concurrency={args.concurrency} store={args.store}")  # fmt: skip
    print("| metric | bare Celery | HMS | HMS/bare |\n|---|---:|---:|---:|")
    for key in bare:
        print(f"| {key} | {bare[key]:.2f} | {hms[key]:.2f} | {hms[key] / bare[key]:.2f} |")


if __name__ == "__main__":
    main()
