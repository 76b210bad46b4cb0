"""What a publish costs on each broker: Redis, RabbitMQ with publisher confirms (HMS's
setting) and RabbitMQ without them, interleaved round by round.

    .venv/bin/python bench/broker_publish.py [--messages 500] [--rounds 3]
        [--redis redis://127.0.0.1:6379/7] [--amqp amqp://guest:guest@127.0.0.1:5672]

Each round publishes ``--messages`` ``hms.prove`` messages (a small statement payload) with
HMS's Celery configuration to ``prove.z3``, which nobody consumes, and reports the time per
publish.  The Redis database is flushed before and after (give it one of your own); the
RabbitMQ side runs in a virtual host made for the run with ``rabbitmqctl`` and deleted after.
Prints a Markdown table (median and min over the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid

import redis
from celery import Celery

from hms_celery.app import configure
from hms_celery.settings import load_settings

PAYLOAD = {"theorem_id": "bench", "statement": "∀ x : ℝ, x * x ≥ 0"}


def _app(broker: str, redis_url: str, confirm: bool) -> Celery:
    app = Celery(f"bench-{uuid.uuid4().hex[:6]}")
    amqp = broker.startswith("amqp")
    configure(app, load_settings(broker_url=broker, redis_url=redis_url if amqp else None))
    if amqp and not confirm:
        app.conf.broker_transport_options = {}
    return app


def _round(app: Celery, messages: int) -> float:
    """Seconds per publish over ``messages`` publishes (one warm-up publish first)."""
    app.send_task("hms.prove", kwargs=PAYLOAD, queue="prove.z3", routing_key="prove.z3")
    t0 = time.perf_counter()
    for _ in range(messages):
        app.send_task("hms.prove", kwargs=PAYLOAD, queue="prove.z3", routing_key="prove.z3")
    return (time.perf_counter() - t0) / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672")
    args = parser.parse_args()
    vhost = f"hms_bench_{uuid.uuid4().hex[:6]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    scratch = redis.Redis.from_url(args.redis)
    scratch.flushdb()
    try:
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
        )
        amqp = f"{args.amqp.rstrip('/')}/{vhost}"
        systems = {
            "Redis": _app(args.redis, args.redis, confirm=True),
            "RabbitMQ, publisher confirms (HMS)": _app(amqp, args.redis, confirm=True),
            "RabbitMQ, no confirms": _app(amqp, args.redis, confirm=False),
        }
        figures: dict[str, list[float]] = {name: [] for name in systems}
        for _ in range(args.rounds):
            for name, app in systems.items():
                figures[name].append(_round(app, args.messages))
        print(f"{args.messages} publishes x {args.rounds} rounds")
        print("| broker | ms per publish (median) | min |")
        print("|---|---|---|")
        for name, seconds in figures.items():
            print(f"| {name} | {statistics.median(seconds) * 1e3:.2f} | {min(seconds) * 1e3:.2f} |")
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        scratch.flushdb()


if __name__ == "__main__":
    main()
