"""Every catalogue claim gets its expected verdict; refutations are re-checked independently;
fresh statements through the parser get the verdicts the Lean semantics demand."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hms_celery.verification import load_catalogue, load_definitions, parse_statement
from hms_celery.verification.exact import check_counterexample
from hms_celery.verification.prover import DEFAULT_MAX_SIZE, prove
from hms_celery.verification.verdict import Verdict
from tests.support import BOUNDED_ONLY

F = Fraction
DEFINITIONS = load_definitions()
CLAIMS = load_catalogue()


@pytest.fixture(scope="module")
def outcomes():
    return {c.theorem_id: prove(c.statement(DEFINITIONS), timeout_s=60) for c in CLAIMS}


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.theorem_id)
def test_catalogue_claim_gets_its_expected_verdict(claim, outcomes):
    out = outcomes[claim.theorem_id]
    assert claim.expected is not None
    assert out.verdict is claim.expected, out.reason
    if out.verdict is Verdict.BOUNDED:
        assert out.bound == DEFAULT_MAX_SIZE
    if out.verdict is Verdict.REFUTED:
        st = claim.statement(DEFINITIONS)
        assert set(out.counterexample) == {p.name for p in st.variables}
        assert check_counterexample(st, out.counterexample) is True


def test_war_bounds_original_counterexample_recomputed_by_hand(outcomes):
    cex = outcomes["war-bounds-original"].counterexample
    n = int(cex["n"])
    w, a, d = ([F(v) for v in cex[k]] for k in "wad")
    assert len(w) == len(a) == len(d) == n >= 1
    assert all(0 < wi <= 1 for wi in w) and sum(w) == 1
    assert all(-100 <= ai <= 100 for ai in a) and all(di >= 0 for di in d)
    war = sum(wi * ai * di for wi, ai, di in zip(w, a, d, strict=True))
    assert not (-100 <= war <= 100)


def test_drp_upper_original_counterexample_recomputed_by_hand(outcomes):
    cex = outcomes["drp-upper-original"].counterexample
    n = int(cex["n"])
    p, c, r = ([F(v) for v in cex[k]] for k in "pcr")
    big_b, m = F(cex["B"]), F(cex["M"])
    assert len(p) == len(c) == len(r) == n
    assert 0 < m <= 1 and big_b >= 0
    assert all(0 <= x <= 100 for x in p) and all(0 <= x <= 1 for x in c + r)
    raw = sum(pj * cj * rj for pj, cj, rj in zip(p, c, r, strict=True))
    assert big_b - raw * m > big_b - raw


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("∀ x : ℝ, x*x ≥ 0", Verdict.PROVED),
        ("∀ (n : ℕ) (x : Fin n → ℝ), (∀ i, x i ≥ 0) → ∑ i, x i ≥ 0", Verdict.PROVED),
        ("∀ (n : ℕ) (x : Fin n → ℝ), (∀ i, x i ≥ 0) → ∑ i, x i ≥ n", Verdict.REFUTED),
        (BOUNDED_ONLY, Verdict.BOUNDED),
        ("∀ x : ℝ, x / 0 = 0", Verdict.PROVED),
        ("∀ a b : ℕ, a - b ≤ a", Verdict.PROVED),
        ("∀ a b : ℕ, a - b + b = a", Verdict.REFUTED),
        ("0.1 + 0.2 = (0.3 : ℝ)", Verdict.PROVED),
        ("∀ (f : ℝ → ℝ) (x : ℝ), f x = f x", Verdict.PROVED),
        ("∃ x : ℝ, x > 5", Verdict.PROVED),
        ("∀ a : ℤ, a / 0 = 0", Verdict.PROVED),
        ("∀ x : ℚ, ∃ y : ℚ, y > x", Verdict.UNSUPPORTED),
    ],
)
def test_fresh_statements(text, verdict):
    out = prove(parse_statement(text), max_size=5)
    assert out.verdict is verdict, out.reason
    if verdict is Verdict.BOUNDED:
        assert out.bound == 5


def test_fresh_refutation_with_a_rechecked_cex():
    st = parse_statement("∀ x : ℝ, x > 0 → x*x > x")
    out = prove(st)
    assert out.verdict is Verdict.REFUTED
    x = F(out.counterexample["x"])
    assert 0 < x <= 1 and not x * x > x
    assert check_counterexample(st, out.counterexample) is True


def test_fresh_function_refutation_has_a_table():
    st = parse_statement("∀ (f : ℝ → ℝ), f 0 = f 1")
    out = prove(st)
    assert out.verdict is Verdict.REFUTED
    table = out.counterexample["f"]
    lookup = {F(k): F(v) for k, v in table["entries"]}

    def f(t: Fraction) -> Fraction:
        return lookup.get(t, F(table["else"]))

    assert f(F(0)) != f(F(1))


def test_irrational_model_is_not_a_refutation():
    out = prove(parse_statement("∀ x : ℝ, x * x ≠ 2"))
    assert out.verdict is Verdict.UNKNOWN and "irrational" in out.reason
    assert out.counterexample is None
