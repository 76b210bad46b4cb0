"""Broker settings without services: what an AMQP broker needs, how a stack is named, and the
Celery configuration each broker kind gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery

from hms_celery.app import configure
from hms_celery.errors import SettingsError
from hms_celery.healing import stack_claim
from hms_celery.runtime.skills import load_skills
from hms_celery.settings import broker_identity, load_settings
from tests.support import REPO

AMQP = "amqp://guest:secret@rabbit.example:5672/hms_a"
REDIS = "redis://127.0.0.1:6379/7"


def test_an_amqp_broker_needs_a_coordination_redis() -> None:
    with pytest.raises(SettingsError, match="HMS_REDIS_URL") as raised:
        load_settings(broker_url=AMQP)
    assert raised.value.exit_code == 2
    assert "secret" not in str(raised.value)  # the message names the broker, not its password
    settings = load_settings(broker_url=AMQP, redis_url=REDIS)
    assert settings.coordination_url == REDIS
    assert settings.effective_result_backend == REDIS  # chords need a real result store
    explicit = load_settings(broker_url=AMQP, redis_url=REDIS, result_backend="redis://h/2")
    assert explicit.effective_result_backend == "redis://h/2"


def test_the_cli_refuses_an_amqp_broker_without_redis_like_any_wrong_setting(
    tmp_path: Path,
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HMS_")},
        "HMS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/nowhere",
        "HMS_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hms"), "ping"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "HMS_REDIS_URL" in done.stderr


def test_a_redis_broker_keeps_hms_keys_in_its_own_database() -> None:
    settings = load_settings(broker_url=REDIS)
    assert settings.coordination_url == REDIS
    assert load_settings(broker_url=REDIS, redis_url="redis://localhost:6379/7").redis_url
    with pytest.raises(SettingsError, match="HMS_REDIS_URL"):
        load_settings(broker_url=REDIS, redis_url="redis://127.0.0.1:6379/8")
    with pytest.raises(SettingsError, match=r"HMS_REDIS_URL.*not a Redis URL"):
        load_settings(broker_url=AMQP, redis_url="amqp://elsewhere//")


def test_a_stack_on_amqp_is_named_by_its_virtual_host() -> None:
    same = [
        "amqp://guest:guest@localhost//",
        "amqp://127.0.0.1",
        "pyamqp://other:pw@127.0.0.1:5672/%2F",
        "amqp://127.0.0.1:5672/",
    ]
    assert {broker_identity(url) for url in same} == {"amqp://127.0.0.1:5672/%2F"}
    a = load_settings(broker_url="amqp://u:p@h/hms_a", redis_url=REDIS)
    b = load_settings(broker_url="amqp://u:p@h/hms_b", redis_url=REDIS)
    assert a.stack_id == "amqp://h:5672/hms_a" != b.stack_id
    assert "p@" not in a.stack_id
    # Same store, same coordination Redis, other vhosts: the claims differ, so the second
    # stack is refused there (tests/brokers/test_amqp.py claims them on a real Redis).
    assert stack_claim.store_identity(a) != stack_claim.store_identity(b)
    redis_stack = load_settings(broker_url=REDIS)
    assert stack_claim.store_identity(redis_stack) == redis_stack.effective_database_url


def test_each_broker_kind_gets_its_own_transport_options() -> None:
    amqp, redis = Celery("amqp-conf"), Celery("redis-conf")
    configure(amqp, load_settings(broker_url=AMQP, redis_url=REDIS))
    configure(redis, load_settings(broker_url=REDIS))
    assert amqp.conf.broker_transport_options == {"confirm_publish": True}
    assert amqp.conf.result_backend == REDIS
    assert redis.conf.broker_transport_options["fanout_prefix"] is True
    assert redis.conf.broker_transport_options["visibility_timeout"] == 3600
    assert redis.conf.result_backend == REDIS
    for conf in (amqp.conf, redis.conf):
        # A task survives its worker: acknowledged after it ran, persistent, durable queues.
        assert conf.task_acks_late and conf.task_reject_on_worker_lost
        assert conf.task_default_delivery_mode in (2, "persistent")  # AMQP delivery mode 2
        assert conf.worker_prefetch_multiplier == 1
    work = [q for q in amqp.conf.task_queues if q.name in {s.queue for s in load_skills().values()}]
    assert work and all(q.durable for q in work if q.exchange.type != "fanout")
