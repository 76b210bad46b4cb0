"""Quantifier alternation (issue 9, item 2): ``∃``, ``∀ … ∃`` and ``∃ … ∀`` are decided.

Every PROVED witness is re-checked outside the code that found it: the witness text is put back
into the claim as a ``let`` (``∃ x : ℝ, p`` becomes ``let x : ℝ := w; p``), that text is parsed
and proved from scratch, and where it is quantifier-free the independent reference evaluator of
``lean_reference`` spot-checks it on random values.  Every REFUTED counterexample is checked
against a hand-written exact condition of the claim (``a < 0`` for ``∀ a, ∃ x, x * x = a``),
and its non-existence claim is parsed back, proved again and must be confirmed by the second
solver.  False claims are never PROVED.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest

from hms_celery.verification import ast as A
from hms_celery.verification import parse_statement
from hms_celery.verification.ast_walk import CaptureError, substitute
from hms_celery.verification.printer import show_expr, show_statement
from hms_celery.verification.prover import prove
from hms_celery.verification.quantifiers import Attempt, recheck_model
from hms_celery.verification.quantifiers.prenex import (
    candidates,
    has_infinite_quantifier,
    peel,
    solutions,
)
from hms_celery.verification.quantifiers.refutation import refute_at
from hms_celery.verification.strategy import DEFAULT_STRATEGY
from hms_celery.verification.verdict import ProofOutcome, Verdict
from tests.verification import lean_reference as ref
from tests.verification import test_lean_conformance as conformance

TIMEOUT = 10


def decide(text: str, **kw) -> ProofOutcome:
    return prove(parse_statement(text), timeout_s=TIMEOUT, **kw)


def let_instance(text: str, witness: dict[str, str]) -> str:
    """``text`` with each ``∃ x : T,`` of the witness replaced by ``let x : T := w;``."""
    out = text
    for name, term in witness.items():
        for ty in ("ℝ", "ℤ", "ℕ"):
            binder = f"∃ {name} : {ty},"
            if binder in out:
                out = out.replace(binder, f"let {name} : {ty} := {term};", 1)
                break
        else:
            raise AssertionError(f"no binder for {name} in {text}")
    return out


def assert_witness_rechecked(text: str, out: ProofOutcome) -> str:
    """The witness of a PROVED ``out``, put back into ``text`` and re-proved from the text."""
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.proof is not None and out.proof["method"] == "witness", out.proof
    instance = let_instance(text, out.proof["witness"])
    again = prove(parse_statement(instance), timeout_s=TIMEOUT)
    assert again.verdict is Verdict.PROVED, (instance, again.reason)
    assert out.confirmed_by is not None and out.confirmed_by["status"] == "confirmed"
    # the instance HMS proved is the same claim: it parses and is proved again as well
    reported = prove(parse_statement(out.proof["instance"]), timeout_s=TIMEOUT)
    assert reported.verdict is Verdict.PROVED, out.proof["instance"]
    return instance


def spot_check(instance: str, n: int = 25) -> None:
    """The independent reference evaluator agrees with the instance on random values."""
    rng = random.Random(instance)
    binders = ref.peeled_binders(instance)
    checked = 0
    for _ in range(n):
        env = ref.sample_environment(binders, rng)
        assert ref.evaluate(instance, env), (instance, env)
        checked += 1
    assert checked == n


def assert_no_witness(out: ProofOutcome) -> None:
    """A REFUTED by non-existence: the closed claim parses back, is proved and confirmed."""
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.proof is not None and out.proof["method"] == "no-witness", out.proof
    assert out.proof["confirmed_by"]["status"] == "confirmed", out.proof
    assert out.proof["outer"] == out.counterexample
    obligation = out.proof["obligation"]
    again = prove(parse_statement(obligation), timeout_s=TIMEOUT, confirm=True)
    assert again.verdict is Verdict.PROVED, (obligation, again.reason)
    assert again.confirmed_by is not None and again.confirmed_by["status"] == "confirmed"


def q(value: str) -> Fraction:
    return Fraction(value)


# ====================================================================== the examples


def test_forall_exists_is_proved_with_a_term_witness():
    text = "∀ a b : ℝ, a > 0 → ∃ x : ℝ, a * x > b"
    out = decide(text)
    instance = assert_witness_rechecked(text, out)
    assert out.proof["witness"] == {"x": "b / a + 1"}
    spot_check(instance)


def test_exists_forall_reports_a_rechecked_value():
    text = "∃ x : ℝ, ∀ y : ℝ, x ≤ y * y - 1"
    out = decide(text)
    assert_witness_rechecked(text, out)
    w = q(out.proof["witness"]["x"])
    assert w <= -1  # exactly the values for which ∀ y, w ≤ y² - 1 holds
    closed = prove(parse_statement(f"∀ y : ℝ, ({w} : ℝ) ≤ y * y - 1"), confirm=True)
    assert closed.verdict is Verdict.PROVED and closed.confirmed_by["status"] == "confirmed"


def test_forall_exists_without_witness_is_refuted_with_a_confirmed_proof():
    out = decide("∀ a : ℝ, ∃ x : ℝ, x * x = a")
    assert_no_witness(out)
    assert set(out.counterexample) == {"a"}
    assert q(out.counterexample["a"]) < 0  # a real square root exists exactly when a ≥ 0


# ====================================================================== claims of our own

#: (claim, verdict). PROVED ones must come with a witness or an elimination proof; REFUTED ones
#: with a counterexample satisfying ``REFUTED_AT[claim]``.
CLAIMS = [
    ("∀ x : ℤ, ∃ y : ℤ, y > x * x", Verdict.PROVED),
    ("∃ x : ℕ, ∀ y : ℕ, x ≤ y", Verdict.PROVED),
    ("∀ x : ℕ, ∃ y : ℕ, y < x", Verdict.REFUTED),
    ("∃ x : ℝ, ∀ y : ℝ, x * y = 0", Verdict.PROVED),
    ("∀ ε : ℝ, ε > 0 → ∃ δ : ℝ, δ > 0 ∧ 2 * δ < ε", Verdict.PROVED),
    ("∀ x y : ℝ, x < y → ∃ z : ℝ, x < z ∧ z < y", Verdict.PROVED),
    ("∀ a : ℤ, ∃ q : ℤ, 2 * q ≤ a ∧ a < 2 * q + 2", Verdict.PROVED),  # Euclidean a / 2
    ("∀ a : ℝ, ∃ x : ℝ, x * a = 1 ∨ a = 0", Verdict.PROVED),  # x = 1 / a (1 / 0 = 0)
    ("∃ x : ℝ, x > 5", Verdict.PROVED),
    ("∀ a : ℝ, ∃ x : ℝ, a * x = 1", Verdict.REFUTED),
    ("∀ x : ℤ, ∃ y : ℤ, x = 2 * y", Verdict.REFUTED),
    ("∀ a : ℝ, ∃ x : ℝ, x / a = 1", Verdict.REFUTED),
    ("∀ a : ℕ, ∃ b : ℕ, b + a = 0", Verdict.REFUTED),
    ("∀ a b c : ℝ, a ≠ 0 → ∃ x : ℝ, a * x * x + b * x + c = 0", Verdict.REFUTED),
    ("∀ x : ℝ, x > 0 → ∃ y : ℝ, y * y = x", Verdict.PROVED),  # √x: elimination, no term
    ("∀ a : ℝ, ∃ x : ℝ, x * x * x = a", Verdict.PROVED),  # cube roots: elimination
    ("∀ n : ℕ, ∃ m : ℕ, m > n ∧ m % 2 = 0", Verdict.PROVED),
]

#: The exact condition for the counterexample of each REFUTED claim.
REFUTED_AT = {
    "∀ x : ℕ, ∃ y : ℕ, y < x": lambda c: q(c["x"]) == 0,
    "∀ a : ℝ, ∃ x : ℝ, a * x = 1": lambda c: q(c["a"]) == 0,
    "∀ x : ℤ, ∃ y : ℤ, x = 2 * y": lambda c: q(c["x"]) % 2 == 1,
    "∀ a : ℝ, ∃ x : ℝ, x / a = 1": lambda c: q(c["a"]) == 0,  # x / 0 = 0 ≠ 1
    "∀ a : ℕ, ∃ b : ℕ, b + a = 0": lambda c: q(c["a"]) > 0,
    "∀ a b c : ℝ, a ≠ 0 → ∃ x : ℝ, a * x * x + b * x + c = 0": lambda c: (
        q(c["a"]) != 0 and q(c["b"]) ** 2 - 4 * q(c["a"]) * q(c["c"]) < 0
    ),
}


@pytest.mark.parametrize(("text", "verdict"), CLAIMS)
def test_quantified_claims(text: str, verdict: Verdict) -> None:
    out = decide(text)
    assert out.verdict is verdict, out.reason
    if verdict is Verdict.REFUTED:
        assert REFUTED_AT[text](out.counterexample), out.counterexample
        assert_no_witness(out)
        return
    assert out.proof is not None, out.reason
    if out.proof["method"] == "witness":
        instance = assert_witness_rechecked(text, out)
        if not has_infinite_quantifier(parse_statement(instance)):
            spot_check(instance)
    else:
        assert out.proof["method"] == "quantifier-elimination", out.proof
        assert out.confirmed_by is not None  # confirmed, or says why not
        assert out.confirmed_by["status"] == "confirmed" or out.confirmed_by["status"].startswith(
            "unconfirmed"
        )


def test_claims_cover_every_type_and_both_verdicts():
    kinds = {(v, ty) for text, v in CLAIMS for ty in ("ℝ", "ℤ", "ℕ") if ty in text}
    for ty in ("ℝ", "ℤ", "ℕ"):
        assert (Verdict.PROVED, ty) in kinds and (Verdict.REFUTED, ty) in kinds, ty
    assert len(CLAIMS) >= 10


@pytest.mark.parametrize(
    "text",
    ["∀ a b : ℝ, a > 0 → ∃ x : ℝ, a * x > b", "∀ a : ℝ, ∃ x : ℝ, x * x = a", "∃ x : ℝ, x * x = 2"],
)
def test_outcomes_travel_as_json(text: str) -> None:
    # the sandbox child and the store carry outcomes as JSON: the proof must survive that
    out = decide(text)
    assert out.proof is not None
    back = ProofOutcome.from_json(json.loads(json.dumps(out.to_json())))
    assert back.proof == out.proof and back.verdict is out.verdict


def test_two_existentials_get_a_joint_witness():
    out = decide("∃ x y : ℝ, x + y = 3 ∧ x - y = 1")
    assert out.verdict is Verdict.PROVED, out.reason
    w = out.proof["witness"]
    assert (q(w["x"]), q(w["y"])) == (2, 1)  # the only solution


def test_refuted_through_cvc5_is_confirmed_by_z3():
    out = decide("∀ a : ℝ, ∃ x : ℝ, x * x = a", backend="cvc5")
    assert_no_witness(out)
    assert out.proof["confirmed_by"]["solver"] == "z3"
    assert q(out.counterexample["a"]) < 0


def test_exists_forall_refuted_without_variables():
    out = decide("∃ x : ℝ, ∀ y : ℝ, x ≤ y")
    assert_no_witness(out)
    assert out.counterexample == {}
    assert out.proof["obligation"] == "¬(∃ x : ℝ, ∀ y : ℝ, x ≤ y)"


# ====================================================================== never a wrong PROVED

FALSE_CLAIMS = [
    "∀ a : ℝ, ∃ x : ℝ, a * x = 1",
    "∃ x : ℝ, ∀ y : ℝ, x ≤ y",
    "∃ x : ℕ, ∀ y : ℕ, y ≤ x",
    "∀ x : ℤ, ∃ y : ℤ, y * y = x",
    "∀ ε : ℝ, ε > 0 → ∃ δ : ℝ, δ > 0 ∧ δ < 0",
    "∃ x : ℝ, x * x < 0",
    "∀ x : ℝ, ∃ y : ℝ, ∀ x : ℝ, y ≥ x",  # a witness `y := x` would be captured by `∀ x`
    "∀ a : ℝ, ∃ x : ℝ, a * a ≠ 2 ∨ x * x = a - 5",  # false only at a = ±√2
]


@pytest.mark.parametrize("text", FALSE_CLAIMS)
def test_false_claims_are_never_proved(text: str) -> None:
    out = decide(text)
    assert out.verdict is not Verdict.PROVED, out.proof
    assert out.verdict in (Verdict.REFUTED, Verdict.UNKNOWN, Verdict.TIMEOUT), out.reason


def test_only_irrational_counterexamples_give_unknown_not_refuted():
    # every rational a has a witness, so no REFUTED may be reported
    out = decide("∀ a : ℝ, ∃ x : ℝ, a * a ≠ 2 ∨ x * x = a - 5")
    assert out.verdict is Verdict.UNKNOWN, out.reason
    assert "no exact rational value" in out.reason


def test_capture_is_refused_not_substituted():
    out = decide("∀ x : ℝ, ∃ y : ℝ, ∀ x : ℝ, y ≥ x")
    assert out.verdict is Verdict.REFUTED, out.reason
    assert_no_witness(out)


# ====================================================================== step 3 on given values


def _attempt() -> Attempt:
    import time

    return Attempt(
        DEFAULT_STRATEGY, "z3", time.monotonic(), float(TIMEOUT), None, True, prove=prove
    )


def test_a_model_value_with_a_witness_is_not_a_counterexample():
    st = parse_statement("∀ a : ℝ, ∃ x : ℝ, x * x = a")
    out = refute_at(st, {"a": "4"}, _attempt(), _attempt().until(1.0))
    assert out.verdict is Verdict.UNKNOWN  # x = 2 exists: ¬∃ x, x * x = 4 is REFUTED
    assert "REFUTED" in out.reason


def test_values_breaking_a_hypothesis_are_not_a_counterexample():
    st = parse_statement("∀ a : ℝ, a > 0 → ∃ x : ℝ, x * x = -a")
    out = refute_at(st, {"a": "-1"}, _attempt(), _attempt().until(1.0))
    assert out.verdict is Verdict.UNKNOWN and "hypothesis is false" in out.reason
    good = refute_at(st, {"a": "1"}, _attempt(), _attempt().until(1.0))
    assert good.verdict is Verdict.REFUTED, good.reason


def test_recheck_model_turns_an_unchecked_model_into_refuted_only_when_proved():
    st = parse_statement("∀ a : ℝ, ∃ x : ℝ, x * x = a")
    for value, want in (("-3", Verdict.REFUTED), ("9", Verdict.UNKNOWN)):
        unchecked = ProofOutcome(Verdict.UNKNOWN, reason="model", counterexample={"a": value})
        out = recheck_model(unchecked, st, _attempt())
        assert out.verdict is want, out.reason
        assert out.counterexample == {"a": value}


# ====================================================================== building blocks


def test_solutions_solve_linear_atoms_for_the_variable():
    st = parse_statement("∀ a b : ℝ, a > 0 → ∃ x : ℝ, a * x > b ∧ x - 3 * b < a")
    p = peel(st)
    found = [show_expr(t) for t in solutions(p.body, p.chain[0], {"a", "b"})]
    assert found == ["b / a", "a + 3 * b"]


def test_candidates_are_typed_like_the_variable_and_capped():
    p = peel(parse_statement("∀ n : ℕ, ∃ m : ℕ, m > n + 2 ∧ m < 100"))
    cands = candidates(p, None)
    assert 0 < len(cands) <= 14
    assert all(t.ty == A.NAT for c in cands for t in c.values())
    assert all(not isinstance(t, A.Lit) or t.value >= 0 for c in cands for t in c.values())


def test_peel_moves_negations_through_quantifiers():
    p = peel(parse_statement("¬ ∃ x : ℝ, ∀ y : ℝ, x ≤ y"))
    assert [v.name for v in p.variables] == ["x"]
    assert [v.name for v in p.chain] == ["y"]
    assert show_expr(p.body) == "¬x ≤ y"


def test_peel_renames_a_bound_variable_that_clashes():
    p = peel(parse_statement("∀ x : ℝ, x > 0 → ∃ x : ℝ, x < 0"))
    assert [v.name for v in p.variables] == ["x"]
    assert [v.name for v in p.chain] == ["x'"]
    assert show_expr(p.body) == "x' < 0"


def test_substitution_stops_at_shadowing_and_refuses_capture():
    st = parse_statement("∀ y : ℝ, (∀ y : ℝ, y = y) ∧ y > 0")
    one = A.Lit(Fraction(1), A.REAL)
    fixed = substitute(st.goal, {"y": one})
    assert show_expr(fixed) == "(∀ y : ℝ, y = y) ∧ (1 : ℝ) > (0 : ℝ)"
    body = parse_statement("∀ z : ℝ, (∀ x : ℝ, z > x) ∧ z = z").goal
    with pytest.raises(CaptureError, match="x"):
        substitute(body, {"z": A.Var("x", A.REAL)})


# ====================================================================== the printer


def _normal(e):
    """Fold the forms a literal takes after printing: ``-(k)`` and ``p / q`` of literals."""
    from dataclasses import fields, is_dataclass, replace

    if isinstance(e, tuple):
        return tuple(_normal(x) for x in e)
    if not is_dataclass(e) or isinstance(e, A.Pos):
        return e
    e = replace(e, **{f.name: _normal(getattr(e, f.name)) for f in fields(e)})
    if isinstance(e, A.Neg) and isinstance(e.arg, A.Lit) and isinstance(e.ty, A.Scalar):
        return A.Lit(-e.arg.value, e.ty)
    if (
        isinstance(e, A.BinOp)
        and e.op == "/"
        and e.ty in (A.REAL, A.RAT)
        and isinstance(e.left, A.Lit)
        and isinstance(e.right, A.Lit)
        and e.right.value != 0
    ):
        return A.Lit(Fraction(e.left.value) / Fraction(e.right.value), e.ty)
    return e


def _round_trip(st: A.Statement) -> None:
    text = show_statement(st)
    again = parse_statement(text, definitions=st.definitions)
    assert _normal((again.variables, again.hypotheses, again.goal)) == _normal(
        (st.variables, st.hypotheses, st.goal)
    ), text


def test_printed_statements_parse_back_to_the_same_statement():
    texts = [t if isinstance(t, str) else t[0] for t in conformance.PROVED + conformance.REFUTED]
    assert len(texts) > 150
    for text in texts:
        _round_trip(parse_statement(text))


def test_printed_literals_keep_their_value_and_type():
    for value in ("-1", "3/2", "-7/3", "0.125", "1000000000000000000001"):
        for ty in (A.REAL, A.RAT):
            lit = A.Lit(Fraction(value), ty)
            st = A.Statement((A.Param("x", ty),), (), A.Compare("=", A.Var("x", ty), lit))
            _round_trip(st)
    sub = parse_statement("∀ a b : ℕ, ((a - b : ℕ) : ℝ) ≥ 0")
    assert "((a - b : ℕ) : ℝ)" in show_statement(sub)  # ℕ subtraction stays in ℕ
    _round_trip(sub)
