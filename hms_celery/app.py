"""The Celery application: ``celery -A hms_celery worker|beat|flower``.

Configuration comes from :mod:`hms_celery.settings`; queues and routes from the skill
registry.  JSON only, late acknowledgement, prefetch 1: a task taken by a worker that dies
is redelivered, never silently dropped, and no worker hoards tasks it is not running.
"""

from __future__ import annotations

import sys
from typing import Any

from amqp.exceptions import AMQPError, MessageNacked
from celery import Celery, signals
from kombu.exceptions import OperationalError

from hms_celery.no_broker import NO_BROKER_URL
from hms_celery.runtime.skills import register_skill_tasks, task_queues, task_routes
from hms_celery.settings import NoStackError, Settings, get_settings, is_amqp_url

#: What a publish that did not reach the broker raises: kombu's error once the retry policy
#: gave up, a socket error, and on AMQP a channel error or a publisher-confirm nack (which
#: would be a silent loss without confirms).
PUBLISH_ERRORS: tuple[type[Exception], ...] = (OperationalError, OSError, AMQPError, MessageNacked)


def publish_error(exc: BaseException) -> str:
    """A publish error for a message: its text, else its cause's (kombu wraps a confirm nack,
    which has no text, in an OperationalError without one), else the class name."""
    cause: BaseException | None = exc
    while cause is not None and not str(cause):
        exc, cause = cause, cause.__cause__ or cause.__context__
    return str(cause) if cause is not None else type(exc).__name__


TASK_MODULES = [
    "hms_celery.agents.prover",
    "hms_celery.agents.prove_batch",  # hms.prove_batch: several recorded proofs in one message
    "hms_celery.agents.lifecycle",
    "hms_celery.healing.health",
    "hms_celery.healing.supervisor",
    "hms_celery.genetic.tasks",
    "hms_celery.genetic.maintenance",  # hms.ga.maintain: the GA's own upkeep, beside the sweep
    "hms_celery.metrics.signals",  # the supervisor agent serves HMS metrics (issue 10, part 3)
]


def configure(app: Celery, settings: Settings) -> None:
    """Apply ``settings`` to ``app`` (also used by tests with other settings)."""
    connect_timeout = settings.connect_timeout
    # No HMS_BROKER_URL and no recorded stack: a broker that refuses every connection with
    # NoStackError, never Celery's amqp://localhost default or some other stack's Redis.
    broker = settings.resolved_broker_url or NO_BROKER_URL
    app.conf.update(
        broker_url=broker,
        # A Redis broker, or HMS_REDIS_URL with an AMQP one (chords need a real result store).
        result_backend=settings.result_backend or settings.default_result_backend,
        # Security: JSON everywhere, never pickle.
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # Delivery: ack after the task ran; requeue if the worker process is lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The store records starts and results; Celery's result backend keeps only what
        # canvas primitives (chords) need.
        task_track_started=False,
        # Routing from the skill registry.
        task_queues=task_queues(),
        task_routes=task_routes(),
        task_default_queue="hms.default",
        task_create_missing_queues=False,
        # Proof tasks carry their own limits; these back up Z3's soft timeout.
        task_soft_time_limit=settings.soft_time_limit,
        task_time_limit=settings.hard_time_limit,
        # Task events cost a broker publish per state change; Flower switches them on while
        # it runs (its --enable-events default). Worker heartbeats are sent regardless.
        worker_send_task_events=False,
        task_send_sent_event=False,
        # Fail fast (and clearly) when the broker is down instead of hanging.
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=connect_timeout,
        broker_transport_options=broker_transport_options(broker, connect_timeout),
        redis_socket_connect_timeout=connect_timeout,
        redis_socket_timeout=30,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        result_expires=24 * 3600,
        # Self-healing: periodic supervisor sweeps and health rounds.
        beat_schedule={
            "supervisor-sweep": {
                "task": "hms.supervisor.sweep",
                "schedule": settings.sweep_interval,
                "options": {"expires": settings.sweep_interval * 2},
            },
            "ga-maintenance": {
                "task": "hms.ga.maintain",
                "schedule": settings.sweep_interval,
                "options": {"queue": "supervisor", "expires": settings.sweep_interval * 2},
            },
            "health-round": {
                "task": "hms.supervisor.health_round",
                "schedule": settings.health_interval,
                "options": {"expires": settings.health_interval * 2},
            },
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        timezone="UTC",
        enable_utc=True,
    )


def broker_transport_options(broker: str, connect_timeout: float) -> dict[str, Any]:
    """Kombu transport options for ``broker``'s kind (docs/brokers.md says what differs)."""
    if is_amqp_url(broker):
        return {
            # Publisher confirms: a publish returns once RabbitMQ has taken the message (and,
            # for a durable queue, persisted it), and a refused one raises instead of being
            # dropped without a word.  One round-trip per publish.
            "confirm_publish": True,
        }
    return {
        "socket_connect_timeout": connect_timeout,
        # A message taken by a worker that vanished comes back after this long; HMS's
        # supervisor re-publishes a lost attempt much sooner (docs/brokers.md).
        "visibility_timeout": 3600,
        # Redis pub/sub ignores database numbers: fanout (remote control, events and
        # heartbeats, the health broadcast) stays inside this stack's database only
        # because kombu prefixes its channels with it ("/<db>.").  Kombu's default, pinned.
        "fanout_prefix": True,
        "fanout_patterns": True,
    }


def check_settings(settings: Settings) -> None:
    """What the settings cannot check themselves: the default strategy names a strategy
    (imported only when set: the strategy catalogue loads Z3)."""
    if settings.default_strategy:
        from hms_celery.verification.strategy import check_default_strategy

        check_default_strategy(settings.default_strategy)


app = Celery("hms", include=TASK_MODULES)
configure(app, get_settings())
check_settings(get_settings())
register_skill_tasks(app)  # hms.skill.<id> for every skill of the registry


@signals.celeryd_init.connect
@signals.beat_init.connect
def _refuse_without_broker(**_: Any) -> None:
    """``celery -A hms_celery worker|beat`` with no broker: say so and exit 3 at start."""
    if app.conf.broker_url == NO_BROKER_URL:
        print(f"error: {NoStackError(get_settings().data_dir)}", file=sys.stderr)
        raise SystemExit(3)


def reconfigure() -> Settings:
    """Re-read the settings (after the environment changed) and apply them to ``app``."""
    from hms_celery.settings import reset_settings

    reset_settings()
    settings = get_settings()
    check_settings(settings)
    configure(app, settings)
    reset_connections()
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)
    return settings


def reset_connections() -> None:
    """Forget pooled broker connections (old URLs, or stale after a broker restart);
    Celery does the same after a fork."""
    from kombu import pools

    pools.reset()
    app._after_fork()
