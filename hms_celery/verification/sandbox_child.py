"""The prover child process of :mod:`.sandbox`: JSON lines on stdin → JSON lines on stdout.

Run as ``python -m hms_celery.verification.sandbox_child [--memory-mb N]`` by
:class:`~.sandbox.Sandbox` only.  It limits its address space first, then imports the prover
(so the imports count against the limit, as every attempt's work does), runs one attempt to
warm up, and answers requests until its stdin ends or its parent is gone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from .verdict import ProofOutcome, Verdict

#: How often the child checks that its parent is still there.
PARENT_POLL_S = 0.5


def _limit_memory(megabytes: int) -> None:
    import resource

    limit = megabytes * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _watch_parent(parent: int) -> None:
    """Exit as soon as the parent is gone (even in the middle of a Z3 call)."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="sandbox-parent-watch", daemon=True).start()


def _handle(message: dict[str, Any]) -> dict[str, Any]:
    op = message.get("op")
    if op == "prove":
        return {"outcome": _prove(message.get("payload"), message.get("options") or {})}
    if op == "ping":
        return {"pid": os.getpid()}
    # Test hooks (only the parent's own code sends these): misbehave on purpose.
    if op == "sleep":
        deadline = time.monotonic() + float(message.get("seconds", 0))
        while time.monotonic() < deadline:
            pass  # busy, holding the GIL: like a long big-int operation
        return {"slept": True}
    if op == "crash":
        os.kill(os.getpid(), getattr(signal, str(message.get("signal", "SIGSEGV"))))
        time.sleep(10)
    if op == "exit":
        os._exit(int(message.get("status", 3)))
    if op == "alloc":  # the address-space limit: a MemoryError, not a dead machine
        try:
            block = bytearray(int(message.get("mb", 0)) * 1024 * 1024)
        except MemoryError:
            return {"error": "MemoryError"}
        return {"allocated": len(block)}
    return {"error": f"unknown op {op!r}"}


def _prove(payload: Any, options: dict[str, Any]) -> dict[str, Any]:
    # Imported here, after main() has set the memory limit (see the module docstring).
    from hms_celery.errors import InputError
    from hms_celery.verification.request import ProofRequest

    try:
        request = ProofRequest.build(**(payload if isinstance(payload, dict) else {}))
    except InputError as exc:
        return ProofOutcome(Verdict.ERROR, reason=str(exc)).to_json()
    try:
        outcome = request.run(**options)
    except Exception as exc:  # request.run never raises for bad input: this is a bug
        outcome = ProofOutcome(
            Verdict.ERROR,
            reason=f"internal error: {type(exc).__name__}: {exc}",
            backend=request.backend,
        )
    return outcome.to_json()


def _warm_up() -> None:
    """Import everything an attempt needs and run one, so that requests pay none of it."""
    from hms_celery.verification import prover, smtlib  # noqa: F401
    from hms_celery.verification.request import ProofRequest

    ProofRequest.build(statement="∀ x : ℝ, x * x ≥ 0").run(
        timeout=5, max_size=0, rlimit=None, strategy=None
    )


def main(argv: list[str] | None = None) -> int:
    """The child: JSON lines on stdin → JSON lines on stdout; stdout proper goes to stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    memory_mb = int(args[args.index("--memory-mb") + 1]) if "--memory-mb" in args else 0
    if memory_mb > 0:
        _limit_memory(memory_mb)
    parent = os.getppid()
    inbox = os.fdopen(os.dup(0), "rb")
    outbox = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints (Python or C) must not corrupt the protocol
    sys.stdout = sys.stderr
    _watch_parent(parent)

    def send(reply: dict[str, Any]) -> None:
        outbox.write(json.dumps(reply, ensure_ascii=False, default=str).encode() + b"\n")
        outbox.flush()

    try:
        _warm_up()
    except Exception as exc:
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"ready": True, "pid": os.getpid()})
    for line in inbox:
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            send({"id": None, "error": f"bad request: {exc}"})
            continue
        try:
            reply = _handle(message)
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        send({"id": message.get("id"), **reply})
    return 0


if __name__ == "__main__":
    sys.exit(main())
