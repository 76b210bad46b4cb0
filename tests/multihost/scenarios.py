"""The two host failures, run on a :class:`~tests.multihost.cluster.Cluster` and measured.

* ``kill``: SIGKILL every process of one host (its agent host, workers, pool and prover
  children) — a machine that dies.
* ``cut``: take the host's link down for ``cut_s`` seconds, then up again — a partition that
  heals.  Its processes keep running meanwhile and come back with their old connections.

Both submit slow proofs, wait until the victim host runs some of them, strike, and then read
what happened from the store (its timestamps, the attempts, the audit log) and the broker
(heartbeats).  The run ends when every task is done and the victim's agents are replaced
(a new agent of each lineage READY, on whichever host).  :func:`run_scenario` returns the
figures as JSON-ready data; the test asserts on them, the benchmark prints them.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from hms_celery.healing.decide import epoch as decide_epoch
from tests.multihost.cluster import Cluster
from tests.support import BOUNDED_ONLY, wait_until

#: Outcomes of attempts that committed nothing (see hms_celery/store/repository.py).
NOT_COMMITTED = frozenset({"LOST", "DUPLICATE", "ABANDONED"})


#: An ISO time of the store as epoch seconds (the supervisor's own reading of it).
epoch = decide_epoch


def _rel(value: str | None, t0: float) -> float | None:
    at = epoch(value)
    return None if at is None else round(at - t0, 2)


def run_scenario(
    cluster: Cluster,
    kind: str,
    *,
    tasks: int = 3,
    max_size: int = 100,
    cut_s: float = 30.0,
    observe_s: float = 30.0,
    timeout: float = 240.0,
) -> dict[str, Any]:
    """Strike the first host that runs a proof (``kind`` = ``kill`` or ``cut``); the
    figures, times in seconds from the strike (``t0``)."""
    from hms_celery import client
    from hms_celery.agents import registry
    from hms_celery.settings import get_settings

    if kind not in ("kill", "cut"):
        raise ValueError(f"unknown scenario {kind!r}")
    settings = get_settings()
    task_ids = [
        client.submit_proof_task(f"multihost-{kind}-{i}", BOUNDED_ONLY, max_size=max_size)
        for i in range(tasks)
    ]

    agents = [a for r in cluster.runs for a in r.agents]
    running = min(tasks, len(agents) * cluster.concurrency)  # the rest wait in the queue

    def all_started() -> bool:
        counts = registry.in_flight_counts()
        return sum(counts.get(a, 0) for a in agents) >= running

    # Every pool process busy, or every task running; the victim is the first host that runs
    # one (with spare pool processes, a host may run two and another none).
    wait_until(all_started, 120, "every proof to start", interval=0.2)
    counts = registry.in_flight_counts()
    run = next(r for r in cluster.runs if any(counts.get(a) for a in r.agents))
    victim = run.host
    stale = run.agents  # the agents the victim host runs when it is struck
    in_flight = sorted({item["task_id"] for a in stale for item in registry.in_flight(a)})
    stale_pids = {a: (registry.get_agent(a) or {}).get("pid") for a in stale}

    t0 = time.time()
    killed: list[int] = []
    if kind == "kill":
        killed = cluster.topology.kill_all(victim)
    else:
        cluster.topology.cut(victim)

    restored_at: float | None = None
    heartbeat_back: dict[str, float] = {}
    try:

        def all_failed() -> bool:
            return all((registry.get_agent(a) or {}).get("state") == "FAILED" for a in stale)

        wait_until(all_failed, settings.heartbeat_timeout + 60, "the victim's agents to be FAILED")

        if kind == "cut":
            time.sleep(max(0.0, t0 + cut_s - time.time()))
            cluster.topology.restore(victim)
            restored_at = time.time()
            heartbeat_back = _watch_return(cluster, stale, restored_at, observe_s)
    finally:
        if kind == "cut" and restored_at is None:
            cluster.topology.restore(victim)  # never leave a host cut off

    finals = client.wait_for_results(task_ids, timeout=timeout)
    ended_at = time.time()
    # The respawn that the dead (or cut) host did not carry out moves to another host only
    # after its deadline, and the new worker takes a while to start on busy cores.
    with contextlib.suppress(AssertionError):  # not replaced in time: the figures show it
        wait_until(lambda: _replaced(stale), observe_s + 30, "replacements", interval=0.5)
    return _figures(
        kind=kind,
        t0=t0,
        restored_at=restored_at,
        stale=stale,
        stale_pids=stale_pids,
        in_flight=in_flight,
        task_ids=task_ids,
        finals=finals,
        killed=killed,
        heartbeat_back=heartbeat_back,
        settings={
            "heartbeat_timeout_s": settings.heartbeat_timeout,
            "sweep_interval_s": settings.sweep_interval,
            "tasks": tasks,
            "max_size": max_size,
            "cut_s": cut_s if kind == "cut" else None,
        },
        ended_at=ended_at,
        victim=victim.name,
        victim_host_id=run.host_id,
    )


def _replaced(stale: list[str]) -> bool:
    """Whether each stale agent's lineage has a new agent READY (or BUSY), on any host."""
    from hms_celery.agents import registry

    lineages = {(registry.get_agent(a) or {}).get("lineage") or a for a in stale}
    live = {
        a["lineage"]
        for a in registry.list_agents(include_ended=False)
        if a["id"] not in stale and a["state"] in ("READY", "BUSY")
    }
    return lineages <= live


def _watch_return(
    cluster: Cluster, stale: list[str], restored_at: float, observe_s: float
) -> dict[str, float]:
    """After the link is back: when each stale agent's heartbeats reached the supervisor
    again (seconds after the restore), watched until the stale agents are replaced (a new
    agent of each lineage READY, on any host), their processes are gone, and the victim host
    has dealt with the respawn it was sent (skipped it as expired, or carried it out) — or
    ``observe_s`` passed."""
    import psutil

    from hms_celery.agents import registry
    from hms_celery.healing.heartbeats import HeartbeatStore, redis_client
    from hms_celery.store import repository

    beats = HeartbeatStore(redis_client())
    run = next(r for r in cluster.runs if set(stale) <= set(r.agents))
    pids = {a: (registry.get_agent(a) or {}).get("pid") for a in stale}
    back: dict[str, float] = {}
    deadline = restored_at + observe_s
    while time.time() < deadline:
        now_beats = beats.all()
        for agent in stale:
            seen = (now_beats.get(agent) or {}).get("seen")
            if agent not in back and seen and seen > restored_at:
                back[agent] = round(seen - restored_at, 2)
        gone = all(not pid or not psutil.pid_exists(pid) for pid in pids.values())
        skipped = {
            e["subject"] for e in repository.audit_events(action="agent.respawn_skipped")
        }.issuperset(stale)
        respawned_there = any(
            a["host_id"] == run.host_id and a["id"] not in stale
            for a in registry.list_agents(include_ended=False)
        )
        if gone and _replaced(stale) and (skipped or respawned_there):
            break
        time.sleep(0.25)
    return back


def _figures(
    *,
    kind: str,
    t0: float,
    restored_at: float | None,
    stale: list[str],
    stale_pids: dict[str, int | None],
    in_flight: list[str],
    task_ids: list[str],
    finals: dict[str, dict[str, Any]],
    killed: list[int],
    heartbeat_back: dict[str, float],
    settings: dict[str, Any],
    ended_at: float,
    victim: str,
    victim_host_id: str,
) -> dict[str, Any]:
    import psutil

    from hms_celery.agents import registry
    from hms_celery.store import repository

    lost = sorted(t for t in task_ids if finals[t]["state"] != "DONE")
    committed: dict[str, int] = {}
    results: dict[str, int] = {}
    for task_id in task_ids:
        attempts = finals[task_id]["attempts"]
        committed[task_id] = sum(
            1 for a in attempts if a["outcome"] and a["outcome"] not in NOT_COMMITTED
        )
        results[task_id] = repository.count_results(task_id)
    twice = sorted(t for t in task_ids if committed[t] > 1 or results[t] > 1)

    agents: dict[str, Any] = {}
    for agent in stale:
        history = registry.transitions(agent)
        failed = next((h for h in history if h["to"] == "FAILED"), None)
        after = history[history.index(failed) + 1 :] if failed else []
        events = repository.audit_events(subject=agent, limit=None)
        respawns = [e for e in events if e["action"] == "recovery.respawn"]
        pid = stale_pids.get(agent)
        agents[agent] = {
            "failed_s": _rel(failed["at"], t0) if failed else None,
            "reason": failed["reason"] if failed else None,
            # FAILED is final but for TERMINATED: anything else after it fights the supervisor
            "after_failed": [(h["to"], _rel(h["at"], t0), h["reason"]) for h in after],
            # Respawns decided (one per failure) and respawns moved to another host because
            # the first was not carried out in time (at most one per respawn).
            "respawns": sum(1 for e in respawns if not e["details"].get("moved_from")),
            # The first respawn command's expiry (its deadline), from the strike.
            "respawn_expires_s": next(
                (
                    round(e["details"]["expires_at"] - t0, 2)
                    for e in respawns
                    if not e["details"].get("moved_from") and e["details"].get("expires_at")
                ),
                None,
            ),
            "moved": [
                (e["details"]["moved_from"], e["details"]["host"], _rel(e["at"], t0))
                for e in respawns
                if e["details"].get("moved_from")
            ],
            "recovery": [
                (e["action"], _rel(e["at"], t0)) for e in events if "recovery" in e["action"]
            ],
            # A host that read its respawn command after the deadline: it started nothing.
            "respawn_skipped": [
                (e["actor"], _rel(e["at"], t0), e["details"].get("stale_worker_killed"))
                for e in events
                if e["action"] == "agent.respawn_skipped"
            ],
            "heartbeat_back_s": heartbeat_back.get(agent),
            "process_alive_at_end": bool(pid and psutil.pid_exists(pid)),
            "state_at_end": (registry.get_agent(agent) or {}).get("state"),
        }

    # What the victim host's stale agents did with the store, from their attempts.
    stale_attempts = [
        {
            "task": task_id,
            "agent": a["agent"],
            "started_s": _rel(a["started_at"], t0),
            "ended_s": _rel(a["ended_at"], t0),
            "outcome": a["outcome"],
        }
        for task_id in task_ids
        for a in finals[task_id]["attempts"]
        if a["agent"] in stale
    ]
    refused = [
        e
        for e in repository.audit_events(action="result.duplicate", limit=None)
        if e["subject"] in task_ids
    ]
    duplicates = [e for e in refused if e["actor"] in stale]
    requeues = repository.audit_events(action="task.requeued", limit=None)
    reruns: dict[str, Any] = {}
    for task_id in in_flight:
        final = finals[task_id]
        elsewhere = [a for a in final["attempts"] if a["agent"] not in stale]
        # The winning attempt's end, not the task's finished_at: a stale agent stamps that
        # when its proof ends, and its commit may reach the store only after the cut.
        won = next(
            (a for a in final["attempts"] if a["outcome"] and a["outcome"] not in NOT_COMMITTED),
            None,
        )
        reruns[task_id] = {
            "requeued_s": [
                _rel(e["at"], t0)
                for e in requeues
                if e["subject"] == task_id and e["details"].get("agent") in stale
            ],
            "rerun_started_s": _rel(elsewhere[0]["started_at"], t0) if elsewhere else None,
            "rerun_outcomes": [a["outcome"] for a in elsewhere],
            "committed_s": _rel(won["ended_at"], t0) if won else None,
            "committed_by": final["agent"],
            "committed_by_stale": final["agent"] in stale,
            "verdict": final["verdict"],
        }
    lineages = {(registry.get_agent(a) or {}).get("lineage") or a for a in stale}
    replacements = []
    for a in registry.list_agents():
        if a["lineage"] not in lineages or a["id"] in stale:
            continue
        ready = next((h for h in registry.transitions(a["id"]) if h["to"] == "READY"), None)
        replacements.append(
            {
                "agent": a["id"],
                "state": a["state"],
                "host": (registry.get_host(a["host_id"]) or {}).get("hostname"),
                "on_victim": a["host_id"] == victim_host_id,
                "started_s": _rel(a["started_at"], t0),
                "ready_s": _rel(ready["at"], t0) if ready else None,
            }
        )
    committed_times = [r["committed_s"] for r in reruns.values() if r["committed_s"] is not None]
    return {
        "scenario": kind,
        "victim": victim,
        "settings": settings,
        "killed_pids": len(killed),
        "restored_s": round(restored_at - t0, 2) if restored_at else None,
        "stale_agents": agents,
        "agents_failed_s": max(
            (a["failed_s"] for a in agents.values() if a["failed_s"] is not None), default=None
        ),
        "in_flight": in_flight,
        "reruns": reruns,
        "last_in_flight_committed_s": max(committed_times, default=None),
        "tasks": len(task_ids),
        "verdicts": sorted({str(finals[t]["verdict"]) for t in task_ids}),
        "lost": lost,
        "committed_twice": twice,
        "results_per_task": sorted(set(results.values())),
        "committed_by": {t: finals[t]["agent"] for t in task_ids},
        "stale_attempts": stale_attempts,
        # Every commit the store refused (a result was there): a stale agent's, or a re-run's
        # that the stale agent beat.
        "refused_commits": [(e["subject"], e["actor"], _rel(e["at"], t0)) for e in refused],
        "rejected_commits": [(e["subject"], e["actor"], _rel(e["at"], t0)) for e in duplicates],
        # The new agents of the stale agents' lineages, wherever they run.
        "replacements": replacements,
        "all_done_s": round(ended_at - t0, 2),
    }
