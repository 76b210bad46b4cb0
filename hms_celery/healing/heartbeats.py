"""Liveness from Celery's own worker heartbeat events, kept in Redis.

Every worker's main process emits ``worker-heartbeat`` events (every 2 s, also while its pool
is busy), ``worker-online`` and ``worker-offline``.  :class:`HeartbeatMonitor` — a bootstep
thread of the supervisor agent — consumes them with Celery's event receiver and writes the
newest beat of each node into one Redis hash, in batches, so 1,000 agents cost a few writes
a second.  The supervisor sweep reads the hash; it trusts a missing beat only while the
monitor itself is fresh (a dead monitor must not make every agent look dead).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, ClassVar, cast

import redis
from celery import Celery, bootsteps

from hms_celery.settings import get_settings, is_redis_url

log = logging.getLogger(__name__)

BEATS_KEY = "hms:heartbeats"  # hash: node name -> JSON {"seen", "active", "processed", "pid"}
MONITOR_KEY = "hms:heartbeat-monitor"  # epoch seconds of the monitor's last flush
OFFLINE = "offline"


_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_client(url: str | None = None) -> redis.Redis:
    """A Redis client on the stack's coordination Redis (heartbeats, locks and breakers):
    ``HMS_REDIS_URL``, else a Redis broker's own database (next to the queues); one per
    process and URL (its connection pool must not cross a fork)."""
    if url is None:
        settings = get_settings()
        url = settings.redis_url or settings.effective_broker_url
    if not is_redis_url(url):  # settings refuse AMQP without HMS_REDIS_URL; memory:// is left
        raise ValueError(f"HMS's coordination state needs Redis (HMS_REDIS_URL), not {url!r}")
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        timeout = get_settings().connect_timeout
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=5)
        _clients[key] = client
    return client


class HeartbeatStore:
    """Read and write the newest heartbeat of every node."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def record_many(self, beats: dict[str, dict[str, Any]], now: float | None = None) -> None:
        now = time.time() if now is None else now
        pipe = self.client.pipeline(transaction=False)
        if beats:
            pipe.hset(BEATS_KEY, mapping={k: json.dumps(v) for k, v in beats.items()})
        pipe.set(MONITOR_KEY, now)
        pipe.execute()

    def all(self) -> dict[str, dict[str, Any]]:
        # redis_client() does not decode responses: keys and values are bytes.
        raw = cast(dict[bytes, bytes], self.client.hgetall(BEATS_KEY) or {})
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def monitor_age(self, now: float | None = None) -> float | None:
        """Seconds since the monitor last flushed (None: never ran)."""
        value = self.client.get(MONITOR_KEY)
        if value is None:
            return None
        return (time.time() if now is None else now) - float(value)

    def forget(self, *nodes: str) -> None:
        if nodes:
            self.client.hdel(BEATS_KEY, *nodes)


class HeartbeatMonitor(threading.Thread):
    """Consume Celery worker events; a second thread flushes the newest beats every ``flush_s``."""

    def __init__(self, app: Celery, store: HeartbeatStore, flush_s: float = 0.5) -> None:
        super().__init__(name="hms-heartbeat-monitor", daemon=True)
        self.app = app
        self.store = store
        self.flush_s = flush_s
        self.pending: dict[str, dict[str, Any]] = {}
        self.received = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._receiver: Any = None
        self._flusher = threading.Thread(target=self._flush_loop, name="hms-hb-flush", daemon=True)

    def stop(self) -> None:
        self._stopping.set()
        if self._receiver is not None:
            self._receiver.should_stop = True

    def on_event(self, event: dict[str, Any]) -> None:
        node = event.get("hostname")
        if not node:
            return
        beat = {
            "seen": time.time(),
            "state": OFFLINE if event.get("type") == "worker-offline" else "online",
            "active": int(event.get("active") or 0),
            "processed": int(event.get("processed") or 0),
            "pid": event.get("pid"),
        }
        with self._lock:
            self.received += 1
            self.pending[node] = beat

    def flush(self) -> None:
        with self._lock:
            beats, self.pending = self.pending, {}
        try:
            self.store.record_many(beats)
        except redis.RedisError as exc:  # keep the beats for the next try
            log.warning("heartbeat flush failed: %s", exc)
            with self._lock:
                self.pending = {**beats, **self.pending}

    def _flush_loop(self) -> None:
        while not self._stopping.wait(self.flush_s):
            self.flush()

    def run(self) -> None:
        self._flusher.start()
        handlers = {
            "worker-heartbeat": self.on_event,
            "worker-online": self.on_event,
            "worker-offline": self.on_event,
        }
        while not self._stopping.is_set():
            try:
                with self.app.connection_for_read() as conn:
                    self._receiver = self.app.events.Receiver(conn, handlers=handlers)
                    self._receiver.capture(limit=None, timeout=None, wakeup=False)
            except Exception as exc:  # broker restart: reconnect after a pause
                log.warning("heartbeat monitor lost the broker (%s); reconnecting", exc)
                self._stopping.wait(1.0)


class HeartbeatMonitorStep(bootsteps.StartStopStep):
    """Runs :class:`HeartbeatMonitor` in workers that consume the supervisor queue."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.monitor: HeartbeatMonitor | None = None

    def start(self, worker: Any) -> None:
        from hms_celery.agents.skills import get_skill

        if get_skill("supervisor").queue not in worker.app.amqp.queues.consume_from:
            return
        self.monitor = HeartbeatMonitor(worker.app, HeartbeatStore(redis_client()))
        self.monitor.start()
        log.info("heartbeat monitor started")

    def stop(self, worker: Any) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor.join(timeout=3)
