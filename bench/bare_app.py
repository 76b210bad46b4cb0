"""Bare Celery baseline: a no-op task on Redis (broker and result backend), JSON, same
delivery settings as HMS (acks_late, prefetch 1). Used by bench/throughput.py."""

from __future__ import annotations

import os
import time

from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

app = Celery("bare", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="bare",
)


@app.task(name="bare.noop")
def noop(sent_at: float) -> dict[str, float]:
    """Return when the task was sent and when it started (wall clock)."""
    return {"sent_at": sent_at, "started_at": time.time()}
