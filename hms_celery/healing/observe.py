"""What a sweep looks at: only the agents whose state may change now.

A sweep used to read every agent and every heartbeat, so its cost grew with the number of
agents (0.25 ms each).  :func:`observe` reads what changed instead:

* heartbeats that went stale (``ZRANGEBYSCORE`` on the staleness index) and those whose
  meaning changed (online/offline, busy/idle: the monitor's changed set);
* registry rows changed since the last sweep, reports that say Failed/Degraded, health checks
  left unanswered past the report timeout, stored heartbeat copies that are missing or old
  (a beat lost with Redis), INITIALIZING/DEGRADED/recently FAILED agents and the agents on
  this machine (their process is probed) — one query (:func:`registry.sweep_candidates`);
* open attempts per agent (one grouped count: what a failed agent strands).

Every agent whose classification can differ from its stored state is in that set, so the
decisions are those of a sweep over every agent.  A full sweep (every agent) still runs when
there is no cursor (first sweep, Redis lost), when heartbeats come back after the monitor was
stale, when too many heartbeats changed at once, and every :data:`FULL_SWEEP_EVERY_S` as a
safety net.  The cursor (:class:`Cursor`, in Redis) is what the last sweep saw: when it
started, its last full sweep, where it got to storing the heartbeats' coarse copy.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from hms_celery.agents import registry
from hms_celery.healing.decide import Observations, epoch
from hms_celery.healing.health import last_round
from hms_celery.healing.heartbeats import HeartbeatStore
from hms_celery.store.models import utcnow

CURSOR_KEY = "hms:supervisor:cursor"
FULL_SWEEP_EVERY_S = 300.0  # safety net: a full sweep at least this often
CHANGE_SLACK_S = 10.0  # rows changed this long before the last sweep are read again (skew)
MAX_CHANGED = 2000  # more stale/changed heartbeats than this at once: a full sweep
HEARTBEAT_PERSIST_S = 10.0  # the live beats are in Redis; the store keeps a coarse copy
RECENT_FAILED_S = 600.0  # FAILED agents are looked at this long (restart window if longer)


@dataclass
class Cursor:
    """What the last sweep saw (wall-clock epoch seconds)."""

    at: float  # when it started reading
    full_at: float  # when the last full sweep started
    scan: int  # where the next sweep goes on storing the heartbeats' coarse copy (HSCAN)
    heartbeats: bool  # the monitor was fresh

    @classmethod
    def load(cls, client: Any) -> Cursor | None:
        raw = client.get(CURSOR_KEY)
        if raw is None:
            return None
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError):
            return None  # unreadable: a full sweep writes a new one

    def save(self, client: Any) -> None:
        client.set(CURSOR_KEY, json.dumps(asdict(self)))


@dataclass
class Observed:
    """One sweep's observations and what to write back once the sweep is done."""

    observations: Observations
    full: bool
    cursor: Cursor
    beats_store: HeartbeatStore
    persist: dict[str, datetime] = field(default_factory=dict)  # heartbeat copies to store
    took_changed: bool = False

    def finish(self, client: Any) -> None:
        """The sweep acted on everything it saw: save the cursor, clear the taken changes."""
        if self.took_changed:
            self.beats_store.done_changed()
        self.cursor.save(client)


def observe(client: Any, settings: Any, now: float) -> Observed:
    """Read the beats, reports and attempts a sweep at ``now`` must look at.

    ``now`` is the sweep's clock (tests pass one); the cursor follows the wall clock, so a
    sweep in a test's future does not make later sweeps miss changes."""
    wall = min(now, time.time())
    beats_store = HeartbeatStore(client)
    monitor_age = beats_store.monitor_age(now)
    have = monitor_age is not None and monitor_age <= settings.heartbeat_timeout
    round_at = last_round(client)
    cursor = Cursor.load(client)
    stack = settings.stack_id
    recent = max(settings.restart_window, RECENT_FAILED_S)
    working = registry.in_flight_counts()
    full = (
        cursor is None
        or (have and not cursor.heartbeats)  # heartbeats are back: judge everyone again
        or wall - cursor.full_at >= FULL_SWEEP_EVERY_S
    )
    changed: set[str] = set()
    stale: list[str] = []
    took = False
    if have:  # while the monitor is stale nothing is judged on beats: keep the changes
        changed, took = beats_store.take_changed(), True
    if not full and have:
        stale = beats_store.stale(now - settings.heartbeat_timeout)
        full = len(changed) + len(stale) > MAX_CHANGED
    if full or cursor is None:
        agents = registry.list_agents(include_ended=False, failed_within_s=recent, stack=stack)
        beats = beats_store.all()
    else:
        since = datetime.fromtimestamp(cursor.at - CHANGE_SLACK_S, UTC)
        fallback = settings.heartbeat_timeout + 2 * HEARTBEAT_PERSIST_S + settings.sweep_interval
        agents = registry.sweep_candidates(
            stack,
            ids=sorted(changed.union(stale)),
            changed_since=since,
            failed_since=utcnow() - timedelta(seconds=recent),
            beat_before=_dt(now - fallback),
            report_before=_dt(now - settings.report_timeout + 1.0),  # 1 s: a superset
            round_at=_dt(round_at + 1.0) if round_at is not None else None,
            local_host=socket.gethostname(),
        )
        beats = beats_store.get_many(a["id"] for a in agents)
        ended = set(stale).difference(a["id"] for a in agents)
        beats_store.prune(ended, now - settings.heartbeat_timeout)  # ended: not read again
    host = socket.gethostname()
    observations = Observations(
        now=now,
        agents=agents,
        beats=beats,
        working=working,
        alive={a["id"]: _process_alive(a, host) for a in agents},
        round_at=round_at,
        have_heartbeats=have,
        heartbeat_timeout_s=settings.heartbeat_timeout,
        report_timeout_s=settings.report_timeout,
    )
    observed = Observed(
        observations,
        full=full,
        cursor=Cursor(
            at=wall,
            full_at=wall if full else cursor.full_at if cursor else wall,
            scan=cursor.scan if cursor else 0,
            heartbeats=have,
        ),
        beats_store=beats_store,
        took_changed=took,
    )
    _heartbeat_copies(observed, beats, wall, settings.sweep_interval)
    return observed


def _heartbeat_copies(
    observed: Observed, beats: dict[str, dict[str, Any]], wall: float, interval: float
) -> None:
    """The heartbeats whose coarse copy in the store is due: those of the agents looked at
    whose copy is missing or ``HEARTBEAT_PERSIST_S`` old, and the next ``1/k`` of all beats
    (``HSCAN`` from the cursor; ``k`` sweeps take ``HEARTBEAT_PERSIST_S``) — every copy is
    refreshed about every ``HEARTBEAT_PERSIST_S``, and no sweep writes them all."""
    persist = observed.persist
    for agent in observed.observations.agents:
        beat = beats.get(agent["id"])
        stored = epoch(agent.get("last_heartbeat_at"))
        if beat and (stored is None or beat["seen"] - stored >= HEARTBEAT_PERSIST_S):
            persist[agent["id"]] = _dt(beat["seen"])
    parts = max(1, round(HEARTBEAT_PERSIST_S / interval))
    store = observed.beats_store
    count = -(-store.size() // parts)
    observed.cursor.scan, scanned = store.scan(observed.cursor.scan, max(count, 10))
    since = wall - 2 * HEARTBEAT_PERSIST_S - interval  # a dead node's copy stays its last beat
    examined = {a["id"] for a in observed.observations.agents}  # decided above, from the row
    for node, beat in scanned.items():
        if node not in examined and beat["seen"] >= since:
            persist[node] = _dt(beat["seen"])


def _process_alive(agent: dict[str, Any], host: str) -> bool | None:
    """Whether the agent's process exists, when it runs on this machine."""
    pid = agent.get("pid")
    if not pid or agent.get("host") != host:
        return None
    return bool(psutil.pid_exists(pid))


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
