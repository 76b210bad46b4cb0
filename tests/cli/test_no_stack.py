"""No recorded stack and no ``HMS_BROKER_URL``: every entry point says so and exits 3.

Until issue 10 the broker silently defaulted to ``redis://127.0.0.1:6379/0`` — maybe another
stack's.  These run the installed console scripts in an empty data directory (and an empty
working directory, so no ``config/hms.env`` is read) while ``MONITOR`` watches the machine's
Redis: nothing may reach database 0.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REDIS_URL

pytestmark = pytest.mark.services

BIN = Path(sys.executable).parent


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMS_")}
    return {**env, "HMS_DATA_DIR": str(data_dir)}


@pytest.fixture
def db0_commands() -> Iterator[list[str]]:
    """Every command the machine's Redis receives for database 0 while the test runs."""
    cli = shutil.which("redis-cli") or str(BIN / "redis-cli")
    host_port = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    monitor = subprocess.Popen(
        [cli, "-h", host or "127.0.0.1", "-p", port or "6379", "monitor"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert monitor.stdout is not None
    assert monitor.stdout.readline().strip() == "OK"  # attached before anything runs
    seen: list[str] = []

    def read() -> None:
        for line in monitor.stdout:  # type: ignore[union-attr]
            if " [0 " in line:
                seen.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        monitor.terminate()
        monitor.wait(10)
        reader.join(5)


def _run(args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_no_stack_no_broker_exits_3_and_talks_to_no_redis(
    tmp_path: Path, db0_commands: list[str]
) -> None:
    data_dir = tmp_path / "var"
    hms = str(BIN / "hms")
    celery = str(BIN / "celery")
    commands = {
        "ping": [hms, "ping"],
        "prove": [hms, "prove", "∀ x : ℝ, x ≤ x + 1"],
        "worker": [celery, "-A", "hms_celery", "worker", "-Q", "prove.z3", "-n", "nb@%h"],
        "beat": [celery, "-A", "hms_celery", "beat", "-s", str(tmp_path / "beat-schedule")],
    }
    for name, args in commands.items():
        done = _run(args, tmp_path, data_dir)
        assert done.returncode == 3, (name, done.stdout, done.stderr)
        message = done.stderr
        assert "no HMS stack" in message, (name, message)
        assert str(data_dir / "stack.json") in message, (name, message)
        assert "hms up" in message and "HMS_BROKER_URL" in message, (name, message)
        assert "Traceback" not in message, (name, message)
    # Nothing was recorded (the store is not even created) and no Redis was asked.
    assert not (data_dir / "hms.db").exists()
    touched = [c for c in db0_commands if "pidbox" in c or "prove.z3" in c or "celeryev" in c]
    assert touched == [], touched


@pytest.mark.parametrize("command", [["audit"], ["approvals"]])
def test_a_store_never_migrated_is_named_with_the_fix(tmp_path: Path, command: list[str]) -> None:
    """Store commands in a data directory where no stack ever ran: exit 3, no traceback, and
    the message says the schema is missing and how to create it (not "unreachable")."""
    data_dir = tmp_path / "var"
    done = subprocess.run(
        [str(BIN / "hms"), *command],
        env=_env(data_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done
    assert "Traceback" not in done.stderr
    assert "no HMS schema" in done.stderr and "hms db upgrade" in done.stderr, done.stderr
    assert "unreachable" not in done.stderr
