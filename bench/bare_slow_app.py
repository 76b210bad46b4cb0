"""Bare Celery baseline for bench/recovery.py: a ~5 s task on Redis with the same delivery
settings as HMS (JSON, acks_late, reject_on_worker_lost, prefetch 1).  Every start of a task
is appended to the Redis list ``bare:starts:<task id>`` (wall clock, worker node name, pid).

``BENCH_REDIS_URL`` picks the broker; ``BENCH_VISIBILITY_TIMEOUT`` (seconds) overrides the
Redis transport's visibility timeout (unset: kombu's default, 3600 s)."""

from __future__ import annotations

import json
import os
import time

import redis
from celery import Celery, Task

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
VISIBILITY_TIMEOUT = os.environ.get("BENCH_VISIBILITY_TIMEOUT")

app = Celery("bare_slow", broker=URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="bare.slow",
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)
if VISIBILITY_TIMEOUT:
    app.conf.broker_transport_options = {"visibility_timeout": float(VISIBILITY_TIMEOUT)}


def starts_key(task_id: str) -> str:
    return f"bare:starts:{task_id}"


def done_key(task_id: str) -> str:
    return f"bare:done:{task_id}"


@app.task(name="bare.slow", bind=True)
def slow(self: Task, seconds: float) -> None:
    """Record the start, sleep ``seconds``, record the end."""
    client = redis.Redis.from_url(URL)
    start = {"at": time.time(), "hostname": self.request.hostname, "pid": os.getpid()}
    client.rpush(starts_key(self.request.id), json.dumps(start))
    time.sleep(seconds)
    client.rpush(done_key(self.request.id), time.time())
