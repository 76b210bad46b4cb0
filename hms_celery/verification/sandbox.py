"""Run proof attempts in a kill-able child process: every attempt ends within its time limit.

The in-process bounds are not enough: Z3 does not always honour ``ctx.interrupt()`` promptly
(a nonlinear problem can keep it busy for a minute past a 5 s timeout), and a big-integer
operation in Python cannot be interrupted at all.  So a worker process runs each attempt —
parse, compile, solve, confirm, exact re-check — in a **persistent child process** (a fresh
interpreter: ``python -m hms_celery.verification.sandbox_child``; Celery's prefork children are
daemonic and may not use :mod:`multiprocessing`), speaking JSON lines over its stdin/stdout
(JSON only, never pickle):

* request ``{"id": n, "op": "prove", "payload": {...}, "options": {...}}`` — ``payload`` is
  the validated :class:`~.request.ProofRequest` as JSON, ``options`` the keyword arguments of
  :meth:`~.request.ProofRequest.run` (timeout, max_size, rlimit, strategy, confirm …);
* reply ``{"id": n, "outcome": {...}}`` (``ProofOutcome.to_json()``).

The parent waits at most the attempt's time limit ``T`` plus :data:`KILL_MARGIN_S`.  Inside
the child the usual in-process bounds act first (Z3's own timeout, then the watchdog's
interrupt 0.5 s later; a PROVED verdict's confirmation gets at least
``confirm.CONFIRM_MIN_S`` = 1 s); the kill is the backstop:

* **overrun** — the child is SIGKILLed and the outcome is TIMEOUT ("the attempt overran its
  time limit of T s and was stopped");
* **crash** — the child died (a segfault, the kernel's OOM killer, an exit): ERROR
  "internal: the prover process died: …";

either way a fresh child is started right away (in the background: its start-up, ~0.3 s, is
not part of any attempt's limit) and the worker process itself never dies.  The child's
address space is limited (``RLIMIT_AS``, setting ``HMS_PROVER_SANDBOX_MEMORY_MB``, default
4096) so that hostile input cannot take the machine down.  It inherits the worker's
environment and working directory, hence the same settings; a change of any ``HMS_*``
variable starts a new child.  It exits when the worker process goes away (end of its stdin,
or a new parent process id).

:func:`run_request` is what the tasks call, and :func:`run_requests` what a batch calls: its
requests are pipelined (written at once, answered in order, so the child goes from one proof
to the next without waiting), each keeping its own limit.  The pipe itself is
:mod:`.sandbox_pipe`; the outcomes made of an overrun or a death, :mod:`.sandbox_outcomes`.
``HMS_PROVER_SANDBOX=false`` runs attempts in the worker process (debugging).
:func:`~.prover.prove` itself stays in-process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from .sandbox_outcomes import answered, attempt_limit, internal, overrun
from .sandbox_pipe import ChildPipe
from .sandbox_pipe import Died as _Died
from .sandbox_pipe import Overrun as _Overrun
from .verdict import ProofOutcome

__all__ = [
    "DEFAULT_MEMORY_MB",
    "KILL_MARGIN_S",
    "READY_TIMEOUT_S",
    "Sandbox",
    "run_request",
    "run_requests",
]

#: Seconds the parent waits past an attempt's time limit before it kills the child.  It
#: covers the watchdog's grace (0.5 s), a confirmation's minimum (1 s) and the JSON exchange.
KILL_MARGIN_S = 2.0
#: Default address-space limit of the child, in MiB (``HMS_PROVER_SANDBOX_MEMORY_MB``).
DEFAULT_MEMORY_MB = 4096
#: Seconds a new child may take to start (imports and a warm-up proof, ~0.3 s normally).
READY_TIMEOUT_S = 60.0

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class SandboxError(RuntimeError):
    """The child could not be started or broke the protocol (the message says how)."""


def _env_fingerprint() -> tuple[Any, ...]:
    """The working directory and the ``HMS_*`` environment the child was started with (read
    on every request: ``os.environ``'s raw dict, since decoding every variable cost ~0.2 ms)."""
    raw = getattr(os.environ, "_data", None)
    if isinstance(raw, dict):
        items = sorted((k, v) for k, v in raw.items() if k[:4] in (b"HMS_", "HMS_"))
    else:  # pragma: no cover - another os.environ implementation
        items = sorted((k, v) for k, v in os.environ.items() if k[:4] == "HMS_")
    return (os.getcwd(), tuple(items))


class Sandbox:
    """One persistent prover child process (started on first use, replaced after a kill).

    Not thread-safe: one attempt at a time (:func:`run_request` keeps one per concurrent
    caller)."""

    def __init__(
        self, *, memory_mb: int | None = DEFAULT_MEMORY_MB, margin_s: float = KILL_MARGIN_S
    ) -> None:
        self.memory_mb = memory_mb
        self.margin_s = margin_s
        self.owner_pid = os.getpid()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._pipe: ChildPipe | None = None  # the JSON lines to and from the current child
        self._ids = 0  # the last request's id
        self._answered = 0  # the last answered request's id
        self._fingerprint: tuple[Any, ...] | None = None
        self.started = 0  # children started (tests and stats)

    # ------------------------------------------------------------------ lifecycle

    @property
    def pid(self) -> int | None:
        """The current child's pid (None before the first start or after a kill)."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start a child now (without waiting for it to be ready)."""
        self._kill()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p
        )
        argv = [sys.executable, "-m", "hms_celery.verification.sandbox_child"]
        if self.memory_mb:
            argv += ["--memory-mb", str(int(self.memory_mb))]
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=env
        )
        self._pipe = ChildPipe(self._proc)
        self._ready = False
        self._fingerprint = _env_fingerprint()
        self.started += 1

    def close(self) -> None:
        """Stop the child (it exits at the end of its input; killed if it does not)."""
        self._drop_pipe()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()

    def _kill(self) -> None:
        self._drop_pipe()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # stuck in the kernel: reap later
            proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def _drop_pipe(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        self._answered = self._ids  # nothing is owed by, or to, a child that is gone

    def _ensure_ready(self) -> None:
        if self._proc is not None and (
            self._proc.poll() is not None or self._fingerprint != _env_fingerprint()
        ):
            self._kill()  # died while idle, or the settings changed
        if self._proc is None:
            self.start()
        if self._ready:
            return
        try:
            assert self._pipe is not None
            hello = self._pipe.next_message(time.monotonic() + READY_TIMEOUT_S)
        except _Overrun:
            self._kill()
            raise SandboxError(
                f"the prover process did not start in {READY_TIMEOUT_S:g} s"
            ) from None
        except _Died as exc:
            self._kill()
            raise SandboxError(f"the prover process did not start: {exc}") from None
        if not hello.get("ready"):
            self._kill()
            raise SandboxError(f"the prover process did not start: {hello.get('error', hello)}")
        self._ready = True

    # ------------------------------------------------------------------ requests

    def run(
        self, payload: dict[str, Any], *, budget_s: float | None = None, **options: Any
    ) -> ProofOutcome:
        """Run the proof request ``payload`` (a ``ProofRequest`` as JSON) with ``options``
        (:meth:`ProofRequest.run`'s keyword arguments) in the child; never raises for what
        happens in the child.

        ``budget_s``: the attempt's time limit (default: the request's own ``timeout``, else
        ``options["timeout"]``); the child is killed ``margin_s`` after it."""
        (outcome,) = self.run_many([(payload, {**options, "budget_s": budget_s})])
        return outcome

    def run_many(
        self, items: Sequence[tuple[dict[str, Any], dict[str, Any]]]
    ) -> Generator[ProofOutcome, None, None]:
        """Run several proof requests, ``(payload, options)`` as :meth:`run` takes them
        (``options`` may hold its ``budget_s``), and yield their outcomes in order.

        The requests are *pipelined*: all are written at once and the child answers them one
        after another, so it goes from one proof to the next without waiting for this
        process.  Each keeps its own limit: the child is killed ``margin_s`` after the limit
        of the attempt it is on (counted from the answer before), that attempt's outcome is
        its TIMEOUT (or ERROR, if the child died), and the requests after it go to a fresh
        child.  An exception while waiting (a soft time limit), or an iteration abandoned
        half-way, kills the child: no answer to an abandoned request is ever read as
        another's."""
        todo = [(payload, dict(options)) for payload, options in items]
        while todo:
            limits = [attempt_limit(payload, options) for payload, options in todo]
            try:
                self._ensure_ready()  # a new child's start-up is not part of any limit
            except SandboxError as exc:
                for payload, _ in todo:
                    yield internal(payload, str(exc))
                return
            failed: int | None = None
            try:  # from the first request on: an exception leaves no request unanswered
                ids = [
                    self._send("prove", {"payload": payload, "options": _without_budget(options)})
                    for payload, options in todo
                ]
                start = time.monotonic()
                for k, (payload, _) in enumerate(todo):
                    try:
                        reply = self._receive(ids[k], start + limits[k] + self.margin_s)
                    except _Overrun:
                        failed, outcome = k, overrun(payload, limits[k], self.margin_s, start)
                    except _Died as exc:
                        what = f"the prover process died: {self._death(str(exc))}"
                        failed, outcome = k, internal(payload, what)
                    else:
                        outcome = answered(reply, payload, limits[k], self.margin_s, start)
                    if failed is not None:
                        self._kill()
                        self._respawn()
                        yield outcome
                        break
                    start = time.monotonic()  # the child is on the next request already
                    yield outcome
            finally:
                if self._proc is not None and self._answered < self._ids:
                    self._kill()  # requests left unanswered (an exception, or abandoned)
                    self._respawn()
            todo = [] if failed is None else todo[failed + 1 :]

    def call(self, op: str, body: dict[str, Any], limit_s: float) -> dict[str, Any]:
        """One request/reply; raises :class:`_Overrun` (child killed after ``limit_s`` +
        margin) or :class:`_Died` (child gone; replaced).  Any exception leaves no child
        half-way through a request: it is killed and a fresh one started."""
        self._ensure_ready()
        request = self._send(op, body)
        done = False
        try:
            reply = self._receive(request, time.monotonic() + limit_s + self.margin_s)
            done = True
            return reply
        except _Died as exc:
            raise _Died(self._death(str(exc))) from None
        finally:
            if not done:  # overrun, death, or an exception here (e.g. a soft time limit)
                self._kill()
                self._respawn()

    def _respawn(self) -> None:
        try:
            self.start()  # in the background: the next request waits for it to be ready
        except OSError:
            self._proc = None  # the next request tries again

    def _death(self, what: str) -> str:
        proc = self._proc
        if proc is None:
            return what
        try:
            code = proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return what
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        return f"exited with status {code}"

    # ------------------------------------------------------------------ JSON lines

    def _send(self, op: str, body: dict[str, Any]) -> int:
        """Queue one request for the child (written as the pipe takes it); its id."""
        assert self._pipe is not None
        self._ids += 1
        self._pipe.send({"id": self._ids, "op": op, **body})
        return self._ids

    def _receive(self, request: int, deadline: float) -> dict[str, Any]:
        """The child's answer to ``request`` (answers come in the order of the requests)."""
        assert self._pipe is not None
        reply = self._pipe.next_message(deadline)
        if reply.get("id") != request:
            raise _Died(f"protocol error: reply {str(reply)[:200]} to request {request}")
        self._answered = request
        return reply


def _without_budget(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "budget_s"}


# --------------------------------------------------------------------------- per process

_idle: list[Sandbox] = []
_lock = threading.Lock()


def _forget_after_fork() -> None:
    """A forked process does not own its parent's children: drop them without a word."""
    global _lock
    _lock = threading.Lock()
    _idle.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def _close_all() -> None:
    with _lock:
        boxes = list(_idle)
        _idle.clear()
    for box in boxes:
        if box.owner_pid == os.getpid():
            box.close()


def _acquire(memory_mb: int | None) -> Sandbox:
    with _lock:
        while _idle:
            box = _idle.pop()
            if box.owner_pid == os.getpid() and box.memory_mb == memory_mb:
                return box
            if box.owner_pid == os.getpid():
                box.close()
    return Sandbox(memory_mb=memory_mb)


def _release(box: Sandbox) -> None:
    with _lock:
        _idle.append(box)


def run_request(request: Any, *, sandbox: bool | None = None, **options: Any) -> ProofOutcome:
    """Run the :class:`~.request.ProofRequest` ``request`` with ``options`` (its ``run``
    keyword arguments) in this process's prover child (``HMS_PROVER_SANDBOX``, default on),
    or in-process when the setting (or ``sandbox``) is false.

    Each concurrent caller gets its own child; children are reused across requests."""
    (outcome,) = run_requests([(request, options)], sandbox=sandbox)
    return outcome


def run_requests(
    items: Sequence[tuple[Any, dict[str, Any]]], *, sandbox: bool | None = None
) -> Generator[ProofOutcome, None, None]:
    """Run several ``(request, options)`` pairs as :func:`run_request` runs one, and yield
    their outcomes in order: pipelined in this process's prover child
    (:meth:`Sandbox.run_many`: each attempt keeps its own limit), or one after another
    in-process when the setting (or ``sandbox``) is false."""
    from hms_celery.settings import get_settings

    settings = get_settings()
    if not (settings.prover_sandbox if sandbox is None else sandbox):
        for request, options in items:
            yield request.run(**options)
        return
    jobs = []
    for request, options in items:
        strategy = options.get("strategy")
        if strategy is not None and hasattr(strategy, "to_json"):
            options = {**options, "strategy": strategy.to_json()}
        jobs.append((request.model_dump(mode="json"), options))
    box = _acquire(settings.prover_sandbox_memory_mb or None)
    try:
        yield from box.run_many(jobs)
    finally:
        _release(box)
