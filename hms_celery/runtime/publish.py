"""The one way an HMS task is recorded in the store and published to the broker.

Every HMS task is recorded (``tasks`` row, PENDING) *before* it is published, so an accepted
task is never lost: if the publish fails the row is marked REJECTED and the caller gets an
:class:`~hms_celery.errors.InfrastructureError` naming the broker.  A proof task carries the
time limits :meth:`~hms_celery.settings.Settings.time_limits` gives for its prover timeout.
The client, the GA fan-out, the supervisor's requeue and the agent host all publish through
here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from celery.canvas import Signature

from hms_celery.app import PUBLISH_ERRORS, app, publish_error
from hms_celery.errors import InfrastructureError
from hms_celery.settings import get_settings
from hms_celery.store import repository
from hms_celery.store.db import safe_url

PROVE_TASK = "hms.prove"
PROVE_BATCH_TASK = "hms.prove_batch"

#: A batch is only made when each pool process that may share the work still gets one: a
#: submission of n proofs goes out in batches of ``n // BATCH_SPREAD`` at most.
BATCH_SPREAD = 8

#: A batch's hard time limit (its members' soft limits added up, plus a margin) stays under
#: this: below RabbitMQ's default ``consumer_timeout`` (30 min) and Redis' visibility timeout
#: (60 min), so that a long batch is not redelivered while it still runs (docs/brokers.md).
MAX_BATCH_LIMIT_S = 1500.0

#: The Celery task that runs a stored task of each kind (``tasks.kind``), for a requeue from
#: the store; packages add their own kinds (:func:`register_kind`).
_TASK_OF_KIND: dict[str, str] = {"proof": PROVE_TASK, "fitness": PROVE_TASK}


def register_kind(kind: str, task_name: str) -> None:
    """Runs of stored tasks of ``kind`` are ``task_name`` (the GA registers its steps)."""
    _TASK_OF_KIND[kind] = task_name


def task_of_kind(kind: str) -> str:
    """The Celery task that runs a stored task of ``kind`` (unknown kinds: a proof)."""
    return _TASK_OF_KIND.get(kind, PROVE_TASK)


def requeue(row: dict[str, Any]) -> None:
    """Publish a stored task again (same id, a new attempt), from its ``tasks`` row (``kind``,
    ``queue``, ``payload``): a proof with its time limits, a step with its own."""
    name = task_of_kind(row["kind"])
    proof = name == PROVE_TASK
    payload = row["payload"] or {}
    publish(
        Publication(
            name,
            row["task_id"],
            row["queue"],
            payload,
            timeout=payload.get("timeout") if proof else None,
            limits=proof,
            # A fitness proof's result feeds its generation's chord; a plain proof's is stored.
            ignore_result=(row["kind"] == "proof") if proof else None,
        )
    )


@dataclass(frozen=True)
class Publication:
    """One task to publish: its Celery name, id, queue and keyword arguments.

    ``timeout`` (a proof's prover timeout, None for the setting's) gives a proof task its
    time limits; ``limits=False`` leaves the task's own (GA steps, the sweep).
    ``ignore_result`` skips the result backend (the store holds a proof's result); None
    keeps the task's default (a chord's members need their results).
    """

    name: str
    task_id: str | None
    queue: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    limits: bool = True
    ignore_result: bool | None = None

    def options(self) -> dict[str, Any]:
        """The ``send_task``/signature options: queue, routing key, limits, result."""
        options: dict[str, Any] = {
            "queue": self.queue,
            # A task's route names its default queue's routing key (hms.prove: prove.z3's):
            # another queue (prove.cvc5) needs its own, or the broker delivers it elsewhere.
            "routing_key": self.queue,
        }
        if self.limits:
            soft, hard = get_settings().time_limits(self.timeout)
            options.update(soft_time_limit=soft, time_limit=hard)
        if self.ignore_result is not None:
            options["ignore_result"] = self.ignore_result
        return options


@dataclass(frozen=True)
class Submission:
    """A task to record in the store and then publish (``tasks`` row + publication)."""

    publication: Publication
    kind: str = "proof"
    theorem_id: str | None = None
    family: str | None = None

    @property
    def task_id(self) -> str:
        assert self.publication.task_id is not None, "a recorded task needs its id"
        return self.publication.task_id

    def row(self) -> dict[str, Any]:
        """The ``tasks`` row :func:`repository.record_submissions` inserts."""
        pub = self.publication
        return {
            "id": self.task_id,
            "kind": self.kind,
            "queue": pub.queue,
            "payload": pub.kwargs,
            "theorem_id": self.theorem_id,
            "family": self.family,
        }


@contextmanager
def broker_errors(on_error: Callable[[str], object] | None = None) -> Iterator[None]:
    """Turn a broker failure inside the block (unreachable, or a publish the broker refused)
    into :class:`InfrastructureError` naming the broker (without its password), after
    ``on_error(why)``."""
    try:
        yield
    except PUBLISH_ERRORS as exc:
        why = publish_error(exc)
        if on_error is not None:
            on_error(why)
        url = safe_url(get_settings().effective_broker_url)
        raise InfrastructureError(f"broker unreachable at {url}: {why}", url=url) from exc


def signature(pub: Publication, **extra: Any) -> Signature:
    """``pub`` as a Celery signature (for chords and groups)."""
    return app.signature(pub.name, kwargs=pub.kwargs, task_id=pub.task_id, **pub.options(), **extra)


def publish(pub: Publication, *, producer: Any = None) -> None:
    """Publish ``pub`` (nothing recorded); a broker failure raises InfrastructureError."""
    with broker_errors():
        app.send_task(
            pub.name, kwargs=pub.kwargs, task_id=pub.task_id, producer=producer, **pub.options()
        )


def submit(subs: Sequence[Submission], *, actor: str) -> list[str]:
    """Record ``subs`` in one transaction, then publish them over one broker connection.

    On a broker failure the unpublished tasks are marked REJECTED (never accepted) and
    :class:`InfrastructureError` is raised; the ones already published stay accepted.
    Returns the task ids, in order.
    """
    if not subs:
        return []
    repository.record_submissions([s.row() for s in subs])
    published = 0

    def reject_rest(why: str) -> None:
        for s in subs[published:]:
            repository.mark_rejected(s.task_id, f"broker unreachable: {why}", actor)

    pubs = batched(subs, get_settings().prove_batch)
    with broker_errors(reject_rest), app.producer_or_acquire() as producer:
        for pub, count in pubs:
            app.send_task(
                pub.name, kwargs=pub.kwargs, task_id=pub.task_id, producer=producer, **pub.options()
            )
            published += count
    return [s.task_id for s in subs]


def batched(subs: Sequence[Submission], size: int) -> list[tuple[Publication, int]]:
    """The publications of ``subs``, in order, with how many tasks each carries: runs of
    plain proof tasks to one queue go out as ``hms.prove_batch`` messages of up to ``size``
    members (at most ``len(subs) // BATCH_SPREAD``, so that small submissions still spread
    over the pool); every other task, and a proof left alone, as it is."""
    size = min(size, len(subs) // BATCH_SPREAD)
    out: list[tuple[Publication, int]] = []
    run: list[Publication] = []

    def flush() -> None:
        if len(run) == 1:
            out.append((run[0], 1))
        elif run:
            out.append((_batch(run), len(run)))
        run.clear()

    settings = get_settings()
    budget = 0.0  # the run's soft limits added up
    for s in subs:
        pub = s.publication
        batchable = size >= 2 and s.kind == "proof" and pub.name == PROVE_TASK and pub.limits
        soft = settings.time_limits(pub.timeout).soft
        too_long = budget + soft + settings.time_limit_margin > MAX_BATCH_LIMIT_S
        if not batchable or (run and (_batch_key(run[0]) != _batch_key(pub) or too_long)):
            flush()
            budget = 0.0
        if not batchable:
            out.append((pub, 1))
            continue
        run.append(pub)
        budget += soft
        if len(run) == size:
            flush()
            budget = 0.0
    flush()
    return out


def _batch_key(pub: Publication) -> tuple[Any, ...]:
    return (pub.queue, pub.ignore_result)


def _batch(pubs: list[Publication]) -> Publication:
    """One ``hms.prove_batch`` for ``pubs`` (same queue): its time limits are the members'
    added up, so no member has less time than it would have alone."""
    settings = get_settings()
    budget = sum(settings.time_limits(p.timeout).soft for p in pubs)
    return Publication(
        PROVE_BATCH_TASK,
        f"batch-{uuid.uuid4()}",
        pubs[0].queue,
        {"members": [{"task_id": p.task_id, "payload": p.kwargs} for p in pubs]},
        timeout=budget - settings.time_limit_margin,
        ignore_result=True,
    )
