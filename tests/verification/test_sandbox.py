"""The prover child process (``sandbox.py``): reused across requests, killed on overrun,
replaced after a crash; the caller always gets an outcome (no services needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from fractions import Fraction

import pytest

from hms_celery.verification import sandbox as sb
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.verdict import Verdict
from tests.support import BOUNDED_ONLY, wait_until

OPTIONS = {"timeout": 10, "max_size": 20, "rlimit": None, "strategy": None}
#: Z3's plain solver ignores its timeout (and the interrupt) on this for a minute or more.
STUBBORN = {"statement": "∀ x : ℝ, x ^ 1501 ≥ -1", "strategy": "z3-default"}


def payload(**fields) -> dict:
    return ProofRequest.build(**fields).model_dump(mode="json")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc): a busy child's keeps rising."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(")")[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie not yet reaped by its parent counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] == "Z"


@pytest.fixture
def box() -> Iterator[sb.Sandbox]:
    sandbox = sb.Sandbox(margin_s=0.5)
    try:
        yield sandbox
    finally:
        sandbox.close()


def test_requests_run_in_one_reused_child(box):
    proved = box.run(payload(statement="∀ x : ℝ, x * x ≥ 0"), **OPTIONS)
    assert proved.verdict is Verdict.PROVED
    pid = box.pid
    assert pid is not None and pid != os.getpid()
    refuted = box.run(payload(statement="x * x * x > x", assumptions=["x > 0"],
                              variables={"x": "ℝ"}), **OPTIONS)  # fmt: skip
    assert refuted.verdict is Verdict.REFUTED
    x = Fraction(refuted.counterexample["x"])
    assert x > 0 and not x**3 > x
    assert box.pid == pid and box.started == 1
    assert refuted.stats["sandbox"]["killed"] is False
    assert refuted.stats["sandbox"]["margin_s"] == 0.5


def test_the_request_timeout_and_options_reach_the_child(box):
    out = box.run(payload(statement="∀ x : ℝ, x * x ≥ 0", timeout=7), **OPTIONS)
    assert out.stats["sandbox"]["limit_s"] == 7
    bad = box.run(payload(statement="∀ x : ℝ, x +* 1"), **OPTIONS)
    assert bad.verdict is Verdict.ERROR and "1:13" in bad.reason
    bounded = box.run(payload(statement=BOUNDED_ONLY),
                      **{**OPTIONS, "max_size": 3})  # fmt: skip
    assert bounded.verdict is Verdict.BOUNDED and bounded.bound == 3


def test_an_overrun_kills_the_child_and_the_next_request_gets_a_fresh_one(box):
    box.run(payload(statement="1 = 1"), **OPTIONS)
    first = box.pid
    out = box.run(payload(**STUBBORN, timeout=1), **OPTIONS)
    assert out.verdict is Verdict.TIMEOUT
    assert out.reason.startswith("the attempt overran its time limit of 1 s and was stopped")
    assert out.stats["sandbox"]["killed"] is True
    assert _gone(first)
    after = box.run(payload(statement="∀ x : ℝ, x * x ≥ 0"), **OPTIONS)
    assert after.verdict is Verdict.PROVED
    assert box.pid not in (None, first) and box.started == 2


def test_a_busy_child_that_holds_the_gil_is_killed_too(box):
    box.call("ping", {}, 5)
    pid = box.pid
    with pytest.raises(sb._Overrun):
        box.call("sleep", {"seconds": 60}, 0.2)
    assert _gone(pid)
    assert box.call("ping", {}, 5)["pid"] == box.pid != pid


@pytest.mark.parametrize(
    ("op", "body", "why"),
    [
        ("crash", {"signal": "SIGSEGV"}, "killed by SIGSEGV"),
        ("crash", {"signal": "SIGKILL"}, "killed by SIGKILL"),
        ("exit", {"status": 3}, "exited with status 3"),
    ],
)
def test_a_dead_child_is_reported_and_replaced(box, op, body, why):
    box.call("ping", {}, 5)
    pid = box.pid
    with pytest.raises(sb._Died, match=why):
        box.call(op, body, 5)
    assert box.run(payload(statement="∀ x : ℝ, x * x ≥ 0"), **OPTIONS).verdict is Verdict.PROVED
    assert box.pid != pid


def test_a_child_killed_during_an_attempt_gives_an_internal_error(box):
    box.call("ping", {}, 5)
    pid = box.pid
    results = []
    thread = threading.Thread(
        target=lambda: results.append(box.run(payload(**STUBBORN, timeout=30), **OPTIONS))
    )
    thread.start()
    busy_from = cpu_seconds(pid)
    wait_until(lambda: cpu_seconds(pid) > busy_from + 0.2, 10, "the child to work on the request")
    os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    thread.join(30)
    assert not thread.is_alive()
    (out,) = results
    assert out.verdict is Verdict.ERROR
    assert out.reason == "internal: the prover process died: killed by SIGKILL (out of memory?)"
    assert box.run(payload(statement="1 = 1"), **OPTIONS).verdict is Verdict.PROVED


def test_a_child_that_died_while_idle_is_replaced_silently(box):
    box.call("ping", {}, 5)
    pid = box.pid
    os.kill(pid, signal.SIGKILL)
    # until every thread of the child has exited it cannot be reaped (a zombie leader with
    # live threads), so wait for what the sandbox itself checks before a request
    wait_until(lambda: box._proc.poll() is not None, 10, "the killed child to be reapable")
    assert box.run(payload(statement="1 = 1"), **OPTIONS).verdict is Verdict.PROVED


def test_an_exception_in_the_caller_while_waiting_kills_the_child(box):
    """Celery's soft time limit raises in the waiting worker: no child is left mid-request."""

    class SoftLimit(Exception):
        pass

    def raise_soft_limit(*_args):
        raise SoftLimit()

    box.call("ping", {}, 5)
    pid = box.pid
    previous = signal.signal(signal.SIGALRM, raise_soft_limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(SoftLimit):
            box.run(payload(**STUBBORN, timeout=30), **OPTIONS)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _gone(pid)
    assert box.run(payload(statement="1 = 1"), **OPTIONS).verdict is Verdict.PROVED


def test_the_child_has_a_memory_limit():
    box = sb.Sandbox(memory_mb=1024)
    try:
        assert box.call("alloc", {"mb": 2048}, 10) == {"id": 1, "error": "MemoryError"}
        assert box.call("alloc", {"mb": 16}, 10)["allocated"] == 16 * 1024 * 1024
        with open(f"/proc/{box.pid}/limits") as f:
            line = next(x for x in f if x.startswith("Max address space"))
        assert str(1024 * 1024 * 1024) in line
    finally:
        box.close()


def test_a_changed_setting_starts_a_new_child(box, monkeypatch):
    box.call("ping", {}, 5)
    pid = box.pid
    box.call("ping", {}, 5)
    assert box.pid == pid
    monkeypatch.setenv("HMS_BOUNDED_MAX_SIZE", "7")
    box.call("ping", {}, 5)
    assert box.pid != pid


def test_the_child_exits_when_its_parent_dies():
    script = textwrap.dedent(
        """
        import os, sys
        from hms_celery.verification.sandbox import Sandbox
        box = Sandbox()
        box.call("ping", {}, 30)
        print(box.pid, flush=True)
        box.call("sleep", {"seconds": 0.05}, 5)
        import threading
        from tests.verification.test_sandbox import cpu_seconds
        from tests.support import wait_until
        busy_from = cpu_seconds(box.pid)
        threading.Thread(target=box.call, args=("sleep", {"seconds": 120}, 300)).start()
        wait_until(lambda: cpu_seconds(box.pid) > busy_from + 0.1, 10, "the child to be busy")
        os._exit(0)  # while the child is busy: it must notice on its own
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    child = int(proc.stdout.split()[0])
    wait_until(lambda: _gone(child), 10, "the orphaned prover child to exit")


def test_run_request_reuses_a_child_per_caller_and_can_run_in_process():
    request = ProofRequest.build(statement="∀ x : ℝ, x * x ≥ 0")
    first = sb.run_request(request, sandbox=True, **OPTIONS)
    second = sb.run_request(request, sandbox=True, **OPTIONS)
    assert first.verdict is second.verdict is Verdict.PROVED
    assert "sandbox" in first.stats and "sandbox" in second.stats
    assert len(sb._idle) == 1  # one caller: one child, reused
    inline = sb.run_request(request, sandbox=False, **OPTIONS)
    assert inline.verdict is Verdict.PROVED and "sandbox" not in inline.stats


def test_pipelined_requests_answer_in_order_as_one_by_one(box):
    """run_many writes every request at once; the answers are the ones of single runs."""
    items = [
        (payload(statement="∀ x : ℝ, x * x ≥ 0"), OPTIONS),
        (payload(statement="x * x * x > x", assumptions=["x > 0"], variables={"x": "ℝ"}), OPTIONS),
        (payload(statement="∀ x : ℝ, x +* 1"), OPTIONS),
        (payload(statement=BOUNDED_ONLY), {**OPTIONS, "max_size": 3}),
    ]
    piped = list(box.run_many(items))
    alone = [box.run(p, **o) for p, o in items]
    assert [o.verdict for o in piped] == [o.verdict for o in alone] == [
        Verdict.PROVED, Verdict.REFUTED, Verdict.ERROR, Verdict.BOUNDED,
    ]  # fmt: skip
    assert piped[1].counterexample == alone[1].counterexample
    assert piped[2].reason == alone[2].reason and "1:13" in piped[2].reason
    assert box.started == 1 and all(o.stats["sandbox"]["killed"] is False for o in piped)


def test_a_pipelined_overrun_times_out_that_attempt_only(box):
    """Each request keeps its own limit; the ones after an overrun go to a fresh child."""
    items = [
        (payload(statement="1 = 1"), OPTIONS),
        (payload(**STUBBORN, timeout=1), OPTIONS),
        (payload(statement="∀ x : ℝ, x * x ≥ 0"), OPTIONS),
        (payload(statement="x + 1 < x", variables={"x": "ℤ"}), OPTIONS),
    ]
    box.call("ping", {}, 5)
    first = box.pid
    outcomes = list(box.run_many(items))
    assert [o.verdict for o in outcomes] == [
        Verdict.PROVED, Verdict.TIMEOUT, Verdict.PROVED, Verdict.REFUTED,
    ]  # fmt: skip
    assert outcomes[1].reason.startswith("the attempt overran its time limit of 1 s")
    assert outcomes[1].stats["sandbox"]["killed"] is True
    assert _gone(first) and box.pid != first and box.started == 2


def test_a_pipelined_child_that_dies_fails_that_attempt_and_the_rest_run(box):
    box.call("ping", {}, 5)
    pid = box.pid
    items = [
        (payload(**STUBBORN, timeout=30), OPTIONS),
        (payload(statement="∀ x : ℝ, x * x ≥ 0"), OPTIONS),
    ]
    outcomes = box.run_many(items)

    def kill_when_busy() -> None:
        busy_from = cpu_seconds(pid)
        wait_until(lambda: cpu_seconds(pid) > busy_from + 0.2, 10, "the child to be busy")
        os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    first = next(outcomes)
    killer.join(10)
    assert first.verdict is Verdict.ERROR
    assert first.reason == "internal: the prover process died: killed by SIGKILL (out of memory?)"
    assert next(outcomes).verdict is Verdict.PROVED
    assert box.pid != pid


def test_a_pipeline_abandoned_half_way_leaves_no_answer_behind(box):
    """Stopping after the first answer kills the child: the next request can never read an
    answer meant for an abandoned one."""
    items = [(payload(statement="1 = 1"), OPTIONS), (payload(**STUBBORN, timeout=30), OPTIONS)]
    box.call("ping", {}, 5)
    pid = box.pid
    outcomes = box.run_many(items)
    assert next(outcomes).verdict is Verdict.PROVED
    outcomes.close()
    assert _gone(pid)
    out = box.run(payload(statement="x + 1 < x", variables={"x": "ℤ"}), **OPTIONS)
    assert out.verdict is Verdict.REFUTED


def test_a_large_pipeline_neither_blocks_nor_loses_an_answer(box):
    """Requests larger than a pipe's buffer are written while the answers are read."""
    big = "∀ x : ℝ, " + " + ".join(["x"] * 4000) + " ≥ " + " + ".join(["x"] * 4000)
    items = [(payload(statement=big), OPTIONS) for _ in range(12)]
    outcomes = list(box.run_many(items))
    assert len(outcomes) == 12 and {o.verdict for o in outcomes} == {Verdict.PROVED}


def test_run_requests_pipelines_in_the_child_or_runs_in_process():
    requests = [
        (ProofRequest.build(statement="∀ x : ℝ, x * x ≥ 0"), OPTIONS),
        (ProofRequest.build(statement="x + 1 < x", variables={"x": "ℤ"}), OPTIONS),
    ]
    piped = list(sb.run_requests(requests, sandbox=True))
    inline = list(sb.run_requests(requests, sandbox=False))
    assert [o.verdict for o in piped] == [o.verdict for o in inline]
    assert [o.verdict for o in piped] == [Verdict.PROVED, Verdict.REFUTED]
    assert all("sandbox" in o.stats for o in piped) and not any(
        "sandbox" in o.stats for o in inline
    )
