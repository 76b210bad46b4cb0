"""Python client API: submit proof tasks, follow them, check catalogues.

The names of the earlier HMS module are kept: :func:`ping_supervisor`,
:func:`submit_proof_task`, :func:`query_task_status`.  Invalid input raises a typed error
(:class:`~hms_celery.errors.InputError` and subclasses) before anything is enqueued; an
unreachable broker or database raises :class:`~hms_celery.errors.InfrastructureError`
with the URL that failed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from kombu.exceptions import OperationalError as BrokerError

from hms_celery.agents.skills import PROOF_QUEUES
from hms_celery.app import app
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.settings import get_settings
from hms_celery.store import repository
from hms_celery.store.db import check_database, safe_url
from hms_celery.store.models import TaskStatus
from hms_celery.verification.catalogue import Claim, find_claim, load_catalogue
from hms_celery.verification.request import ProofRequest

__all__ = [
    "Claim",
    "UnknownTaskError",
    "load_catalogue",
    "ping_supervisor",
    "query_task_status",
    "submit_claim",
    "submit_proof_task",
    "wait_for_result",
]

ACTOR = "client"


class UnknownTaskError(InputError):
    """No task with this id is in the store."""


def ping_supervisor(timeout: float = 1.0) -> dict[str, Any]:
    """Check the stack: broker, store and the agents (workers) that answer a ping.

    Returns ``{"ok", "broker", "database", "agents", "errors"}``; never raises.
    """
    settings = get_settings()
    report: dict[str, Any] = {
        "broker": safe_url(settings.effective_broker_url),
        "database": safe_url(settings.effective_database_url),
        "agents": {},
        "errors": [],
    }
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.connect_timeout)
        replies = app.control.ping(timeout=timeout) or []
        report["agents"] = {name: reply for item in replies for name, reply in item.items()}
    except (BrokerError, OSError) as exc:
        report["errors"].append(f"broker unreachable at {report['broker']}: {exc}")
    try:
        check_database()
    except InfrastructureError as exc:
        report["errors"].append(str(exc))
    report["ok"] = not report["errors"]
    return report


def submit_proof_task(
    theorem_id: str,
    lean_expr: str | bytes | None = None,
    axioms: Sequence[str] = (),
    *,
    backend: str = "z3",
    strategy: dict[str, Any] | str | None = None,
    timeout: float | None = None,
    variables: dict[str, str] | None = None,
    max_size: int | None = None,
    rlimit: int | None = None,
) -> str:
    """Submit a proof task; returns its task id.

    With ``lean_expr`` None, ``theorem_id`` is looked up in the catalogue (its statement,
    assumptions and variables are used, ``axioms`` are added to its assumptions).  Otherwise
    ``lean_expr`` is proved under the assumptions ``axioms`` and ``theorem_id`` labels it.
    The statement is parsed here first: a malformed one raises
    :class:`~hms_celery.errors.StatementError` (with line and column) and nothing is enqueued.
    """
    if lean_expr is None:
        claim = find_claim(theorem_id, get_settings().catalogue_path)
        request = ProofRequest.build(
            theorem_id=claim.theorem_id,
            statement=claim.formal_expression,
            assumptions=(*claim.assumptions, *axioms),
            variables=claim.variables or None,
            backend=backend,
            strategy=strategy,
            timeout=timeout,
            max_size=max_size,
            rlimit=rlimit,
        )
        family = claim.family
    else:
        if isinstance(lean_expr, bytes):
            try:
                lean_expr = lean_expr.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"statement is not UTF-8 text: {exc}") from None
        request = ProofRequest.build(
            theorem_id=theorem_id or None,
            statement=lean_expr,
            assumptions=tuple(axioms),
            variables=variables,
            backend=backend,
            strategy=strategy,
            timeout=timeout,
            max_size=max_size,
            rlimit=rlimit,
        )
        family = (theorem_id or "adhoc").split("-", 1)[0]
    return _submit(request, family)


def submit_claim(claim: Claim, **options: Any) -> str:
    """Submit one catalogue claim (from any catalogue file); returns the task id."""
    request = ProofRequest.build(
        theorem_id=claim.theorem_id,
        statement=claim.formal_expression,
        assumptions=claim.assumptions,
        variables=claim.variables or None,
        **options,
    )
    return _submit(request, claim.family)


def _submit(request: ProofRequest, family: str | None) -> str:
    request.parse()  # StatementError before anything is enqueued
    request.validate_strategy()
    queue = PROOF_QUEUES.get(request.backend)
    if queue is None:
        raise InputError(
            f"backend {request.backend!r} has no agents yet; available: {sorted(PROOF_QUEUES)}"
        )
    settings = get_settings()
    task_id = str(uuid.uuid4())
    payload = request.model_dump(mode="json")
    repository.record_submission(
        task_id,
        queue=queue,
        payload=payload,
        theorem_id=request.theorem_id,
        family=family,
        actor=ACTOR,
    )
    timeout = request.timeout or settings.prover_timeout
    try:
        app.send_task(
            "hms.prove",
            kwargs=payload,
            task_id=task_id,
            queue=queue,
            ignore_result=True,  # the store holds the result; skip the result backend
            soft_time_limit=timeout + settings.time_limit_margin,
            time_limit=timeout + 2 * settings.time_limit_margin,
        )
    except (BrokerError, OSError) as exc:
        url = safe_url(settings.effective_broker_url)
        repository.mark_rejected(task_id, f"broker unreachable: {exc}", ACTOR)
        raise InfrastructureError(f"broker unreachable at {url}: {exc}", url=url) from exc
    return task_id


def query_task_status(task_id: str) -> dict[str, Any]:
    """The store's record of a task: state, verdict, counterexample, timings, agent, attempts."""
    status = repository.task_status(task_id)
    if status is None:
        raise UnknownTaskError(f"unknown task id {task_id!r}")
    return status


def wait_for_result(task_id: str, timeout: float | None = None) -> dict[str, Any]:
    """Block until the task is DONE, FAILED or REJECTED; returns :func:`query_task_status`.

    Raises :class:`TimeoutError` if ``timeout`` seconds pass first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        status = query_task_status(task_id)
        if status["state"] in TaskStatus.FINAL:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"task {task_id} still {status['state']} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def wait_for_results(
    task_ids: Iterable[str],
    timeout: float | None = None,
    on_done: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, dict[str, Any]]:
    """Wait for several tasks; ``on_done(status)`` is called as each one finishes.

    One query per poll finds the unfinished tasks; finished ones are loaded in a batch.
    """
    pending = list(dict.fromkeys(task_ids))
    missing = set(pending) - set(repository.task_statuses(pending))
    if missing:
        raise UnknownTaskError(f"unknown task id(s): {sorted(missing)}")
    results: dict[str, dict[str, Any]] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while pending:
        still = repository.unfinished(pending)
        finished = [task_id for task_id in pending if task_id not in still]
        for task_id, status in repository.task_statuses(finished).items():
            results[task_id] = status
            if on_done is not None:
                on_done(status)
        pending = [task_id for task_id in pending if task_id in still]
        if pending:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{len(pending)} task(s) unfinished after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
    return results


def catalogue_claims(path: str | Path | None = None) -> list[Claim]:
    """The claims of a catalogue file (default: the configured Moneyball catalogue)."""
    return load_catalogue(path or get_settings().catalogue_path)
