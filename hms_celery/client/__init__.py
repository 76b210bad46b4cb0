"""Python client API: submit proof tasks, follow them, check catalogues.

The names of the earlier HMS module are kept: :func:`ping_supervisor`,
:func:`submit_proof_task`, :func:`query_task_status`.  Invalid input raises a typed error
(:class:`~hms_celery.errors.InputError` and subclasses) before anything is enqueued; an
unreachable broker or database raises :class:`~hms_celery.errors.InfrastructureError`
with the URL that failed.

The API is re-exported here from one module per subject: :mod:`.ping`, :mod:`.proofs`,
:mod:`.skills`, :mod:`.agents`, :mod:`.ga`, :mod:`.strategies`, :mod:`.audit`.
"""

from __future__ import annotations

from hms_celery.client.actor import ACTOR as ACTOR  # the actor name, as before the split
from hms_celery.client.agents import (
    UnknownAgentError,
    list_agents,
    query_agent_status,
    spawn_agent,
    stop_agent,
    wait_for_agent,
)
from hms_celery.client.audit import audit_log
from hms_celery.client.ga import (
    UnknownRunError,
    cancel_ga_run,
    list_ga_runs,
    query_ga_run,
    start_ga_run,
    wait_for_ga_run,
)
from hms_celery.client.ping import ping_supervisor
from hms_celery.client.proofs import (
    UnknownTaskError,
    query_task_status,
    submit_claim,
    submit_claims,
    submit_many,
    submit_proof_task,
    submit_smtlib_task,
    wait_for_result,
    wait_for_results,
)
from hms_celery.client.skills import run_skill, wait_skill_result
from hms_celery.client.strategies import list_strategies, promote_strategy, show_strategy
from hms_celery.verification.catalogue import Claim, load_catalogue, read_catalogue

__all__ = [
    "Claim",
    "UnknownAgentError",
    "UnknownRunError",
    "UnknownTaskError",
    "audit_log",
    "cancel_ga_run",
    "list_agents",
    "list_ga_runs",
    "list_strategies",
    "load_catalogue",
    "ping_supervisor",
    "promote_strategy",
    "query_agent_status",
    "query_ga_run",
    "query_task_status",
    "read_catalogue",
    "run_skill",
    "show_strategy",
    "spawn_agent",
    "start_ga_run",
    "stop_agent",
    "submit_claim",
    "submit_claims",
    "submit_many",
    "submit_proof_task",
    "submit_smtlib_task",
    "wait_for_agent",
    "wait_for_ga_run",
    "wait_for_result",
    "wait_for_results",
    "wait_skill_result",
]
