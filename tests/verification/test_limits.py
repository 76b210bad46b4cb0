"""Size limits (``limits.py``) and big exact numbers (``bignum.py``): every hang case of
issue 8 returns at once with the limit and its ``line:column``, and 10,000-digit values stay
exact from Z3's model to the counterexample JSON and its re-check."""

from __future__ import annotations

import sys
from fractions import Fraction

import pytest

from hms_celery.verification import exact, limits, prover
from hms_celery.verification.bignum import (
    decimal_to_int,
    describe,
    fraction_to_str,
    int_to_decimal,
    parse_fraction,
)
from hms_celery.verification.exact import check_counterexample, evaluate
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.prover import prove
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.verdict import Verdict

TEN_THOUSAND_DIGITS = 10**10000


def _prove(text: str, **options) -> prover.ProofOutcome:
    return prove(parse_statement(text), timeout_s=10, **options)


# --------------------------------------------------------------------------- the hang cases


def test_a_tower_of_powers_is_refused_before_it_is_computed():
    out = _prove("(3 : ℕ) ^ 3 ^ 3 ^ 3 ^ 3 > 0")
    assert out.verdict is Verdict.UNSUPPORTED
    # 3 ^ 3 ^ 3 = 3 ^ 27 is computed; 3 ^ 7625597484987 is refused from its size alone.
    assert "MAX_NUMBER_BITS" in out.reason and "7625597484987" in out.reason
    assert "at 1:11" in out.reason


def test_a_huge_range_sum_is_refused_with_its_position():
    out = _prove("∑ i in Finset.range 500000000, i ≥ 0")
    assert out.verdict is Verdict.UNSUPPORTED
    assert "MAX_UNROLL" in out.reason and "500,000,000" in out.reason
    assert "sum ∑ at 1:1" in out.reason


def test_the_unroll_budget_is_per_problem_not_per_sum():
    out = _prove("∑ i in Finset.range 1000, ∑ j in Finset.range 1000, i * j ≥ 0")
    assert out.verdict is Verdict.UNSUPPORTED
    assert "MAX_UNROLL" in out.reason and "already unrolled" in out.reason
    assert "at 1:27" in out.reason  # the inner sum runs out of budget
    small = _prove("∑ i in Finset.range 100, ∑ j in Finset.range 100, i * j ≥ 0")
    assert small.verdict is Verdict.PROVED


def test_a_finite_quantifier_counts_against_the_unroll_budget():
    # (a leading ∀ would become a statement variable: nothing to unroll)
    out = _prove("1 = 1 ∧ ∀ i : Fin 200000, (i : ℕ) < 200000")
    assert out.verdict is Verdict.UNSUPPORTED
    assert "MAX_UNROLL" in out.reason and "∀ i" in out.reason


def test_a_vector_counts_against_the_unroll_budget():
    out = _prove("∀ v : Fin 200000 → ℝ, v 0 = v 0")
    assert out.verdict is Verdict.UNSUPPORTED
    assert "MAX_UNROLL" in out.reason and "vector v" in out.reason


def test_a_symbolic_power_over_the_exponent_limit_is_refused():
    out = _prove("∀ x : ℝ, x ^ 20000 ≥ 0")
    assert out.verdict is Verdict.UNSUPPORTED
    assert "MAX_EXPONENT" in out.reason and "20000" in out.reason and "at 1:10" in out.reason
    limits.check_symbolic_power(limits.MAX_EXPONENT)  # the limit itself is allowed
    with pytest.raises(limits.TooLarge):
        limits.check_symbolic_power(limits.MAX_EXPONENT + 1)


def test_concrete_powers_up_to_the_bit_limit_are_computed():
    assert _prove("(2 : ℕ) ^ 1000000 > 0").verdict is Verdict.PROVED
    out = _prove("(2 : ℕ) ^ 1000001 > 0")
    assert out.verdict is Verdict.UNSUPPORTED and "MAX_NUMBER_BITS" in out.reason
    # 0, 1 and -1 to any power cost nothing: never refused
    assert _prove("(1 : ℤ) ^ 3 ^ 3 ^ 3 = 1").verdict is Verdict.PROVED
    assert _prove("(-1 : ℤ) ^ 3 ^ 3 ^ 3 = -1").verdict is Verdict.PROVED


def test_repeated_products_cannot_grow_a_number_past_the_limit():
    out = _prove("(2 : ℕ) ^ 600000 * 2 ^ 600000 > 0")
    assert out.verdict is Verdict.UNSUPPORTED
    assert "MAX_NUMBER_BITS" in out.reason and "'*'" in out.reason


def test_the_exact_evaluator_has_the_same_limits():
    st = parse_statement("(3 : ℕ) ^ 3 ^ 3 ^ 3 ^ 3 > 0")
    with pytest.raises(limits.TooLarge, match=r"MAX_NUMBER_BITS"):
        evaluate(st.goal, {})
    st = parse_statement("∑ i in Finset.range 500000000, i ≥ 0")
    with pytest.raises(limits.TooLarge, match=r"sum ∑ at 1:1.*MAX_UNROLL"):
        evaluate(st.goal, {})
    st = parse_statement("1 = 1 ∧ ∀ i : Fin 200000, (i : ℕ) < 200000")
    with pytest.raises(limits.TooLarge, match=r"∀ i.*MAX_UNROLL"):
        evaluate(st.goal, {})


def test_a_recheck_over_a_limit_is_unknown_not_an_internal_error(monkeypatch):
    st = parse_statement("∀ x : ℕ, x ^ 5000 ≠ 3")
    huge = {"x": int_to_decimal(TEN_THOUSAND_DIGITS)}  # x ^ 5000: 1.7e8 bits
    with pytest.raises(exact.TooLarge, match="MAX_NUMBER_BITS"):
        check_counterexample(st, huge)

    def too_large(*_args):
        raise exact.TooLarge("the power at 1:1 is too large to compute (MAX_NUMBER_BITS)")

    monkeypatch.setattr(exact, "check_counterexample", too_large)
    out = _prove("∀ x : ℝ, x > 0")
    assert out.verdict is Verdict.UNKNOWN
    assert "could not be re-checked exactly" in out.reason and "MAX_NUMBER_BITS" in out.reason


def test_messages_without_a_position_still_name_the_limit():
    assert limits.location(object()) == ""
    with pytest.raises(limits.TooLarge) as info:
        limits.check_power(Fraction(3), 10**9)
    assert "MAX_NUMBER_BITS" in str(info.value) and " at " not in str(info.value)
    budget = limits.Unroller(limit=10)
    budget.charge(6, "the terms")
    with pytest.raises(limits.TooLarge, match=r"6 already unrolled"):
        budget.charge(5, "the terms")


# --------------------------------------------------------------------------- big numbers


@pytest.mark.parametrize("digits", [1, 4299, 4300, 4301, 8601, 10_000, 300_000])
def test_decimal_conversions_of_any_size_round_trip(digits):
    n = 7 * 10 ** (digits - 1) + 12345 if digits > 5 else 7
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        expected = str(n)
    finally:
        sys.set_int_max_str_digits(old)
    assert int_to_decimal(n) == expected and int_to_decimal(-n) == "-" + expected
    assert decimal_to_int(expected) == n and decimal_to_int("-" + expected) == -n
    q = Fraction(n, 3 * n + 1)
    assert parse_fraction(fraction_to_str(q)) == q
    assert parse_fraction(f" {expected}.25 ") == n + Fraction(1, 4)
    assert parse_fraction("-" + expected) == -n
    assert "digits" in describe(n) or describe(n) == str(n)


def test_decimal_text_is_validated():
    for bad in ["", "+", "1_000", "١٢", "1.5", " 7"]:
        with pytest.raises(ValueError):
            decimal_to_int(bad)
    with pytest.raises(ValueError):
        parse_fraction("1e" + "9" * 5000)  # long text: integers, p/q and a.b only
    with pytest.raises(ZeroDivisionError):
        parse_fraction("1/" + "0" * 5000)
    assert parse_fraction("1.5") == Fraction(3, 2) and parse_fraction("1e3") == 1000


def test_a_ten_thousand_digit_counterexample_is_exact():
    st = parse_statement("∀ x : ℤ, x ≠ 10 ^ 10000")
    out = prove(st, timeout_s=10)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.counterexample == {"x": int_to_decimal(TEN_THOUSAND_DIGITS)}
    assert check_counterexample(st, out.counterexample) is True


def test_a_ten_thousand_digit_rational_counterexample_is_exact():
    st = parse_statement("∀ x : ℝ, x ≠ 10 ^ 10000 / 3")
    out = prove(st, timeout_s=10)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.counterexample["x"] == f"{int_to_decimal(TEN_THOUSAND_DIGITS)}/3"
    assert parse_fraction(out.counterexample["x"]) == Fraction(TEN_THOUSAND_DIGITS, 3)
    assert check_counterexample(st, out.counterexample) is True


def test_big_bounds_through_product_bounds_stay_exact():
    """``product-bounds`` reads the hypotheses' numerals and writes its lemmas' constants."""
    text = "∀ x y : ℝ, 0 ≤ x → x ≤ 10 ^ 10000 → 0 ≤ y → y ≤ 1 → x * y < 10 ^ 10000"
    out = prove(parse_statement(text), strategy="linearise-smt", timeout_s=10)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert parse_fraction(out.counterexample["x"]) * parse_fraction(out.counterexample["y"]) == (
        TEN_THOUSAND_DIGITS
    )


def test_a_ten_thousand_digit_smtlib_model_is_exact():
    big = int_to_decimal(TEN_THOUSAND_DIGITS)
    problem = (
        "(declare-const x Int)(declare-const y Real)"
        f"(assert (= x {big}))(assert (= y (/ {big}.0 3.0)))(check-sat)"
    )
    out = ProofRequest.build(smtlib=problem).run(timeout=10, max_size=0, rlimit=None)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert out.counterexample == {"x": big, "y": f"{big}/3"}


def test_the_recheck_reads_ten_thousand_digit_values():
    st = parse_statement("∀ x : ℕ, x < 10 ^ 10000 → x + 1 < 10 ^ 10000")
    cex = {"x": int_to_decimal(TEN_THOUSAND_DIGITS - 1)}
    assert check_counterexample(st, cex) is True
    assert check_counterexample(st, {"x": int_to_decimal(TEN_THOUSAND_DIGITS - 2)}) is False
    with pytest.raises(exact.EvalError, match="characters"):
        check_counterexample(st, {"x": "-" + cex["x"]})
