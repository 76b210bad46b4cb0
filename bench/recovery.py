"""Recovery after SIGKILL: HMS (agent host + supervisor) vs bare Celery, measured in the same run.

HMS: an agent host in this process, beat, a supervisor agent and two prover agents
(concurrency 1) on the local Redis (db 7) and a fresh PostgreSQL database (dropped at the end).
Each round submits a ~5 s proof, waits until an attempt of it is open, SIGKILLs the process
group of the agent running it and measures, from the kill:

* requeue — the task running again (a new attempt row on another agent, its ``started_at``);
* respawn — a replacement agent of the killed agent's lineage READY (its READY transition);
* done — the task DONE (``finished_at``), with exactly one committed result.

Bare Celery: the same delivery settings (JSON, acks_late, reject_on_worker_lost, prefetch 1,
Redis broker on db 8), a ~5 s task, two ``celery worker`` processes (concurrency 1).  Each
round SIGKILLs the process group of the worker running the task and measures kill → the task
starting again, up to ``--bare-cap`` seconds.  Nothing respawns the killed worker during the
measurement (bare Celery has no supervisor); it is replaced between rounds.

    .venv/bin/python bench/recovery.py [--kills 20] [--bare-kills 3] [--bare-cap 120]
        [--visibility-timeout SECONDS]     # bare Celery only; default: kombu's 3600 s

``--kills 0`` skips HMS, ``--bare-kills 0`` skips bare Celery.

HMS settings: sweep and health round every 1 s, heartbeat timeout 4 s, no restart backoff,
restart limit 1000 (or the settings' maximum, 100) so the policy never escalates.  The report
timeout is 30 s, not 5 s: an agent of concurrency 1 that is busy on the ~5 s proof cannot
answer the broadcast health check, so with a report timeout shorter than the proof the sweep
calls it "wedged" (DEGRADED) and restarts its pool, which kills the proof, which is redelivered
and killed again (``--report-timeout 5`` shows it; see docs/benchmarks.md).  The report
timeout plays no part in detecting a SIGKILLed agent (process exit / heartbeats do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import create_database, drop_database, pct  # noqa: E402

REDIS = "redis://127.0.0.1:6379"
HMS_DB = 7
BARE_DB = 8
SLOW = "∀ (n : ℕ) (x : Fin n → ℝ), (∀ i, 0 ≤ x i) → 0 ≤ ∑ i, x i"  # ~5 s of Z3 work
BARE_TASK_S = 5.0
ROUND_CAP_S = 180.0  # an HMS round that takes longer than this counts as a lost task


def epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()  # the store's times are aware


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------------------- PostgreSQL
# ----------------------------------------------------------------------------- HMS
def restart_max() -> str:
    """1000 (never escalate during the benchmark) if the settings accept it, else their max."""
    from hms_celery.errors import SettingsError
    from hms_celery.settings import load_settings

    os.environ["HMS_RESTART_MAX"] = "1000"
    try:
        load_settings()
        return "1000"
    except SettingsError:
        return "100"  # Settings.restart_max has le=100


class HmsStack:
    """Agent host (this process), beat, a supervisor agent and two prover agents."""

    def __init__(self, data_dir: Path, report_timeout: float) -> None:
        self.db_name = f"hms_recovery_{os.getpid()}"
        self.data_dir = data_dir
        self.local: Any = None  # the LocalStack, once started
        self.provers: list[str] = []
        database = create_database(self.db_name)
        self.env = {
            "HMS_BROKER_URL": f"{REDIS}/{HMS_DB}",
            "HMS_DATABASE_URL": database,
            "HMS_DATA_DIR": str(data_dir),
            "HMS_SWEEP_INTERVAL": "1",
            "HMS_HEALTH_INTERVAL": "1",
            "HMS_HEARTBEAT_TIMEOUT": "4",
            "HMS_REPORT_TIMEOUT": f"{report_timeout:g}",
            "HMS_RESTART_BACKOFF": "0",
            "HMS_PROVER_TIMEOUT": "120",
        }
        os.environ.update(self.env)
        self.env["HMS_RESTART_MAX"] = restart_max()
        os.environ.update(self.env)

    def start(self) -> None:
        from hms_celery.app import reconfigure
        from hms_celery.client.local_stack import LocalStack
        from hms_celery.healing.heartbeats import redis_client
        from hms_celery.store.migrate import upgrade

        reconfigure()
        upgrade(self.env["HMS_DATABASE_URL"])
        redis_client().flushdb()
        self.local = LocalStack(self.env, self.data_dir)
        self.spawn(["supervisor"])
        self.provers = [self.spawn(["prove.z3"]), self.spawn(["prove.z3"])]

    def spawn(self, skills: list[str]) -> str:
        return self.local.spawn(skills, timeout=90)

    def live_provers(self) -> list[str]:
        from hms_celery.agents import registry

        ready = []
        for agent_id in self.local.host.running("prove.z3"):
            agent = registry.get_agent(agent_id)
            if agent and agent["state"] in ("READY", "BUSY"):
                ready.append(agent_id)
        return ready

    def close(self) -> None:
        from hms_celery.healing.heartbeats import redis_client

        if self.local is not None:
            self.local.close()
        try:
            redis_client().flushdb()
        except Exception as exc:
            print(f"# could not flush redis db {HMS_DB}: {exc}", file=sys.stderr)
        drop_database(self.db_name)


def running_attempt(task_id: str) -> dict[str, Any] | None:
    from hms_celery import client

    status = client.query_task_status(task_id)
    open_attempts = [a for a in status["attempts"] if a["ended_at"] is None]
    return open_attempts[-1] if open_attempts else None


def hms_round(stack: HmsStack) -> dict[str, Any]:
    """One kill; returns the three delays (None if not reached) and the result count."""
    from hms_celery import client
    from hms_celery.agents import registry
    from hms_celery.store import repository

    # Two live provers before each round (the respawned one replaces the killed one).
    try:
        wait_until(lambda: len(stack.live_provers()) >= 2, 60, "two live prover agents")
    except TimeoutError:
        print("# fewer than two provers: spawning one by hand", file=sys.stderr)
        stack.spawn(["prove.z3"])
    task_id = client.submit_proof_task("slow", SLOW, max_size=200, timeout=120)
    attempt = wait_until(lambda: running_attempt(task_id), 60, "the proof to start")
    victim = attempt["agent"]
    lineage = registry.get_agent(victim)["lineage"]
    before = {a["id"] for a in registry.list_agents() if a["lineage"] == lineage}
    os.killpg(stack.local.pid(victim), signal.SIGKILL)
    killed_at = time.time()

    out: dict[str, Any] = {"victim": victim, "requeue": None, "respawn": None, "done": None}
    deadline = time.monotonic() + ROUND_CAP_S
    while time.monotonic() < deadline:
        status = client.query_task_status(task_id)
        if out["requeue"] is None:
            for a in status["attempts"]:
                if a["number"] > attempt["number"] and a["agent"] != victim and a["started_at"]:
                    out["requeue"] = epoch(a["started_at"]) - killed_at
                    break
        if out["done"] is None and status["state"] == "DONE":
            out["done"] = epoch(status["timings"]["finished_at"]) - killed_at
            out["verdict"] = status["verdict"]
        if out["respawn"] is None:
            for agent in registry.list_agents():
                if agent["lineage"] != lineage or agent["id"] in before:
                    continue
                ready = [t for t in registry.transitions(agent["id"]) if t["to"] == "READY"]
                if ready:
                    out["respawn"] = epoch(ready[0]["at"]) - killed_at
                    out["replacement"] = agent["id"]
                    break
        if None not in (out["requeue"], out["respawn"], out["done"]):
            break
        time.sleep(0.05)
    # Where the time went: the victim marked FAILED, the task re-published by a sweep.
    failed = [t for t in registry.transitions(victim) if t["to"] == "FAILED"]
    out["failed"] = epoch(failed[0]["at"]) - killed_at if failed else None
    requeued = [
        e for e in repository.audit_events(subject=task_id) if e["action"] == "task.requeued"
    ]
    out["republished"] = epoch(requeued[0]["at"]) - killed_at if requeued else None
    out["results"] = repository.count_results(task_id)
    final = client.query_task_status(task_id)
    out["attempts"] = [a["outcome"] for a in final["attempts"]]
    out["lost"] = out["done"] is None
    return out


def bench_hms(kills: int, report_timeout: float) -> tuple[dict[str, list[float]], dict[str, int]]:
    data_dir = Path(tempfile.mkdtemp(prefix="hms-recovery-"))
    stack = HmsStack(data_dir, report_timeout)
    delays: dict[str, list[float]] = {
        "failed": [],
        "republished": [],
        "requeue": [],
        "respawn": [],
        "done": [],
    }
    counts = {"rounds": 0, "lost": 0, "double": 0, "no_respawn": 0}
    try:
        stack.start()
        for i in range(1, kills + 1):
            r = hms_round(stack)
            counts["rounds"] += 1
            counts["lost"] += int(r["lost"])
            counts["double"] += int(r["results"] > 1)
            counts["no_respawn"] += int(r["respawn"] is None)
            for key in delays:
                if r[key] is not None:
                    delays[key].append(r[key])
            fmt = {k: f"{r[k]:.2f}" if r[k] is not None else "-" for k in delays}
            print(f"# HMS round {i}: killed {r['victim']}: FAILED {fmt['failed']} s, "
                  f"re-published {fmt['republished']} s, running again {fmt['requeue']} s, "
                  f"replacement READY {fmt['respawn']} s, done {fmt['done']} s, "
                  f"results {r['results']}, attempts {r['attempts']}",
                  file=sys.stderr, flush=True)  # fmt: skip
    finally:
        stack.close()
    return delays, counts


# ----------------------------------------------------------------------------- bare Celery
class BareWorkers:
    """``celery worker`` processes of bench/bare_slow_app.py, each in its own process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> str:
        name = f"bare-slow-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bare_slow_app", "worker", "-Q", "bare.slow",
             "-n", name, "-c", "1", "-l", "WARNING", "--without-mingle", "--without-gossip"],
            env={**os.environ, **self.env}, cwd=REPO / "bench",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        return name

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def bench_bare(kills: int, cap: float, visibility_timeout: float | None) -> list[float | None]:
    url = f"{REDIS}/{BARE_DB}"
    env = {"BENCH_REDIS_URL": url, "PYTHONPATH": str(REPO / "bench")}
    if visibility_timeout is not None:
        env["BENCH_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
    os.environ["BENCH_REDIS_URL"] = url  # read by bare_slow_app at import
    if visibility_timeout is not None:
        os.environ["BENCH_VISIBILITY_TIMEOUT"] = str(visibility_timeout)
    sys.path.insert(0, str(REPO / "bench"))
    import bare_slow_app
    import redis

    rc = redis.Redis.from_url(url)
    rc.flushdb()
    workers = BareWorkers(env)
    delays: list[float | None] = []
    try:
        for i in range(1, kills + 1):
            while len(workers.alive()) < 2:
                workers.start()
            for name in workers.alive():
                wait_until(
                    lambda n=name: bare_slow_app.app.control.ping([n], timeout=0.5), 60, name
                )
            task_id = bare_slow_app.slow.delay(BARE_TASK_S).id
            key = bare_slow_app.starts_key(task_id)
            first = json.loads(wait_until(lambda k=key: rc.lindex(k, 0), 60, "the task to start"))
            workers.kill(first["hostname"])
            killed_at = time.time()
            restarted = None
            deadline = time.monotonic() + cap
            while time.monotonic() < deadline:
                again = rc.lindex(key, 1)
                if again is not None:
                    restarted = json.loads(again)["at"] - killed_at
                    break
                time.sleep(0.1)
            delays.append(restarted)
            shown = f"{restarted:.2f} s" if restarted is not None else f"> {cap:.0f} s"
            print(f"# bare round {i}: killed {first['hostname']}, restarted after {shown}",
                  file=sys.stderr, flush=True)  # fmt: skip
            if restarted is not None:  # let it finish so the next round starts clean
                done = bare_slow_app.done_key(task_id)
                wait_until(lambda k=done: rc.lindex(k, 0), 60, "the bare task to finish")
            # A message that did not come back sits in the unacked hash until the visibility
            # timeout; drop it so it cannot run in a later round.
            rc.delete("unacked", "unacked_index")
    finally:
        workers.close()
        rc.flushdb()
    return delays


# ----------------------------------------------------------------------------- report
def row(name: str, values: list[float], n: int) -> str:
    if not values:
        return f"| {name} | – | – | – | 0/{n} |"
    return (
        f"| {name} | {statistics.median(values):.2f} | {pct(values, 95):.2f} | "
        f"{max(values):.2f} | {len(values)}/{n} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="HMS rounds (0: skip HMS)")
    parser.add_argument("--bare-kills", type=int, default=3, help="bare Celery rounds")
    parser.add_argument("--bare-cap", type=float, default=120.0, help="seconds per bare round")
    parser.add_argument(
        "--visibility-timeout", type=float, default=None, help="bare Celery's (default 3600 s)"
    )
    parser.add_argument(
        "--report-timeout",
        type=float,
        default=30.0,
        help="HMS_REPORT_TIMEOUT; keep it above the ~5 s proof (see the module docstring)",
    )
    args = parser.parse_args()
    t0 = time.monotonic()
    # Bare Celery first: it must not inherit the HMS settings of this process.
    bare = bench_bare(args.bare_kills, args.bare_cap, args.visibility_timeout)
    hms, counts = bench_hms(args.kills, args.report_timeout) if args.kills else ({}, {})
    vt = f"{args.visibility_timeout:g} s" if args.visibility_timeout else "default (3600 s)"
    print(f"# {datetime.now().isoformat(timespec='seconds')} on {platform.node()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()}); kills={args.kills} "
          f"bare-kills={args.bare_kills} bare-cap={args.bare_cap:g} s "
          f"bare visibility timeout={vt} HMS_REPORT_TIMEOUT={args.report_timeout:g} s; "
          f"wall time {time.monotonic() - t0:.0f} s")  # fmt: skip
    print("\n| seconds after SIGKILL | p50 | p95 | max | reached |\n|---|---:|---:|---:|---:|")
    if hms:
        n = counts["rounds"]
        print(row("HMS: task running again (new attempt elsewhere)", hms["requeue"], n))
        print(row("HMS: replacement agent READY (same lineage)", hms["respawn"], n))
        print(row("HMS: task DONE", hms["done"], n))
        print(row("(HMS: killed agent marked FAILED)", hms["failed"], n))
        print(row("(HMS: task re-published by a sweep)", hms["republished"], n))
    if bare:
        got = [d for d in bare if d is not None]
        missed = len(bare) - len(got)
        line = row(f"bare Celery (visibility timeout {vt}): task running again", got, len(bare))
        if missed:
            line = line.replace(f"| {len(got)}/{len(bare)} |", f"| {len(got)}/{len(bare)} "
                                f"({missed} × > {args.bare_cap:g} s cap) |")  # fmt: skip
        print(line)
    if hms:
        print(f"\nHMS: {counts['rounds']} kills, lost tasks {counts['lost']}, double commits "
              f"{counts['double']}, rounds without a READY replacement {counts['no_respawn']}; "
              f"HMS_RESTART_MAX={os.environ.get('HMS_RESTART_MAX')}")  # fmt: skip


if __name__ == "__main__":
    main()
