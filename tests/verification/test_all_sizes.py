"""Proofs for every size (issue 9): sum abstraction and induction on an exponent.

A PROVED verdict for a symbolic size must rest on a sound argument, re-checkable from its
record; a claim that holds up to some size and fails beyond must never be PROVED."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hms_celery.verification import ast as A
from hms_celery.verification import find_claim, parse_statement
from hms_celery.verification.all_sizes import arguments_for
from hms_celery.verification.ast_walk import map_expr
from hms_celery.verification.exact import check_counterexample
from hms_celery.verification.prover import prove
from hms_celery.verification.verdict import Verdict

GENERAL = [
    "war-bounds-unit",
    "war-abs-bound",
    "war-zero-impact",
    "drp-conservative",
    "drp-at-most-baseline",
    "fs-bounds",
    "drp-projected-bounds",
]
VEC = {"n": "ℕ", "w": "Fin n → ℝ", "a": "Fin n → ℝ"}


def decide(text: str, variables: dict[str, str] | None = None, **options):
    return prove(parse_statement(text, variables=variables), timeout_s=30, **options)


def at_size(statement: A.Statement, n: str, k: int) -> A.Statement:
    """``statement`` with the size ``n`` fixed to ``k`` (so no argument for all sizes runs)."""
    size = A.Lit(Fraction(k), A.NAT)

    def fix(x):
        return size if x == A.Var(n, A.NAT) else None

    return replace(
        statement,
        variables=tuple(
            replace(p, ty=map_expr(p.ty, fix)) for p in statement.variables if p.name != n
        ),
        hypotheses=tuple(map_expr(h, fix) for h in statement.hypotheses),
        goal=map_expr(statement.goal, fix),
    )


# --------------------------------------------------------------------------- the catalogue


@pytest.mark.parametrize("theorem_id", GENERAL)
def test_the_general_moneyball_theorems_are_proved_for_every_size(theorem_id):
    claim = find_claim(theorem_id)
    out = prove(claim.statement(), timeout_s=30)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.proof is not None and out.proof["method"] in ("sum-abstraction", "induction")
    assert "holds for every" in out.reason and out.bound is None
    assert out.confirmed_by is not None and out.confirmed_by["status"] == "confirmed"
    # The record is enough to re-check: every fixed problem it names, read back from its
    # text (no definitions: everything is inlined), is PROVED on its own.
    roles = (
        ("reduced",) if out.proof["method"] == "sum-abstraction" else ("base", "step", "conclusion")
    )
    for role in roles:
        again = prove(parse_statement(out.proof[role], definitions={}), timeout_s=30)
        assert again.verdict is Verdict.PROVED, (role, out.proof[role], again.reason)


def test_the_false_catalogue_claims_stay_refuted_with_a_checked_counterexample():
    for theorem_id in ("war-bounds-original", "drp-upper-original"):
        claim = find_claim(theorem_id)
        out = prove(claim.statement(), timeout_s=30)
        assert out.verdict is Verdict.REFUTED, out.reason
        assert check_counterexample(claim.statement(), out.counterexample) is True
        # the reduced problem was satisfiable: no proof, and the bounded search refuted it
        tried = out.stats["all_sizes"]["tried"]
        assert tried and tried[0]["result"].startswith("reduced: REFUTED")


def test_cvc5_proves_them_too_and_z3_confirms():
    for theorem_id in ("war-zero-impact", "drp-projected-bounds"):
        out = prove(find_claim(theorem_id).statement(), backend="cvc5", timeout_s=30)
        assert out.verdict is Verdict.PROVED, out.reason
        assert out.confirmed_by["solver"] == "z3" and out.proof["method"]


# --------------------------------------------------------------------------- never too far


@pytest.mark.parametrize(
    ("text", "fails_at"),
    [
        ("(∀ i, w i = 1) → ∑ i, w i ≤ 20", 21),
        ("(∀ i, 1 ≤ w i ∧ w i ≤ 1 + 1 / 100) → ∑ i, w i < 50", 50),
        ("(∀ i, w i = 1 / 1000) → ∑ i, w i < 1", 1000),
        ("(∀ i, 0 ≤ w i ∧ w i ≤ 1 / 30) → ∑ i, w i < 1", 30),
    ],
)
def test_claims_failing_beyond_the_bound_are_never_proved(text, fails_at):
    out = decide(text, VEC)
    assert out.verdict is Verdict.BOUNDED, out.reason
    assert out.bound == 20 and "not a proof" in out.reason
    if fails_at is not None and fails_at <= 50:
        far = decide(text, VEC, max_size=fails_at)
        assert far.verdict is Verdict.REFUTED and far.counterexample["n"] == str(fails_at)
        assert check_counterexample(parse_statement(text, variables=VEC), far.counterexample)


@pytest.mark.parametrize(
    ("text", "fails_at"),
    [
        ("∀ Y : ℕ, (2 : ℝ) ^ Y < 2097152", 21),
        ("∀ Y : ℕ, (101 / 100 : ℝ) ^ Y < 1000", 695),
        ("∀ (r : ℝ) (Y : ℕ), 0 ≤ r → r ≤ 2 → 0 ≤ (1 - r) ^ Y ∧ (1 - r) ^ Y ≤ 1", 1),
        ("∀ (x : ℝ) (Y : ℕ), x ^ Y ≥ 0", 1),
    ],
)
def test_false_power_claims_are_never_proved(text, fails_at):
    out = decide(text, max_size=25)
    assert out.verdict is not Verdict.PROVED, out.reason
    if fails_at <= 25:
        assert out.verdict is Verdict.REFUTED
        assert check_counterexample(parse_statement(text), out.counterexample) is True
    else:
        assert out.verdict is Verdict.BOUNDED


def test_no_index_means_no_constraint_n_zero_is_a_counterexample():
    # Per-index hypotheses nobody can satisfy only say n = 0; the sum is then 0, not 1.
    # (The reduced problem assumes φ(yⱼ) only where λⱼ > 0, or this would be "PROVED".)
    text = "(∀ i, 0 < w i ∧ w i < 0) → ∑ i, w i = 1"
    out = decide(text, VEC)
    assert out.verdict is Verdict.REFUTED and out.counterexample["n"] == "0", out.reason


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("(∀ i, 0 ≤ w i) → 0 ≤ ∑ i, ∑ j, w i * w j", "nested sums"),
        ("(∀ i, 0 ≤ w i) → 0 ≤ ∑ i, w i ∧ ∀ c : ℝ, 0 ≤ ∑ i, c * c * w i", "bound outside"),
        ("∀ m : ℕ, (∀ i, 0 ≤ w i) → 0 ≤ ∑ i, w i * (2 : ℝ) ^ m", "2 size parameters"),
        ("∀ f : ℕ → ℝ, (∀ i, 0 ≤ f i) → 0 ≤ ∑ i in Finset.range (n + 1), f i", "range (n + 1)"),
    ],
)
def test_claims_no_argument_covers_are_bounded_and_say_why(text, why):
    out = decide(text, VEC, max_size=3)
    assert out.verdict is Verdict.BOUNDED, out.reason
    notes = " ".join(out.stats["all_sizes"]["not_applicable"])
    assert why in notes, notes


@pytest.mark.parametrize(
    "text",
    [
        "∀ n : ℕ, ∑ i in Finset.range n, (i : ℝ) = n * (n - 1) / 2",
        "∀ n : ℕ, ∑ i in Finset.range n, i = n * (n - 1) / 2",  # in ℕ: truncated, floored
        "∀ n : ℕ, ∑ i in Finset.range n, (2 * i + 1 : ℝ) = n * n",
        "∀ (n : ℕ) (f : ℕ → ℝ), (∀ i, f i ≤ 1) → ∑ i in Finset.range n, f i ≤ n",
        "∀ (n : ℕ) (w : Fin n → ℝ), (∀ i, w i ≤ 1) → ∑ i, w i ≤ n",
        "∀ (n : ℕ) (w : Fin n → ℝ), (∀ i, 0 ≤ w i) → 0 ≤ ∑ i : Fin n, ((i : ℕ) : ℝ) * w i",
        "∀ (n : ℕ) (f : ℕ → ℝ), (∀ i, i < n → 0 ≤ f i) → 0 ≤ ∑ i in Finset.range n, f i * i",
    ],
)
def test_induction_on_the_size_with_partial_sums(text):
    out = decide(text)
    assert out.verdict is Verdict.PROVED, out.reason
    assert out.proof["method"] == "induction" and out.proof["kind"] == "size"
    assert out.confirmed_by["status"] == "confirmed"
    for role in ("base", "step"):
        again = prove(parse_statement(out.proof[role], definitions={}), timeout_s=30)
        assert again.verdict is Verdict.PROVED, (role, out.proof[role], again.reason)


@pytest.mark.parametrize(
    ("text", "fails_at"),
    [
        ("∀ n : ℕ, ∑ i in Finset.range n, (i : ℝ) ≤ 20 * n", 42),
        ("∀ n : ℕ, ∑ i in Finset.range n, (i : ℝ) = n * (n - 1) / 2 + if n = 30 then 1 else 0", 30),
        ("∀ n : ℕ, ∑ i in Finset.range n, i ≠ 1000", 1000),  # no n gives 1000: true, unproved
        ("∀ n : ℕ, ∑ i in Finset.range n, i ≠ 1035", 46),  # 0 + 1 + … + 45 = 1035
        ("∀ (n : ℕ) (w : Fin n → ℝ), (∀ i, w i = 1) → ∑ i, w i < 25", 25),
    ],
)
def test_partial_sum_claims_failing_beyond_the_bound_are_never_proved(text, fails_at):
    out = decide(text)
    assert out.verdict is Verdict.BOUNDED, out.reason
    if fails_at <= 50:
        far = decide(text, max_size=50)
        assert far.verdict is Verdict.REFUTED and far.counterexample["n"] == str(fails_at)
        assert check_counterexample(parse_statement(text), far.counterexample) is True


def test_dropped_hypotheses_are_recorded_and_only_strengthen_the_claim():
    text = "(∀ i, 0 ≤ w i) → (∀ i, ∀ j, w i = w j) → (n : ℝ) ≥ 0 → 0 ≤ ∑ i, w i"
    out = decide(text, VEC)
    assert out.verdict is Verdict.PROVED and out.proof["method"] == "sum-abstraction"
    assert len(out.proof["dropped_hypotheses"]) == 2


def test_per_index_hypotheses_may_mention_sums():
    text = "(∀ i, 0 ≤ w i ∧ w i ≤ ∑ j, a j) → (∀ i, 0 ≤ a i) → ∑ i, w i ≤ n * ∑ i, a i"
    out = decide(text, VEC)  # n outside a Fin: no argument, the bounded search only
    assert out.verdict is Verdict.BOUNDED
    text = "(∀ i, 0 ≤ w i ∧ w i ≤ ∑ j, a j) → (∀ i, 0 ≤ a i) → 0 ≤ ∑ i, a i"
    out = decide(text, VEC)
    assert out.verdict is Verdict.PROVED and out.proof["per_index_hypotheses"] == 2


def test_power_induction_records_the_invariant():
    out = decide("∀ (Y : ℕ), (2 : ℝ) ^ Y ≥ 1")
    assert out.verdict is Verdict.PROVED and out.proof["method"] == "induction"
    assert out.proof["invariant_name"] == "1 ≤ p"
    out = decide("∀ (r : ℝ) (Y : ℕ), 0 ≤ r → r ≤ 1 → 0 ≤ (1 - r) ^ Y ∧ (1 - r) ^ Y ≤ 1")
    assert out.verdict is Verdict.PROVED and out.proof["invariant_name"] == "0 ≤ p ≤ 1"


# --------------------------------------------------------------------------- property


TERMS = [
    "(w i)",
    "(a i)",
    "(w i * a i)",
    "(w i + a i)",
    "(w i - w i + 1)",
    "(w i * w i)",
    "(2 * w i - a i)",
]
OPS = ["≤", "<", "≥", "=", ">"]


@st.composite
def claims(draw):
    box = [
        f"(∀ i, {draw(st.integers(-2, 1))} ≤ {v} i ∧ {v} i ≤ {draw(st.integers(0, 3))})"
        for v in ("w", "a")
        if draw(st.booleans())
    ]

    def term() -> str:
        return draw(st.sampled_from(TERMS))

    def op() -> str:
        return draw(st.sampled_from(OPS))

    sums = [
        f"∑ i, {term()} {op()} {draw(st.integers(-3, 3))}" for _ in range(draw(st.integers(0, 2)))
    ]
    scale, shift = draw(st.integers(-2, 2)), draw(st.integers(-3, 3))
    goal = f"∑ i, {term()} {op()} {scale} * ∑ i, {term()} + {shift}"
    return " → ".join([*box, *[f"({s})" for s in sums], goal])


def test_proved_for_every_size_agrees_with_every_fixed_size():
    proved: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(claims())
    def check(text: str) -> None:
        statement = parse_statement(text, variables=VEC)
        out = prove(statement, timeout_s=10, confirm=False)
        if out.verdict is not Verdict.PROVED:
            return
        assert out.proof["method"] == "sum-abstraction"
        for k in range(5):
            fixed = prove(at_size(statement, "n", k), timeout_s=10, confirm=False)
            assert fixed.verdict is not Verdict.REFUTED, (text, k, fixed.counterexample)
        proved.append(text)

    check()
    assert len(proved) >= 10  # the check is not vacuous: 17 of the 40 claims are proved


def test_the_arguments_name_the_size_they_are_for():
    statement = parse_statement("(∀ i, 0 ≤ w i) → 0 ≤ ∑ i, w i", variables=VEC)
    arguments, notes = arguments_for(statement, ["n"])
    assert [a.method for a in arguments] == ["sum-abstraction", "induction"]
    assert arguments[0].detail["for_all"] == "n" and arguments[0].detail["points"] == 1
    assert arguments[1].detail["on"] == "n" and arguments[1].detail["kind"] == "size"
    assert notes == ["induction: n is not an exponent"]
