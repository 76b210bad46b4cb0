"""Z3 solver sessions: a watched context, one check of a list of assertions, and what an
undecided check means.

The public session API every caller of Z3 in verification uses (the prover, quantifier
elimination, SMT-LIB problems and their model re-check, the ``z3`` solver backend):

* :func:`watched_context` — the thread's Z3 context (or a fresh one), interrupted by a
  watchdog if Z3 overruns its own timeout;
* :func:`solve` — one check with a strategy's solver, as a :class:`Check`;
* :func:`classify_unknown` and :func:`stopped` — the verdict and reason of a check (or a
  bounded search) that did not decide;
* :class:`Z3Backend` — the same check behind the :class:`~.solvers.SolverBackend` interface.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import z3

from .solvers import SolverAnswer, Status
from .strategy import Strategy, strategy_from_any
from .verdict import ProofOutcome, Verdict
from .z3_model import Z3ModelValues
from .z3_terms import Compiled

#: Grace period after the budget before the watchdog interrupts Z3 (its own timeout first).
WATCHDOG_GRACE_S = 0.5


@dataclass
class Check:
    """The result of one Z3 check (one size assignment)."""

    status: str  # "unsat" | "sat" | "unknown"
    reason: str = ""
    model: Any = None  # a z3.ModelRef, or another solver's ModelValues
    rlimit_used: int | None = None
    seconds: float = 0.0
    compiled: Compiled | None = None
    assertions: list[z3.BoolRef] | None = None  # what was checked (after preprocessing)


_contexts = threading.local()


def _thread_context() -> z3.Context:
    """This thread's Z3 context, created once: making and deleting a context costs ~2 ms,
    more than a small proof. Terms are reference-counted, so each call's are freed when it
    returns; a context is never shared between threads."""
    ctx = getattr(_contexts, "ctx", None)
    if ctx is None:
        ctx = _contexts.ctx = z3.Context()
    return ctx


class _Watchdog:
    """One daemon thread per process that calls each scheduled function at its deadline,
    unless it was cancelled first.  A ``threading.Timer`` per check cost a thread start (and
    the wait for it to run) on every check: ~0.3–1 ms per proof on a loaded machine.

    The function runs with the lock held, so :meth:`cancel` and the call exclude each other:
    once ``cancel`` has returned, the function has either run or never will."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked child has no thread

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay_s: float, function: Callable[[], None]) -> int:
        """Call ``function`` in ``delay_s`` seconds; returns the token to cancel it with."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="z3-watchdog", daemon=True)
                self._thread.start()
            token = next(self._ids)
            self._live[token] = function
            heapq.heappush(self._heap, (time.monotonic() + delay_s, token))
            if self._heap[0][1] == token:  # the thread sleeps until an earlier deadline else
                self._cond.notify()
            return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._live.pop(token, None)

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # cancelled
                if not self._heap:
                    cond.wait()
                    continue
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                function = self._live.pop(token)
                with contextlib.suppress(Exception):  # an interrupt must not kill the thread
                    function()


_WATCHDOG = _Watchdog()


@contextmanager
def watched_context(timeout_s: float, *, fresh: bool = False) -> Iterator[z3.Context]:
    """This thread's Z3 context, interrupted by a watchdog if Z3 overruns ``timeout_s`` (plus
    a grace period: Z3's own timeout should fire first); an interrupted context is dropped.

    ``fresh``: a new context for this call only.  Z3's search depends on the terms a context
    already holds (their ids order its heuristics), so only a fresh context makes a run under
    a deterministic ``rlimit`` budget give the same answer every time."""
    ctx = z3.Context() if fresh else _thread_context()
    fired = threading.Event()

    def _interrupt() -> None:
        fired.set()
        ctx.interrupt()

    token = _WATCHDOG.schedule(max(timeout_s, 0.0) + WATCHDOG_GRACE_S, _interrupt)
    try:
        yield ctx
    finally:
        _WATCHDOG.cancel(token)  # after this, _interrupt has run or never will
        if fired.is_set() and not fresh:  # an interrupted context is not reused
            _contexts.ctx = None


def solve(
    assertions: list[z3.BoolRef],
    strat: Strategy,
    ctx: z3.Context,
    t0: float,
    remaining_s: float,
    rlimit: int | None,
) -> Check:
    """One check of ``assertions`` with ``strat``'s solver (no preprocessing): the time left
    is ``remaining_s`` from ``t0``, which also starts the check's ``seconds``."""
    solver = strat.build(ctx)
    remaining_ms = int((remaining_s - (time.monotonic() - t0)) * 1000)
    if remaining_ms <= 0:
        return Check("unknown", "timeout", seconds=time.monotonic() - t0)
    solver.set("timeout", remaining_ms)
    if rlimit:
        solver.set("rlimit", int(rlimit))
    solver.add(*assertions)
    before = _rlimit_count(solver) or 0  # the context's counter is cumulative
    try:
        result = solver.check()
        reason = solver.reason_unknown() if result == z3.unknown else ""
    except z3.Z3Exception as exc:
        result, reason = z3.unknown, f"Z3 exception: {exc}"
    after = _rlimit_count(solver)
    used = None if after is None else after - before
    seconds = time.monotonic() - t0
    if result == z3.unsat:
        if not strat.sound_for_unsat:
            return Check(
                "unknown",
                "unsat from an under-approximating tactic is not a proof",
                rlimit_used=used,
                seconds=seconds,
            )
        return Check("unsat", rlimit_used=used, seconds=seconds)
    if result == z3.sat:
        return Check("sat", model=solver.model(), rlimit_used=used, seconds=seconds)
    return Check("unknown", reason or "unknown", rlimit_used=used, seconds=seconds)


def _rlimit_count(solver: z3.Solver) -> int | None:
    try:
        st = solver.statistics()
        names = list(st.keys())
        if "rlimit count" in names:
            return int(st.get_key_value("rlimit count"))
    except z3.Z3Exception:
        return None
    return None


def classify_unknown(
    check: Check, deadline: float, rlimit: int | None, *, solver: str = "Z3"
) -> Verdict:
    """TIMEOUT or UNKNOWN for an undecided ``check`` (an exhausted ``rlimit`` is UNKNOWN: a
    deterministic budget, not time, ran out); rewrites ``check.reason`` for an rlimit."""
    reason = check.reason.lower()
    if rlimit and (
        "resource" in reason or (check.rlimit_used is not None and check.rlimit_used >= rlimit)
    ):
        check.reason = f"resource limit exhausted (rlimit {rlimit}; {solver}: {check.reason})"
        return Verdict.UNKNOWN
    if time.monotonic() >= deadline - 0.05 or reason in ("timeout", "canceled", "interrupted"):
        return Verdict.TIMEOUT
    return Verdict.UNKNOWN


def describe_sizes(assign: dict[str, int]) -> str:
    """``"n=2, m=0"`` for a size assignment (``"the statement"`` for none)."""
    return ", ".join(f"{k}={v}" for k, v in assign.items()) or "the statement"


def stopped(
    sizes: list[str],
    level_done: int,
    assign: dict[str, int],
    verdict: Verdict,
    why: str,
    stats: dict[str, Any],
    *,
    solver: str = "Z3",
) -> ProofOutcome:
    """The outcome of a search stopped undecided (``verdict``: TIMEOUT or UNKNOWN) at
    ``assign``: BOUNDED when every size up to ``level_done`` was decided, else ``verdict``."""
    what = "timed out" if verdict is Verdict.TIMEOUT else "undecided"
    if sizes and level_done >= 0:
        names = ", ".join(sizes)
        return ProofOutcome(
            Verdict.BOUNDED,
            reason=(
                f"holds for every {names} ≤ {level_done}; {describe_sizes(assign)} {what} "
                f"({why}); not a proof for all {names}"
            ),
            bound=level_done,
            stats=stats,
        )
    where = f" at {describe_sizes(assign)}" if sizes else ""
    return ProofOutcome(verdict, reason=f"{solver} {what}{where}: {why}", stats=stats)


class Z3Backend:
    """Z3 with a :class:`~.strategy.Strategy`: exactly the prover's own check (:func:`solve`).

    The solver is built in the assertions' context (``ctx`` for an empty list)."""

    name = "z3"

    def __init__(
        self,
        strategy: Strategy | dict[str, Any] | str | None = None,
        ctx: z3.Context | None = None,
    ) -> None:
        self.strategy = strategy_from_any(strategy)
        self.ctx = ctx
        self.version = z3.get_version_string()

    def check(
        self, assertions: list[z3.BoolRef], *, timeout_s: float, rlimit: int | None = None
    ) -> SolverAnswer:
        """Decide ``assertions`` with :func:`solve` (see :class:`~.solvers.SolverBackend`)."""
        ctx = assertions[0].ctx if assertions else (self.ctx or z3.main_ctx())
        t0 = time.monotonic()
        check = solve(list(assertions), self.strategy, ctx, t0, timeout_s, rlimit)
        values = Z3ModelValues(check.model) if check.model is not None else None
        return SolverAnswer(
            cast(Status, check.status),  # solve answers one of the three
            check.reason,
            check.seconds,
            check.rlimit_used,
            values=values,
            model=check.model,
        )
