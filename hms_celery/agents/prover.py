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
        _report(self.agent, str(kwargs.get("backend") or "z3"), ok=False)


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
    settings = get_settings()
    try:
        request = ProofRequest.build(**payload)
    except InputError as exc:  # published around the client's validation: record, don't crash
        return _commit(task_id, attempt, agent, None, ProofOutcome(Verdict.ERROR, reason=str(exc)))
    try:  # in the prover child process (HMS_PROVER_SANDBOX): killed if it overruns
        outcome = run_request(
            request,
            timeout=settings.prover_timeout,
            max_size=settings.bounded_max_size,
            rlimit=settings.prover_rlimit,
            strategy=_family_strategy(start.family) or settings.default_strategy,
            # GA fitness evaluations score Z3 strategies: no second solver; HMS_CONFIRM_PROVED
            # decides for every other proof (resolved here, not in a reused prover child).
            confirm=False if (start.family or "").startswith("ga:") else settings.confirm_proved,
        )
    except SoftTimeLimitExceeded:
        outcome = ProofOutcome(
            Verdict.TIMEOUT,
            reason="the task's soft time limit ran out before the prover answered",
            backend=request.backend,
        )
    internal = outcome.verdict is Verdict.ERROR and outcome.reason.startswith("internal")
    _report(agent, request.backend, ok=not internal)
    return _commit(task_id, attempt, agent, request.theorem_id, outcome)


def _family_strategy(family: str | None) -> dict[str, Any] | None:
    """The strategy promoted for the task's family (a GA run's winner), if any; a store
    hiccup here falls back to the default strategy rather than failing the proof."""
    if not family or family.startswith("ga:"):
        return None
    try:
        return strategies.strategy_for_family(family)
    except InfrastructureError:
        return None


def _report(agent: str, backend: str, *, ok: bool) -> None:
    """Feed the circuit breakers; losing one report must never fail the task."""
    try:
        outcomes.report_outcome(redis_client(), agent, backend, ok)
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
