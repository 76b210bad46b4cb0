"""The supervisor agent serves the metrics endpoint from its worker's main process.

``worker_ready`` (the consumer is up, the pool already forked) starts the server when
``HMS_METRICS_PORT`` is set and the worker consumes the ``supervisor`` queue — one endpoint
per stack, however many prover agents share the settings.  The main process is the one that
lives as long as the agent: pool processes are replaced (restarts, time limits), and they
close their inherited copy of the listening socket (``worker_process_init``).  The server
stops at ``worker_shutdown``.

A port that cannot be bound is logged, not fatal: losing the metrics must not stop the
supervisor from healing.  An unsafe address never gets here — the settings refuse a
non-loopback ``HMS_METRICS_ADDRESS`` without ``HMS_METRICS_PASSWORD`` at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from celery import signals

from hms_celery.agents.lifecycle import consumed_queues
from hms_celery.errors import HMSError
from hms_celery.metrics.server import Endpoint, MetricsServer, serve
from hms_celery.runtime.skills import get_skill
from hms_celery.settings import get_settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_server: MetricsServer | None = None
_owner_pid: int | None = None


def current_server() -> MetricsServer | None:
    """The endpoint this process serves, if any."""
    return _server if _owner_pid == os.getpid() else None


@signals.worker_ready.connect
def _on_ready(sender: Any, **_: Any) -> None:
    global _server, _owner_pid
    settings = get_settings()
    if settings.metrics_port is None:
        return
    if get_skill("supervisor").queue not in consumed_queues(sender.app.amqp.queues):
        return
    with _lock:
        if current_server() is not None:  # worker_ready again after a broker reconnect
            return
        try:
            _server = serve(Endpoint.from_settings(settings))
            _owner_pid = os.getpid()
        except HMSError as exc:
            log.error("metrics endpoint not started: %s", exc)


@signals.worker_process_init.connect
def _on_pool_process(**_: Any) -> None:
    """A forked pool process closes its copy of the listening socket (only its own fd: the
    parent keeps serving), so a lingering child never holds the port."""
    global _server
    if _server is not None and _owner_pid != os.getpid():
        with contextlib.suppress(OSError):
            _server.close_inherited()
        _server = None


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    global _server
    server = current_server()
    if server is not None:
        server.stop()
        _server = None
