"""Celery base classes of HMS's tasks: store-outage retries and attempt bookkeeping.

:class:`StoreRetryingTask` retries a task whose store (or broker) was briefly unreachable,
with exponential backoff, instead of dropping it; a retry re-publishes the same task id, so a
result commit stays idempotent.  :class:`RecordedTask` adds the attempt bookkeeping of every
task that has a ``tasks`` row, through Celery's own hooks:

- ``before_start`` opens the attempt (:func:`repository.begin_attempt`) before the body runs,
  so the attempt is durable — and recoverable by the supervisor — before any work is done; a
  copy of a task that is already final is closed DUPLICATE and :attr:`RecordedTask.attempt`
  says so (the body then returns without running);
- ``on_failure`` closes the attempt ERROR and marks the task FAILED when the body raised
  (a bug, not bad input), then calls :meth:`RecordedTask.attempt_failed`;
- the body ends a task that commits no proof result with :meth:`RecordedTask.complete`,
  inside the body so that a store outage at that moment retries the task.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Task
from celery.utils.time import get_exponential_backoff_interval

from hms_celery.errors import InfrastructureError
from hms_celery.store import repository
from hms_celery.store.repository import AttemptStart

log = logging.getLogger(__name__)


class StoreRetryingTask(Task):
    """A task that retries, with backoff, while the store or broker is unreachable."""

    autoretry_for = (InfrastructureError,)
    retry_backoff = 1
    retry_backoff_max = 30
    retry_jitter = True  # Celery's default, read by its autoretry; retry_later reads it too
    max_retries = 40

    def retry_later(self, exc: InfrastructureError) -> Exception:
        """The :class:`~celery.exceptions.Retry` to raise for ``exc`` outside the body
        (autoretry covers the body only), with the same backoff."""
        countdown = get_exponential_backoff_interval(
            factor=self.retry_backoff,
            retries=self.request.retries,
            maximum=self.retry_backoff_max,
            full_jitter=self.retry_jitter,
        )
        return self.retry(exc=exc, countdown=countdown)


class RecordedTask(StoreRetryingTask):
    """An HMS task whose executions are recorded as attempts of its ``tasks`` row."""

    #: The queue a task published without a route records (``tasks.queue``).
    attempt_queue = "prove.z3"

    @property
    def agent(self) -> str:
        """The agent (worker node name) running the current request."""
        return self.request.hostname or "unknown"

    @property
    def attempt(self) -> AttemptStart:
        """The attempt ``before_start`` opened for the current request."""
        start: AttemptStart = self.request.hms_attempt
        return start

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        theorem_id = kwargs.get("theorem_id")
        queue = (self.request.delivery_info or {}).get("routing_key") or self.attempt_queue
        try:
            start = repository.begin_attempt(
                task_id,
                agent=self.agent,
                pid=os.getpid(),
                payload=dict(kwargs),
                queue=queue,
                theorem_id=theorem_id if isinstance(theorem_id, str) else None,
            )
            if start.task_final:  # a redelivered or requeued copy of a finished task
                repository.skip_attempt(task_id, start.number)
        except InfrastructureError as exc:
            raise self.retry_later(exc) from exc
        self.request.hms_attempt = start

    def complete(self, outcome: str = "DONE") -> None:
        """End the current attempt well: close it and mark the task DONE (unless final)."""
        repository.complete_task(
            self.request.id, attempt_number=self.attempt.number, outcome=outcome
        )

    def on_failure(
        self, exc: Exception, task_id: str, args: Any, kwargs: dict[str, Any], einfo: Any
    ) -> None:
        start: AttemptStart | None = getattr(self.request, "hms_attempt", None)
        if start is None or start.task_final or isinstance(exc, InfrastructureError):
            # Never opened, a duplicate, or the store itself is down: the supervisor recovers
            # the open attempt from what is durable.
            return
        error = f"{type(exc).__name__}: {exc}"
        log.error("attempt %s of task %s (%s) failed: %s", start.number, task_id, self.name, error)
        try:
            repository.fail_attempt(
                task_id, attempt_number=start.number, agent=self.agent, error=error
            )
            self.attempt_failed(exc, kwargs)
        except Exception as err:  # a failure handler must not mask the task's own failure
            log.error("could not record the failure of %s: %s", task_id, err)

    def attempt_failed(self, exc: Exception, kwargs: dict[str, Any]) -> None:
        """Called after a failed attempt is recorded (subclasses: a GA run fails with it)."""
