"""Circuit breakers per agent and per prover backend.

A breaker opens after ``threshold`` consecutive failures; while OPEN no work is routed to its
key.  After ``cooldown_s`` it lets one trial through (HALF_OPEN): a success closes it, a failure
re-opens it with a fresh cooldown.  Like the health policy, breakers never read the clock and
round-trip through JSON, so routers and sweeps in different processes can share them (the
caller serialises updates, e.g. under a Redis lock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

#: Suggested defaults (settings ``HMS_BREAKER_THRESHOLD`` / ``HMS_BREAKER_COOLDOWN``).
DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN_S = 30.0

KEY_KINDS = ("agent", "backend")


class BreakerState(StrEnum):
    """State of a circuit breaker."""

    CLOSED = "CLOSED"  # work flows
    OPEN = "OPEN"  # no work until the cooldown has passed
    HALF_OPEN = "HALF_OPEN"  # one trial in flight; its outcome closes or re-opens


@dataclass
class CircuitBreaker:
    """One breaker.  ``opened_at`` is when it last opened; ``trial_at`` when the half-open trial
    was handed out (a trial whose outcome never arrives is handed out again after another
    ``cooldown_s``, so a lost trial cannot wedge the breaker)."""

    key: str
    threshold: int = DEFAULT_THRESHOLD
    cooldown_s: float = DEFAULT_COOLDOWN_S
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_at: float | None = None

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError(f"threshold must be >= 1, not {self.threshold}")
        if self.cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, not {self.cooldown_s}")
        self.state = BreakerState(self.state)

    def allows(self, now: float) -> bool:
        """May work be routed to this key now?  Hands out the half-open trial (mutates).

        CLOSED: yes.  OPEN: no until ``cooldown_s`` after opening, then it becomes HALF_OPEN and
        this call gets the one trial.  HALF_OPEN: no while the trial is out (unless it has been
        out for ``cooldown_s`` without an outcome: then it is handed out again).
        """
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            assert self.opened_at is not None
            if now - self.opened_at < self.cooldown_s:
                return False
            self.state = BreakerState.HALF_OPEN
            self.trial_at = now
            return True
        if self.trial_at is None or now - self.trial_at >= self.cooldown_s:
            self.trial_at = now
            return True
        return False

    def is_open(self, now: float) -> bool:
        """Is the breaker OPEN and still cooling down at ``now``?  (Pure query.)"""
        return (
            self.state is BreakerState.OPEN
            and self.opened_at is not None
            and now - self.opened_at < self.cooldown_s
        )

    def record_success(self, now: float) -> None:
        """A call succeeded: reset the failure count; a HALF_OPEN breaker closes.

        A success reported while OPEN (work dispatched before it opened) changes nothing: only
        the half-open trial may close an open breaker.
        """
        if self.state is BreakerState.OPEN:
            return
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = None
        self.trial_at = None

    def record_failure(self, now: float) -> None:
        """A call failed: count it; the ``threshold``-th consecutive failure opens the breaker,
        a failed half-open trial re-opens it with a fresh cooldown.  A failure reported while
        OPEN is counted but does not extend the cooldown."""
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.consecutive_failures >= self.threshold
        ):
            self.state = BreakerState.OPEN
            self.opened_at = now
            self.trial_at = None

    @property
    def pristine(self) -> bool:
        """Closed with no failures: indistinguishable from a new breaker."""
        return self.state is BreakerState.CLOSED and self.consecutive_failures == 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict."""
        return {
            "key": self.key,
            "threshold": self.threshold,
            "cooldown_s": self.cooldown_s,
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "trial_at": self.trial_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> CircuitBreaker:
        """The inverse of :meth:`to_json` (accepts the dict or its JSON text)."""
        if isinstance(data, str):
            data = cast(dict[str, Any], json.loads(data))
        return cls(
            key=data["key"],
            threshold=int(data["threshold"]),
            cooldown_s=float(data["cooldown_s"]),
            state=BreakerState(data["state"]),
            consecutive_failures=int(data["consecutive_failures"]),
            opened_at=data.get("opened_at"),
            trial_at=data.get("trial_at"),
        )


def agent_key(agent_id: str) -> str:
    """The board key of an agent's breaker."""
    return f"agent:{agent_id}"


def backend_key(name: str) -> str:
    """The board key of a prover backend's breaker."""
    return f"backend:{name}"


def _check_key(key: str) -> str:
    kind, sep, name = key.partition(":")
    if not sep or kind not in KEY_KINDS or not name:
        raise ValueError(f"breaker key must be 'agent:<id>' or 'backend:<name>', not {key!r}")
    return key


class BreakerBoard:
    """The breakers of all agents and backends, created on first use with the board's
    ``threshold`` and ``cooldown_s``."""

    def __init__(
        self, threshold: int = DEFAULT_THRESHOLD, cooldown_s: float = DEFAULT_COOLDOWN_S
    ) -> None:
        CircuitBreaker("agent:check", threshold, cooldown_s)  # validates the parameters
        self.threshold = threshold
        self.cooldown_s = float(cooldown_s)
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        """The breaker for ``key`` ("agent:<id>" / "backend:<name>"), created closed if new."""
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(_check_key(key), self.threshold, self.cooldown_s)
            self._breakers[key] = breaker
        return breaker

    def record(self, key: str, ok: bool, now: float) -> BreakerState:
        """Record the outcome of a call to ``key``; returns the breaker's new state."""
        breaker = self.get(key)
        if ok:
            breaker.record_success(now)
        else:
            breaker.record_failure(now)
        return breaker.state

    def allows(self, key: str, now: float) -> bool:
        """Shortcut for ``get(key).allows(now)`` (may hand out a half-open trial)."""
        return self.get(key).allows(now)

    def open_keys(self, now: float) -> list[str]:
        """Keys whose breaker is OPEN and cooling down at ``now``, sorted (pure query).

        HALF_OPEN keys are not listed: routers ask :meth:`allows` for those.
        """
        return sorted(key for key, b in self._breakers.items() if b.is_open(now))

    def keys(self) -> list[str]:
        """Every key with a breaker (sorted)."""
        return sorted(self._breakers)

    def forget(self, key: str) -> None:
        """Drop the breaker of ``key`` (e.g. an agent that terminated)."""
        self._breakers.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._breakers

    def __len__(self) -> int:
        return len(self._breakers)

    def to_json(self) -> dict[str, Any]:
        """Defaults and non-pristine breakers as a JSON-compatible dict (pristine ones are
        left out: they equal a new breaker, and agent ids come and go)."""
        return {
            "threshold": self.threshold,
            "cooldown_s": self.cooldown_s,
            "breakers": [b.to_json() for _, b in sorted(self._breakers.items()) if not b.pristine],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> BreakerBoard:
        """The inverse of :meth:`to_json` (accepts the dict or its JSON text)."""
        if isinstance(data, str):
            data = cast(dict[str, Any], json.loads(data))
        board = cls(int(data["threshold"]), float(data["cooldown_s"]))
        for item in data["breakers"]:
            breaker = CircuitBreaker.from_json(item)
            board._breakers[_check_key(breaker.key)] = breaker
        return board
