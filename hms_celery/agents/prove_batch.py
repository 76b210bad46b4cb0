"""The batch proof task ``hms.prove_batch``: several recorded proof tasks in one message.

``client.submit_many`` (``hms check``, a catalogue) publishes proof tasks in batches of up to
``HMS_PROVE_BATCH`` (:func:`hms_celery.runtime.publish.submit`), so that Celery's work for a
message and the store's work for a statement are paid once per batch instead of once per
proof.  Every member keeps its own ``tasks`` row, attempts and result, exactly as if it had
been published alone:

- all the members' attempts are opened in one transaction before any proof runs, so every
  member is durable and recoverable while the batch runs (a killed worker leaves open
  attempts, which the supervisor closes LOST and re-publishes one by one as ``hms.prove``);
- the proofs run one after another in this pool process's prover child;
- the results are committed in one transaction (the first completion of a task wins, as
  always), and the message is acknowledged after that (``acks_late``); a redelivered copy
  finds its members final and runs none of them again;
- when the batch's soft time limit runs out, the proofs done are committed and the others are
  released (PENDING) and re-published one by one: no verdict is made up for them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from hms_celery.agents.prover import breaker_outcome, prepare_payload, report_outcomes
from hms_celery.app import app
from hms_celery.errors import InfrastructureError
from hms_celery.runtime import publish
from hms_celery.runtime.publish import PROVE_BATCH_TASK
from hms_celery.runtime.recorded import StoreRetryingTask
from hms_celery.store import repository
from hms_celery.store.attempt_batches import Finished, Member, begin_attempts, commit_results
from hms_celery.store.attempts import AttemptStart
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.sandbox import run_requests

log = logging.getLogger(__name__)


class ProveBatchTask(StoreRetryingTask):
    """``hms.prove_batch``'s base: a crash closes the attempts of the members it left open."""

    def on_failure(
        self, exc: Exception, task_id: str, args: Any, kwargs: dict[str, Any], einfo: Any
    ) -> None:
        opened: list[tuple[Member, AttemptStart]] = getattr(self.request, "hms_batch", [])
        committed: set[str] = getattr(self.request, "hms_batch_committed", set())
        if isinstance(exc, InfrastructureError):  # the supervisor recovers the open attempts
            return
        error = f"{type(exc).__name__}: {exc}"
        agent = self.request.hostname or "unknown"
        log.error("batch %s failed: %s", task_id, error)
        for member, start in opened:
            if start.task_final or member.task_id in committed:
                continue
            try:
                repository.fail_attempt(
                    member.task_id, attempt_number=start.number, agent=agent, error=error
                )
            except Exception as err:  # a failure handler must not mask the failure
                log.error("could not record the failure of %s: %s", member.task_id, err)
        first = (kwargs.get("members") or [{}])[0]
        backend = ((first.get("payload") if isinstance(first, dict) else None) or {}).get("backend")
        report_outcomes(agent, [(str(backend or "z3"), False)])


def _members(raw: Any) -> list[Member]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("members must be a non-empty list")
    members = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("task_id"), str):
            raise ValueError(f"a member is {{'task_id': str, 'payload': dict}}, not {item!r}")
        payload = item.get("payload")
        if not isinstance(payload, dict):
            raise ValueError(f"a member is {{'task_id': str, 'payload': dict}}, not {item!r}")
        theorem_id = payload.get("theorem_id")
        members.append(
            Member(item["task_id"], payload, theorem_id if isinstance(theorem_id, str) else None)
        )
    if len({m.task_id for m in members}) != len(members):
        raise ValueError("a task appears twice in one batch")
    return members


@app.task(name=PROVE_BATCH_TASK, bind=True, base=ProveBatchTask)
def prove_batch_task(self: ProveBatchTask, members: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one attempt of every member (``{"task_id", "payload"}``) and commit the results.

    Returns ``{"tasks", "committed", "skipped", "released"}``: members whose result this
    attempt committed, members already final (not run again), members released to run
    alone after the batch's soft time limit ran out."""
    batch = _members(members)
    agent = self.request.hostname or "unknown"
    queue = (self.request.delivery_info or {}).get("routing_key") or "prove.z3"
    try:
        starts = begin_attempts(batch, agent=agent, pid=os.getpid(), queue=queue)
    except InfrastructureError as exc:
        raise self.retry_later(exc) from exc
    self.request.hms_batch = list(zip(batch, starts, strict=True))
    finished: list[Finished] = []
    reports: list[tuple[str, bool]] = []
    runnable = [(m, s) for m, s in self.request.hms_batch if not s.task_final]
    proofs: list[tuple[Member, AttemptStart, ProofRequest]] = []
    jobs: list[tuple[ProofRequest, dict[str, Any]]] = []
    try:
        for member, start in runnable:
            request, options, invalid = prepare_payload(member.payload, start.family)
            if request is None:
                finished.append(Finished(member.task_id, start.number, None, invalid))
            else:
                proofs.append((member, start, request))
                jobs.append((request, options))
        # pipelined in this process's prover child; each proof keeps its own limit
        with contextlib.closing(run_requests(jobs)) as outcomes:
            for (member, start, request), outcome in zip(proofs, outcomes, strict=True):
                finished.append(Finished(member.task_id, start.number, request.theorem_id, outcome))
                reports += breaker_outcome(request, outcome)
    except SoftTimeLimitExceeded:  # the proofs done are committed, the others released
        pass
    done = {f.task_id for f in finished}
    left = [(member, start) for member, start in runnable if member.task_id not in done]
    report_outcomes(agent, reports)
    won = commit_results(finished, agent=agent)
    self.request.hms_batch_committed = {f.task_id for f in finished}
    for member, start in left:
        why = "the batch's soft time limit ran out before this proof ran: published alone"
        repository.release_attempt(member.task_id, attempt_number=start.number, why=why)
        publish.requeue(
            {"task_id": member.task_id, "kind": "proof", "queue": queue, "payload": member.payload}
        )
    return {
        "tasks": len(batch),
        "committed": sum(won),
        "skipped": sum(1 for s in starts if s.task_final),
        "released": len(left),
    }
