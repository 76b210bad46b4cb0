"""One embedded stack per data directory: an ``flock`` on ``<data_dir>/stack.lock``.

``hms up`` / ``hms demo`` take the lock before they start anything and hold it for the
stack's whole life; the operating system releases it when the process ends, however it ends,
so a lock that can be taken means no stack runs here — and a ``stack.json`` found then is
stale.  The lock file holds its owner's pid, start time and (once known) broker URL, so a
second stack can name the running one even before that one has written ``stack.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from hms_celery.errors import InputError
from hms_celery.store.db import safe_url

LOCK_NAME = "stack.lock"


class StackRunningError(InputError):
    """Another stack holds this data directory's lock (exit code 2: use another directory,
    or stop that stack first)."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.holder = holder
        super().__init__(
            f"another HMS stack is running in {data_dir}: {describe(holder)}; stop it first "
            "(Ctrl-C in its terminal) or give this one its own HMS_DATA_DIR"
        )


def describe(info: dict[str, Any]) -> str:
    """``pid 123, started 2026-12-01T15:00:00+00:00, broker redis://127.0.0.1:40123/0``."""
    broker = info.get("broker_url")
    return ", ".join(
        [
            f"pid {info.get('pid', '?')}",
            f"started {info.get('started_at', '?')}",
            f"broker {safe_url(broker) if broker else '(still starting)'}",
        ]
    )


def pid_alive(pid: object) -> bool:
    """Whether a process with this pid exists on this machine."""
    return isinstance(pid, int) and pid > 0 and psutil.pid_exists(pid)


class StackLock:
    """The data directory's stack lock (``flock``: held by an open file, freed at exit)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self.info: dict[str, Any] = {}
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StackRunningError` naming the stack that has it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise StackRunningError(self.data_dir, holder) from None
        self._fd = fd
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self.record(pid=os.getpid(), started_at=started)

    def record(self, **info: Any) -> None:
        """Add ``info`` (e.g. the broker URL) to what the lock file says about its owner."""
        if self._fd is None:
            return
        self.info.update(info)
        data = json.dumps(self.info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Let the next stack in (the file stays: deleting it would race a new owner)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
