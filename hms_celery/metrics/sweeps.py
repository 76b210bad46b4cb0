"""Sweep durations as a cumulative histogram in Redis, shared by every process.

Sweeps run in the supervisor agent's pool processes, while the metrics endpoint runs in its
main process (or in ``hms metrics serve``): an in-process ``Histogram`` in the sweep would be
invisible to it.  Each sweep instead adds its duration to one Redis hash (one pipelined round
trip: a counter per bucket, the count and the sum), which the collector reads at scrape time.
The figures are cumulative, as Prometheus expects, and survive a restart of any process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

SWEEP_HISTOGRAM_KEY = "hms:metrics:sweep_seconds"
#: Upper bounds (seconds) of the sweep-duration buckets; +Inf is the count.
SWEEP_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class SweepHistogram:
    """The recorded sweeps: cumulative bucket counts (aligned with :data:`SWEEP_BUCKETS`),
    the count, the summed seconds and the last sweep's duration and end (epoch seconds)."""

    buckets: tuple[int, ...]
    count: int
    sum_s: float
    last_s: float | None
    last_at: float | None


def record_sweep(client: redis.Redis, seconds: float, at: float) -> None:
    """Add one sweep of ``seconds`` that ended at ``at``.  Never raises: a metrics write
    must not fail the sweep it describes."""
    try:
        pipe = client.pipeline(transaction=True)
        for bound in SWEEP_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(SWEEP_HISTOGRAM_KEY, f"le:{bound}", 1)
        pipe.hincrby(SWEEP_HISTOGRAM_KEY, "count", 1)
        pipe.hincrbyfloat(SWEEP_HISTOGRAM_KEY, "sum", seconds)
        pipe.hset(SWEEP_HISTOGRAM_KEY, mapping={"last": repr(seconds), "last_at": repr(at)})
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record the sweep duration: %s", exc)


def read_sweeps(client: redis.Redis) -> SweepHistogram:
    """The histogram as recorded so far (zeros before the first sweep)."""
    raw = {_text(k): _text(v) for k, v in client.hgetall(SWEEP_HISTOGRAM_KEY).items()}
    return SweepHistogram(
        buckets=tuple(int(raw.get(f"le:{bound}", 0)) for bound in SWEEP_BUCKETS),
        count=int(raw.get("count", 0)),
        sum_s=float(raw.get("sum", 0.0)),
        last_s=float(raw["last"]) if "last" in raw else None,
        last_at=float(raw["last_at"]) if "last_at" in raw else None,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
