"""One stack per data directory, through the installed ``hms`` console script.

A second ``hms up`` or ``hms demo`` in a data directory where ``hms up`` runs exits 2 with a
message naming the running stack, leaves its ``stack.json`` alone, and the first stack keeps
serving; a ``stack.json`` left by a dead stack is reported and replaced.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import wait_until

pytestmark = pytest.mark.slow

HMS = str(Path(sys.executable).with_name("hms"))  # the console script


def _env(data_dir: Path) -> dict[str, str]:
    """No HMS settings but the data directory: the embedded stack, nothing from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMS_")}
    return {**env, "HMS_DATA_DIR": str(data_dir), "COLUMNS": "200"}


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def _hms(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HMS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_second_stack_in_one_data_dir_refuses_and_the_first_keeps_working(tmp_path: Path) -> None:
    env = _env(tmp_path)
    stack_file = tmp_path / "stack.json"
    dead = _dead_pid()
    stale = {"broker_url": "redis://127.0.0.1:1/0", "pid": dead, "started_at": "yesterday"}
    stack_file.write_text(json.dumps(stale))

    out_path = tmp_path / "up.out"
    with out_path.open("w") as out:
        first = subprocess.Popen(
            [HMS, "up"], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:

        def up_or_dead() -> bool:
            assert first.poll() is None, out_path.read_text()
            return "HMS is up" in out_path.read_text()

        wait_until(up_or_dead, 180, "the first hms up")
        output = out_path.read_text()
        # The dead stack's record was reported and replaced by the live one's.
        assert f"replacing stale {stack_file}" in output, output
        assert f"pid {dead}" in output and "its process is gone" in output, output
        record = json.loads(stack_file.read_text())
        assert record["pid"] == first.pid
        assert record["broker_url"].startswith("redis://127.0.0.1:")
        before = stack_file.read_bytes()

        for command in (["up"], ["demo", "--json"]):
            second = _hms(env, *command)
            assert second.returncode == 2, (command, second.stdout, second.stderr)
            message = second.stderr
            assert f"another HMS stack is running in {tmp_path}" in message, message
            assert f"pid {first.pid}" in message, message
            assert f"started {record['started_at']}" in message, message
            assert f"broker {record['broker_url']}" in message, message
            assert "Traceback" not in message
            assert stack_file.read_bytes() == before  # never overwritten, never deleted

        # The first stack still serves this directory.
        ping = _hms(env, "ping", "--json")
        assert ping.returncode == 0, ping.stdout + ping.stderr
        report = json.loads(ping.stdout)
        assert report["broker"] == record["broker_url"] and report["agents"], report
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(90)
    assert code == 0, out_path.read_text()
    assert not stack_file.exists()  # its own record, removed by its own stop()
    # …and the lock is free again: the OS-level lock can be taken at once.
    with (tmp_path / "stack.lock").open("r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
