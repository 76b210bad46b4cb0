"""Agent lifecycle states and the classification of an agent from what the supervisor observed.

:func:`classify` is pure: the supervisor sweep gathers an :class:`AgentObservation` per agent
(stored state, heartbeat and report ages, process liveness, ...) and gets back the new state and
a reason to store with the transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: Suggested defaults (settings ``HMS_HEARTBEAT_TIMEOUT`` / ``HMS_REPORT_TIMEOUT``).  Celery
#: workers emit a heartbeat event every 2 s, so 10 s is five missed beats.
DEFAULT_HEARTBEAT_TIMEOUT_S = 10.0
DEFAULT_REPORT_TIMEOUT_S = 30.0

REPORT_STATUSES = frozenset({"Healthy", "Degraded", "Failed"})


class AgentState(StrEnum):
    """Lifecycle state of an agent (one Celery worker node)."""

    INITIALIZING = "INITIALIZING"
    READY = "READY"
    BUSY = "BUSY"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"


_S = AgentState

#: Allowed transitions.  FAILED is final except for TERMINATED: recovery from FAILED is a
#: respawn, which creates a NEW agent (new id, same lineage).  TERMINATED is final.
TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    _S.INITIALIZING: frozenset({_S.READY, _S.FAILED, _S.TERMINATED}),
    _S.READY: frozenset({_S.BUSY, _S.DEGRADED, _S.FAILED, _S.TERMINATED}),
    _S.BUSY: frozenset({_S.READY, _S.DEGRADED, _S.FAILED, _S.TERMINATED}),
    _S.DEGRADED: frozenset({_S.READY, _S.BUSY, _S.FAILED, _S.TERMINATED}),
    _S.FAILED: frozenset({_S.TERMINATED}),
    _S.TERMINATED: frozenset(),
}


def can_transition(src: AgentState | str, dst: AgentState | str) -> bool:
    """May an agent move from ``src`` to ``dst``?

    Staying in the same state is not a transition and is always allowed (a sweep that finds
    nothing new); any state may move to TERMINATED (graceful shutdown) except TERMINATED itself,
    which is covered by the same-state rule.
    """
    src, dst = AgentState(src), AgentState(dst)
    return src == dst or dst in TRANSITIONS[src]


@dataclass(frozen=True)
class AgentObservation:
    """What the supervisor knows about one agent at the time of a sweep.

    Ages are seconds before the sweep; ``None`` means never seen.  ``process_alive`` is ``None``
    when unknown (e.g. the agent runs on another host).  ``health_check_outstanding`` is True when
    a health check was sent after the last report.  ``lineage`` is the id of the first agent of
    the respawn line (default: ``agent_id``).  ``started_age_s`` is the time since the agent
    registered (``None``: unknown); it gives a starting agent its first heartbeat timeout.
    ``tracked_tasks`` counts the HMS tasks with an open attempt on the agent (from the store;
    ``None``: unknown).  Celery's ``active_tasks`` also counts a health check that a stuck pool
    process accepted, so saturation is judged on ``tracked_tasks`` when it is known.
    """

    agent_id: str
    state: AgentState
    heartbeat_age_s: float | None = None
    report_age_s: float | None = None
    report_status: str | None = None
    active_tasks: int = 0
    process_alive: bool | None = None
    health_check_outstanding: bool = False
    skills: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    lineage: str = ""
    started_age_s: float | None = None
    capacity: int | None = None  # pool processes; None: unknown
    tracked_tasks: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", AgentState(self.state))
        object.__setattr__(self, "skills", tuple(self.skills))
        if not self.lineage:
            object.__setattr__(self, "lineage", self.agent_id)
        if self.report_status is not None and self.report_status not in REPORT_STATUSES:
            raise ValueError(
                f"report_status must be one of {sorted(REPORT_STATUSES)} or None, "
                f"not {self.report_status!r}"
            )
        if self.active_tasks < 0:
            raise ValueError(f"active_tasks must be >= 0, not {self.active_tasks}")
        if self.tracked_tasks is not None and self.tracked_tasks < 0:
            raise ValueError(f"tracked_tasks must be >= 0, not {self.tracked_tasks}")


STARTUP_GRACE_FACTOR = 3
"""An INITIALIZING agent may wait this many heartbeat timeouts for its first beat."""


def classify(
    obs: AgentObservation,
    *,
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
    report_timeout_s: float = DEFAULT_REPORT_TIMEOUT_S,
) -> tuple[AgentState, str]:
    """The agent's new state and the reason, from ``obs``.  Rules, first match wins:

    1. TERMINATED stays TERMINATED (final).
    2. FAILED stays FAILED: a failed agent is never revived, it is respawned as a new agent.
    3. ``process_alive`` is False → FAILED ("process exited").
    4. No heartbeat ever, or the last is older than ``heartbeat_timeout_s`` → FAILED
       ("no heartbeat for Xs").  Exception: an INITIALIZING agent that registered less than
       ``heartbeat_timeout_s`` ago and has not sent its first heartbeat yet stays INITIALIZING
       (needs ``started_age_s``; unknown start → the rule applies).
    5. INITIALIZING with a fresh heartbeat → FAILED if its report says Failed, else READY
       ("first heartbeat").  INITIALIZING may only move to READY, FAILED or TERMINATED, so the
       rules below apply from the next sweep.
    6. Heartbeat fresh but a health check is outstanding and the last report is older than
       ``report_timeout_s`` → DEGRADED ("main process alive, pool not answering health checks:
       wedged").  The main process beats, its pool does not work.  An agent that never reported
       is measured from its registration (``started_age_s``); if both are unknown the rule
       does not fire (no evidence of how long the check has waited).  Not when every pool
       process runs a task (``tracked_tasks``, else ``active_tasks``, ≥ ``capacity``): BUSY.
    7. The report says Failed → FAILED ("agent reports Failed").
    8. The report says Degraded → DEGRADED ("agent reports Degraded").
    9. Otherwise BUSY if it has active tasks, else READY ("ready" / "busy: N active task(s)").

    Ages equal to a timeout count as fresh.  The result is always reachable from ``obs.state``
    (:func:`can_transition`).
    """
    if heartbeat_timeout_s <= 0 or report_timeout_s <= 0:
        raise ValueError("timeouts must be > 0")
    state, reason = _classify(obs, heartbeat_timeout_s, report_timeout_s)
    assert can_transition(obs.state, state), (obs.state, state)
    return state, reason


def _classify(
    obs: AgentObservation, heartbeat_timeout_s: float, report_timeout_s: float
) -> tuple[AgentState, str]:
    if obs.state is AgentState.TERMINATED:
        return AgentState.TERMINATED, "terminated"
    if obs.state is AgentState.FAILED:
        return AgentState.FAILED, "failed agents stay failed (recovery respawns a new agent)"
    if obs.process_alive is False:
        return AgentState.FAILED, "process exited"
    beat = obs.heartbeat_age_s
    if beat is None or beat > heartbeat_timeout_s:
        # A worker's first heartbeat reaches the store a moment after it registers: give a
        # new agent time (a starting one more: imports and pool start take seconds).
        grace = heartbeat_timeout_s * (
            STARTUP_GRACE_FACTOR if obs.state is AgentState.INITIALIZING else 1
        )
        if (
            beat is None
            and obs.state in (AgentState.INITIALIZING, AgentState.READY)
            and obs.started_age_s is not None
            and obs.started_age_s <= grace
        ):
            return obs.state, "starting: waiting for the first heartbeat"
        if beat is None:
            return AgentState.FAILED, "no heartbeat ever received"
        return AgentState.FAILED, f"no heartbeat for {beat:.1f}s"
    if obs.state is AgentState.INITIALIZING:
        if obs.report_status == "Failed":
            return AgentState.FAILED, "agent reports Failed"
        return AgentState.READY, "first heartbeat"
    waited = obs.report_age_s if obs.report_age_s is not None else obs.started_age_s
    # Every pool process busy with a task (within its time limits, which Celery enforces)
    # cannot take a health check: that is BUSY, not wedged.  A pool process stopped in the
    # middle of a health check is counted active by Celery but runs no HMS task: wedged.
    working = obs.tracked_tasks if obs.tracked_tasks is not None else obs.active_tasks
    saturated = obs.capacity is not None and working >= obs.capacity
    if (
        obs.health_check_outstanding
        and not saturated
        and waited is not None
        and waited > report_timeout_s
    ):
        return (
            AgentState.DEGRADED,
            "main process alive, pool not answering health checks: wedged",
        )
    if obs.report_status == "Failed":
        return AgentState.FAILED, "agent reports Failed"
    if obs.report_status == "Degraded":
        return AgentState.DEGRADED, "agent reports Degraded"
    if obs.active_tasks > 0:
        return AgentState.BUSY, f"busy: {obs.active_tasks} active task(s)"
    return AgentState.READY, "ready"
