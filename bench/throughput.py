"""Throughput and scheduling latency: bare Celery vs HMS, interleaved round by round.

    .venv/bin/python bench/throughput.py [--tasks 500] [--rounds 3] [--idle 100]
                                         [--concurrency 2] [--store postgres|sqlite]
                                         [--json results.json]

Both systems use the local Redis (127.0.0.1:6379), one worker with the same concurrency,
JSON, ``acks_late`` and prefetch 1.  Bare Celery (database 12) runs a no-op task with the
Redis result backend.  HMS (database 14) submits a trivial statement through the client,
which validates it and records it in the store (a scratch PostgreSQL database made and
dropped by :mod:`bench.common`, or ``--store sqlite``: a temporary SQLite file), and the
worker proves it with Z3 under HMS's default settings (prover sandbox, cvc5 confirmation).

**Interleaving.** The rounds run bare, HMS, bare, HMS, … so that a change of load on the
machine hits both systems alike.  **Every round starts a fresh worker** for its system and
stops it at the end: while one system is measured, no process of the other runs (an idle HMS
worker still renews its stack claim and keeps prover children), and every round pays the
same start-up, outside the clock, followed by the same warm-up burst (``4 × concurrency``
tasks, so each pool process has loaded its code — and HMS's its prover child).  The HMS
store is one database for the whole run (migrated once).

Per round: *idle* latency (``--idle`` tasks one at a time, each waited for; 0 skips it) and a
*burst* of ``--tasks`` tasks submitted at once (bare: one ``apply_async`` each; HMS: one
``client.submit_many`` call, as ``hms check`` submits a catalogue, which records them in one
transaction and publishes ``hms.prove_batch`` messages of up to ``HMS_PROVE_BATCH``).
Scheduling latency = task start − submit (one machine, one wall clock): for HMS, the first
attempt's start (a batch opens its members' attempts together) − the task's record time.
Throughput = tasks / (the last task's finish − the first submit), from the tasks' own
timestamps — the no-op's return (bare) and the store's ``finished_at`` (HMS) — so the
client's polling interval does not enter it; the client-observed figure (submit to the
client having every result) is reported too.  The report gives, per system, the min and
median over the rounds and the ratio of the medians (HMS/bare), plus a Markdown table to
paste into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.common import create_database, drop_database, pct, start_latency  # noqa: E402

REDIS = "redis://127.0.0.1:6379"
BARE_DB = 12  # bench/bare_app.py's database (no test uses it)
HMS_DB = 14  # HMS's stack database for this bench (tests use 9, 10, 11, 13)
STATEMENT = "∀ x : ℝ, x + 0 = x"
MIN_ROUNDS = 3

#: The figures of one round, in report order: (field, label, whether higher is better).
METRICS: list[tuple[str, str, bool]] = [
    ("tasks_per_s", "tasks/s", True),
    ("client_tasks_per_s", "tasks/s, client-observed", True),
    ("burst_p50_ms", "burst p50 ms", False),
    ("burst_p99_ms", "burst p99 ms", False),
    ("idle_p50_ms", "idle p50 ms", False),
    ("idle_p99_ms", "idle p99 ms", False),
]


@dataclass
class RoundResult:
    """One system's figures in one round."""

    system: str
    round: int
    tasks_per_s: float
    client_tasks_per_s: float
    burst_p50_ms: float
    burst_p99_ms: float
    idle_p50_ms: float
    idle_p99_ms: float


@dataclass
class Burst:
    """What one burst measured: submit time of the first task, per-task (start − submit)
    latencies, the last task's finish, and when the client had every result (wall clock)."""

    first_submit: float
    latencies: list[float]
    last_finish: float
    client_done: float
    count: int = field(init=False)

    def __post_init__(self) -> None:
        self.count = len(self.latencies)


# ----------------------------------------------------------------------------- workers


def start_worker(
    app: str, queue: str, concurrency: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a Celery worker consuming ``queue``; returns the process and its node name."""
    name = f"bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-n", name,
         "-c", str(concurrency), "-l", "WARNING", "--without-mingle", "--without-gossip"],
        env={**os.environ, **env}, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, name


def wait_ready(app: Any, name: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait for *our* worker: a stray one on the same broker must not start the clock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker {name} exited with {proc.returncode} before it was ready")
        if any(name in reply for reply in app.control.ping([name], timeout=0.5) or []):
            return
    raise RuntimeError(f"worker {name} did not start within {timeout:.0f}s")


def refuse_strays(app: Any, what: str) -> None:
    """Abort if some worker already listens on this broker database: it would take tasks."""
    replies = app.control.ping(timeout=1.0) or []
    names = sorted(name for reply in replies for name in reply)
    if names:
        raise SystemExit(f"error: {what} already has workers {names}; stop them first")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _epoch(iso: str) -> float:
    """A store timestamp (aware, UTC) as POSIX seconds."""
    return datetime.fromisoformat(iso).timestamp()


# ----------------------------------------------------------------------------- systems


class BareSystem:
    """Bare Celery: ``bench/bare_app.py``'s no-op on Redis database 12."""

    name = "bare"

    def __init__(self) -> None:
        os.environ["BENCH_REDIS_URL"] = f"{REDIS}/{BARE_DB}"
        sys.path.insert(0, str(REPO / "bench"))
        import bare_app

        self.mod = bare_app
        refuse_strays(bare_app.app, f"{REDIS}/{BARE_DB}")

    def run(self, n: int, idle: int, concurrency: int) -> tuple[list[float], Burst]:
        app, noop = self.mod.app, self.mod.noop
        app.control.purge()
        env = {"PYTHONPATH": str(REPO / "bench")}
        proc, name = start_worker("bare_app", "bare", concurrency, env)
        try:
            wait_ready(app, name, proc)
            self._forget([noop.delay(time.time()) for _ in range(4 * concurrency)])  # warm up
            idle_lat = []
            for _ in range(idle):
                result = noop.delay(time.time())
                value = result.get(timeout=30)
                idle_lat.append(value["started_at"] - value["sent_at"])
                result.forget()
            first = time.time()
            results = [noop.delay(time.time()) for _ in range(n)]
            values = [r.get(timeout=300) for r in results]
            done = time.time()
            self._forget(results)
        finally:
            stop(proc)
        lat = [v["started_at"] - v["sent_at"] for v in values]
        # The no-op returns at once: its start is its finish (its result write follows).
        return idle_lat, Burst(first, lat, max(v["started_at"] for v in values), done)

    @staticmethod
    def _forget(results: list[Any]) -> None:
        """Wait for and delete results (outside the clock), so database 12 does not grow."""
        for r in results:
            r.get(timeout=60)
            r.forget()

    def close(self) -> None:
        """Nothing to drop: results are forgotten as they are read."""

    def describe(self) -> str:
        client = self.mod.app.backend.client
        return f"Redis {client.info('server')['redis_version']}"


class HmsSystem:
    """HMS: the client submits, a ``prove.z3`` agent proves, the store is the truth."""

    name = "HMS"

    def __init__(self, store: str) -> None:
        self.store = store
        self.db_name: str | None = None
        self.sqlite_dir: str | None = None
        if store == "sqlite":
            self.sqlite_dir = tempfile.mkdtemp(prefix="hms-bench-")
            self.database = f"sqlite:///{self.sqlite_dir}/hms.db"
        else:
            self.db_name = f"hms_bench_{os.getpid()}"
            self.database = create_database(self.db_name)
        self.env = {"HMS_BROKER_URL": f"{REDIS}/{HMS_DB}", "HMS_DATABASE_URL": self.database}
        os.environ.update(self.env)
        from hms_celery.app import app, reconfigure
        from hms_celery.store.migrate import upgrade

        try:
            reconfigure()
            self.app = app
            refuse_strays(app, f"{REDIS}/{HMS_DB}")
            self._release_stale_claim()
            upgrade(self.database)
        except BaseException:
            self.close()  # the scratch database must not outlive a refused start
            raise

    @staticmethod
    def _release_stale_claim() -> None:
        """An earlier bench run's store may still hold database 14's stack claim (it
        expires 15 s after its last agent stopped): release it, but never another
        stack's."""
        from hms_celery.healing.heartbeats import redis_client
        from hms_celery.healing.stack_claim import CLAIM_KEY

        client = redis_client()
        holder = client.get(CLAIM_KEY)
        if holder is None:
            return
        text = holder.decode()
        if "hms_bench_" not in text and "hms-bench-" not in text:
            raise SystemExit(
                f"error: {REDIS}/{HMS_DB} serves another HMS stack (store {text}); "
                "this bench needs that database to itself"
            )
        client.delete(CLAIM_KEY)

    def run(self, n: int, idle: int, concurrency: int) -> tuple[list[float], Burst]:
        from hms_celery import client

        self.app.control.purge()
        proc, name = start_worker("hms_celery", "prove.z3", concurrency, self.env)
        try:
            wait_ready(self.app, name, proc)
            warm = [client.submit_proof_task("warm", STATEMENT) for _ in range(4 * concurrency)]
            client.wait_for_results(warm, timeout=120)
            idle_lat = []
            for _ in range(idle):
                status = client.wait_for_result(
                    client.submit_proof_task("b", STATEMENT), timeout=60
                )
                idle_lat.append(start_latency(status))
            first = time.time()
            # The burst goes in as one batch, as `hms check` submits a catalogue: one store
            # transaction records it, one producer publishes it (client.submit_many).
            from hms_celery.verification.request import ProofRequest

            requests = [(ProofRequest.build(theorem_id="b", statement=STATEMENT), None)] * n
            ids = client.submit_many(requests)
            statuses = client.wait_for_results(ids, timeout=600)
            done = time.time()
        finally:
            stop(proc)
        wrong = [s["verdict"] for s in statuses.values() if s["verdict"] != "PROVED"]
        if wrong:
            raise RuntimeError(f"{len(wrong)} HMS task(s) not PROVED: {sorted(set(wrong))}")
        lat = [start_latency(s) for s in statuses.values()]
        last = max(_epoch(s["timings"]["finished_at"]) for s in statuses.values())
        return idle_lat, Burst(first, lat, last, done)

    def close(self) -> None:
        """Drop the scratch store (PostgreSQL database or SQLite directory)."""
        if self.db_name is not None:
            drop_database(self.db_name)
        if self.sqlite_dir is not None:
            from hms_celery.store.db import dispose_engines

            dispose_engines()
            shutil.rmtree(self.sqlite_dir, ignore_errors=True)

    def describe(self) -> str:
        from sqlalchemy import text

        from hms_celery.store.db import get_engine

        if self.store == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        with get_engine().connect() as conn:
            return f"PostgreSQL {conn.execute(text('SHOW server_version')).scalar()}"


# ----------------------------------------------------------------------------- report


def figures(system: str, index: int, idle: list[float], burst: Burst) -> RoundResult:
    """One round's :class:`RoundResult` from its raw measurements."""
    nan = float("nan")
    return RoundResult(
        system=system,
        round=index,
        tasks_per_s=burst.count / (burst.last_finish - burst.first_submit),
        client_tasks_per_s=burst.count / (burst.client_done - burst.first_submit),
        burst_p50_ms=1000 * statistics.median(burst.latencies),
        burst_p99_ms=1000 * pct(burst.latencies, 99),
        idle_p50_ms=1000 * statistics.median(idle) if idle else nan,
        idle_p99_ms=1000 * pct(idle, 99),
    )


def versions() -> str:
    """The software the figures depend on."""
    names = ["celery", "kombu", "redis", "SQLAlchemy", "psycopg2-binary", "z3-solver", "cvc5"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"Python {platform.python_version()}, " + ", ".join(found)


def hms_settings() -> str:
    """HMS_* settings from the environment other than the bench's own (they change what
    HMS does per task, e.g. HMS_CONFIRM_PROVED=false)."""
    own = {"HMS_BROKER_URL", "HMS_DATABASE_URL"}
    extra = sorted(
        f"{k}={'***' if 'PASSWORD' in k else v}"
        for k, v in os.environ.items()
        if k.startswith("HMS_") and k not in own
    )
    return ", ".join(extra) or "none (defaults)"


def table(results: list[RoundResult]) -> str:
    """The Markdown summary: min and median per system, ratio of the medians."""

    def of(system: str, key: str) -> list[float]:
        return [getattr(r, key) for r in results if r.system == system]

    lines = [
        "| metric | bare min | bare median | HMS min | HMS median | HMS/bare (medians) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label, _ in METRICS:
        bare, hms = of("bare", key), of("HMS", key)
        if any(v != v for v in bare + hms):  # NaN: idle latency skipped
            continue
        bare_med, hms_med = statistics.median(bare), statistics.median(hms)
        lines.append(
            f"| {label} | {min(bare):.2f} | {bare_med:.2f} | {min(hms):.2f} | {hms_med:.2f} "
            f"| {hms_med / bare_med:.2f} |"
        )
    return "\n".join(lines)


def rounds_table(results: list[RoundResult]) -> str:
    """Every round's figures, in the order they ran."""
    head = "| round | system | " + " | ".join(label for _, label, _ in METRICS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(METRICS)]
    for r in results:
        cells = " | ".join(f"{getattr(r, key):.2f}" for key, _, _ in METRICS)
        lines.append(f"| {r.round} | {r.system} | {cells} |")
    return "\n".join(lines)


def verdict_line(results: list[RoundResult]) -> str:
    """The issue's targets: throughput ≥ 0.5× bare, burst p99 ≤ 2× bare (medians)."""

    def med(system: str, key: str) -> float:
        return statistics.median(getattr(r, key) for r in results if r.system == system)

    speed = med("HMS", "tasks_per_s") / med("bare", "tasks_per_s")
    p99 = med("HMS", "burst_p99_ms") / med("bare", "burst_p99_ms")
    return (
        f"Targets: throughput HMS/bare {speed:.2f} (≥ 0.5: {'met' if speed >= 0.5 else 'NOT met'})"
        f"; burst p99 HMS/bare {p99:.2f} (≤ 2: {'met' if p99 <= 2 else 'NOT met'})."
    )


# ----------------------------------------------------------------------------- main


def positive(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=positive(1), default=500, help="tasks per burst")
    parser.add_argument(
        "--rounds", type=positive(MIN_ROUNDS), default=MIN_ROUNDS, help="rounds per system"
    )
    parser.add_argument("--idle", type=positive(0), default=100, help="idle tasks per round")
    parser.add_argument("--concurrency", type=positive(1), default=2)
    parser.add_argument("--store", choices=["postgres", "postgresql", "sqlite"], default="postgres")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    args = parser.parse_args(argv)
    args.store = "postgres" if args.store == "postgresql" else args.store
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = datetime.now(UTC)
    load = os.getloadavg()
    # HMS first: its reconfigure() resets kombu's connection pools, the bare app's included.
    hms = HmsSystem(args.store)
    results: list[RoundResult] = []
    try:
        bare = BareSystem()
        for index in range(1, args.rounds + 1):
            for system in (bare, hms):
                idle, burst = system.run(args.tasks, args.idle, args.concurrency)
                result = figures(system.name, index, idle, burst)
                results.append(result)
                print(
                    f"round {index} {system.name}: {result.tasks_per_s:.1f} tasks/s, "
                    f"burst p99 {result.burst_p99_ms:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
        services = f"{bare.describe()}, {hms.describe()}"
    finally:
        hms.close()
    header = (
        f"{started.isoformat(timespec='seconds')} on {platform.node()} ({os.cpu_count()} CPUs, "
        f"load {load[0]:.2f} at start); store={args.store}; tasks={args.tasks} "
        f"rounds={args.rounds} idle={args.idle} concurrency={args.concurrency}\n"
        f"{versions()}; {services}; HMS settings: {hms_settings()}\n"
        "Rounds interleaved bare, HMS, bare, HMS, …; a fresh worker per round and system."
    )
    print(f"\n{header}\n\n{table(results)}\n\n{verdict_line(results)}\n")
    print(f"Every round:\n\n{rounds_table(results)}")
    if args.json:
        record = {"header": header, "args": {**vars(args), "json": str(args.json)}}
        record["rounds"] = [asdict(r) for r in results]
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
