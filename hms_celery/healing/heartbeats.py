"""Liveness from Celery's own worker heartbeat events, kept in Redis.

Every worker's main process emits ``worker-heartbeat`` events (every 2 s, also while its pool
is busy), ``worker-online`` and ``worker-offline``.  :class:`HeartbeatMonitor` — a bootstep
thread of the supervisor agent — consumes them with Celery's event receiver and writes the
newest beat of each node into one Redis hash, in batches, so 1,000 agents cost a few writes
a second.  The supervisor sweep trusts a missing beat only while the monitor itself is fresh
(a dead monitor must not make every agent look dead).

Two indexes beside the hash let a sweep's cost follow what changed, not the number of agents:
a sorted set of each node's last beat time (the stale ones are one ``ZRANGEBYSCORE``) and a
set of the nodes whose beat says something new (online/offline, busy/idle, first beat), which
the sweep takes and clears.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, ClassVar, cast

import redis
from celery import Celery, bootsteps

from hms_celery.settings import get_settings, is_redis_url

log = logging.getLogger(__name__)

BEATS_KEY = "hms:heartbeats"  # hash: node name -> JSON {"seen", "active", "processed", "pid"}
SEEN_KEY = "hms:heartbeats:seen"  # sorted set: node name -> epoch seconds of its last beat
CHANGED_KEY = "hms:heartbeats:changed"  # set: nodes whose beat's meaning changed
TAKEN_KEY = "hms:heartbeats:changed:taken"  # what a sweep took and has not finished yet
MONITOR_KEY = "hms:heartbeat-monitor"  # epoch seconds of the monitor's last flush
OFFLINE = "offline"

# Forget the nodes still at or below a score: a node that beat since it was read stays.
_PRUNE_LUA = """
local n = 0
for i = 1, #ARGV - 1 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i + 1])
  if s and tonumber(s) <= tonumber(ARGV[1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i + 1])
    redis.call('HDEL', KEYS[2], ARGV[i + 1])
  end
end
return n
"""


def meaning(beat: dict[str, Any]) -> tuple[str, bool]:
    """What of a beat can change an agent's state (besides its age): online/offline, busy."""
    return (str(beat.get("state") or "online"), int(beat.get("active") or 0) > 0)


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

    def record_many(
        self,
        beats: dict[str, dict[str, Any]],
        now: float | None = None,
        changed: Iterable[str] | None = None,
    ) -> None:
        """Store the newest beats (one round trip); ``changed`` names the nodes whose beat
        means something new (None: all of ``beats``)."""
        now = time.time() if now is None else now
        changed = list(beats if changed is None else changed)
        pipe = self.client.pipeline(transaction=False)
        if beats:
            pipe.hset(BEATS_KEY, mapping={k: json.dumps(v) for k, v in beats.items()})
            pipe.zadd(SEEN_KEY, {k: float(v["seen"]) for k, v in beats.items()})
        if changed:
            pipe.sadd(CHANGED_KEY, *changed)
        pipe.set(MONITOR_KEY, now)
        pipe.execute()

    def all(self) -> dict[str, dict[str, Any]]:
        # redis_client() does not decode responses: keys and values are bytes.
        raw = cast(dict[bytes, bytes], self.client.hgetall(BEATS_KEY) or {})
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def get_many(self, nodes: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The beats of ``nodes`` (those that have one)."""
        names = list(nodes)
        if not names:
            return {}
        raw = cast(list[bytes | None], self.client.hmget(BEATS_KEY, names))
        return {n: json.loads(v) for n, v in zip(names, raw, strict=True) if v is not None}

    def stale(self, before: float) -> list[str]:
        """Nodes whose last beat is at or before ``before`` (epoch seconds)."""
        raw = cast(list[bytes], self.client.zrangebyscore(SEEN_KEY, "-inf", before))
        return [n.decode() for n in raw]

    def scan(self, cursor: int, count: int) -> tuple[int, dict[str, dict[str, Any]]]:
        """About ``count`` beats from ``cursor`` on (``HSCAN``); the next cursor is 0 after the
        last — every node present throughout one pass is returned at least once."""
        after, raw = cast(
            tuple[int, dict[bytes, bytes]], self.client.hscan(BEATS_KEY, cursor, count=count)
        )
        return int(after), {k.decode(): json.loads(v) for k, v in raw.items()}

    def size(self) -> int:
        """How many nodes have a beat."""
        return int(self.client.hlen(BEATS_KEY))

    def prune(self, nodes: Iterable[str], before: float) -> int:
        """Forget the beats of ``nodes`` that have not beaten after ``before`` (ended agents:
        a sweep need not look at them again; one that beats again is back at once)."""
        names = list(nodes)
        if not names:
            return 0
        script = self.client.register_script(_PRUNE_LUA)
        return int(script(keys=[SEEN_KEY, BEATS_KEY], args=[before, *names]))

    def take_changed(self) -> set[str]:
        """The nodes whose beat changed since the last :meth:`done_changed` — those taken by
        a sweep that did not finish as well (taken atomically; new changes go on collecting)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.sunionstore(TAKEN_KEY, [TAKEN_KEY, CHANGED_KEY])
        pipe.delete(CHANGED_KEY)
        pipe.smembers(TAKEN_KEY)
        *_, raw = pipe.execute()
        return {n.decode() for n in cast(set[bytes], raw)}

    def done_changed(self) -> None:
        """The changes :meth:`take_changed` returned were acted on."""
        self.client.delete(TAKEN_KEY)

    def monitor_age(self, now: float | None = None) -> float | None:
        """Seconds since the monitor last flushed (None: never ran)."""
        value = self.client.get(MONITOR_KEY)
        if value is None:
            return None
        return (time.time() if now is None else now) - float(value)

    def forget(self, *nodes: str) -> None:
        if nodes:
            pipe = self.client.pipeline(transaction=False)
            pipe.hdel(BEATS_KEY, *nodes)
            pipe.zrem(SEEN_KEY, *nodes)
            pipe.srem(CHANGED_KEY, *nodes)
            pipe.execute()


class HeartbeatMonitor(threading.Thread):
    """Consume Celery worker events; a second thread flushes the newest beats every ``flush_s``."""

    def __init__(self, app: Celery, store: HeartbeatStore, flush_s: float = 0.5) -> None:
        super().__init__(name="hms-heartbeat-monitor", daemon=True)
        self.app = app
        self.store = store
        self.flush_s = flush_s
        self.pending: dict[str, dict[str, Any]] = {}
        self.meanings: dict[str, tuple[str, bool]] = {}  # as last written, per node
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
        # Only these need the sweep's attention before they go stale (or a monitor restart:
        # everything once).
        changed = [n for n, b in beats.items() if self.meanings.get(n) != meaning(b)]
        try:
            self.store.record_many(beats, changed=changed)
        except redis.RedisError as exc:  # keep the beats for the next try
            log.warning("heartbeat flush failed: %s", exc)
            with self._lock:
                self.pending = {**beats, **self.pending}
            return
        for node in changed:
            self.meanings[node] = meaning(beats[node])

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
        from hms_celery.runtime.skills import get_skill

        if get_skill("supervisor").queue not in worker.app.amqp.queues.consume_from:
            return
        self.monitor = HeartbeatMonitor(worker.app, HeartbeatStore(redis_client()))
        self.monitor.start()
        log.info("heartbeat monitor started")

    def stop(self, worker: Any) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor.join(timeout=3)
