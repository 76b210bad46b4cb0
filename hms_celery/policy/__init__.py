"""Health policy: agent states, their classification, recovery actions and circuit breakers.

Pure and deterministic (time is always passed in); the supervisor sweep supplies observations
and carries the actions out.
"""

from hms_celery.policy.actions import ActionKind, RecoveryAction, due
from hms_celery.policy.breaker import (
    BreakerBoard,
    BreakerState,
    CircuitBreaker,
    agent_key,
    backend_key,
)
from hms_celery.policy.health import (
    DEFAULT_HEARTBEAT_TIMEOUT_S,
    DEFAULT_REPORT_TIMEOUT_S,
    TRANSITIONS,
    AgentObservation,
    AgentState,
    can_transition,
    classify,
)
from hms_celery.policy.standard import HealthPolicy, StandardHealthPolicy

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT_S",
    "DEFAULT_REPORT_TIMEOUT_S",
    "TRANSITIONS",
    "ActionKind",
    "AgentObservation",
    "AgentState",
    "BreakerBoard",
    "BreakerState",
    "CircuitBreaker",
    "HealthPolicy",
    "RecoveryAction",
    "StandardHealthPolicy",
    "agent_key",
    "backend_key",
    "can_transition",
    "classify",
    "due",
]
