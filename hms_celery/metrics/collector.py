"""The HMS collector: every figure read from the store and the broker at scrape time.

HMS's state lives in the SQL store and the broker, not in any one process, so the collector
holds no counters of its own: each scrape runs a handful of aggregate queries (``GROUP BY``,
one row per label set — never a Python loop over a large table) and asks the broker for the
depth of every skill queue.  The figures are therefore the same whichever process serves them
(the supervisor agent, ``hms metrics serve``) and survive restarts of every process.

A scrape never fails: when the store or the broker cannot be reached, ``hms_up{component}``
is 0 and that component's families are left out (Prometheus then marks them stale).  See
``docs/metrics.md`` for every family.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from kombu import Connection
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine, case, create_engine, func, select
from sqlalchemy.engine import Connection as SQLConnection
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from hms_celery.healing.heartbeats import redis_client
from hms_celery.healing.supervisor import POLICY_KEY
from hms_celery.metrics.sweeps import SWEEP_BUCKETS, read_sweeps
from hms_celery.policy import ActionKind, AgentState, BreakerState
from hms_celery.runtime.skills import load_skills
from hms_celery.settings import get_settings, is_redis_url
from hms_celery.store.db import safe_url
from hms_celery.store.models import (
    Agent,
    Attempt,
    AuditEvent,
    GAGeneration,
    GARun,
    GARunStatus,
    ProofResult,
    SupervisorState,
    Task,
    TaskStatus,
)

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the proof-time buckets (``proof_results.elapsed_s``).
PROOF_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: Audit actions counted as recovery actions, and their ``kind`` label.  An explicit list
#: (not ``LIKE 'recovery.%'``) so the count is an index lookup on ``audit_log.action``.
RECOVERY_ACTIONS: dict[str, str] = {
    **{f"recovery.{k.value.lower()}": k.value.lower() for k in ActionKind if k.value != "IGNORE"},
    "task.requeued": "requeue",
}
NO_FAMILY = "none"


class HMSCollector(Collector):
    """A ``prometheus_client`` collector for HMS (see the module docstring).

    ``database_url`` / ``broker_url`` default to the configured store and broker.  Scrapes
    are serialised (a lock): two Prometheus servers scraping at once queue up instead of
    doubling the load on the store.
    """

    def __init__(self, database_url: str | None = None, broker_url: str | None = None) -> None:
        settings = get_settings()
        self.database_url = database_url or settings.effective_database_url
        self.broker_url = broker_url or settings.effective_broker_url
        self.timeout = settings.connect_timeout
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: registering must not query the store."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One scrape: the store's families, the broker's, then ``hms_up`` and timing."""
        with self._lock:
            t0 = time.perf_counter()
            up = GaugeMetricFamily(
                "hms_up", "1 if the component answered this scrape, else 0", labels=["component"]
            )
            families: list[Metric] = []
            for component, read in (("store", self._store), ("broker", self._broker)):
                try:
                    families.extend(read())
                    up.add_metric([component], 1)
                except Exception as exc:  # a scrape must never fail: report the part down
                    log.warning("metrics: %s unreachable: %s", component, _short(exc))
                    up.add_metric([component], 0)
            yield from families
            yield up
            yield GaugeMetricFamily(
                "hms_scrape_seconds",
                "Seconds this scrape took to read the store and the broker",
                value=time.perf_counter() - t0,
            )

    # ------------------------------------------------------------------ the store
    def _store(self) -> list[Metric]:
        with self._engine_or_create().connect() as conn:
            return [
                *self._tasks(conn),
                *self._verdicts(conn),
                *self._recoveries(conn),
                *self._agents(conn),
                *self._breakers(conn),
                *self._ga(conn),
            ]

    def _tasks(self, conn: SQLConnection) -> list[Metric]:
        tasks = GaugeMetricFamily(
            "hms_tasks", "Tasks in the store by state and kind", labels=["state", "kind"]
        )
        rows = conn.execute(
            select(Task.status, Task.kind, func.count()).group_by(Task.status, Task.kind)
        ).all()
        seen = {(state, kind): n for state, kind, n in rows}
        for state in _TASK_STATES:  # every state, so a rate() has a series from the start
            seen.setdefault((state, "proof"), 0)
        for (state, kind), n in sorted(seen.items()):
            tasks.add_metric([state, kind], n)

        in_flight = GaugeMetricFamily(
            "hms_attempts_in_flight",
            "Open attempts of unfinished tasks (what a dead agent would strand), by queue",
            labels=["queue"],
        )
        open_rows = conn.execute(
            select(Task.queue, func.count())
            .select_from(Attempt)
            .join(Task, Task.id == Attempt.task_id)
            .where(Attempt.ended_at.is_(None), Task.status.not_in(TaskStatus.FINAL))
            .group_by(Task.queue)
        ).all()
        counts = {queue: n for queue, n in open_rows}
        for queue in self._queues():
            counts.setdefault(queue, 0)
        for queue, n in sorted(counts.items()):
            in_flight.add_metric([queue], n)
        return [tasks, in_flight]

    def _verdicts(self, conn: SQLConnection) -> list[Metric]:
        verdicts = CounterMetricFamily(
            "hms_verdicts",
            "Committed proof results by backend, theorem family, task kind and verdict",
            labels=["backend", "family", "kind", "verdict"],
        )
        family = func.coalesce(Task.family, NO_FAMILY)
        rows = conn.execute(
            select(ProofResult.backend, family, Task.kind, ProofResult.verdict, func.count())
            .join(Task, Task.id == ProofResult.task_id)
            .group_by(ProofResult.backend, family, Task.kind, ProofResult.verdict)
        ).all()
        for backend, fam, kind, verdict, n in rows:
            verdicts.add_metric([backend, fam, kind, verdict], n)

        seconds = HistogramMetricFamily(
            "hms_proof_seconds",
            "Prover time of committed proof results (proof_results.elapsed_s), by backend",
            labels=["backend"],
        )
        buckets = [
            func.sum(case((ProofResult.elapsed_s <= bound, 1), else_=0)) for bound in PROOF_BUCKETS
        ]
        bucket_rows = conn.execute(
            select(
                ProofResult.backend, func.count(), func.sum(ProofResult.elapsed_s), *buckets
            ).group_by(ProofResult.backend)
        ).all()
        for backend, count, total, *cumulative in bucket_rows:
            seconds.add_metric(
                [backend],
                [
                    *(
                        (_le(b), int(c or 0))
                        for b, c in zip(PROOF_BUCKETS, cumulative, strict=True)
                    ),
                    ("+Inf", int(count)),
                ],
                float(total or 0.0),
            )
        return [verdicts, seconds]

    def _recoveries(self, conn: SQLConnection) -> list[Metric]:
        family = CounterMetricFamily(
            "hms_recovery_actions",
            "Recovery actions of the supervisor (audit log), by kind",
            labels=["kind"],
        )
        rows = conn.execute(
            select(AuditEvent.action, func.count())
            .where(AuditEvent.action.in_(list(RECOVERY_ACTIONS)))
            .group_by(AuditEvent.action)
        ).all()
        counts = Counter({kind: 0 for kind in RECOVERY_ACTIONS.values()})
        for action, n in rows:
            counts[RECOVERY_ACTIONS[action]] += n
        for kind, n in sorted(counts.items()):
            family.add_metric([kind], n)
        return [family]

    def _agents(self, conn: SQLConnection) -> list[Metric]:
        family = GaugeMetricFamily(
            "hms_agents", "Agents in the registry by lifecycle state", labels=["state"]
        )
        rows = conn.execute(select(Agent.state, func.count()).group_by(Agent.state)).all()
        counts = {state.value: 0 for state in AgentState} | {state: n for state, n in rows}
        for state, n in sorted(counts.items()):
            family.add_metric([state], n)
        return [family]

    def _breakers(self, conn: SQLConnection) -> list[Metric]:
        """Breaker states from the supervisor's saved memory (one small JSON document).

        Breakers that never saw a failure are not stored (they equal a new breaker), so the
        CLOSED figure counts breakers that have failed at least once and closed again.
        """
        family = GaugeMetricFamily(
            "hms_breakers",
            "Circuit breakers by kind (agent, backend) and state",
            labels=["kind", "state"],
        )
        value = conn.execute(
            select(SupervisorState.value).where(SupervisorState.key == POLICY_KEY)
        ).scalar_one_or_none()
        stored = ((value or {}).get("breakers") or {}).get("breakers") or []
        counts = Counter((b["key"].partition(":")[0], b["state"]) for b in stored)
        for kind in ("agent", "backend"):
            for state in BreakerState:
                family.add_metric([kind, state.value], counts.get((kind, state.value), 0))
        return [family]

    def _ga(self, conn: SQLConnection) -> list[Metric]:
        runs = GaugeMetricFamily("hms_ga_runs", "GA runs by state", labels=["state"])
        rows = conn.execute(select(GARun.status, func.count()).group_by(GARun.status)).all()
        counts = {s: 0 for s in _GA_STATES} | {status: n for status, n in rows}
        for state, n in sorted(counts.items()):
            runs.add_metric([state], n)
        scored, evaluations = conn.execute(
            select(
                func.count(GAGeneration.scored_at),
                func.coalesce(func.sum(GAGeneration.evaluations), 0),
            )
        ).one()
        return [
            runs,
            CounterMetricFamily(
                "hms_ga_generations", "GA generations scored (all runs)", value=int(scored)
            ),
            CounterMetricFamily(
                "hms_ga_evaluations",
                "Fitness evaluations (proof tasks) fanned out by GA generations",
                value=int(evaluations),
            ),
        ]

    def _engine_or_create(self) -> Engine:
        """The collector's own engine: no pooled connection (a scrape opens one and closes
        it), so nothing is left for a forked pool process to inherit, and a statement
        timeout so a stuck database cannot hang the endpoint."""
        if self._engine is None:
            url = make_url(self.database_url)
            timeout = max(int(self.timeout), 1)
            if url.get_backend_name() == "sqlite":
                args: dict[str, Any] = {"timeout": self.timeout}
            else:
                args = {
                    "connect_timeout": timeout,
                    "options": f"-c statement_timeout={timeout * 5000}",
                }
            self._engine = create_engine(url, poolclass=NullPool, connect_args=args)
        return self._engine

    # ------------------------------------------------------------------ the broker
    def _broker(self) -> list[Metric]:
        depth = GaugeMetricFamily(
            "hms_queue_depth",
            "Messages waiting in each skill queue (not yet taken by an agent)",
            labels=["queue"],
        )
        with Connection(
            self.broker_url,
            connect_timeout=self.timeout,
            transport_options={"socket_connect_timeout": self.timeout, "max_retries": 0},
        ) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=self.timeout
            )
            channel = conn.channel()
            try:
                for queue in self._queues():
                    try:
                        _, count, _ = channel.queue_declare(queue=queue, passive=True)
                    except conn.channel_errors:  # never declared (or emptied, on Redis)
                        count = 0
                        channel = _fresh(conn, channel)  # AMQP closes a channel on 404
                    depth.add_metric([queue], count)
            finally:
                channel.close()
        families: list[Metric] = [depth]
        redis_url = self._coordination_url()
        if redis_url is not None:
            families.extend(self._sweeps(redis_url))
        return families

    def _coordination_url(self) -> str | None:
        """Where the sweep histogram is: a Redis broker's database, else HMS_REDIS_URL."""
        if is_redis_url(self.broker_url):
            return self.broker_url
        return get_settings().redis_url  # an AMQP broker: the stack's coordination Redis

    def _sweeps(self, redis_url: str) -> list[Metric]:
        recorded = read_sweeps(redis_client(redis_url))
        histogram = HistogramMetricFamily(
            "hms_sweep_seconds", "Duration of the supervisor's sweeps"
        )
        histogram.add_metric(
            [],
            [
                *((_le(b), c) for b, c in zip(SWEEP_BUCKETS, recorded.buckets, strict=True)),
                ("+Inf", recorded.count),
            ],
            recorded.sum_s,
        )
        families: list[Metric] = [histogram]
        if recorded.last_at is not None:
            families.append(
                GaugeMetricFamily(
                    "hms_sweep_last_timestamp_seconds",
                    "When the last supervisor sweep ended (Unix time)",
                    value=recorded.last_at,
                )
            )
        return families

    def _queues(self) -> list[str]:
        """Every skill queue with a depth (broadcast queues have none), sorted."""
        return sorted({s.queue for s in load_skills().values() if not s.broadcast})

    def __repr__(self) -> str:
        return f"<HMSCollector store={safe_url(self.database_url)}>"


def make_registry(collector: HMSCollector | None = None) -> CollectorRegistry:
    """A registry holding only the HMS collector (no process or GC figures of whichever
    process happens to serve it)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector or HMSCollector())
    return registry


_TASK_STATES: tuple[str, ...] = tuple(state.value for state in TaskStatus)
_GA_STATES: tuple[str, ...] = tuple(state.value for state in GARunStatus)


def _le(bound: float) -> str:
    return repr(float(bound))


def _fresh(conn: Connection, channel: Any) -> Any:
    if getattr(channel, "is_open", True):
        return channel
    return conn.channel()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
