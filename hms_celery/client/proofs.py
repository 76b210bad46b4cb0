"""Proof tasks: submit statements, SMT-LIB problems and catalogue claims; follow them.

Invalid input raises a typed error (:class:`~hms_celery.errors.InputError` and subclasses)
before anything is enqueued; an unreachable broker or database raises
:class:`~hms_celery.errors.InfrastructureError` with the URL that failed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hms_celery.agents.race.tasks import submit_race
from hms_celery.client.actor import ACTOR
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.healing import breakers, stack_claim
from hms_celery.healing.heartbeats import redis_client
from hms_celery.runtime import publish
from hms_celery.runtime.skills import PROOF_QUEUES
from hms_celery.settings import get_settings
from hms_celery.store import repository
from hms_celery.store.db import check_database, safe_url
from hms_celery.store.models import TaskStatus
from hms_celery.store.records import TaskStatusView
from hms_celery.verification.catalogue import Claim, find_claim
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.smtlib import parse_smtlib


class UnknownTaskError(InputError):
    """No task with this id is in the store."""


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
    ``backend="race"`` races Z3 strategies and cvc5 on their agents: the first decisive verdict
    wins (:mod:`hms_celery.agents.race`; the status's ``race`` shows every leg).
    """
    if lean_expr is None:
        claim = find_claim(theorem_id)
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


def submit_smtlib_task(
    name: str,
    smtlib: str | bytes,
    *,
    strategy: dict[str, Any] | str | None = None,
    timeout: float | None = None,
    rlimit: int | None = None,
    backend: str = "z3",
) -> str:
    """Submit an SMT-LIB 2 problem, read as the claim that its assertions are unsatisfiable
    (PROVED on ``unsat``, REFUTED with the model on ``sat``); returns the task id.

    ``name`` labels it (its theorem id).  The text is parsed here first: text Z3 cannot parse
    raises :class:`~hms_celery.errors.InputError` with Z3's message and nothing is enqueued.
    ``backend="race"`` races the strategies (and solvers) that read SMT-LIB.
    """
    if isinstance(smtlib, bytes):
        try:
            smtlib = smtlib.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"SMT-LIB problem is not UTF-8 text: {exc}") from None
    request = ProofRequest.build(
        theorem_id=name or None,
        smtlib=smtlib,
        strategy=strategy,
        timeout=timeout,
        rlimit=rlimit,
        backend=backend,
    )
    parse_smtlib(smtlib)
    return _submit(request, (name or "smtlib").split("-", 1)[0])


def submit_claim(claim: Claim, **options: Any) -> str:
    """Submit one catalogue claim (from any catalogue file); returns the task id."""
    return submit_claims([claim], **options)[0]


def submit_claims(claims: Sequence[Claim], **options: Any) -> list[str]:
    """Submit several catalogue claims at once; returns their task ids, in order.

    Every claim is validated before anything is recorded (the first bad one raises and
    nothing is enqueued); then all are recorded in one transaction and published over one
    broker connection.  ``options`` are :class:`ProofRequest` fields (backend, strategy,
    timeout, …) applied to every claim.
    """
    requests = [
        (
            ProofRequest.build(
                theorem_id=claim.theorem_id,
                statement=claim.formal_expression,
                assumptions=claim.assumptions,
                variables=claim.variables or None,
                **options,
            ),
            claim.family,
        )
        for claim in claims
    ]
    return submit_many(requests)


def submit_many(requests: Sequence[tuple[ProofRequest, str | None]]) -> list[str]:
    """Submit several ``(request, family)`` proof tasks as one batch; returns the task ids.

    One store transaction records the batch, one broker connection publishes it, and each
    backend's circuit breaker is asked once.  Race requests are submitted one by one (each
    is a group of legs).
    """
    if not requests:
        return []
    ids: list[str | None] = [None] * len(requests)
    for request, _ in requests:
        _validate(request)
    batch = [
        (i, _submission(request, family))
        for i, (request, family) in enumerate(requests)
        if request.backend != "race"
    ]
    if batch:
        _check_breaker(requests[i][0].backend for i, _ in batch)
    for i, task_id in zip(
        [i for i, _ in batch], publish.submit([s for _, s in batch], actor=ACTOR), strict=True
    ):
        ids[i] = task_id
    for i, (request, family) in enumerate(requests):
        if request.backend == "race":
            ids[i] = submit_race(request, family, actor=ACTOR)
    return [task_id for task_id in ids if task_id is not None]


def _submit(request: ProofRequest, family: str | None) -> str:
    return submit_many([(request, family)])[0]


def _validate(request: ProofRequest) -> None:
    """Everything a submission must pass before it is recorded."""
    if not request.smtlib:  # an SMT-LIB problem is parsed by its submitter
        request.parse()  # StatementError before anything is enqueued
    request.validate_strategy()
    # No HMS_BROKER_URL and no recorded stack: NoStackError (exit 3) before anything is stored.
    get_settings().effective_broker_url  # noqa: B018
    if request.backend != "race" and request.backend not in PROOF_QUEUES:
        raise InputError(
            f"backend {request.backend!r} has no agents yet; available: {sorted(PROOF_QUEUES)}"
        )


def _submission(request: ProofRequest, family: str | None) -> publish.Submission:
    """The store row and publication of one (validated) proof request."""
    queue = PROOF_QUEUES[request.backend]
    # A statement's payload keeps its old shape, which workers of earlier versions accept.
    payload = request.model_dump(mode="json", exclude=None if request.smtlib else {"smtlib"})
    return publish.Submission(
        publish.Publication(
            publish.PROVE_TASK,
            str(uuid.uuid4()),
            queue,
            payload,
            timeout=request.timeout,
            ignore_result=True,  # the store holds the result; skip the result backend
        ),
        kind="proof",
        theorem_id=request.theorem_id,
        family=family,
    )


def _check_breaker(backends: Iterable[str]) -> None:
    """Refuse work for a prover backend whose circuit breaker is open, and for a broker
    that serves another store (one pipelined Redis round trip for all ``backends``)."""
    backends = sorted(set(backends))
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(stack_claim.CLAIM_KEY)
        for backend in backends:
            pipe.sismember(breakers.OPEN_KEY, breakers.backend_key(backend))
        holder, *open_flags = pipe.execute()
        stack_claim.check_holder(holder)  # StackConflictError: this broker serves another store
    except stack_claim.StackConflictError:
        check_database()  # a store that cannot be reached is the first problem (exit 3)
        raise
    except Exception:  # no Redis to ask: the publish reports an unreachable broker
        return
    for backend, is_open in zip(backends, open_flags, strict=True):
        if is_open:
            raise InfrastructureError(
                f"prover backend {backend!r} is failing: its circuit breaker is open "
                f"(retry after {get_settings().breaker_cooldown:.0f}s, or see `hms health`)",
                url=safe_url(get_settings().effective_broker_url),
            )


def query_task_status(task_id: str) -> TaskStatusView:
    """The store's record of a task: state, verdict, counterexample, timings, agent, attempts."""
    status = repository.task_status(task_id)
    if status is None:
        raise UnknownTaskError(f"unknown task id {task_id!r}")
    return status


def wait_for_result(task_id: str, timeout: float | None = None) -> TaskStatusView:
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
    on_done: Callable[[TaskStatusView], object] | None = None,
) -> dict[str, TaskStatusView]:
    """Wait for several tasks; ``on_done(status)`` is called as each one finishes.

    One query per poll finds the unfinished tasks; finished ones are loaded in a batch.
    """
    pending = list(dict.fromkeys(task_ids))
    missing = set(pending) - repository.known_tasks(pending)
    if missing:
        raise UnknownTaskError(f"unknown task id(s): {sorted(missing)}")
    results: dict[str, TaskStatusView] = {}
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
