"""SMT-LIB problems with quantifiers, the plain-solver slice and cvc5 on SMT-LIB.

A satisfiable problem whose model cannot be evaluated against a ``∀`` assertion is REFUTED
only when each such assertion, with the model substituted, is *proved* valid (and cvc5
confirms it); a model whose obligation is false or unproved is never REFUTED.  The default
strategy is never weaker than Z3's plain solver (a slice of it, recorded in ``stats``).

The last test decides every problem of ``../shared/smtlib`` (when that folder exists) and
checks that no verdict contradicts the file's status."""

from __future__ import annotations

import json
import os
import time
from fractions import Fraction
from pathlib import Path

import pytest
import z3

from hms_celery.verification import smtlib_model
from hms_celery.verification.cvc5_backend import Cvc5Backend
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.smtlib import decide_smtlib, parse_smtlib
from hms_celery.verification.solvers import SolverAnswer
from hms_celery.verification.strategy import strategy_from_any
from hms_celery.verification.verdict import Verdict

SHARED = Path(__file__).resolve().parents[3] / "shared" / "smtlib"

# a > 2, and above every x + a lies an even y: sat, e.g. a = 3.  (Z3's model evaluation
# cannot decide the ∀∃: it takes a proof.)
SAT_FORALL = """
(declare-const a Int)
(assert (> a 2))
(assert (forall ((x Int)) (exists ((y Int)) (and (> y (+ x a)) (= (mod y 2) 0)))))
(check-sat)
"""

# a > 2 and every x above a has x² > a + 3: true for a ≥ 2, false for a = 1 (x = 2).
SAT_SQUARE = """
(declare-const a Int)
(assert (> a 2))
(assert (forall ((x Int)) (=> (> x a) (> (* x x) (+ a 3)))))
(check-sat)
"""

# Sets as predicates (after Z3's mbqi_bug regression): S has a maximum m, U = S ∪ V ≠ S.
# Z3's interpretation of U mentions S and V: substitution must be repeated.
SAT_SETS = """
(declare-fun S (Int) Bool)
(declare-fun U (Int) Bool)
(declare-fun V (Int) Bool)
(declare-const m Int)
(assert (S 1))
(assert (S m))
(assert (not (S 0)))
(assert (forall ((x Int)) (=> (S x) (<= x m))))
(assert (forall ((x Int)) (= (U x) (or (S x) (V x)))))
(assert (exists ((x Int)) (not (= (U x) (S x)))))
(check-sat)
"""

# No x with x > a fails x > a + 1?  x = a + 1 does: unsat.
UNSAT_FORALL = """
(declare-const a Int)
(assert (forall ((x Int)) (=> (> x a) (> x (+ a 1)))))
(check-sat)
"""

# Four pigeons, three holes: unsat, but not without search.
PIGEONS = (
    "(set-logic QF_LIA)"
    + "".join(f"(declare-const p{i} Int)(assert (<= 1 p{i} 3))" for i in range(4))
    + "(assert (distinct p0 p1 p2 p3))(check-sat)"
)
NO_CONFLICTS = {"decider": {"tactic": "smt", "params": {"max_conflicts": 0}}}


def _proved_obligations(out) -> list[dict]:
    assert out.proof is not None and out.proof["method"] == "model-check", out.proof
    return out.proof["obligations"]


def test_sat_forall_problem_is_refuted_by_a_proved_and_confirmed_obligation() -> None:
    out = decide_smtlib(SAT_FORALL, timeout_s=20)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert Fraction(out.counterexample["a"]) > 2
    obligations = _proved_obligations(out)
    assert out.proof["evaluated"] == 1  # a > 2 by exact evaluation
    assert [o["assertion"] for o in obligations] == [2]
    (ob,) = obligations
    assert ob["status"] == "proved" and ob["solver"] == "z3"
    assert ob["confirmed_by"]["solver"] == "cvc5" and ob["confirmed_by"]["status"] == "confirmed"
    # the obligation is the ∀∃ with the model's a substituted
    assert ob["obligation"].startswith("(forall ((x Int)) (exists ((y Int))")
    assert f"(+ x {out.counterexample['a']})" in ob["obligation"]
    assert "1 as closed obligations proved by Z3 (1 confirmed by cvc5)" in out.reason


def test_sets_are_refuted_with_every_predicate_substituted() -> None:
    out = decide_smtlib(SAT_SETS, timeout_s=20)
    assert out.verdict is Verdict.REFUTED, out.reason
    obligations = _proved_obligations(out)
    assert [o["assertion"] for o in obligations] == [4, 5, 6]
    assert all(o["confirmed_by"]["status"] == "confirmed" for o in obligations)
    for o in obligations:  # closed: no function of the model is left
        assert not any(f"({name} " in o["obligation"] for name in "SUV"), o["obligation"]


def test_function_interpretations_are_substituted_argument_by_argument() -> None:
    ctx = z3.Context()
    x, y = z3.Ints("x y", ctx)
    g = z3.Function("g", z3.IntSort(ctx), z3.IntSort(ctx), z3.IntSort(ctx))
    solver = z3.Solver(ctx=ctx)
    solver.add(z3.ForAll([x, y], g(x, y) == x - 2 * y))
    assert solver.check() == z3.sat
    model = smtlib_model.from_z3_model(solver.model(), [])
    five, one = z3.IntVal(5, ctx), z3.IntVal(1, ctx)
    assert z3.simplify(model.close(g(five, one))).as_long() == 3  # not 1 - 2·5
    table = smtlib_model.from_values({}, {g: {"entries": [["5", "1", "7"]], "else": "0"}})
    assert z3.simplify(table.close(g(five, one))).as_long() == 7
    assert z3.simplify(table.close(g(one, five))).as_long() == 0


def test_without_confirmation_obligations_are_proved_by_z3_alone() -> None:
    out = decide_smtlib(SAT_FORALL, timeout_s=20, confirm=False)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert [o["confirmed_by"] for o in _proved_obligations(out)] == [None]
    assert "confirmed by cvc5" not in out.reason


def test_unsat_quantified_problem_is_proved_and_confirmed() -> None:
    out = decide_smtlib(UNSAT_FORALL, timeout_s=20)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.confirmed_by["solver"] == "cvc5" and out.confirmed_by["status"] == "confirmed"
    # with a quantifier the plain solver goes first, and decides it
    assert out.stats["checks"][0]["slice"] == "plain"
    assert out.stats["decided_by"] == "plain"


# --------------------------------------------------------------------------- check_model


def _assertion(text: str) -> tuple[list[z3.BoolRef], z3.ExprRef]:
    assertions = parse_smtlib(text)
    return assertions, z3.Int("a", ctx=assertions[0].ctx)


def test_a_model_whose_obligation_is_false_is_not_refuted() -> None:
    # Under a = 1 the ∀ fails at x = 2 (4 > 4 is false): a wrong model, as a buggy solver
    # might give; evaluation cannot tell, the obligation is not valid.
    assertions, a = _assertion(SAT_SQUARE)
    model = smtlib_model.ModelSubstitution([(a, z3.IntVal(1, a.ctx))])
    found = smtlib_model.check_model(assertions[1:], model, deadline=time.monotonic() + 10)
    assert found.verdict is Verdict.UNKNOWN
    assert "not valid" in found.reason and "assertion 1" in found.reason
    assert found.proof["obligations"][0]["status"] == "not valid"


def test_a_model_whose_obligation_is_unproved_is_not_refuted() -> None:
    assertions, a = _assertion(SAT_SQUARE)
    model = smtlib_model.ModelSubstitution([(a, z3.IntVal(3, a.ctx))])
    found = smtlib_model.check_model(
        assertions, model, deadline=time.monotonic() + 10, rlimit=1, confirm=False
    )
    assert found.verdict is Verdict.UNKNOWN, found.reason
    assert found.proof["obligations"][0]["status"].startswith("unknown")


def test_a_model_that_falsifies_a_ground_assertion_is_an_error() -> None:
    assertions, a = _assertion(SAT_SQUARE)
    model = smtlib_model.ModelSubstitution([(a, z3.IntVal(0, a.ctx))])
    found = smtlib_model.check_model(assertions, model, deadline=time.monotonic() + 10)
    assert found.verdict is Verdict.ERROR and "assertion 1 is false" in found.reason


def test_cvc5_finding_an_obligation_false_is_a_disagreement(monkeypatch) -> None:
    monkeypatch.setattr(Cvc5Backend, "check", lambda self, a, **kw: SolverAnswer("sat"))
    out = decide_smtlib(SAT_FORALL, timeout_s=20)
    assert out.verdict is Verdict.ERROR
    assert out.reason.startswith("solvers disagree: z3") and "assertion 2" in out.reason


# --------------------------------------------------------------------------- slices


def test_the_plain_solver_slice_answers_what_the_strategy_cannot() -> None:
    out = decide_smtlib(PIGEONS, strategy=NO_CONFLICTS, timeout_s=20)
    assert out.verdict is Verdict.PROVED, out.reason
    strategy, plain = out.stats["checks"]
    assert strategy["slice"] == "strategy" and strategy["result"] == "unknown"
    assert plain["slice"] == "plain" and plain["result"] == "unsat"
    assert out.stats["decided_by"] == "plain"
    assert out.confirmed_by["status"] == "confirmed"


def test_the_strategy_alone_cannot_so_the_slice_is_what_decides() -> None:
    # the same strategy as Z3 would run it, without HMS's plain slice: undecided
    ctx = z3.Context()
    solver = strategy_from_any(NO_CONFLICTS).build(ctx)
    solver.add(*parse_smtlib(PIGEONS, ctx))
    assert solver.check() == z3.unknown


def test_the_plain_solver_alone_runs_once_with_the_whole_budget() -> None:
    out = decide_smtlib(PIGEONS, strategy="z3-default", timeout_s=20)
    assert out.verdict is Verdict.PROVED
    (only,) = out.stats["checks"]
    assert only["slice"] == "strategy" and only["budget_s"] > 19


def test_a_quantifier_free_problem_tries_the_strategy_first_with_half_the_time() -> None:
    out = decide_smtlib(PIGEONS, strategy=NO_CONFLICTS, timeout_s=20)
    first, second = out.stats["checks"]
    assert first["slice"] == "strategy" and 9 < first["budget_s"] <= 10
    assert second["budget_s"] > 9


# --------------------------------------------------------------------------- cvc5


def test_cvc5_decides_smtlib_and_z3_confirms_its_unsat() -> None:
    out = decide_smtlib(UNSAT_FORALL, backend="cvc5", timeout_s=20)
    assert out.verdict is Verdict.PROVED and out.backend == "cvc5", out.reason
    assert out.confirmed_by["solver"] == "z3" and out.confirmed_by["status"] == "confirmed"
    assert out.stats["checks"][0]["slice"] == "cvc5"


def test_cvc5_models_are_rechecked_with_obligations() -> None:
    out = decide_smtlib(SAT_SETS, backend="cvc5", timeout_s=20)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.counterexample["S"]["entries"]  # cvc5's predicate, as a table
    obligations = _proved_obligations(out)
    assert obligations and all(o["status"] == "proved" for o in obligations)


def test_cvc5_reports_what_it_cannot_express() -> None:
    text = "(declare-const x Real)(assert (= (^ x 2.0) 4.0))(check-sat)"
    out = decide_smtlib(text, backend="cvc5", timeout_s=20)
    assert out.verdict is Verdict.UNSUPPORTED and "'^'" in out.reason


def test_a_request_with_backend_cvc5_reaches_cvc5() -> None:
    out = ProofRequest.build(smtlib=SAT_FORALL, backend="cvc5").run(
        timeout=20, max_size=0, rlimit=None
    )
    assert out.backend == "cvc5" and out.verdict is Verdict.REFUTED, out.reason


# --------------------------------------------------------------------------- the shared set

#: The problems HMS got wrong-ish before (UNKNOWN/TIMEOUT where Z3 answers in milliseconds).
ONCE_MISSED = (
    "z3test__regressions_qsat_modEx2.smt2",
    "z3test__regressions_qsat_modEx3.smt2",
    "z3test__regressions_qsat_multEx1.smt2",
    "z3test__regressions_qsat_multEx10.smt2",
    "z3test__regressions_qsat_multEx4.smt2",
    "z3test__regressions_smt2_2557.smt2",
    "z3test__regressions_smt2_2566.smt2",
    "z3test__regressions_smt2_7489.smt2",
    "z3test__regressions_smt2_mbqi_bug.smt2",
)


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no SMT-LIB problems at {SHARED}")
def test_every_shared_problem_gets_a_verdict_consistent_with_its_status() -> None:
    """The default strategy at 3 s per problem (without confirmation, to keep it short):
    never a wrong verdict; the problems once missed are solved; the rest is counted.
    ``HMS_TEST_SMTLIB_TIMEOUT`` sets another timeout (the benchmark is ``bench/smtlib.py``)."""
    timeout = float(os.environ.get("HMS_TEST_SMTLIB_TIMEOUT", "3"))
    index = json.loads((SHARED / "INDEX.json").read_text())
    expected = {"unsat": Verdict.PROVED, "sat": Verdict.REFUTED}
    wrong, unsolved = [], []
    for entry in index:
        out = decide_smtlib((SHARED / entry["file"]).read_text(), timeout_s=timeout, confirm=False)
        want = expected[entry["status"]]
        if out.verdict in expected.values() and out.verdict is not want:
            wrong.append((entry["file"], out.verdict, out.reason))
        elif out.verdict is not want:
            unsolved.append((entry["file"], out.verdict.value, out.reason[:80]))
    assert not wrong
    assert not [u for u in unsolved if u[0] in ONCE_MISSED], unsolved
    print(f"\n{len(index) - len(unsolved)}/{len(index)} solved at {timeout:g} s; not: {unsolved}")
