"""The proof task (queue ``prove.z3``): decide one statement and commit the verdict once."""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from hms_celery.agents.race import tasks as _race  # noqa: F401  (registers hms.race.leg)
from hms_celery.app import app
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.healing.heartbeats import redis_client
from hms_celery.runtime import outcomes
from hms_celery.runtime.publish import PROVE_TASK
from hms_celery.runtime.recorded import RecordedTask
from hms_celery.settings import get_settings
from hms_celery.store import repository, strategies
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.sandbox import run_request
from hms_celery.verification.verdict import ProofOutcome, Verdict

log = logging.getLogger(__name__)


class ProveTask(RecordedTask):
    """``hms.prove``'s base: a crashed attempt also counts against the agent's breaker."""

    def attempt_failed(self, exc: Exception, kwargs: dict[str, Any]) -> None:
        report_outcomes(self.agent, [(str(kwargs.get("backend") or "z3"), False)])


@app.task(name=PROVE_TASK, bind=True, base=ProveTask)
def prove_task(self: ProveTask, **payload: Any) -> dict[str, Any]:
    """Run one proof attempt of ``payload`` (a :class:`ProofRequest`) and commit its result.

    Returns ``{"task_id", "verdict", "committed", "attempt"}``; ``committed`` is False when
    another attempt of the same task had already committed (the duplicate changes nothing).
    The attempt is opened and, on a crash, closed by :class:`RecordedTask`.
    """
    task_id, agent, start = self.request.id, self.agent, self.attempt
    attempt = start.number
    if start.task_final:  # a redelivered or requeued copy of a finished task: nothing to do
        return {"task_id": task_id, "verdict": None, "committed": False, "attempt": attempt}
    request, outcome = prove_payload(payload, start.family)
    report_outcomes(agent, breaker_outcome(request, outcome))
    theorem_id = request.theorem_id if request is not None else None
    return _commit(task_id, attempt, agent, theorem_id, outcome)


def breaker_outcome(request: ProofRequest | None, outcome: ProofOutcome) -> list[tuple[str, bool]]:
    """What a proof reports to the breakers: ``(backend, ok)``, where only a crash of the
    prover (an internal error) is a failure; nothing for a payload that was not a request."""
    if request is None:
        return []
    internal = outcome.verdict is Verdict.ERROR and outcome.reason.startswith("internal")
    return [(request.backend, not internal)]


def prove_payload(
    payload: dict[str, Any], family: str | None
) -> tuple[ProofRequest | None, ProofOutcome]:
    """Decide one proof task's ``payload`` (a :class:`ProofRequest`) in this process's prover
    child, with the settings' limits and the strategy promoted for ``family``; the request
    (None when the payload is not a valid one: the outcome is then its ERROR).

    The task's soft time limit running out is a TIMEOUT outcome."""
    request, options, invalid = prepare_payload(payload, family)
    if request is None:
        return None, invalid
    try:  # in the prover child process (HMS_PROVER_SANDBOX): killed if it overruns
        outcome = run_request(request, **options)
    except SoftTimeLimitExceeded:
        outcome = ProofOutcome(
            Verdict.TIMEOUT,
            reason="the task's soft time limit ran out before the prover answered",
            backend=request.backend,
        )
    return request, outcome


def prepare_payload(
    payload: dict[str, Any], family: str | None
) -> tuple[ProofRequest | None, dict[str, Any], ProofOutcome]:
    """A proof task's request and the prover options it runs with (the settings' limits, the
    strategy promoted for ``family``); for a payload that is not a valid request, None and
    the ERROR outcome that says why (published around the client's validation: recorded,
    never a crash)."""
    settings = get_settings()
    try:
        request = ProofRequest.build(**payload)
    except InputError as exc:
        return None, {}, ProofOutcome(Verdict.ERROR, reason=str(exc))
    options = {
        "timeout": settings.prover_timeout,
        "max_size": settings.bounded_max_size,
        "rlimit": settings.prover_rlimit,
        "strategy": _family_strategy(family) or settings.default_strategy,
        # GA fitness evaluations score Z3 strategies: no second solver; HMS_CONFIRM_PROVED
        # decides for every other proof (resolved here, not in a reused prover child).
        "confirm": False if (family or "").startswith("ga:") else settings.confirm_proved,
    }
    return request, options, ProofOutcome(Verdict.ERROR, reason="")


def _family_strategy(family: str | None) -> dict[str, Any] | None:
    """The strategy promoted for the task's family (a GA run's winner), if any; a store
    hiccup here falls back to the default strategy rather than failing the proof."""
    if not family or family.startswith("ga:"):
        return None
    try:
        return strategies.strategy_for_family(family)
    except InfrastructureError:
        return None


def report_outcomes(agent: str, outcomes_: list[tuple[str, bool]]) -> None:
    """Feed the circuit breakers ``(backend, ok)`` outcomes of ``agent``'s tasks, in one round
    trip; losing the reports must never fail a task."""
    if not outcomes_:
        return
    try:
        outcomes.report_outcomes(redis_client(), agent, outcomes_)
    except Exception as exc:
        log.warning("could not report the outcome to the breakers: %s", exc)


def _commit(
    task_id: str, attempt: int, agent: str, theorem_id: str | None, outcome: ProofOutcome
) -> dict[str, Any]:
    committed = repository.commit_result(
        task_id, attempt_number=attempt, agent=agent, theorem_id=theorem_id, outcome=outcome
    )
    return {
        "task_id": task_id,
        "verdict": outcome.verdict.value,
        "committed": committed,
        "attempt": attempt,
    }
