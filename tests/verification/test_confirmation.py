"""Every PROVED verdict is confirmed by the other solver on the very assertions it proved
unsatisfiable; a disagreement is an ERROR, never PROVED; GA fitness skips confirmation."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import z3

from hms_celery.settings import reset_settings
from hms_celery.verification import exact, z3_session
from hms_celery.verification.catalogue import find_claim
from hms_celery.verification.confirm import CONFIRM_MIN_S, confirm_proved
from hms_celery.verification.cvc5_backend import Cvc5Backend
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.prover import prove
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.smtlib import decide_smtlib
from hms_celery.verification.solvers import SolverAnswer
from hms_celery.verification.verdict import ProofOutcome, Verdict
from hms_celery.verification.z3_session import Z3Backend
from hms_celery.verification.z3_terms import Unsupported
from tests.support import BOUNDED_ONLY

from .hand_ast import cmp, lit, op, stmt, var

MONOTONE_SQUARE = "∀ (x y : ℝ), 0 ≤ x → x ≤ y → x * x ≤ y * y"
UNSAT_SMT2 = "(declare-const x Real)(assert (> (* x x) 4.0))(assert (< x 2.0))(assert (> x -2.0))"


def monotone_square():
    return parse_statement(MONOTONE_SQUARE)


@pytest.fixture
def cvc5_calls(monkeypatch) -> list[list[z3.BoolRef]]:
    """Every assertion list cvc5 is asked about (the real cvc5 still answers)."""
    calls: list[list[z3.BoolRef]] = []
    real = Cvc5Backend.check

    def spy(self, assertions, **kw):
        calls.append(list(assertions))
        return real(self, assertions, **kw)

    monkeypatch.setattr(Cvc5Backend, "check", spy)
    return calls


@pytest.fixture
def setting(monkeypatch) -> Iterator[object]:
    def put(value: str) -> None:
        monkeypatch.setenv("HMS_CONFIRM_PROVED", value)
        reset_settings()

    yield put
    monkeypatch.delenv("HMS_CONFIRM_PROVED", raising=False)
    reset_settings()


def test_proved_is_confirmed_by_cvc5_on_the_assertions_z3_proved(monkeypatch, cvc5_calls):
    proved_by_z3: list[list[z3.BoolRef]] = []
    real_solve = z3_session.solve

    def solve(assertions, *args, **kw):
        check = real_solve(assertions, *args, **kw)
        if check.status == "unsat":
            proved_by_z3.append(list(assertions))
        return check

    monkeypatch.setattr(z3_session, "solve", solve)
    out = prove(monotone_square(), timeout_s=20)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.confirmed_by["solver"] == "cvc5"
    assert out.confirmed_by["version"] == "1.4.2"
    assert out.confirmed_by["status"] == "confirmed"
    assert 0 <= out.confirmed_by["seconds"] <= out.elapsed_s
    assert 0 < out.confirmed_by["budget_s"] <= 20
    # the very list Z3 found unsat: product-bounds' monomials and lemmas included
    assert len(proved_by_z3) == 1 and len(cvc5_calls) == 1
    assert len(cvc5_calls[0]) == len(proved_by_z3[0]) > 3
    assert all(a.eq(b) for a, b in zip(cvc5_calls[0], proved_by_z3[0], strict=True))
    assert ProofOutcome.from_json(out.to_json()).confirmed_by == out.confirmed_by


def test_bounded_and_refuted_verdicts_are_not_confirmed(cvc5_calls):
    bounded = prove(parse_statement(BOUNDED_ONLY), timeout_s=30, max_size=4)
    assert bounded.verdict is Verdict.BOUNDED and bounded.confirmed_by is None
    x = var("x")
    refuted = prove(stmt([("x", x.ty)], [cmp(">", x, lit(0))], cmp(">", op("*", x, x), x)))
    assert refuted.verdict is Verdict.REFUTED and refuted.confirmed_by is None
    assert cvc5_calls == []


def test_confirmation_is_turned_off_by_the_parameter_and_the_setting(cvc5_calls, setting):
    assert prove(monotone_square(), confirm=False).confirmed_by is None
    assert cvc5_calls == []
    setting("false")
    off = prove(monotone_square())
    assert off.verdict is Verdict.PROVED and off.confirmed_by is None
    assert cvc5_calls == []
    assert prove(monotone_square(), confirm=True).confirmed_by["status"] == "confirmed"
    setting("true")
    assert prove(monotone_square()).confirmed_by["status"] == "confirmed"
    assert len(cvc5_calls) == 2


def test_a_sat_answer_of_the_other_solver_is_an_error_never_proved(monkeypatch):
    """The test seam feeds cvc5 a different problem (the two hypotheses, without ¬goal): the
    real cvc5 finds a model, and the proof must not stand."""
    real = Cvc5Backend.check
    monkeypatch.setattr(
        Cvc5Backend, "check", lambda self, assertions, **kw: real(self, assertions[:2], **kw)
    )
    out = prove(monotone_square(), timeout_s=20)
    assert out.verdict is Verdict.ERROR
    assert out.reason.startswith("solvers disagree: z3 ")
    assert "says unsat" in out.reason and "cvc5 1.4.2 says sat" in out.reason
    assert "fails the exact re-check" in out.reason  # cvc5's model is no counterexample
    assert out.confirmed_by["status"] == "disagrees (sat)"
    assert out.stats["disagreement"]["unsat"]["solver"] == "z3"
    assert out.stats["disagreement"]["sat"]["solver"] == "cvc5"
    assert exact.check_counterexample(monotone_square(), out.counterexample) is False


def test_a_cvc5_proof_contradicted_by_z3_is_an_error(monkeypatch):
    monkeypatch.setattr(Z3Backend, "check", lambda self, a, **kw: SolverAnswer("sat"))
    out = prove(monotone_square(), backend="cvc5", timeout_s=20)
    assert out.verdict is Verdict.ERROR
    assert out.reason.startswith("solvers disagree: cvc5 1.4.2 says unsat")
    assert "z3" in out.reason and out.backend == "cvc5"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (SolverAnswer("unknown", "timeout", 1.0), "unconfirmed (timeout)"),
        (SolverAnswer("unknown", "incomplete"), "unconfirmed (unknown: incomplete)"),
        (Unsupported("cvc5 translation: the sort U"), "unconfirmed (unsupported: cvc5 trans"),
        (RuntimeError("boom"), "unconfirmed (unknown: RuntimeError: boom)"),
    ],
)
def test_an_unconfirmed_proof_stays_proved_and_says_why(monkeypatch, answer, status):
    def check(self, assertions, **kw):
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(Cvc5Backend, "check", check)
    out = prove(monotone_square(), timeout_s=20)
    assert out.verdict is Verdict.PROVED
    assert out.confirmed_by["status"].startswith(status)
    assert out.confirmed_by["solver"] == "cvc5"


class _Recorder:
    name = "cvc5"
    version = "test"

    def __init__(self) -> None:
        self.budgets: list[float] = []

    def check(self, assertions, *, timeout_s, rlimit=None):
        self.budgets.append(timeout_s)
        return SolverAnswer("unsat", seconds=0.0)


def test_the_confirmation_budget_is_what_is_left_but_at_least_one_second():
    rec = _Recorder()
    proved = ProofOutcome(Verdict.PROVED)
    now = time.monotonic()
    confirm_proved(proved, [], proved_by="z3", start=now - 100, timeout_s=30, confirmer=rec)
    confirm_proved(proved, [], proved_by="z3", start=now, timeout_s=30, confirmer=rec)
    confirm_proved(proved, [], proved_by="z3", start=now - 100, timeout_s=0.5, confirmer=rec)
    assert rec.budgets[0] == CONFIRM_MIN_S == 1.0  # the budget ran out: one more second
    assert 29 < rec.budgets[1] <= 30  # the time left
    assert rec.budgets[2] == 0.5  # never more than the whole budget
    assert proved.confirmed_by["status"] == "confirmed" and proved.confirmed_by["budget_s"] == 0.5


def test_cvc5_backend_proofs_are_confirmed_by_z3(monkeypatch):
    out = prove(monotone_square(), backend="cvc5", timeout_s=20)
    assert out.verdict is Verdict.PROVED and out.backend == "cvc5"
    assert out.confirmed_by["solver"] == "z3"
    assert out.confirmed_by["version"] == z3.get_version_string()
    assert out.confirmed_by["status"] == "confirmed"


def test_smtlib_unsat_is_confirmed_and_a_disagreement_is_an_error(monkeypatch, cvc5_calls):
    out = decide_smtlib(UNSAT_SMT2)
    assert out.verdict is Verdict.PROVED
    assert out.confirmed_by["solver"] == "cvc5" and out.confirmed_by["status"] == "confirmed"
    assert len(cvc5_calls) == 1
    assert decide_smtlib(UNSAT_SMT2, confirm=False).confirmed_by is None
    assert len(cvc5_calls) == 1
    monkeypatch.setattr(Cvc5Backend, "check", lambda self, a, **kw: SolverAnswer("sat"))
    bad = decide_smtlib(UNSAT_SMT2)
    assert bad.verdict is Verdict.ERROR and bad.reason.startswith("solvers disagree: z3")


def test_request_passes_confirm_through_and_smtlib_for_cvc5_is_confirmed_by_z3(cvc5_calls):
    request = ProofRequest.build(statement=MONOTONE_SQUARE)
    off = request.run(timeout=20, max_size=5, rlimit=None, confirm=False)
    assert off.verdict is Verdict.PROVED and off.confirmed_by is None and cvc5_calls == []
    on = request.run(timeout=20, max_size=5, rlimit=None)
    assert on.confirmed_by["status"] == "confirmed"
    smt = ProofRequest.build(smtlib=UNSAT_SMT2, backend="cvc5")
    by_cvc5 = smt.run(timeout=20, max_size=5, rlimit=None)
    assert by_cvc5.verdict is Verdict.PROVED and by_cvc5.backend == "cvc5"
    assert by_cvc5.confirmed_by["solver"] == "z3" and by_cvc5.confirmed_by["status"] == "confirmed"
    by_lean = ProofRequest.build(smtlib=UNSAT_SMT2, backend="lean")
    refused = by_lean.run(timeout=20, max_size=5, rlimit=None)
    assert refused.verdict is Verdict.ERROR
    assert "decided by z3 or cvc5, not 'lean'" in refused.reason


def test_ga_fitness_evaluations_skip_confirmation(cvc5_calls):
    from hms_celery.genetic.engine import evaluate_inline

    claim = find_claim("sps-bounds")
    instance = {
        "id": claim.theorem_id,
        "expected": "PROVED",
        "request": {
            "statement": claim.formal_expression,
            "assumptions": list(claim.assumptions),
            "variables": claim.variables or None,
        },
    }
    fitness, evaluations = evaluate_inline(
        {"decider": {"tactic": "smt", "params": {}}}, [instance], rlimit=1_000_000, timeout_s=10
    )
    assert evaluations[0].verdict == "PROVED" and fitness.solved == 1
    assert cvc5_calls == []
