"""Agent states, transitions and the classification rules (one table row per rule)."""

from __future__ import annotations

import itertools

import pytest

from hms_celery.policy import AgentObservation, AgentState, can_transition, classify

S = AgentState
HB, RT = 10.0, 30.0  # heartbeat / report timeouts used throughout

ALLOWED = {
    (S.INITIALIZING, S.READY),
    (S.INITIALIZING, S.FAILED),
    (S.INITIALIZING, S.TERMINATED),
    (S.READY, S.BUSY),
    (S.BUSY, S.READY),
    (S.READY, S.DEGRADED),
    (S.READY, S.FAILED),
    (S.READY, S.TERMINATED),
    (S.BUSY, S.DEGRADED),
    (S.BUSY, S.FAILED),
    (S.BUSY, S.TERMINATED),
    (S.DEGRADED, S.READY),
    (S.DEGRADED, S.BUSY),
    (S.DEGRADED, S.FAILED),
    (S.DEGRADED, S.TERMINATED),
    (S.FAILED, S.TERMINATED),
}


@pytest.mark.parametrize("src,dst", list(itertools.product(S, S)))
def test_transition_table(src: AgentState, dst: AgentState) -> None:
    expected = src == dst or (src, dst) in ALLOWED
    assert can_transition(src, dst) is expected


def test_every_live_state_may_terminate_and_terminated_is_final() -> None:
    for state in S:
        assert can_transition(state, S.TERMINATED)
        if state is not S.TERMINATED:
            assert not can_transition(S.TERMINATED, state)


def test_failed_only_terminates() -> None:
    assert [s for s in S if s is not S.FAILED and can_transition(S.FAILED, s)] == [S.TERMINATED]


def test_can_transition_accepts_strings() -> None:
    assert can_transition("READY", "BUSY")
    assert not can_transition("FAILED", "READY")


def obs(state: AgentState = S.READY, **kw: object) -> AgentObservation:
    """A healthy observation of agent a1, changed by ``kw``."""
    values: dict[str, object] = {
        "heartbeat_age_s": 1.0,
        "report_age_s": 5.0,
        "report_status": "Healthy",
        "active_tasks": 0,
        "process_alive": True,
        "health_check_outstanding": False,
    }
    values.update(kw)
    return AgentObservation("a1", state, **values)  # type: ignore[arg-type]


WEDGED = "main process alive, pool not answering health checks: wedged"

# (name, observation, expected state, expected reason or a fragment of it)
CASES = [
    # 1. TERMINATED is final, whatever else is observed
    ("terminated stays", obs(S.TERMINATED, heartbeat_age_s=None), S.TERMINATED, "terminated"),
    ("terminated alive", obs(S.TERMINATED), S.TERMINATED, "terminated"),
    # 2. FAILED is final (respawn makes a new agent)
    ("failed stays even if beating", obs(S.FAILED), S.FAILED, "stay failed"),
    # 3. process exited
    ("process exited", obs(process_alive=False), S.FAILED, "process exited"),
    (
        "exited beats fresh hb",
        obs(S.BUSY, process_alive=False, active_tasks=3),
        S.FAILED,
        "process exited",
    ),
    ("exited while starting", obs(S.INITIALIZING, process_alive=False), S.FAILED, "process exited"),
    # 4. heartbeat missing or stale
    ("no heartbeat ever", obs(heartbeat_age_s=None), S.FAILED, "no heartbeat ever received"),
    ("stale heartbeat", obs(heartbeat_age_s=12.5), S.FAILED, "no heartbeat for 12.5s"),
    (
        "stale hb, alive unknown",
        obs(heartbeat_age_s=11.0, process_alive=None),
        S.FAILED,
        "no heartbeat for 11.0s",
    ),
    ("hb exactly at timeout is fresh", obs(heartbeat_age_s=HB), S.READY, "ready"),
    (
        "starting, within grace",
        obs(S.INITIALIZING, heartbeat_age_s=None, started_age_s=3.0),
        S.INITIALIZING,
        "waiting for the first heartbeat",
    ),
    (
        "starting, within the longer startup grace",
        obs(S.INITIALIZING, heartbeat_age_s=None, started_age_s=HB * 3),
        S.INITIALIZING,
        "waiting for the first heartbeat",
    ),
    (
        "starting, grace over",
        obs(S.INITIALIZING, heartbeat_age_s=None, started_age_s=HB * 3 + 0.5),
        S.FAILED,
        "no heartbeat ever received",
    ),
    (
        "just ready, first beat not flushed yet",
        obs(S.READY, heartbeat_age_s=None, started_age_s=2.0),
        S.READY,
        "waiting for the first heartbeat",
    ),
    (
        "ready, never a beat",
        obs(S.READY, heartbeat_age_s=None, started_age_s=HB + 0.5),
        S.FAILED,
        "no heartbeat ever received",
    ),
    (
        "starting, start unknown",
        obs(S.INITIALIZING, heartbeat_age_s=None),
        S.FAILED,
        "no heartbeat ever received",
    ),
    # 5. INITIALIZING with a heartbeat
    (
        "first heartbeat",
        obs(S.INITIALIZING, report_status=None, report_age_s=None),
        S.READY,
        "first heartbeat",
    ),
    (
        "first heartbeat, busy already",
        obs(S.INITIALIZING, active_tasks=2),
        S.READY,
        "first heartbeat",
    ),
    (
        "initializing reports failed",
        obs(S.INITIALIZING, report_status="Failed"),
        S.FAILED,
        "agent reports Failed",
    ),
    (
        "initializing degraded report",
        obs(S.INITIALIZING, report_status="Degraded"),
        S.READY,
        "first heartbeat",
    ),
    (
        "initializing wedged waits a sweep",
        obs(S.INITIALIZING, health_check_outstanding=True, report_age_s=99.0),
        S.READY,
        "first heartbeat",
    ),
    # 6. wedged: heartbeat fresh, health check unanswered too long
    ("wedged", obs(health_check_outstanding=True, report_age_s=31.0), S.DEGRADED, WEDGED),
    (
        "wedged while busy (capacity unknown)",
        obs(S.BUSY, active_tasks=1, health_check_outstanding=True, report_age_s=45.0),
        S.DEGRADED,
        WEDGED,
    ),
    (
        "wedged: a free pool slot does not answer",
        obs(S.BUSY, active_tasks=1, capacity=2, health_check_outstanding=True, report_age_s=45.0),
        S.DEGRADED,
        WEDGED,
    ),
    (
        "every slot busy on long tasks: busy, not wedged",
        obs(S.BUSY, active_tasks=2, capacity=2, health_check_outstanding=True, report_age_s=45.0),
        S.BUSY,
        "busy: 2 active task(s)",
    ),
    (
        "the only slot stuck in a health check is wedged, not busy",
        obs(
            S.BUSY,
            active_tasks=1,
            tracked_tasks=0,
            capacity=1,
            health_check_outstanding=True,
            report_age_s=45.0,
        ),
        S.DEGRADED,
        WEDGED,
    ),
    (
        "every slot running tracked work: busy",
        obs(
            S.BUSY,
            active_tasks=1,
            tracked_tasks=1,
            capacity=1,
            health_check_outstanding=True,
            report_age_s=45.0,
        ),
        S.BUSY,
        "busy: 1 active task(s)",
    ),
    (
        "wedged beats failed report",
        obs(health_check_outstanding=True, report_age_s=31.0, report_status="Failed"),
        S.DEGRADED,
        WEDGED,
    ),
    (
        "wedged, never reported, old",
        obs(
            health_check_outstanding=True, report_age_s=None, report_status=None, started_age_s=40.0
        ),
        S.DEGRADED,
        WEDGED,
    ),
    (
        "never reported, young",
        obs(
            health_check_outstanding=True, report_age_s=None, report_status=None, started_age_s=5.0
        ),
        S.READY,
        "ready",
    ),
    (
        "never reported, age unknown",
        obs(health_check_outstanding=True, report_age_s=None, report_status=None),
        S.READY,
        "ready",
    ),
    (
        "check outstanding, recent report",
        obs(health_check_outstanding=True, report_age_s=29.0),
        S.READY,
        "ready",
    ),
    (
        "check at report timeout is fresh",
        obs(health_check_outstanding=True, report_age_s=RT),
        S.READY,
        "ready",
    ),
    ("old report, no check out", obs(report_age_s=300.0), S.READY, "ready"),
    # 7. / 8. the agent's own report
    ("reports failed", obs(report_status="Failed"), S.FAILED, "agent reports Failed"),
    (
        "busy reports failed",
        obs(S.BUSY, report_status="Failed", active_tasks=1),
        S.FAILED,
        "agent reports Failed",
    ),
    ("reports degraded", obs(report_status="Degraded"), S.DEGRADED, "agent reports Degraded"),
    (
        "busy reports degraded",
        obs(S.BUSY, report_status="Degraded", active_tasks=4),
        S.DEGRADED,
        "agent reports Degraded",
    ),
    # 9. healthy: BUSY or READY
    ("ready", obs(), S.READY, "ready"),
    ("busy", obs(active_tasks=2), S.BUSY, "busy: 2 active task(s)"),
    ("busy back to ready", obs(S.BUSY, active_tasks=0), S.READY, "ready"),
    ("degraded recovers", obs(S.DEGRADED), S.READY, "ready"),
    ("degraded recovers busy", obs(S.DEGRADED, active_tasks=1), S.BUSY, "busy"),
    ("no report yet", obs(report_status=None, report_age_s=None), S.READY, "ready"),
    ("alive unknown (other host)", obs(process_alive=None), S.READY, "ready"),
]


@pytest.mark.parametrize(
    "observation,state,reason", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_classify(observation: AgentObservation, state: AgentState, reason: str) -> None:
    got_state, got_reason = classify(observation, heartbeat_timeout_s=HB, report_timeout_s=RT)
    assert got_state is state
    assert reason in got_reason
    assert can_transition(observation.state, got_state)


def test_classify_result_always_reachable() -> None:
    """Over a grid of observations, every result is an allowed transition from the state."""
    for state, hb, rep, status, active, alive, check in itertools.product(
        S,
        (None, 1.0, 50.0),
        (None, 1.0, 50.0),
        (None, "Healthy", "Degraded", "Failed"),
        (0, 2),
        (None, True, False),
        (False, True),
    ):
        o = AgentObservation(
            "a",
            state,
            heartbeat_age_s=hb,
            report_age_s=rep,
            report_status=status,
            active_tasks=active,
            process_alive=alive,
            health_check_outstanding=check,
            started_age_s=5.0,
        )
        new, reason = classify(o, heartbeat_timeout_s=HB, report_timeout_s=RT)
        assert can_transition(state, new), (o, new)
        assert reason


def test_timeouts_are_parameters() -> None:
    o = obs(heartbeat_age_s=20.0)
    assert classify(o, heartbeat_timeout_s=10, report_timeout_s=RT)[0] is S.FAILED
    assert classify(o, heartbeat_timeout_s=30, report_timeout_s=RT)[0] is S.READY
    w = obs(health_check_outstanding=True, report_age_s=20.0)
    assert classify(w, heartbeat_timeout_s=HB, report_timeout_s=10)[0] is S.DEGRADED
    assert classify(w, heartbeat_timeout_s=HB, report_timeout_s=30)[0] is S.READY


@pytest.mark.parametrize("bad", [{"heartbeat_timeout_s": 0}, {"report_timeout_s": -1}])
def test_timeouts_must_be_positive(bad: dict[str, float]) -> None:
    kw = {"heartbeat_timeout_s": HB, "report_timeout_s": RT} | bad
    with pytest.raises(ValueError):
        classify(obs(), **kw)


def test_observation_defaults_and_validation() -> None:
    o = AgentObservation("w1@host", "READY", skills=["prove.z3"])  # type: ignore[arg-type]
    assert o.state is S.READY
    assert o.lineage == "w1@host"
    assert o.skills == ("prove.z3",)
    assert AgentObservation("w2@host", S.READY, lineage="w1@host").lineage == "w1@host"
    with pytest.raises(ValueError, match="report_status"):
        AgentObservation("a", S.READY, report_status="healthy")
    with pytest.raises(ValueError, match="active_tasks"):
        AgentObservation("a", S.READY, active_tasks=-1)
    with pytest.raises(ValueError, match="tracked_tasks"):
        AgentObservation("a", S.READY, tracked_tasks=-1)
    with pytest.raises(ValueError):
        AgentObservation("a", "ASLEEP")  # type: ignore[arg-type]
