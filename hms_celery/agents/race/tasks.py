"""The race on Celery: fan a claim out as a group of legs, run a leg, revoke the losers.

A leg is the task ``hms.race.leg`` (kwargs ``task_id``, ``leg``) published to its backend's
queue with the Celery id ``<task id>.leg<i>``.  The leg that wins revokes the others with
remote control — ``terminate=True`` with SIGTERM, sent to the agents running them, which
confirm it — and records them CANCELLED; a broadcast revoke then makes every worker drop a
queued or requeued copy.  While a leg runs in a prefork pool process, SIGTERM first kills
that process's children (the prover child computing the leg: it may hold the GIL inside
cvc5 and miss its own parent-death check), then ends the process as SIGTERM does; the pool
replaces it and the agent takes its next task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from celery import Task, group
from celery.exceptions import SoftTimeLimitExceeded

from hms_celery.agents.race import store
from hms_celery.agents.race.plan import Leg, leg_celery_id, plan_legs
from hms_celery.app import app
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.policy.breaker import backend_key
from hms_celery.runtime import outcomes, publish
from hms_celery.runtime.recorded import StoreRetryingTask
from hms_celery.settings import get_settings
from hms_celery.store import repository, strategies
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.verdict import ProofOutcome, Verdict

log = logging.getLogger(__name__)

LEG_TASK = "hms.race.leg"
#: ``tasks.queue`` of a raced task (no queue of its own: each leg has its backend's).
RACE_QUEUE = "race"
#: The signal that stops a losing leg.
CANCEL_SIGNAL = "SIGTERM"
#: Seconds the winner waits for the agents running losing legs to confirm the termination.
REVOKE_REPLY_S = 1.0
#: Seconds an unconfirmed loser may take to close its attempt itself (it was finishing)
#: before the winner records it CANCELLED.
UNCONFIRMED_GRACE_S = 2.0


# ----------------------------------------------------------------------------- submitting
def submit_race(request: ProofRequest, family: str | None, *, actor: str) -> str:
    """Record the raced task ``request`` (``backend="race"``) and publish its legs as a
    Celery group; returns the task id.  Raises :class:`InputError` when no leg can run and
    :class:`InfrastructureError` when the broker refuses the legs (the task is REJECTED)."""
    from hms_celery.runtime.skills import PROOF_QUEUES

    legs, skipped = plan_legs(
        strategy=request.strategy,
        smtlib=bool(request.smtlib),
        proof_queues=PROOF_QUEUES,
        promoted=_promoted(family),
        family=family,
        live_queues=_live_queues(),
        smtlib_backends=_smtlib_backends(),
    )
    legs, skipped = _without_open_breakers(legs, skipped)
    if not legs:
        why = "; ".join(f"{s['label']}: {s['why']}" for s in skipped)
        raise InputError(f"no leg of the race can run ({why})")
    task_id = str(uuid.uuid4())
    legs = [dataclasses.replace(leg, celery_id=leg_celery_id(task_id, leg.index)) for leg in legs]
    payload = request.model_dump(mode="json", exclude=None if request.smtlib else {"smtlib"})
    payload["race"] = {"legs": [leg.to_json() for leg in legs], "skipped": skipped}
    repository.record_submission(
        task_id,
        queue=RACE_QUEUE,
        payload=payload,
        theorem_id=request.theorem_id,
        family=family,
        actor=actor,
    )
    timeout = request.timeout or get_settings().prover_timeout

    def reject(why: str) -> None:
        repository.mark_rejected(task_id, f"broker unreachable: {why}", actor)

    with publish.broker_errors(reject):
        group(_signature(task_id, leg, timeout) for leg in legs).apply_async()
    return task_id


def republish_leg(task_id: str, attempt: int) -> bool:
    """Publish again the leg attempt ``attempt`` of ``task_id`` ran (its agent died: the
    supervisor closed the attempt LOST).  False if that attempt is not a race leg's."""
    found = store.leg_of_attempt(task_id, attempt)
    if found is None:
        return False
    leg, payload = found
    timeout = payload.get("timeout") or get_settings().prover_timeout
    _signature(task_id, leg, timeout).apply_async()
    return True


def _signature(task_id: str, leg: Leg, timeout: float) -> Any:
    return publish.signature(
        publish.Publication(
            LEG_TASK,
            leg.celery_id,
            leg.queue,
            {"task_id": task_id, "leg": leg.to_json()},
            timeout=timeout,
            ignore_result=True,  # the store holds the outcome
        )
    )


def _promoted(family: str | None) -> dict[str, Any] | None:
    """The family's promoted strategy, if any (a store hiccup: none, the race still runs)."""
    if not family or family.startswith("ga:"):
        return None

    try:
        return strategies.strategy_for_family(family)
    except InfrastructureError:
        return None


def _live_queues() -> set[str] | None:
    """The queues some live agent consumes (None: the registry cannot be read)."""
    from hms_celery.agents import registry

    try:
        agents = registry.list_agents(include_ended=False)
    except InfrastructureError:
        return None
    return {q for agent in agents for q in agent.get("queues") or []}


def _smtlib_backends() -> tuple[str, ...]:
    """The backends that decide SMT-LIB problems (``smtlib.BACKENDS`` if declared; Z3)."""
    from hms_celery.verification import smtlib

    return tuple(getattr(smtlib, "BACKENDS", ("z3",)))


def _without_open_breakers(
    legs: list[Leg], skipped: list[dict[str, str]]
) -> tuple[list[Leg], list[dict[str, str]]]:
    from hms_celery.healing.heartbeats import redis_client

    try:
        client = redis_client()
        is_open = {b: outcomes.is_open(client, backend_key(b)) for b in {x.backend for x in legs}}
    except Exception:  # no Redis to ask: publishing reports an unreachable broker
        return legs, skipped
    kept = [leg for leg in legs if not is_open[leg.backend]]
    skipped = skipped + [
        {"label": leg.label, "why": f"the {leg.backend} circuit breaker is open"}
        for leg in legs
        if is_open[leg.backend]
    ]
    return [dataclasses.replace(leg, index=i) for i, leg in enumerate(kept)], skipped


# ----------------------------------------------------------------------------- one leg
# As hms.prove: a store outage retries the leg (same Celery id) instead of dropping it; the
# leg keeps its own attempt bookkeeping (agents/race/store.py: a leg is not the task).
@app.task(name=LEG_TASK, bind=True, ignore_result=True, base=StoreRetryingTask)
def race_leg(self: Task, task_id: str, leg: dict[str, Any]) -> dict[str, Any]:
    """Run one leg of the raced task ``task_id``; the winner revokes the other legs.

    Returns ``{"task_id", "leg", "verdict", "action"}`` (``verdict`` None: not run)."""
    try:
        spec = Leg.from_json(leg)
    except (KeyError, TypeError, ValueError) as exc:  # not published by submit_race
        log.error("race leg of %s: invalid leg %r: %s", task_id, leg, exc)
        return {"task_id": task_id, "leg": None, "verdict": None, "action": "invalid leg"}
    agent = self.request.hostname or "unknown"
    start = store.start_leg(task_id, spec, agent=agent, pid=os.getpid())
    if start.number is None:
        return {"task_id": task_id, "leg": spec.index, "verdict": None, "action": "skipped"}
    outcome = _run(spec, start.payload or {})
    internal = outcome.verdict is Verdict.ERROR and outcome.reason.startswith("internal")
    _report(agent, spec.backend, ok=not internal)
    finish = store.finish_leg(task_id, start.number, spec, agent=agent, outcome=outcome)
    if finish.committed and finish.step.cancel:
        cancel_losers(task_id, spec, outcome.verdict.value, finish)
    return {
        "task_id": task_id,
        "leg": spec.index,
        "verdict": outcome.verdict.value,
        "action": finish.step.action.value,
    }


def _run(leg: Leg, payload: dict[str, Any]) -> ProofOutcome:
    """The leg's outcome: the raced request with the leg's backend and strategy, in this
    process's prover child.  Never raises (a crash is an ERROR outcome of this leg only)."""
    from hms_celery.verification.sandbox import run_request

    settings = get_settings()
    fields = {k: v for k, v in payload.items() if k != "race"}
    try:
        request = ProofRequest.build(**{**fields, "backend": leg.backend, "strategy": leg.strategy})
    except InputError as exc:
        return ProofOutcome(Verdict.ERROR, reason=str(exc), backend=leg.backend)
    try:
        with _children_die_with_this_process():
            return run_request(
                request,
                timeout=settings.prover_timeout,
                max_size=settings.bounded_max_size,
                rlimit=settings.prover_rlimit,
                # None: the leg's request names no strategy — the worker's default, never the
                # family's (that one runs as a leg of its own).
                strategy=settings.default_strategy,
                confirm=settings.confirm_proved,
            )
    except SoftTimeLimitExceeded:
        return ProofOutcome(
            Verdict.TIMEOUT,
            reason="the task's soft time limit ran out before the prover answered",
            backend=leg.backend,
        )
    except Exception as exc:  # a bug: this leg's ERROR, the race goes on
        log.exception("race leg %s crashed", leg.label)
        return ProofOutcome(
            Verdict.ERROR, reason=f"internal: {type(exc).__name__}: {exc}", backend=leg.backend
        )


def _report(agent: str, backend: str, *, ok: bool) -> None:
    """Feed the circuit breakers; losing one report must never fail the leg."""
    from hms_celery.healing.heartbeats import redis_client

    try:
        outcomes.report_outcome(redis_client(), agent, backend, ok)
    except Exception as exc:
        log.warning("could not report the outcome to the breakers: %s", exc)


# ----------------------------------------------------------------------------- cancelling
def cancel_losers(task_id: str, winner: Leg, verdict: str, finish: store.Finish) -> list[int]:
    """Stop every other leg after ``winner`` won with ``verdict``; returns the attempts
    closed CANCELLED here (the legs that never started were recorded in the commit; a leg
    that finished meanwhile keeps its own outcome)."""
    why = f"cancelled: {winner.label} won with {verdict}"
    running = finish.running
    cancelled: dict[int, str] = {}
    if running:
        agents = sorted({r.agent for r in running})
        try:
            replies = app.control.revoke(
                [r.celery_id for r in running],
                destination=agents,
                terminate=True,
                signal=CANCEL_SIGNAL,
                reply=True,
                timeout=REVOKE_REPLY_S,
                limit=len(agents),
            )
        except Exception as exc:  # the broker hiccuped: the fallback below still closes them
            log.warning("race %s: revoking the losing legs failed: %s", task_id, exc)
            replies = []
        said = {node: str(reply) for item in replies or [] for node, reply in item.items()}
        terminated = {  # a reply "terminate: <ids>" names what the agent terminated
            r.number: f"{why}; terminated ({CANCEL_SIGNAL}) on {r.agent}"
            for r in running
            if r.celery_id in said.get(r.agent, "")
        }
        closed = store.mark_cancelled(task_id, terminated)
        cancelled = {n: terminated[n] for n in closed}
    # Every worker drops a copy it gets later (queued, prefetched or requeued legs).
    ids = [r.celery_id for r in running] + [leg.celery_id for leg in finish.not_started]
    if ids:
        try:
            app.control.revoke(ids, reply=False)
        except Exception as exc:
            log.warning("race %s: broadcasting the revoke failed: %s", task_id, exc)
    unconfirmed = [r for r in running if r.number not in cancelled]
    if unconfirmed:
        cancelled.update(_close_unconfirmed(task_id, unconfirmed, why))
    return sorted(cancelled)


def _close_unconfirmed(task_id: str, legs: list[store.LegRef], why: str) -> dict[int, str]:
    """A loser whose agent did not confirm its termination was finishing (it closes its own
    attempt, :func:`store.finish_leg`), or its agent is gone (then it is closed here; the
    supervisor's requeue finds nothing to run)."""
    numbers = [r.number for r in legs]
    deadline = time.monotonic() + UNCONFIRMED_GRACE_S
    delay = 0.02
    while (left := store.still_open(task_id, numbers)) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    by_number = {r.number: r for r in legs}
    closing = {n: f"{why}; revoked, {by_number[n].agent} did not confirm it" for n in left}
    return {n: closing[n] for n in store.mark_cancelled(task_id, closing)}


@contextlib.contextmanager
def _children_die_with_this_process() -> Iterator[None]:
    """In a prefork pool process: SIGTERM (a revoke's terminate) SIGKILLs this process's
    children first — the prover child — then ends the process as SIGTERM would."""
    if not _in_pool_process() or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, _frame: object) -> None:
        _kill_children()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _in_pool_process() -> bool:
    """Whether this is a prefork pool process (where SIGTERM is a revoke's terminate, not
    the worker's own warm shutdown)."""
    from billiard.process import current_process

    return current_process().name.startswith("ForkPoolWorker")


def _kill_children() -> None:
    try:
        import psutil

        children = psutil.Process().children(recursive=True)
    except Exception:  # no psutil: the prover child still exits when it sees its parent go
        return
    for child in children:
        with contextlib.suppress(Exception):
            child.kill()
