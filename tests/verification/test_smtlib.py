"""SMT-LIB 2 input: ``decide_smtlib``, the proof request, the client and ``hms prove-smt2``.

Valid problems here; hostile ones (``set-option``, ``include``, ``echo``, NUL bytes, unknown
commands, …), which are refused by HMS's reader before Z3 sees them, are in
``test_smtlib_hostile.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from hms_celery import client
from hms_celery.errors import InputError
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.smtlib import decide_smtlib
from hms_celery.verification.verdict import Verdict

UNSAT_LRA = """
(set-logic QF_LRA)
(declare-const x Real)
(declare-const y Real)
(assert (<= 0 x))
(assert (< x y))
(assert (<= (+ x y) 1))
(assert (> (* 2 y) 2))
(check-sat)
"""

# x·y > 1 with x < 2 < y < 3 and x + y < 4: satisfiable, e.g. x = 3/5, y = 5/2.
SAT_NRA = """
(set-logic QF_NRA)
(declare-fun x () Real)
(declare-fun y () Real)
(assert (> (* x y) 1))
(assert (< x 2))
(assert (< 2 y 3))
(assert (< (+ x y) 4))
(assert (> x (/ 1 2)))
(check-sat)
(get-model)
"""

SAT_LIA = """
(set-logic QF_LIA)
(declare-const a Int)
(declare-const b Int)
(declare-const flag Bool)
(assert (= (+ (* 3 a) (* 5 b)) 7))
(assert (> a 10))
(assert (= flag (> b 0)))
(check-sat)
"""


def test_unsat_problem_is_proved_with_stats() -> None:
    out = decide_smtlib(UNSAT_LRA, strategy="smt")
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.reason == "unsat" and out.counterexample is None
    assert out.backend == "z3" and out.strategy is not None and out.strategy["name"] == "smt"
    assert out.stats["assertions"] == 4 and out.stats["checks"][0]["result"] == "unsat"
    assert out.stats["rlimit_count"] > 0 and out.stats["z3_seconds"] >= 0 and out.elapsed_s > 0


@pytest.mark.parametrize("strategy", [None, "z3-default", "nlsat"])
def test_sat_nonlinear_problem_is_refuted_with_an_exact_model(strategy: str | None) -> None:
    out = decide_smtlib(SAT_NRA, strategy=strategy)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.counterexample is not None and set(out.counterexample) == {"x", "y"}
    x, y = (Fraction(out.counterexample[n]) for n in ("x", "y"))
    assert x * y > 1 and x < 2 and 2 < y < 3 and x + y < 4 and x > Fraction(1, 2)


def test_sat_integer_problem_is_refuted_with_an_exact_model() -> None:
    out = decide_smtlib(SAT_LIA)
    assert out.verdict is Verdict.REFUTED, out.reason
    cex = out.counterexample
    assert cex is not None
    a, b = int(cex["a"]), int(cex["b"])
    assert 3 * a + 5 * b == 7 and a > 10
    assert cex["flag"] is (b > 0)


def test_division_by_a_possible_zero_skips_product_bounds_and_stays_exact() -> None:
    # SMT-LIB leaves x/0 unspecified: the product-bounds step would lose that, so it is skipped.
    text = """(declare-const x Real) (declare-const y Real) (declare-const z Real)
    (assert (= y 0)) (assert (< 1 x 5)) (assert (= (/ x y) (+ z 7))) (assert (> (* x z) 3))"""
    out = decide_smtlib(text, strategy="linearise-smt")
    assert out.verdict is Verdict.REFUTED, out.reason
    assert "product-bounds" in out.stats["preprocess_skipped"]
    x, z = Fraction(out.counterexample["x"]), Fraction(out.counterexample["z"])
    assert 1 < x < 5 and x * z > 3


def test_product_bounds_reads_smtlib_negative_constants() -> None:
    # SMT-LIB spells -100 as (- 100.0); the bound -100 ≤ aᵢ must still reach the lemmas
    # (without it the linearised weighted sum below is undecided within the budget).
    n = 12
    decls = "".join(f"(declare-fun {v}{i} () Real)" for v in "wad" for i in range(n))
    hyps = "".join(
        f"(assert (and (< 0.0 w{i}) (<= w{i} 1.0) (<= (- 100.0) a{i}) (<= a{i} 100.0)"
        f" (<= 0.0 d{i}) (<= d{i} 1.0)))"
        for i in range(n)
    )
    total = " ".join(f"w{i}" for i in range(n))
    war = " ".join(f"(* w{i} a{i} d{i})" for i in range(n))
    text = (
        f"{decls}{hyps}(assert (= (+ {total}) 1.0))"
        f"(assert (not (and (<= (- 100.0) (+ {war})) (<= (+ {war}) 100.0))))(check-sat)"
    )
    out = decide_smtlib(text, strategy="linearise-smt", timeout_s=30, rlimit=1_000_000)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.stats["preprocess"] == ["product-bounds"]


def test_irrational_model_is_unknown() -> None:
    out = decide_smtlib("(declare-const x Real) (assert (= (* x x) 2))")
    assert out.verdict is Verdict.UNKNOWN
    assert "irrational" in out.reason


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("(declare-const x Real)\n(assert (> x 1)\n", "line"),
        ("(declare-const x Real)\n(assert (> z 1))\n", "unknown constant z"),
        ("(declare-const x Reall)", "Reall"),
    ],
)
def test_malformed_text_is_an_error_naming_the_problem(text: str, named: str) -> None:
    out = decide_smtlib(text)
    assert out.verdict is Verdict.ERROR
    assert out.reason.startswith("SMT-LIB text does not parse") and named in out.reason


def test_tiny_rlimit_is_unknown() -> None:
    out = decide_smtlib(SAT_NRA, strategy="nlsat", rlimit=1)
    assert out.verdict is Verdict.UNKNOWN, out.reason
    assert "resource limit" in out.reason


def test_script_commands_are_accepted() -> None:
    text = """(set-info :smt-lib-version 2.6)
(set-logic QF_NRA)
(set-info :source |a benchmark
over two lines|)
(set-info :status unsat)
(declare-fun x () Real)
(push 1)
(assert (> x 0))
(pop 1)
(define-fun sq ((a Real)) Real (* a a))
(assert (< (+ (sq x) 1) 0))
(check-sat)
(get-model)
(exit)
(assert true)
"""
    out = decide_smtlib(text)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.stats["assertions"] == 1


def test_request_takes_exactly_one_problem() -> None:
    request = ProofRequest.build(smtlib=UNSAT_LRA, rlimit=10_000_000)
    assert request.run(timeout=10, max_size=3, rlimit=None).verdict is Verdict.PROVED
    with pytest.raises(InputError, match="exactly one"):
        ProofRequest.build(statement="1 = 1", smtlib=UNSAT_LRA)
    with pytest.raises(InputError, match="exactly one"):
        ProofRequest.build()
    with pytest.raises(InputError, match="no assumptions"):
        ProofRequest.build(smtlib=UNSAT_LRA, assumptions=("x > 0",))
    with pytest.raises(InputError):
        request.parse()


def test_client_rejects_unparsable_text_before_enqueueing() -> None:
    with pytest.raises(InputError, match="unknown constant q"):
        client.submit_smtlib_task("bad", b"(assert (> q 0))")
    with pytest.raises(InputError, match="UTF-8"):
        client.submit_smtlib_task("bad", b"\xff(assert true)")


@pytest.mark.services
def test_smtlib_task_through_a_worker(worker) -> None:
    task_id = client.submit_smtlib_task("smt-nra", SAT_NRA, timeout=60)
    status = client.wait_for_result(task_id, timeout=120)
    assert status["verdict"] == "REFUTED", status["reason"]
    x, y = (Fraction(status["counterexample"][n]) for n in ("x", "y"))
    assert x * y > 1 and x < 2 and 2 < y < 3 and x + y < 4
    proved = client.wait_for_result(client.submit_smtlib_task("smt-lra", UNSAT_LRA), timeout=120)
    assert proved["verdict"] == "PROVED" and proved["agent"] == worker.name


@pytest.mark.services
def test_cli_prove_smt2(worker, stack_env, tmp_path: Path) -> None:
    def hms(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hms_celery.cli.main", *args],
            env={**os.environ, **stack_env},
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    problem = tmp_path / "lia.smt2"
    problem.write_text(SAT_LIA)
    done = hms("prove-smt2", str(problem), "--json", "--strategy", "smt", "--timeout", "30")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["verdict"] == "REFUTED" and status["theorem_id"] == "lia"
    assert 3 * int(status["counterexample"]["a"]) + 5 * int(status["counterexample"]["b"]) == 7
    (tmp_path / "unsat.smt2").write_text(UNSAT_LRA)
    shown = hms("prove-smt2", str(tmp_path / "unsat.smt2"))
    assert shown.returncode == 0 and "PROVED" in shown.stdout, shown.stderr
    (tmp_path / "bad.smt2").write_text("(assert (> q 0))")
    bad = hms("prove-smt2", str(tmp_path / "bad.smt2"))
    assert bad.returncode == 2 and "unknown constant q" in bad.stderr
