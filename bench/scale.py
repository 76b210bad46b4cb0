"""Scale: 1,000 (or 10,000) simulated agents beating next to a real supervisor, prover and beat.

The stack: an agent host in this process, beat, a supervisor agent (it runs the heartbeat
monitor) and one prover agent, on the local Redis (db 9, or ``HMS_BENCH_REDIS_DB``) and a
fresh PostgreSQL database
(dropped at the end), with the default self-healing settings (sweep every 2 s, health round
every 3 s, heartbeat timeout 6 s, report timeout 10 s).

The simulated agents are not processes: ``--agents`` rows registered READY in the store
(``sim-0001@bench`` …) whose Celery ``worker-heartbeat`` events are published from a few
threads (one ``app.events.Dispatcher`` per agent, every 2 s each, phases spread evenly), and
whose health reports are written in one batch UPDATE after each health round (a real agent's
pool answers the broadcast check with its own small UPDATE; that write load is not simulated).

Measured, in the same run:

* proof scheduling latency (attempt ``started_at`` − task ``created_at``) of ``--tasks``
  trivial proofs submitted one by one at a steady rate over ``--duration`` seconds, first with
  no simulated agents (baseline), then while they beat;
* heartbeat ingestion: sampling ``hms:heartbeats`` every second, how many simulated agents'
  ``seen`` changed (each beats every 2 s, so each changes at most once per sample);
* the sweep: ``--sweeps`` direct calls of ``hms_celery.healing.supervisor.sweep`` (holding the
  sweep lock, like the task does), and the ``duration_ms`` of the real sweeps from the
  supervisor's log; how many agents each sweep examined (it reads only those whose state may
  change) and how many were full sweeps;
* CPU used by the supervisor's and the prover's main processes in each phase.

    .venv/bin/python bench/scale.py [--agents 1000] [--duration 20] [--tasks 200] [--sweeps 20]
    HMS_BENCH_REDIS_DB=8 .venv/bin/python bench/scale.py --agents 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import create_database, drop_database, pct, start_latency  # noqa: E402

REDIS = "redis://127.0.0.1:6379"
DB = int(os.environ.get("HMS_BENCH_REDIS_DB", "9"))  # a database of its own: it is flushed
STATEMENT = "∀ x : ℝ, x + 0 = x"
PERIOD_S = 2.0  # Celery's worker heartbeat interval (--beat-period)
SIM_HOST = "bench-sim"  # not this machine's name: the sweep does not probe their pids
SWEEP_LINE = re.compile(r"hms\.supervisor\.sweep\[[^\]]*\] succeeded in [\d.e-]+s: (\{.*\})\s*$")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sim_ids(n: int) -> list[str]:
    return [f"sim-{i:05d}@bench" for i in range(1, n + 1)]


# ----------------------------------------------------------------------------- PostgreSQL
# ----------------------------------------------------------------------------- the stack
class Stack:
    """Agent host (this process), beat, a supervisor agent and one prover agent."""

    def __init__(self, data_dir: Path) -> None:
        self.db_name = f"hms_scale_{os.getpid()}"
        self.data_dir = data_dir
        self.local: Any = None  # the LocalStack, once started
        self.env = {
            "HMS_BROKER_URL": f"{REDIS}/{DB}",
            "HMS_DATABASE_URL": create_database(self.db_name),
            "HMS_DATA_DIR": str(data_dir),
            # Three missed beats, as with Celery's 2 s beats and the default 6 s timeout.
            "HMS_HEARTBEAT_TIMEOUT": str(max(6.0, 3 * PERIOD_S)),
        }
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
        self.supervisor = self.local.spawn(["supervisor"], timeout=90)
        self.prover = self.local.spawn(["prove.z3"], timeout=90, concurrency=2)

    def pid(self, agent_id: str) -> int:
        return self.local.pid(agent_id)

    def supervisor_log(self) -> Path:
        return self.local.log_path(self.supervisor)

    def close(self) -> None:
        from hms_celery.healing.heartbeats import redis_client

        if self.local is not None:
            self.local.close()
        try:
            redis_client().flushdb()
        except Exception as exc:
            print(f"# could not flush redis db {DB}: {exc}", file=sys.stderr)
        drop_database(self.db_name)


# ----------------------------------------------------------------------------- simulators
class Beater(threading.Thread):
    """Publishes a worker-heartbeat for each of its agents every 2 s (phases spread evenly)."""

    def __init__(self, sims: list[str], phase: float, stop: threading.Event) -> None:
        super().__init__(name=f"sim-beater-{sims[0]}", daemon=True)
        self.sims = sims
        self.phase = phase
        self.stop_event = stop
        self.sent = 0
        self.late = 0  # beats sent more than 0.5 s after they were due
        self.error: BaseException | None = None

    def run(self) -> None:
        from hms_celery.app import app

        try:
            with app.connection_for_write() as conn:
                dispatchers = [
                    app.events.Dispatcher(conn, hostname=sim, groups=["worker"])
                    for sim in self.sims
                ]
                fields = {"freq": PERIOD_S, "sw_ident": "hms-bench-sim", "sw_sys": "Linux"}
                for d in dispatchers:
                    d.send("worker-online", **fields)
                start = time.monotonic() + self.phase
                k = 0
                while not self.stop_event.is_set():
                    for i, d in enumerate(dispatchers):
                        due = start + k * PERIOD_S + i * PERIOD_S / len(dispatchers)
                        delay = due - time.monotonic()
                        if delay > 0 and self.stop_event.wait(delay):
                            return
                        if delay < -0.5:
                            self.late += 1
                        d.send("worker-heartbeat", active=0, processed=0, **fields)
                        self.sent += 1
                    k += 1
        except BaseException as exc:  # reported by the main thread
            self.error = exc


class Reporter(threading.Thread):
    """After each health round, one UPDATE stores a Healthy report for every simulated agent."""

    def __init__(self, sims: list[str], stop: threading.Event) -> None:
        super().__init__(name="sim-reporter", daemon=True)
        self.sims = sims
        self.stop_event = stop
        self.rounds = 0
        self.failures = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        from sqlalchemy import select, update

        from hms_celery.healing.health import LAST_ROUND_KEY
        from hms_celery.healing.heartbeats import redis_client
        from hms_celery.store.db import connection_scope
        from hms_celery.store.models import Agent, utcnow

        rc = redis_client()
        agents = Agent.__table__
        last = None
        while not self.stop_event.wait(0.2):
            current = rc.get(LAST_ROUND_KEY)
            if current == last:
                continue
            report = {"status": "Healthy", "problems": [], "backends": {"z3": True}}
            try:
                with connection_scope() as conn:
                    # Lock the rows in id order, as the sweep's heartbeat batch does: two
                    # batch writers locking in different orders deadlock.
                    conn.execute(
                        select(agents.c.id)
                        .where(agents.c.id.in_(self.sims))
                        .order_by(agents.c.id)
                        .with_for_update()
                    ).all()
                    conn.execute(
                        update(agents)
                        .where(agents.c.id.in_(self.sims))
                        .values(last_report=report, last_report_at=utcnow())
                    )
            except Exception as exc:  # counted and retried at the next poll
                self.failures += 1
                self.error = exc
                continue
            last = current
            self.rounds += 1


class Sampler(threading.Thread):
    """Every second: how many simulated agents' ``seen`` changed in ``hms:heartbeats``."""

    def __init__(self, sims: list[str], stop: threading.Event) -> None:
        super().__init__(name="sim-sampler", daemon=True)
        self.sims = set(sims)
        self.stop_event = stop
        self.changed = 0
        self.elapsed = 0.0
        self.ages: list[float] = []  # now − seen of every simulated agent, at each sample

    def run(self) -> None:
        from hms_celery.healing.heartbeats import BEATS_KEY, redis_client

        rc = redis_client()
        previous: dict[str, float] | None = None
        t_prev = 0.0
        while not self.stop_event.wait(1.0):
            raw = rc.hgetall(BEATS_KEY)
            now = time.time()
            t = time.monotonic()
            seen = {
                k.decode(): json.loads(v)["seen"] for k, v in raw.items() if k.decode() in self.sims
            }
            self.ages.extend(now - s for s in seen.values())
            if previous is not None:
                self.changed += sum(1 for k, s in seen.items() if previous.get(k) != s)
                self.elapsed += t - t_prev
            previous, t_prev = seen, t


# ----------------------------------------------------------------------------- phases
def latency_phase(n: int, duration: float) -> list[float]:
    """Submit ``n`` trivial proofs one by one at a steady rate over ``duration`` seconds."""
    from hms_celery import client

    ids = []
    t0 = time.monotonic()
    for i in range(n):
        delay = t0 + i * duration / n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ids.append(client.submit_proof_task("scale", STATEMENT))
    done = client.wait_for_results(ids, timeout=120)
    bad = [s["verdict"] for s in done.values() if s["verdict"] != "PROVED"]
    if bad:
        raise RuntimeError(f"{len(bad)} proofs not PROVED: {bad[:5]}")
    return [start_latency(s) for s in done.values()]


def direct_sweeps(n: int) -> tuple[list[float], list[dict[str, Any]]]:
    """Time ``n`` sweeps called directly, each under the sweep lock (as the task takes it)."""
    from hms_celery.app import app
    from hms_celery.healing.heartbeats import redis_client
    from hms_celery.healing.supervisor import LOCK_KEY, sweep

    app.loader.import_default_modules()  # as a worker does when it starts

    rc = redis_client()
    times, summaries = [], []
    for _ in range(n):
        lock = rc.lock(LOCK_KEY, timeout=60, blocking_timeout=60)  # real sweeps run too
        if not lock.acquire():
            raise RuntimeError("could not take the sweep lock")
        try:
            t = time.perf_counter()
            summaries.append(sweep(rc, reason="bench"))
            times.append(1000 * (time.perf_counter() - t))
        finally:
            lock.release()
        time.sleep(0.3)
    return times, summaries


def real_sweeps(log_path: Path) -> list[float]:
    """``duration_ms`` of the sweeps in the supervisor's log."""
    import ast

    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        match = SWEEP_LINE.search(line)
        if not match:
            continue
        try:
            summary = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            continue
        if "duration_ms" in summary:
            out.append(float(summary["duration_ms"]))
    return out


def register_sims(sims: list[str]) -> float:
    """Rows and transitions as ``registry.register_agent`` writes them, 1,000 per statement
    (one by one, 10,000 agents take minutes)."""
    from sqlalchemy import insert

    from hms_celery.agents import registry
    from hms_celery.settings import get_settings
    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Agent, AgentTransition, utcnow

    stack = get_settings().stack_id  # the supervisor judges the agents of its own stack
    t = time.perf_counter()
    now = utcnow()
    for i in range(0, len(sims), 1000):
        chunk = sims[i : i + 1000]
        with connection_scope() as conn:
            row = dict(
                stack=stack, host=SIM_HOST, pid=None, skills=["prove.z3"], queues=["prove.z3"],
                config={}, version="bench", state=registry.READY, state_reason="simulated agent",
                started_at=now, updated_at=now,
            )  # fmt: skip
            conn.execute(insert(Agent.__table__), [{"id": s, "lineage": s, **row} for s in chunk])
            moved = dict(from_state=None, to_state=registry.READY, reason=row["state_reason"])
            conn.execute(
                insert(AgentTransition.__table__),
                [{"agent_id": s, "at": now, **moved} for s in chunk],
            )
    return time.perf_counter() - t


def retire_sims(sims: list[str]) -> None:
    from sqlalchemy import update

    from hms_celery.agents import registry
    from hms_celery.healing.heartbeats import HeartbeatStore, redis_client
    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Agent, utcnow

    agents = Agent.__table__
    with connection_scope() as conn:  # the database is dropped next: no transitions kept
        conn.execute(
            update(agents)
            .where(agents.c.id.in_(sims))
            .values(state=registry.TERMINATED, state_reason="simulation over", updated_at=utcnow())
        )
    HeartbeatStore(redis_client()).forget(*sims)


def sim_states(sims: list[str]) -> dict[str, int]:
    from sqlalchemy import func, select

    from hms_celery.store.db import connection_scope
    from hms_celery.store.models import Agent

    agents = Agent.__table__
    with connection_scope() as conn:
        rows = conn.execute(
            select(agents.c.state, func.count())
            .where(agents.c.id.in_(sims))
            .group_by(agents.c.state)
        )
        return {state: count for state, count in rows}


# ----------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="hms-scale-"))
    stack = Stack(data_dir)
    sims = sim_ids(args.agents)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    registered = False
    out: dict[str, Any] = {}
    try:
        stack.start()
        from hms_celery import client

        client.wait_for_result(client.submit_proof_task("warm", STATEMENT), timeout=60)
        pids = {"supervisor": stack.pid(stack.supervisor), "prover": stack.pid(stack.prover)}

        # Baseline: no simulated agents.
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        t = time.monotonic()
        out["latency_idle"] = latency_phase(args.tasks, args.duration)
        out["cpu_idle"] = {
            k: 100 * (cpu_seconds(p) - cpu0[k]) / (time.monotonic() - t) for k, p in pids.items()
        }
        out["sweeps_idle"], _ = direct_sweeps(args.sweeps)
        print("# baseline done", file=sys.stderr, flush=True)

        # Load: register the simulated agents, start beating, measure.
        per = -(-len(sims) // args.threads)
        beaters = [
            Beater(sims[i : i + per], phase=j * PERIOD_S / args.threads, stop=stop)
            for j, i in enumerate(range(0, len(sims), per))
        ]
        reporter, sampler = Reporter(sims, stop), Sampler(sims, stop)
        threads = [*beaters, reporter]
        for thread in threads:
            thread.start()
        # Beating first, registered next: 10,000 dispatchers take longer to start than a
        # registered agent may wait for its first beat.
        time.sleep(2 * PERIOD_S)
        registered = True
        out["register_s"] = register_sims(sims)
        time.sleep(2 * PERIOD_S)  # every simulated agent has beaten at least once
        sampler.start()
        threads.append(sampler)
        log_mark = stack.supervisor_log().stat().st_size
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        sent0 = sum(b.sent for b in beaters)
        t = time.monotonic()
        out["latency_load"] = latency_phase(args.tasks, args.duration)
        out["cpu_load"] = {
            k: 100 * (cpu_seconds(p) - cpu0[k]) / (time.monotonic() - t) for k, p in pids.items()
        }
        out["sent_rate"] = (sum(b.sent for b in beaters) - sent0) / (time.monotonic() - t)
        out["sweeps_load"], summaries = direct_sweeps(args.sweeps)
        out["sweep_examined"] = [s["agents"] for s in summaries]
        out["sweep_full"] = sum(1 for s in summaries if s.get("full"))
        out["sweep_stored"] = [s.get("beats_stored", 0) for s in summaries]
        out["sweep_transitions"] = sum(len(s["transitions"]) for s in summaries)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        errors = [b.error for b in beaters if b.error is not None]
        if errors:
            raise RuntimeError(f"a simulator thread failed: {errors[0]!r}")
        out["ingest_rate"] = sampler.changed / sampler.elapsed if sampler.elapsed else 0.0
        out["beat_age_p50"] = statistics.median(sampler.ages) if sampler.ages else float("nan")
        out["beat_age_max"] = max(sampler.ages, default=float("nan"))
        out["late_beats"] = sum(b.late for b in beaters)
        out["report_rounds"] = reporter.rounds
        out["report_failures"] = reporter.failures
        out["report_error"] = repr(reporter.error) if reporter.error else None
        with stack.supervisor_log().open("rb") as f:
            f.seek(log_mark)
            tail = data_dir / "supervisor-load.log"
            tail.write_bytes(f.read())
        out["real_sweeps"] = real_sweeps(tail)
        out["sim_states"] = sim_states(sims)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        try:
            if registered:
                retire_sims(sims)
                out["sim_states_after"] = sim_states(sims)
        finally:
            stack.close()
    return out


def main() -> None:
    global PERIOD_S  # --beat-period: read by the simulators and the stack's settings
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each phase")
    parser.add_argument("--tasks", type=int, default=200, help="proofs per phase")
    parser.add_argument("--sweeps", type=int, default=20, help="direct sweeps per phase")
    parser.add_argument("--threads", type=int, default=4, help="simulator threads")
    parser.add_argument(
        "--beat-period",
        type=float,
        default=PERIOD_S,
        help="seconds between a simulated agent's beats (2, as Celery; the heartbeat "
        "timeout is 3 periods)",
    )
    args = parser.parse_args()
    PERIOD_S = args.beat_period
    t0 = time.monotonic()
    r = run(args)

    def ms(values: list[float]) -> str:
        return f"{1000 * statistics.median(values):.1f} / {1000 * pct(values, 99):.1f}"

    def sweep_ms(values: list[float]) -> str:
        if not values:
            return "–"
        return f"{statistics.median(values):.1f} / {pct(values, 99):.1f} / {max(values):.1f}"

    print(f"# {datetime.now().isoformat(timespec='seconds')} on {platform.node()} "
          f"({os.cpu_count()} cores, Python {platform.python_version()}); agents={args.agents} "
          f"duration={args.duration:g} s tasks={args.tasks} sweeps={args.sweeps} "
          f"threads={args.threads} beat-period={PERIOD_S:g} s; "
          f"wall time {time.monotonic() - t0:.0f} s")  # fmt: skip
    print("\n| metric | no simulated agents | with simulated agents |\n|---|---:|---:|")
    examined = r["sweep_examined"]
    print(f"| agents in the stack | 2 | {args.agents + 2} |")
    print(f"| agents examined per direct sweep, p50 / max (full sweeps) | – | "
          f"{statistics.median(examined):.0f} / {max(examined)} ({r['sweep_full']}) |")  # fmt: skip
    print(f"| heartbeat copies stored per direct sweep, p50 / max | – | "
          f"{statistics.median(r['sweep_stored']):.0f} / {max(r['sweep_stored'])} |")  # fmt: skip
    print(f"| heartbeat events/s sent / ingested into `hms:heartbeats` | – | "
          f"{r['sent_rate']:.0f} / {r['ingest_rate']:.0f} |")  # fmt: skip
    print(f"| heartbeat age in the hash, p50 / max s | – | "
          f"{r['beat_age_p50']:.2f} / {r['beat_age_max']:.2f} |")  # fmt: skip
    print(f"| sweep ms p50 / p99 / max (direct calls) | {sweep_ms(r['sweeps_idle'])} | "
          f"{sweep_ms(r['sweeps_load'])} |")  # fmt: skip
    print(f"| sweep ms p50 / p99 / max (real sweeps, `duration_ms`, n={len(r['real_sweeps'])}) "
          f"| – | {sweep_ms(r['real_sweeps'])} |")  # fmt: skip
    print(f"| proof scheduling latency p50 / p99 ms ({args.tasks} proofs) | "
          f"{ms(r['latency_idle'])} | {ms(r['latency_load'])} |")  # fmt: skip
    print(f"| CPU % of the supervisor's main process | {r['cpu_idle']['supervisor']:.0f} | "
          f"{r['cpu_load']['supervisor']:.0f} |")  # fmt: skip
    print(f"| CPU % of the prover's main process | {r['cpu_idle']['prover']:.0f} | "
          f"{r['cpu_load']['prover']:.0f} |")  # fmt: skip
    print(f"\nRegistering {args.agents} agents took {r['register_s']:.1f} s; state of the "
          f"simulated agents at the end of the load: {r['sim_states']} (transitions in the "
          f"direct sweeps: {r['sweep_transitions']}); beats sent > 0.5 s late: "
          f"{r['late_beats']}; health-report rounds answered: {r['report_rounds']} (failed "
          f"writes, retried: {r['report_failures']}, last error: {r['report_error']}); after "
          f"clean-up: {r.get('sim_states_after')}.")  # fmt: skip


if __name__ == "__main__":
    main()
