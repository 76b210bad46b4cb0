"""The Z3 watchdog: one thread per process interrupts a check that overruns its budget."""

from __future__ import annotations

import os
import threading

import z3

from hms_celery.verification import z3_session
from hms_celery.verification.z3_session import _Watchdog, watched_context


def test_a_scheduled_call_runs_and_a_cancelled_one_never_does() -> None:
    dog = _Watchdog()
    ran: list[str] = []
    done = threading.Event()
    keep = dog.schedule(0.05, lambda: (ran.append("kept"), done.set()))
    drop = dog.schedule(5.0, lambda: ran.append("dropped"))
    dog.cancel(drop)
    assert done.wait(30)
    dog.cancel(keep)  # after it ran: nothing happens
    assert ran == ["kept"]
    assert dog._live == {}


def test_calls_run_in_deadline_order_on_one_thread() -> None:
    dog = _Watchdog()
    order: list[tuple[int, str]] = []
    done = threading.Event()
    dog.schedule(0.2, lambda: (order.append((3, threading.current_thread().name)), done.set()))
    dog.schedule(0.1, lambda: order.append((2, threading.current_thread().name)))
    dog.schedule(0.0, lambda: order.append((1, threading.current_thread().name)))
    assert done.wait(30)
    assert [n for n, _ in order] == [1, 2, 3]
    assert {name for _, name in order} == {"z3-watchdog"}


def _hard(ctx: z3.Context) -> z3.Solver:
    """A check Z3 does not finish quickly (no timeout of its own)."""
    x, y, z = z3.Ints("x y z", ctx)
    solver = z3.Solver(ctx=ctx)
    solver.add(x > 1, y > 1, z > 1, x * x * x + y * y * y == z * z * z)
    return solver


def test_an_overrunning_check_is_interrupted_and_its_context_dropped() -> None:
    with watched_context(0.0) as ctx:  # the watchdog fires after the grace period
        result = _hard(ctx).check()
    assert result == z3.unknown
    assert getattr(z3_session._contexts, "ctx", None) is None  # never reused
    with watched_context(30) as again:
        assert again is not ctx
        assert _small(again) == z3.unsat


def test_a_check_that_ends_in_time_keeps_its_context() -> None:
    with watched_context(30) as ctx:
        assert _small(ctx) == z3.unsat
    with watched_context(30) as again:
        assert again is ctx


def _small(ctx: z3.Context) -> z3.CheckSatResult:
    x = z3.Real("x", ctx)
    solver = z3.Solver(ctx=ctx)
    solver.add(x * x < 0)
    return solver.check()


def test_the_watchdog_works_in_a_forked_child() -> None:
    done = threading.Event()
    z3_session._WATCHDOG.schedule(0.0, done.set)  # the parent's thread exists now
    assert done.wait(30)
    pid = os.fork()
    if pid == 0:  # the child: a fresh watchdog thread must serve it
        fired = threading.Event()
        z3_session._WATCHDOG.schedule(0.0, fired.set)
        os._exit(0 if fired.wait(30) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
