"""Circuit breakers: open after K failures, cooldown, half-open trial, close / re-open, JSON."""

from __future__ import annotations

import json

import pytest

from hms_celery.policy import (
    BreakerBoard,
    BreakerState,
    CircuitBreaker,
    agent_key,
    backend_key,
)

B = BreakerState
T0 = 5_000.0


def tripped(threshold: int = 3, cooldown_s: float = 30.0) -> CircuitBreaker:
    breaker = CircuitBreaker("backend:z3", threshold=threshold, cooldown_s=cooldown_s)
    for i in range(threshold):
        breaker.record_failure(T0 + i)
    return breaker


def test_new_breaker_is_closed_and_allows() -> None:
    breaker = CircuitBreaker("agent:a1")
    assert (breaker.state, breaker.threshold, breaker.cooldown_s) == (B.CLOSED, 5, 30.0)
    assert breaker.allows(T0) and breaker.allows(T0)


def test_opens_after_k_consecutive_failures() -> None:
    breaker = CircuitBreaker("backend:z3", threshold=3)
    for i in range(2):
        breaker.record_failure(T0 + i)
        assert breaker.state is B.CLOSED and breaker.allows(T0 + i)
    breaker.record_failure(T0 + 2)
    assert breaker.state is B.OPEN and breaker.opened_at == T0 + 2
    assert breaker.consecutive_failures == 3
    assert not breaker.allows(T0 + 2)


def test_success_resets_the_count() -> None:
    breaker = CircuitBreaker("backend:z3", threshold=3)
    for i in range(10):  # fail, fail, succeed, ... never three in a row
        if i % 3 == 2:
            breaker.record_success(T0 + i)
        else:
            breaker.record_failure(T0 + i)
    assert breaker.state is B.CLOSED
    assert breaker.consecutive_failures == 1


def test_stays_open_during_cooldown() -> None:
    breaker = tripped(cooldown_s=30)  # opened at T0 + 2
    for dt in (0, 1, 15, 29.999):
        assert not breaker.allows(T0 + 2 + dt)
        assert breaker.state is B.OPEN
        assert breaker.is_open(T0 + 2 + dt)


def test_half_open_after_cooldown_allows_one_trial() -> None:
    breaker = tripped(cooldown_s=30)
    assert not breaker.is_open(T0 + 32)
    assert breaker.allows(T0 + 32)
    assert breaker.state is B.HALF_OPEN
    assert not breaker.allows(T0 + 32)  # only one trial
    assert not breaker.allows(T0 + 40)


def test_half_open_success_closes() -> None:
    breaker = tripped()
    assert breaker.allows(T0 + 40)
    breaker.record_success(T0 + 41)
    assert breaker.state is B.CLOSED and breaker.consecutive_failures == 0
    assert breaker.opened_at is None
    assert breaker.allows(T0 + 41) and breaker.allows(T0 + 41)


def test_half_open_failure_reopens_with_fresh_cooldown() -> None:
    breaker = tripped(cooldown_s=30)
    assert breaker.allows(T0 + 40)
    breaker.record_failure(T0 + 41)
    assert breaker.state is B.OPEN and breaker.opened_at == T0 + 41
    assert not breaker.allows(T0 + 70)  # old cooldown would have ended at T0 + 32
    assert breaker.allows(T0 + 71)
    assert breaker.state is B.HALF_OPEN


def test_half_open_single_failure_reopens_even_below_threshold() -> None:
    breaker = tripped(threshold=5)
    breaker.allows(T0 + 40)
    breaker.record_failure(T0 + 41)
    assert breaker.state is B.OPEN


def test_lost_trial_is_handed_out_again_after_cooldown() -> None:
    breaker = tripped(cooldown_s=30)
    assert breaker.allows(T0 + 40)
    assert not breaker.allows(T0 + 69)
    assert breaker.allows(T0 + 70)
    assert not breaker.allows(T0 + 71)


def test_late_outcomes_while_open() -> None:
    breaker = tripped(cooldown_s=30)  # opened at T0 + 2
    breaker.record_success(T0 + 5)  # dispatched before it opened: does not close it
    assert breaker.state is B.OPEN
    breaker.record_failure(T0 + 10)  # counted, cooldown not extended
    assert breaker.opened_at == T0 + 2 and breaker.consecutive_failures == 4
    assert breaker.allows(T0 + 32)


def test_zero_cooldown_goes_half_open_at_once() -> None:
    breaker = tripped(cooldown_s=0)
    assert breaker.allows(T0 + 2)
    assert breaker.state is B.HALF_OPEN


@pytest.mark.parametrize("kw", [{"threshold": 0}, {"cooldown_s": -1}])
def test_validation(kw: dict) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("agent:a", **kw)


@pytest.mark.parametrize("state_after", ["closed", "open", "half_open"])
def test_breaker_json_round_trip_preserves_behaviour(state_after: str) -> None:
    breaker = CircuitBreaker("backend:lean", threshold=2, cooldown_s=10)
    breaker.record_failure(T0)
    if state_after != "closed":
        breaker.record_failure(T0 + 1)
    if state_after == "half_open":
        assert breaker.allows(T0 + 11)
    data = breaker.to_json()
    copy = CircuitBreaker.from_json(json.dumps(data))
    assert copy == breaker and copy.to_json() == data
    for t in (T0 + 2, T0 + 11.5, T0 + 21, T0 + 30):
        assert copy.allows(t) == breaker.allows(t)
        assert copy.state is breaker.state
    copy.record_failure(T0 + 31)
    breaker.record_failure(T0 + 31)
    assert copy == breaker


# --- board -----------------------------------------------------------------------------------


def test_keys() -> None:
    assert agent_key("w1@host") == "agent:w1@host"
    assert backend_key("z3") == "backend:z3"
    board = BreakerBoard()
    for bad in ("z3", "queue:prove", "agent:", ":x"):
        with pytest.raises(ValueError, match="breaker key"):
            board.get(bad)


def test_board_creates_with_its_defaults() -> None:
    board = BreakerBoard(threshold=2, cooldown_s=7)
    breaker = board.get("agent:a1")
    assert (breaker.threshold, breaker.cooldown_s, breaker.state) == (2, 7.0, B.CLOSED)
    assert board.get("agent:a1") is breaker
    assert "agent:a1" in board and len(board) == 1
    with pytest.raises(ValueError):
        BreakerBoard(threshold=0)


def test_board_record_and_open_keys() -> None:
    board = BreakerBoard(threshold=2, cooldown_s=10)
    assert board.record("backend:z3", False, T0) is B.CLOSED
    assert board.record("backend:z3", False, T0 + 1) is B.OPEN
    board.record("agent:a1", False, T0 + 2)
    board.record("agent:a1", False, T0 + 3)
    board.record("agent:a2", False, T0 + 3)
    board.record("backend:lean", True, T0 + 3)
    assert board.open_keys(T0 + 4) == ["agent:a1", "backend:z3"]
    assert not board.allows("backend:z3", T0 + 4)
    assert board.allows("agent:a2", T0 + 4)
    # pure query: does not hand out the trial
    assert board.open_keys(T0 + 11) == ["agent:a1"]
    assert board.get("backend:z3").state is B.OPEN
    assert board.allows("backend:z3", T0 + 11)
    assert board.get("backend:z3").state is B.HALF_OPEN
    assert board.record("backend:z3", True, T0 + 12) is B.CLOSED
    assert board.open_keys(T0 + 12) == ["agent:a1"]
    assert board.open_keys(T0 + 13) == []


def test_board_forget() -> None:
    board = BreakerBoard(threshold=1)
    board.record("agent:a1", False, T0)
    board.forget("agent:a1")
    board.forget("agent:never")
    assert board.open_keys(T0) == [] and "agent:a1" not in board


def test_board_json_round_trip_preserves_behaviour() -> None:
    board = BreakerBoard(threshold=2, cooldown_s=10)
    board.record("backend:z3", False, T0)
    board.record("backend:z3", False, T0 + 1)  # open
    board.record("agent:a1", False, T0)  # one failure
    board.record("agent:a2", False, T0)
    board.record("agent:a2", False, T0)
    assert board.allows("agent:a2", T0 + 10)  # half-open, trial out
    board.get("agent:a3")  # pristine: left out
    data = board.to_json()
    assert [b["key"] for b in data["breakers"]] == ["agent:a1", "agent:a2", "backend:z3"]
    copy = BreakerBoard.from_json(json.dumps(data))
    assert copy.to_json() == data
    for t in (T0 + 2, T0 + 10.5, T0 + 11, T0 + 25):
        assert copy.open_keys(t) == board.open_keys(t)
        for key in ("backend:z3", "agent:a1", "agent:a2", "agent:a3"):
            assert copy.allows(key, t) == board.allows(key, t), (key, t)
    copy.record("agent:a1", False, T0 + 30)
    assert copy.open_keys(T0 + 30) == ["agent:a1"]
    assert copy.get("agent:a9").threshold == 2
