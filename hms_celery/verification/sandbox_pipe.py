"""The JSON-lines pipe to one prover child (:mod:`.sandbox`): requests written as the child's
stdin takes them, answers read from its stdout, both by a deadline.

One selector per child, on both pipes (an epoll object per message cost more system calls
than the message itself): the child's stdout always, its stdin only while requests wait for
room.  Writing and reading go together, so a large pipelined request never waits on a child
that is itself waiting for its answers to be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import time
from typing import Any

__all__ = ["ChildPipe", "Died", "Overrun"]


class Overrun(Exception):
    """The deadline passed before the child's next line."""


class Died(Exception):
    """The child is gone, or broke the protocol (the message says how)."""


class ChildPipe:
    """Non-blocking JSON lines to and from ``proc`` (a child with piped stdin and stdout)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._in_fd, self._out_fd = proc.stdin.fileno(), proc.stdout.fileno()
        os.set_blocking(self._in_fd, False)
        os.set_blocking(self._out_fd, False)
        self._outbox = bytearray()  # requests the child's stdin has not taken yet
        self._buffer = b""  # what the child wrote past its last complete line
        self._selector: selectors.BaseSelector = selectors.DefaultSelector()
        self._selector.register(self._out_fd, selectors.EVENT_READ)
        self._writing = False  # whether stdin is registered (requests wait for room)

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message`` as one line; it is written as the pipe takes it (a child that is
        gone is reported by :meth:`next_message`, never here)."""
        self._outbox += json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        self._outbox += b"\n"
        with contextlib.suppress(Died):
            self._flush()

    def next_message(self, deadline: float) -> dict[str, Any]:
        """Write what is queued and read until the child's next line, by ``deadline``
        (:class:`Overrun` after it, :class:`Died` if the child is gone or sends garbage)."""
        while b"\n" not in self._buffer:
            self._flush()
            if bool(self._outbox) != self._writing:
                if self._writing:
                    self._selector.unregister(self._in_fd)
                else:
                    self._selector.register(self._in_fd, selectors.EVENT_WRITE)
                self._writing = not self._writing
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Overrun()
            for key, _ in self._selector.select(remaining):
                if key.fd == self._out_fd:
                    self._read()
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise Died(f"protocol error: {exc}: {line[:200]!r}") from None
        if not isinstance(message, dict):
            raise Died(f"protocol error: {line[:200]!r}")
        return message

    def close(self) -> None:
        """Forget what is queued and stop watching the pipes (the caller closes them)."""
        self._outbox.clear()
        self._buffer = b""
        self._selector.close()

    def _flush(self) -> None:
        while self._outbox:  # a pipe with room takes the requests at once: no select
            try:
                del self._outbox[: os.write(self._in_fd, self._outbox)]
            except BlockingIOError:
                return
            except OSError as exc:  # BrokenPipeError: the child is gone
                raise Died(f"its input is closed ({exc})") from None

    def _read(self) -> None:
        try:
            chunk = os.read(self._out_fd, 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            raise Died("its output ended")
        self._buffer += chunk
