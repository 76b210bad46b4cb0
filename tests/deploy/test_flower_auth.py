"""Flower locked down: real Flower processes with the HMS settings (basic auth, loopback).

Flower 2.2 checks basic auth on its pages and API but not on ``/metrics`` and
``/healthcheck``; the tests pin that down, since the deployment (loopback-only publishing,
docs/deployment.md) depends on it.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hms_celery.flower import FLOWER_CONF
from tests.deploy.compose import REPO, free_port
from tests.support import http_get, wait_until

pytestmark = [pytest.mark.services]

HMS = str(Path(sys.executable).with_name("hms"))


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    return http_get(url, auth, timeout=10)


def answering(url: str) -> bool:
    try:
        return get(url)[0] in (200, 401)
    except OSError:
        return False


def base_env(broker_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HMS_", "FLOWER_"))}
    return {**env, "HMS_BROKER_URL": broker_url, "HMS_DATA_DIR": str(data_dir), **extra}


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def flower(
    deploy_redis_url: str, tmp_path: Path
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """``hms service flower`` (what the compose service runs) with a password."""
    password = "pw," + secrets.token_hex(8)  # a comma: Flower's env/argv lists would split it
    port = free_port()
    env = base_env(
        deploy_redis_url, tmp_path, HMS_FLOWER_PASSWORD=password, HMS_FLOWER_PORT=str(port)
    )
    log = (tmp_path / "flower.log").open("wb")
    process = subprocess.Popen(
        [HMS, "service", "flower"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: answering(url) or process.poll() is not None, 60, "Flower")
        assert process.poll() is None, (tmp_path / "flower.log").read_text()
        yield url, password, process
    finally:
        stop(process)
        log.close()


def test_flower_requires_the_password_and_listens_on_loopback_only(
    flower: tuple[str, str, subprocess.Popen[bytes]], deploy_redis_url: str, tmp_path: Path
) -> None:
    url, password, process = flower
    assert get(url)[0] == 401
    assert get(url, ("hms", "wrong"))[0] == 401
    assert get(url, ("someone", password))[0] == 401
    assert get(url, ("hms", password))[0] == 200
    assert get(url + "api/workers")[0] == 401
    assert get(url + "api/workers", ("hms", password))[0] == 200

    # exec: the service's process is Flower itself, and its argv holds no password.
    flower_process = psutil.Process(process.pid)
    assert "flower" in flower_process.cmdline()
    assert not any(password in arg for arg in flower_process.cmdline())
    connections = getattr(flower_process, "net_connections", flower_process.connections)
    listening = {c.laddr.ip for c in connections("tcp") if c.status == "LISTEN"}
    assert listening == {"127.0.0.1"}, listening

    env = base_env(deploy_redis_url, tmp_path, HMS_FLOWER_PORT=url.rsplit(":", 1)[1].strip("/"))
    check = subprocess.run([HMS, "service", "check", "flower"], env=env, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_flower_metrics_answer_as_prometheus_scrapes_them(
    flower: tuple[str, str, subprocess.Popen[bytes]],
) -> None:
    url, password, _ = flower
    status, body = get(url + "metrics", ("hms", password))  # what Prometheus sends
    assert status == 200
    assert re.search(rb"^# TYPE flower_events_total counter$", body, re.M), body[:500]
    # Flower 2.2 does not check credentials on /metrics (nor /healthcheck): hence Flower is
    # published on loopback only and scraped over the compose network.
    assert get(url + "metrics")[0] == 200
    assert get(url + "healthcheck") == (200, b"OK")


def test_a_non_loopback_flower_without_password_is_refused(
    deploy_redis_url: str, tmp_path: Path
) -> None:
    env = base_env(deploy_redis_url, tmp_path, HMS_FLOWER_ADDRESS="0.0.0.0", HMS_FLOWER_PORT="1")
    service = subprocess.run(
        [HMS, "service", "flower"], env=env, capture_output=True, text=True, timeout=60
    )
    assert service.returncode == 2
    assert "HMS_FLOWER_PASSWORD" in service.stderr and "0.0.0.0" in service.stderr
    # By hand with the config file and --address: refused by the config file itself.
    env = base_env(deploy_redis_url, tmp_path)
    by_hand = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "hms_celery", "flower", f"--conf={FLOWER_CONF}",
         "--address=0.0.0.0", "--port=1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert by_hand.returncode == 2, by_hand.stderr[-2000:]
    assert "HMS_FLOWER_PASSWORD" in by_hand.stderr
    # Nothing to check when nothing runs: the health check fails.
    env = base_env(deploy_redis_url, tmp_path, HMS_FLOWER_PORT=str(free_port()))
    check = subprocess.run([HMS, "service", "check", "flower"], env=env, capture_output=True)
    assert check.returncode == 1


def test_hms_up_refuses_an_open_flower_and_passes_the_password(
    deploy_redis_url: str, tmp_path: Path
) -> None:
    open_env = base_env(deploy_redis_url, tmp_path / "open", HMS_FLOWER_ADDRESS="0.0.0.0")
    refused = subprocess.run(
        [HMS, "up", "--flower"], env=open_env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "HMS_FLOWER_PASSWORD" in refused.stderr
    assert not (tmp_path / "open" / "stack.json").exists()  # nothing was started

    password = secrets.token_hex(12)
    port = free_port()
    data_dir = tmp_path / "up"
    env = base_env(
        deploy_redis_url,
        data_dir,
        HMS_FLOWER_PASSWORD=password,
        HMS_DATABASE_URL=f"sqlite:///{tmp_path / 'up.db'}",
        HMS_WORKER_CONCURRENCY="1",
    )
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [HMS, "up", "--flower", "--flower-port", str(port)], env=env, cwd=tmp_path,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: answering(url) or up.poll() is not None, 120, "hms up's Flower")
        assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        assert get(url)[0] == 401
        assert get(url, ("hms", password))[0] == 200
        flower_pids = [
            p for p in psutil.Process(up.pid).children(recursive=True)
            if "flower" in p.cmdline()
        ]  # fmt: skip
        assert flower_pids and not any(password in " ".join(p.cmdline()) for p in flower_pids)
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)  # Ctrl-C: `hms up` stops its children
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait(10)
        log.close()
    wait_until(lambda: not answering(url), 30, "Flower to stop with the stack")


def test_hms_up_makes_a_flower_login_when_none_is_configured(
    deploy_redis_url: str, tmp_path: Path
) -> None:
    """`hms up --flower` never serves Flower without a login: with HMS_FLOWER_PASSWORD unset it
    makes one for this run and prints it beside the URL."""
    port = free_port()
    env = base_env(
        deploy_redis_url,
        tmp_path / "var",
        HMS_DATABASE_URL=f"sqlite:///{tmp_path / 'up.db'}",
        HMS_WORKER_CONCURRENCY="1",
    )
    up = subprocess.Popen(
        [HMS, "up", "--flower", "--flower-port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
    )  # fmt: skip
    assert up.stdout is not None
    url = f"http://127.0.0.1:{port}/"
    try:
        printed: list[str] = []
        for line in up.stdout:  # until the stack says it is up
            printed.append(line)
            if "HMS is up" in line:
                break
        text = "".join(printed)
        login = re.search(r"Flower login: (\S+) / (\S+)", text)
        assert login, text
        user, password = login.groups()
        assert user == "hms" and len(password) >= 20
        wait_until(lambda: answering(url), 60, "hms up's Flower")
        assert get(url)[0] == 401
        assert get(url, (user, "wrong"))[0] == 401
        assert get(url, (user, password))[0] == 200
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait(10)
