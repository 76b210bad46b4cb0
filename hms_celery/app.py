"""The Celery application: ``celery -A hms_celery worker|beat|flower``.

Configuration comes from :mod:`hms_celery.settings`; queues and routes from the skill
registry.  JSON only, late acknowledgement, prefetch 1: a task taken by a worker that dies
is redelivered, never silently dropped, and no worker hoards tasks it is not running.
"""

from __future__ import annotations

from celery import Celery

from hms_celery.agents.skills import register_skill_tasks, task_queues, task_routes
from hms_celery.settings import Settings, get_settings

TASK_MODULES = [
    "hms_celery.agents.prover",
    "hms_celery.agents.lifecycle",
    "hms_celery.healing.health",
    "hms_celery.healing.supervisor",
    "hms_celery.genetic.tasks",
]


def configure(app: Celery, settings: Settings) -> None:
    """Apply ``settings`` to ``app`` (also used by tests with other settings)."""
    connect_timeout = settings.connect_timeout
    app.conf.update(
        broker_url=settings.effective_broker_url,
        result_backend=settings.effective_result_backend,
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
        broker_transport_options={
            "socket_connect_timeout": connect_timeout,
            "visibility_timeout": 3600,
        },
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


app = Celery("hms", include=TASK_MODULES)
configure(app, get_settings())
register_skill_tasks(app)  # hms.skill.<id> for every skill of the registry


def reconfigure() -> Settings:
    """Re-read the settings (after the environment changed) and apply them to ``app``."""
    from hms_celery.settings import reset_settings

    reset_settings()
    settings = get_settings()
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
