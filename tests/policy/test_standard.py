"""StandardHealthPolicy: action mapping, restart intensity, backoff, respawn changes, JSON."""

from __future__ import annotations

import json

import pytest

from hms_celery.policy import (
    ActionKind,
    AgentObservation,
    AgentState,
    HealthPolicy,
    RecoveryAction,
    StandardHealthPolicy,
    due,
)

S, K = AgentState, ActionKind
T0 = 1_000_000.0


def obs(agent: str = "a1", lineage: str = "", **kw: object) -> AgentObservation:
    return AgentObservation(
        agent, S.READY, heartbeat_age_s=1.0, skills=("prove.z3",), lineage=lineage, **kw
    )  # type: ignore[arg-type]


def carry_out(policy: StandardHealthPolicy, action: RecoveryAction, now: float) -> float:
    """Act as the supervisor would: wait until due, record, return the time it happened."""
    at = max(now, action.not_before or now)
    policy.record(action, at)
    return at


# --- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state,kind",
    [
        (S.DEGRADED, K.RESTART),
        (S.FAILED, K.RESPAWN),
        (S.READY, K.IGNORE),
        (S.BUSY, K.IGNORE),
        (S.INITIALIZING, K.IGNORE),
        (S.TERMINATED, K.IGNORE),
    ],
)
def test_state_to_action(state: AgentState, kind: ActionKind) -> None:
    action = StandardHealthPolicy().decide(obs(), state, T0)
    assert action.kind is kind
    assert action.agent_id == "a1" and action.lineage == "a1"
    assert action.not_before is None and not action.escalated
    assert action.config_changes == {}
    assert action.reason


def test_is_a_health_policy() -> None:
    assert isinstance(StandardHealthPolicy(), HealthPolicy)


def test_decide_does_not_change_state() -> None:
    policy = StandardHealthPolicy()
    policy.record(policy.decide(obs(), S.DEGRADED, T0), T0)
    before = policy.to_json()
    for i in range(20):
        policy.decide(obs(), S.DEGRADED, T0 + i)
        policy.decide(obs(), S.FAILED, T0 + i)
    assert policy.to_json() == before
    assert policy.restarts_in_window("a1", T0 + 1) == 1


def test_ignore_and_plain_alert_are_not_counted() -> None:
    policy = StandardHealthPolicy(max_restarts=1)
    policy.record(policy.decide(obs(), S.READY, T0), T0)
    policy.record(RecoveryAction(K.ALERT, "a1", "fyi"), T0)
    assert policy.to_json()["lineages"] == {}
    assert policy.decide(obs(), S.DEGRADED, T0).kind is K.RESTART


# --- restart intensity -----------------------------------------------------------------------


def test_r_restarts_pass_then_escalate() -> None:
    policy = StandardHealthPolicy(max_restarts=3, window_s=60)
    now = T0
    for _ in range(3):
        action = policy.decide(obs(), S.DEGRADED, now)
        assert action.kind is K.RESTART
        now = carry_out(policy, action, now)
    alert = policy.decide(obs(), S.DEGRADED, now + 1)
    assert alert.kind is K.ALERT and alert.escalated
    assert alert.reason == "4 restarts in 60s exceeds 3: giving up, alerting"
    assert alert.not_before is None
    # FAILED counts against the same lineage limit
    assert policy.decide(obs(), S.FAILED, now + 1).kind is K.ALERT


def test_restarts_resume_after_window() -> None:
    policy = StandardHealthPolicy(max_restarts=2, window_s=60)
    times = []
    now = T0
    for _ in range(2):
        now = carry_out(policy, policy.decide(obs(), S.DEGRADED, now), now)
        times.append(now)
    assert policy.decide(obs(), S.DEGRADED, times[0] + 59.9).kind is K.ALERT
    # not recording the ALERT: the sliding window alone frees a slot once the first one is old
    action = policy.decide(obs(), S.DEGRADED, times[0] + 60)
    assert action.kind is K.RESTART
    assert policy.restarts_in_window("a1", times[0] + 60) == 1


def test_recorded_escalation_holds_until_window_passed() -> None:
    policy = StandardHealthPolicy(max_restarts=2, window_s=60)
    now = T0
    for _ in range(2):
        now = carry_out(policy, policy.decide(obs(), S.DEGRADED, now), now)
    escalated_at = now + 10
    alert = policy.decide(obs(), S.DEGRADED, escalated_at)
    policy.record(alert, escalated_at)
    assert policy.escalated_until("a1", escalated_at) == escalated_at + 60
    # the restarts have aged out, but the lineage stays given up until the window has passed
    late = escalated_at + 59
    assert policy.restarts_in_window("a1", late) == 0
    held = policy.decide(obs(), S.DEGRADED, late)
    assert held.kind is K.ALERT and held.escalated and "giving up until" in held.reason
    policy.record(held, late)  # a repeated ALERT does not extend the hold
    assert policy.escalated_until("a1", late) == escalated_at + 60
    # READY is still ignored during the hold
    assert policy.decide(obs(), S.READY, late).kind is K.IGNORE
    after = policy.decide(obs(), S.DEGRADED, escalated_at + 60)
    assert after.kind is K.RESTART and after.not_before is None
    assert policy.escalated_until("a1", escalated_at + 60) is None


def test_lineages_are_independent() -> None:
    policy = StandardHealthPolicy(max_restarts=1)
    policy.record(policy.decide(obs("a1"), S.DEGRADED, T0), T0)
    assert policy.decide(obs("a1"), S.DEGRADED, T0 + 5).kind is K.ALERT
    assert policy.decide(obs("b1"), S.DEGRADED, T0 + 5).kind is K.RESTART


def test_respawned_agent_counts_against_its_lineage() -> None:
    policy = StandardHealthPolicy(max_restarts=1)
    first = policy.decide(obs("a1"), S.FAILED, T0)
    policy.record(first, T0)
    second = policy.decide(obs("a2", lineage="a1"), S.FAILED, T0 + 10)
    assert second.kind is K.ALERT and second.lineage == "a1"
    assert policy.decide(obs("a2"), S.FAILED, T0 + 10).kind is K.RESPAWN  # own lineage: fresh


def test_zero_restarts_always_alerts() -> None:
    action = StandardHealthPolicy(max_restarts=0).decide(obs(), S.FAILED, T0)
    assert action.kind is K.ALERT and action.escalated
    assert action.reason == "1 restarts in 60s exceeds 0: giving up, alerting"


@pytest.mark.parametrize("record_alerts", [False, True])
@pytest.mark.parametrize("state", [S.FAILED, S.DEGRADED])
def test_no_restart_storm(state: AgentState, record_alerts: bool) -> None:
    """100 sweeps of a crash-looping lineage: never more than R restarts in any window."""
    r, window = 3, 60.0
    policy = StandardHealthPolicy(max_restarts=r, window_s=window)
    generation, now, done, alerts = 1, T0, [], 0
    for _ in range(100):
        agent = f"a{generation}"
        action = policy.decide(obs(agent, lineage="a1"), state, now)
        if action.kind.is_restart and due(action, now):
            policy.record(action, now)
            done.append(now)
            if action.kind is K.RESPAWN:
                generation += 1  # the new agent crashes again
        elif action.kind is K.ALERT:
            alerts += 1
            if record_alerts:
                policy.record(action, now)
        now += 2.0  # a sweep every 2 s, 200 s in all
    assert alerts > 0
    assert len(done) >= r  # it did try
    for t in done:
        assert sum(1 for u in done if t - window < u <= t) <= r, done
    if record_alerts:
        # given up for a whole window after each escalation: at most R per 2 windows + R
        assert len(done) <= r * 3
    else:
        assert len(done) <= r * 4


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_doubles_and_caps() -> None:
    policy = StandardHealthPolicy(backoff_base_s=1.0, backoff_max_s=30.0)
    assert [policy.backoff(k) for k in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_not_before_doubles_from_last_action_and_caps() -> None:
    policy = StandardHealthPolicy(
        max_restarts=10, window_s=600, backoff_base_s=1.0, backoff_max_s=5.0
    )
    now, delays = T0, []
    for _ in range(6):
        action = policy.decide(obs(), S.DEGRADED, now)
        assert action.kind is K.RESTART
        delays.append(None if action.not_before is None else action.not_before - now)
        now = carry_out(policy, action, now)
    # first immediate; the k-th waits min(base * 2**(k-1), max) after the previous one
    assert delays == [None, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_is_from_last_action_not_from_now() -> None:
    policy = StandardHealthPolicy(backoff_base_s=3.0)
    policy.record(policy.decide(obs(), S.DEGRADED, T0), T0)
    assert policy.decide(obs(), S.DEGRADED, T0 + 1).not_before == T0 + 6
    assert policy.decide(obs(), S.DEGRADED, T0 + 5).not_before == T0 + 6
    late = policy.decide(obs(), S.DEGRADED, T0 + 9)
    assert late.not_before == T0 + 6 and due(late, T0 + 9)


def test_due_and_record_before_due_refused() -> None:
    policy = StandardHealthPolicy()
    policy.record(policy.decide(obs(), S.DEGRADED, T0), T0)
    action = policy.decide(obs(), S.DEGRADED, T0)
    assert action.not_before == T0 + 2
    assert not due(action, T0 + 1.999)
    assert due(action, T0 + 2)
    assert due(RecoveryAction(K.RESTART, "x", "now"), 0.0)
    with pytest.raises(ValueError, match="not due"):
        policy.record(action, T0 + 1)
    assert policy.restarts_in_window("a1", T0 + 1) == 1


# --- respawn ---------------------------------------------------------------------------------


def test_respawn_keeps_config_first_time() -> None:
    action = StandardHealthPolicy().decide(obs(config={"concurrency": 4}), S.FAILED, T0)
    assert action.kind is K.RESPAWN and action.config_changes == {}


def test_repeated_respawn_halves_concurrency() -> None:
    policy = StandardHealthPolicy(max_restarts=5, window_s=60)
    now, concurrency, seen = T0, 4, []
    for generation in range(1, 5):
        o = obs(f"a{generation}", lineage="a1", config={"concurrency": concurrency})
        action = policy.decide(o, S.FAILED, now)
        assert action.kind is K.RESPAWN
        seen.append(action.config_changes)
        concurrency = action.config_changes.get("concurrency", concurrency)
        now = carry_out(policy, action, now)
    assert seen == [{}, {"concurrency": 2}, {"concurrency": 1}, {}]
    assert (
        "concurrency 4 -> 2"
        in policy.decide(obs("a9", lineage="a1", config={"concurrency": 4}), S.FAILED, now).reason
    )


@pytest.mark.parametrize("config", [{}, {"concurrency": 1}, {"concurrency": "4"}, {"pool": "x"}])
def test_respawn_without_halvable_concurrency_changes_nothing(config: dict) -> None:
    policy = StandardHealthPolicy()
    policy.record(policy.decide(obs("a1"), S.FAILED, T0), T0)
    action = policy.decide(obs("a2", lineage="a1", config=config), S.FAILED, T0 + 5)
    assert action.kind is K.RESPAWN and action.config_changes == {}


def test_restart_then_respawn_does_not_lower_concurrency() -> None:
    policy = StandardHealthPolicy()
    policy.record(policy.decide(obs(), S.DEGRADED, T0), T0)
    action = policy.decide(obs(config={"concurrency": 4}), S.FAILED, T0 + 5)
    assert action.kind is K.RESPAWN and action.config_changes == {}


def test_respawn_after_window_keeps_config() -> None:
    policy = StandardHealthPolicy(window_s=60)
    policy.record(policy.decide(obs("a1"), S.FAILED, T0), T0)
    o = obs("a2", lineage="a1", config={"concurrency": 4})
    assert policy.decide(o, S.FAILED, T0 + 30).config_changes == {"concurrency": 2}
    assert policy.decide(o, S.FAILED, T0 + 60).config_changes == {}


def test_failed_agent_is_respawned_once() -> None:
    policy = StandardHealthPolicy()
    policy.record(policy.decide(obs("a1"), S.FAILED, T0), T0)
    again = policy.decide(obs("a1"), S.FAILED, T0 + 2)
    assert again.kind is K.IGNORE and "already respawned" in again.reason
    # a degraded restart of the same id is not a respawn: may repeat
    assert policy.decide(obs("a1"), S.DEGRADED, T0 + 5).kind is K.RESTART


# --- validation and JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"max_restarts": -1},
        {"window_s": 0},
        {"backoff_base_s": -1},
        {"backoff_base_s": 10, "backoff_max_s": 5},
    ],
)
def test_constructor_validation(kw: dict) -> None:
    with pytest.raises(ValueError):
        StandardHealthPolicy(**kw)


def _decisions(policy: StandardHealthPolicy, start: float) -> list[dict]:
    out = []
    for t in range(0, 130, 7):
        for agent, lineage in (("a1", ""), ("a3", "a1"), ("b1", ""), ("c1", "")):
            for state in (S.DEGRADED, S.FAILED):
                out.append(policy.decide(obs(agent, lineage=lineage), state, start + t).to_json())
    return out


def test_json_round_trip_preserves_behaviour() -> None:
    policy = StandardHealthPolicy(max_restarts=2, window_s=60, backoff_base_s=2, backoff_max_s=9)
    now = T0
    for _ in range(2):
        now = carry_out(policy, policy.decide(obs("a1"), S.FAILED, now), now)
        now = carry_out(policy, policy.decide(obs("a2", lineage="a1"), S.FAILED, now), now)
    policy.record(policy.decide(obs("a3", lineage="a1"), S.FAILED, now), now)  # escalation
    policy.record(policy.decide(obs("b1"), S.DEGRADED, now), now)
    data = policy.to_json()
    text = json.dumps(data)
    for restored in (StandardHealthPolicy.from_json(data), StandardHealthPolicy.from_json(text)):
        assert restored.to_json() == data
        assert _decisions(restored, now) == _decisions(policy, now)
    assert data["lineages"]["a1"]["held_until"] == now + 60


def test_from_json_params_override_and_version() -> None:
    policy = StandardHealthPolicy(max_restarts=1)
    policy.record(policy.decide(obs(), S.DEGRADED, T0), T0)
    assert (
        StandardHealthPolicy.from_json(policy.to_json()).decide(obs(), S.DEGRADED, T0 + 1).kind
        is K.ALERT
    )
    wider = StandardHealthPolicy.from_json(policy.to_json(), max_restarts=3)
    assert wider.max_restarts == 3
    assert wider.decide(obs(), S.DEGRADED, T0 + 1).kind is K.RESTART
    with pytest.raises(ValueError, match="version"):
        StandardHealthPolicy.from_json(policy.to_json() | {"version": 99})


def test_history_is_pruned() -> None:
    policy = StandardHealthPolicy(window_s=60)
    policy.record(policy.decide(obs("a1"), S.DEGRADED, T0), T0)
    policy.record(policy.decide(obs("b1"), S.DEGRADED, T0 + 61), T0 + 61)
    assert list(policy.to_json()["lineages"]) == ["b1"]


def test_recovery_action_json_round_trip() -> None:
    action = RecoveryAction(
        K.RESPAWN, "a2", "why", {"concurrency": 1}, not_before=T0 + 0.5, lineage="a1"
    )
    data = action.to_json()
    assert data["kind"] == "RESPAWN"
    assert RecoveryAction.from_json(data) == action
    assert RecoveryAction.from_json(json.dumps(data)) == action
    plain = RecoveryAction("ALERT", "a1", "x", escalated=True)  # type: ignore[arg-type]
    assert plain.kind is K.ALERT and plain.lineage == "a1"
    assert RecoveryAction.from_json(plain.to_json()) == plain
