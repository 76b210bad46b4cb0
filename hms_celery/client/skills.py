"""Generic skill tasks: publish one with a JSON payload and wait for its result."""

from __future__ import annotations

import json
import uuid
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError

from hms_celery.app import app
from hms_celery.errors import InputError
from hms_celery.runtime import publish
from hms_celery.runtime.skills import get_skill


def run_skill(skill_id: str, payload: dict[str, Any]) -> str:
    """Publish the generic task of skill ``skill_id`` with the JSON object ``payload``.

    Returns the task id; :func:`wait_skill_result` gives its result (skill tasks store their
    result in Celery's result backend, not in the store).  An unknown skill or a payload
    that is not a JSON object raises :class:`~hms_celery.errors.InputError`.
    """
    try:
        skill = get_skill(skill_id)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    if not isinstance(payload, dict):
        raise InputError(f"skill payload must be a JSON object, not {type(payload).__name__}")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InputError(f"skill payload is not JSON: {exc}") from None
    queues = app.amqp.queues
    try:
        queue = queues[skill.queue]
    except KeyError:  # a skill loaded after the app was configured (reload_skills)
        queue = queues.add(skill.make_queue())
    options = {**skill.route(), "queue": queue}
    task_id = str(uuid.uuid4())
    with publish.broker_errors():
        app.send_task(skill.task_name, kwargs={"payload": payload}, task_id=task_id, **options)
    return task_id


def wait_skill_result(task_id: str, timeout: float | None = None) -> dict[str, Any]:
    """Block until the skill task ``task_id`` finished; returns its JSON result.

    Raises :class:`TimeoutError` if ``timeout`` seconds pass first; a task that raised
    re-raises its exception here.
    """
    result = app.AsyncResult(task_id)
    try:
        return result.get(timeout=timeout, interval=0.05, propagate=True)
    except CeleryTimeoutError:
        pass
    # Stop waiting now (the backend holds the pending result), not at interpreter exit.
    result.backend.remove_pending_result(result)
    del result
    raise TimeoutError(f"skill task {task_id} unfinished after {timeout}s")
