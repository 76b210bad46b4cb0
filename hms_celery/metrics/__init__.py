"""HMS metrics for Prometheus: what the store and the broker say, read at scrape time.

* :mod:`~hms_celery.metrics.collector` — a ``prometheus_client`` custom collector: every figure
  is an aggregate query on the store or the broker, so it is right across processes and
  restarts (nothing is counted in one process's memory);
* :mod:`~hms_celery.metrics.server` — the HTTP endpoint (optional basic auth);
* :mod:`~hms_celery.metrics.signals` — the supervisor agent serves it from its main process;
* :mod:`~hms_celery.metrics.sweeps` — the one figure the store does not hold: sweep durations,
  a cumulative histogram in Redis that every sweep adds to.

This package module imports nothing, so the supervisor can import ``sweeps`` without the
collector (which itself reads the supervisor's state).
"""
