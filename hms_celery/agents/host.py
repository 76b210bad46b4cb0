"""The agent host: starts, stops and respawns worker processes (agents) on one machine.

``hms up`` runs one.  It takes commands (spawn, stop, kill, respawn) from its own queue
``hms.host.<id>`` — the client's :func:`~hms_celery.client.spawn_agent` and the supervisor's
recovery actions send them there — and watches its children: a worker that exits without
being asked to is marked FAILED at once (with its exit code) and a supervisor sweep is
requested, so recovery does not wait for the heartbeat timeout.  A respawn command past its
``expires_at`` only kills the old worker: the supervisor has moved that respawn to another host
by then (:mod:`hms_celery.healing.respawns`).

Every spawn, stop and kill passes the policy engine first (:mod:`hms_celery.policy.engine`)
unless whoever asked for it already did (a command marked ``"authorized": true`` by the
client or the supervisor) and is audited (``agent.spawned``, ``agent.stopped``,
``agent.killed``).  Stopping the host's own workers when it shuts down is not an agent action
of its own: it is the host ending.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kombu import Exchange, Queue

from hms_celery.agents import registry
from hms_celery.app import app
from hms_celery.errors import InputError
from hms_celery.policy import rules
from hms_celery.policy.engine import ActionRequest, require
from hms_celery.runtime import publish
from hms_celery.runtime.skills import get_skill
from hms_celery.settings import get_settings
from hms_celery.store.db import connection_scope
from hms_celery.store.repository import audit

log = logging.getLogger(__name__)

HOST_EXCHANGE = Exchange("hms.host", type="direct", durable=True)
SWEEP_TASK = "hms.supervisor.sweep"


def host_queue(host_id: str) -> Queue:
    """The command queue of one agent host."""
    name = f"hms.host.{host_id}"
    return Queue(name, HOST_EXCHANGE, routing_key=name, durable=True)


def send_host_command(host_id: str, command: dict[str, Any]) -> None:
    """Publish ``command`` (JSON) to the host's queue."""
    queue = host_queue(host_id)
    with app.producer_or_acquire() as producer:
        producer.publish(
            command,
            exchange=HOST_EXCHANGE,
            routing_key=queue.routing_key,
            serializer="json",
            declare=[queue],
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        )


def new_agent_id(skills: list[str], hostname: str | None = None) -> str:
    """A node name for a new agent: its skills, a short unique part, the name of the machine
    it will run on (``hostname``; default: this one — a supervisor or client naming an agent
    for another machine's host passes that host's name)."""
    stem = "+".join(skills).replace(".", "-") or "agent"
    return f"{stem}-{uuid.uuid4().hex[:6]}@{hostname or socket.gethostname()}"


@dataclass
class WorkerChild:
    agent_id: str
    skills: list[str]
    config: dict[str, Any]
    lineage: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    expected_exit: bool = False


@dataclass
class AgentHost:
    """Owns the worker processes of this machine."""

    env: dict[str, str] = field(default_factory=dict)
    host_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    children: dict[str, WorkerChild] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _threads: list[threading.Thread] = field(default_factory=list)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Register the host and start taking commands."""
        registry.register_host(
            self.host_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queue=host_queue(self.host_id).name,
        )
        for target, name in ((self._consume, "commands"), (self._watch, "watch")):
            thread = threading.Thread(target=target, name=f"hms-host-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def shutdown(self, grace: float = 10.0) -> None:
        """Stop every worker (warm shutdown, then SIGKILL) and deregister."""
        self._stop.set()
        with self._lock:
            agents = list(self.children)
        for agent_id in agents:
            self._terminate(agent_id)
        deadline = time.monotonic() + grace
        for agent_id in agents:
            child = self.children.get(agent_id)
            if child is None:
                continue
            try:
                child.process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _kill_group(child.process)
                child.process.wait()
            child.log_file.close()
        for thread in self._threads:
            thread.join(timeout=2)
        try:
            registry.stop_host(self.host_id)
        except Exception as exc:
            log.warning("could not deregister host %s: %s", self.host_id, exc)

    # ------------------------------------------------------------------ operations
    def spawn(
        self,
        skills: list[str],
        config: dict[str, Any] | None = None,
        *,
        agent_id: str | None = None,
        lineage: str | None = None,
        authorized: bool = False,
        respawn_of: str | None = None,
    ) -> str:
        """Start a worker consuming the queues of ``skills``; returns its agent id.

        Unless ``authorized`` (the caller's policy check allowed it), the policy decides
        first: :class:`~hms_celery.policy.engine.PolicyDenied` or
        :class:`~hms_celery.policy.engine.ApprovalPending` instead of a worker."""
        config = dict(config or {})
        queues = [get_skill(s).queue for s in skills]  # KeyError names an unknown skill
        agent_id = agent_id or new_agent_id(skills)
        settings = get_settings()
        extra_env = {str(k): str(v) for k, v in (config.get("env") or {}).items()}
        bad = [k for k in extra_env if not k.startswith("HMS_")]
        if bad:
            raise InputError(f"agent config env may only set HMS_* variables, not {bad}")
        concurrency = int(config.get("concurrency") or settings.worker_concurrency)
        if not authorized:
            require(
                ActionRequest(
                    rules.SPAWN,
                    agent_id,
                    self.actor,
                    {"skills": sorted(skills), "concurrency": concurrency, "host": self.host_id},
                ),
                payload={
                    "host": self.host_id,
                    "skills": list(skills),
                    "config": config,
                    "agent_id": agent_id,
                },
            )
        log_dir = settings.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{agent_id.split('@')[0]}.log"
        log_file = log_path.open("ab")
        env = {
            **os.environ,
            **self.env,
            **extra_env,
            "HMS_AGENT_LINEAGE": lineage or agent_id,
            "HMS_AGENT_HOST": self.host_id,
            "HMS_AGENT_CONFIG": json.dumps(config),
        }
        command = [
            sys.executable, "-m", "celery", "-A", "hms_celery", "worker",
            "-Q", ",".join(queues), "-n", agent_id, "-c", str(concurrency),
            "-l", settings.log_level, "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        registry.register_agent(
            agent_id,
            host=socket.gethostname(),
            pid=None,
            skills=sorted(skills),
            queues=queues,
            config=config,
            version="",
            lineage=lineage or agent_id,
            host_id=self.host_id,
            state=registry.INITIALIZING,
            reason=f"spawned by host {self.host_id}",
            stack=settings.stack_id,
        )
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a kill takes the pool too
        )
        with self._lock:
            self.children[agent_id] = WorkerChild(
                agent_id, list(skills), config, lineage or agent_id, process, log_path, log_file
            )
        log.info("spawned %s (pid %s) on %s", agent_id, process.pid, queues)
        self._audit(
            "agent.spawned",
            agent_id,
            skills=sorted(skills),
            concurrency=concurrency,
            pid=process.pid,
            lineage=lineage or agent_id,
            **({"respawn_of": respawn_of} if respawn_of else {}),
        )
        return agent_id

    def stop(
        self, agent_id: str, grace: float = 10.0, wait: bool = True, *, authorized: bool = False
    ) -> bool:
        """Warm-shutdown one worker (SIGTERM; SIGKILL after ``grace``), policy permitting."""
        child = self.children.get(agent_id)
        if child is None:
            return False
        if not authorized:
            self._require_stop(agent_id, forced=False)
        self._terminate(agent_id)
        self._audit("agent.stopped", agent_id)
        if wait:
            try:
                child.process.wait(grace)
            except subprocess.TimeoutExpired:
                _kill_group(child.process)
                child.process.wait()
        return True

    def kill(self, agent_id: str, *, authorized: bool = False) -> bool:
        """SIGKILL a worker and its pool (a hung or stopped agent cannot shut down)."""
        child = self.children.get(agent_id)
        if child is None:
            return False
        if not authorized:
            self._require_stop(agent_id, forced=True)
        child.expected_exit = True
        _kill_group(child.process)
        self._audit("agent.killed", agent_id)
        return True

    def respawn(
        self,
        agent_id: str,
        config_changes: dict[str, Any] | None = None,
        new_id: str | None = None,
        *,
        authorized: bool = False,
    ) -> str:
        """Replace ``agent_id`` (killed if still there) by a new agent of the same lineage.

        The supervisor's policy check covers the kill and the spawn (``authorized``); a
        respawn asked for without one is checked here as a whole."""
        child = self.children.get(agent_id)
        if child is not None:
            skills, config, lineage = child.skills, child.config, child.lineage
        else:
            known = registry.get_agent(agent_id)
            if known is None:
                raise InputError(f"unknown agent {agent_id!r}")
            skills, config, lineage = known["skills"], known["config"], known["lineage"]
        config = {**config, **(config_changes or {})}
        new_id = new_id or new_agent_id(skills)
        if not authorized:
            require(
                ActionRequest(
                    rules.RESPAWN,
                    agent_id,
                    self.actor,
                    {
                        "skills": sorted(skills),
                        "concurrency": int(
                            config.get("concurrency") or get_settings().worker_concurrency
                        ),
                        "host": self.host_id,
                        "lineage": lineage,
                        "config_changes": dict(config_changes or {}),
                    },
                    also=(new_id,),
                ),
                payload={
                    "host": self.host_id,
                    "agent_id": agent_id,
                    "new_agent_id": new_id,
                    "config_changes": dict(config_changes or {}),
                },
            )
        if child is not None:
            self.kill(agent_id, authorized=True)
        return self.spawn(
            skills, config, agent_id=new_id, lineage=lineage, authorized=True, respawn_of=agent_id
        )

    def skip_respawn(self, command: dict[str, Any], *, authorized: bool = False) -> None:
        """Carry out only the stop half of a respawn command that expired (``expires_at``).

        The supervisor moved that respawn to another host when this one did not register the
        new agent in time (a cut link, a stalled host), so starting it here would double the
        lineage.  The old agent is FAILED and its replacement runs elsewhere: its worker, if
        it still runs here, is killed so that it stops taking and committing work."""
        agent_id = command["agent_id"]
        stopped = agent_id in self.children and self.kill(agent_id, authorized=authorized)
        late = time.time() - float(command["expires_at"])
        log.warning(
            "respawn of %s expired %.1f s ago: not starting %s%s",
            agent_id,
            late,
            command.get("new_agent_id"),
            ", killed the stale worker" if stopped else "",
        )
        self._audit(
            "agent.respawn_skipped",
            agent_id,
            new_agent=command.get("new_agent_id"),
            expired_s=round(late, 2),
            stale_worker_killed=stopped,
            reason="expired: the supervisor has moved this respawn to another host or alerted",
        )

    def handle(self, command: dict[str, Any]) -> None:
        """Carry out one command from the queue (``authorized``: its sender's policy check
        allowed it; otherwise this host asks the policy)."""
        op = command.get("op")
        ok = bool(command.get("authorized"))
        if op == "spawn":
            self.spawn(
                command["skills"],
                command.get("config"),
                agent_id=command.get("agent_id"),
                authorized=ok,
            )
        elif op == "stop":
            self.stop(command["agent_id"], wait=False, authorized=ok)
        elif op == "kill":
            self.kill(command["agent_id"], authorized=ok)
        elif op == "respawn" and _expired(command, time.time()):
            self.skip_respawn(command, authorized=ok)
        elif op == "respawn":
            self.respawn(
                command["agent_id"],
                command.get("config_changes"),
                command.get("new_agent_id"),
                authorized=ok,
            )
        else:
            log.error("unknown host command %r", command)

    @property
    def actor(self) -> str:
        """This host's name in the audit log."""
        return f"host:{self.host_id}"

    def _require_stop(self, agent_id: str, *, forced: bool) -> None:
        require(
            ActionRequest(
                rules.STOP, agent_id, self.actor, {"host": self.host_id, "forced": forced}
            ),
            payload={"host": self.host_id, "agent_id": agent_id, "forced": forced},
        )

    def _terminate(self, agent_id: str) -> None:
        """SIGTERM one worker (a warm shutdown), expected: its exit is no failure."""
        child = self.children.get(agent_id)
        if child is None:
            return
        child.expected_exit = True
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)

    def _audit(self, action: str, subject: str, **details: Any) -> None:
        try:
            with connection_scope() as conn:
                audit(conn, self.actor, action, subject, host=self.host_id, **details)
        except Exception as exc:  # the action happened; a store outage must not undo it
            log.warning("could not audit %s of %s: %s", action, subject, exc)

    # ------------------------------------------------------------------ threads
    def _consume(self) -> None:
        queue = host_queue(self.host_id)

        def on_message(body: dict[str, Any], message: Any) -> None:
            try:
                self.handle(body)
            except Exception as exc:  # a bad command must not stop the host
                log.error("host command %r failed: %s", body, exc)
            message.ack()

        while not self._stop.is_set():
            try:
                with (
                    app.connection_for_read() as conn,
                    conn.Consumer([queue], callbacks=[on_message], accept=["json"]),
                ):
                    while not self._stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            conn.drain_events(timeout=0.5)
            except Exception as exc:  # broker restart: reconnect
                log.warning("host %s lost the broker (%s); reconnecting", self.host_id, exc)
                self._stop.wait(1.0)

    def _watch(self) -> None:
        last_seen = 0.0
        while not self._stop.wait(0.2):
            for child in self.exited():
                self._on_exit(child)
            if time.monotonic() - last_seen > 5:
                last_seen = time.monotonic()
                try:
                    registry.host_seen(self.host_id)
                except Exception as exc:
                    log.warning("host heartbeat failed: %s", exc)

    def running(self, skill: str | None = None) -> list[str]:
        """Agents whose worker process is running (only those with ``skill``, if given)."""
        with self._lock:
            return [
                c.agent_id
                for c in self.children.values()
                if c.process.poll() is None and (skill is None or skill in c.skills)
            ]

    def exited(self) -> list[WorkerChild]:
        """Children that ended, removed from the table."""
        with self._lock:
            done = [c for c in self.children.values() if c.process.poll() is not None]
            for child in done:
                del self.children[child.agent_id]
        return done

    def _on_exit(self, child: WorkerChild) -> None:
        child.log_file.close()
        if child.expected_exit or self._stop.is_set():
            return
        code = child.process.returncode
        reason = f"process exited unexpectedly with code {code}"
        log.warning("agent %s: %s", child.agent_id, reason)
        try:
            registry.transition(child.agent_id, registry.FAILED, reason)
            sweep = publish.Publication(
                SWEEP_TASK, None, get_skill("supervisor").queue, limits=False, ignore_result=True
            )
            publish.publish(sweep)
        except Exception as exc:
            log.error("could not report the exit of %s: %s", child.agent_id, exc)


def _expired(command: dict[str, Any], now: float) -> bool:
    """Whether the command's ``expires_at`` (epoch seconds; none: never) has passed."""
    expires = command.get("expires_at")
    return expires is not None and now > float(expires)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
