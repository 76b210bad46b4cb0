"""The exact evaluator: Lean semantics on Fractions, and the counterexample referee."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hms_celery.verification import ast as A
from hms_celery.verification.exact import (
    EvalError,
    Undecidable,
    arith,
    check_counterexample,
    ediv,
    emod,
    evaluate,
)

from .hand_ast import N, R, Z, at, cmp, fin, land, lit, op, stmt, var, vec, war_statement

F = Fraction


@pytest.mark.parametrize(
    ("a", "b", "q", "r"),
    [(7, 2, 3, 1), (-7, 2, -4, 1), (7, -2, -3, 1), (-7, -2, 4, 1), (6, 3, 2, 0), (5, 0, 0, 5)],
)
def test_integer_division_is_euclidean_like_lean(a, b, q, r):
    assert ediv(F(a), F(b)) == q
    assert emod(F(a), F(b)) == r
    assert arith("/", Z, F(a), F(b)) == q and arith("%", Z, F(a), F(b)) == r


def test_lean_arithmetic_semantics():
    assert arith("-", N, F(2), F(5)) == 0  # truncated ℕ subtraction
    assert arith("-", Z, F(2), F(5)) == -3
    assert arith("/", R, F(3), F(0)) == 0  # x / 0 = 0
    assert arith("/", N, F(7), F(0)) == 0
    assert arith("/", R, F(1), F(3)) == F(1, 3)
    with pytest.raises(EvalError):
        arith("%", R, F(1), F(2))


def test_decimals_are_exact():
    s = op("+", lit("0.1"), lit("0.2"))
    assert evaluate(cmp("=", s, lit("0.3")), {}) is True
    weights = op("+", op("+", op("+", lit("0.4"), lit("0.3")), lit("0.2")), lit("0.1"))
    assert evaluate(weights, {}) == 1


def test_sums_lambdas_lets_and_builtins():
    n = 4
    i = A.Var("i", fin(n))
    body = A.App(
        A.Lambda("j", fin(n), op("*", A.Cast(var("j", fin(n)), R), lit(2)), A.Arrow(fin(n), R)),
        i,
        R,
    )
    total = A.Sum("i", fin(n), body, R)
    assert evaluate(total, {}) == 12  # 2·(0+1+2+3)
    rng = A.Sum("k", A.Range(var("m", N)), A.Pow(lit(2), var("k", N), R), R)
    assert evaluate(rng, {"m": F(5)}) == 31
    let = A.Let("y", lit(3), op("*", var("y"), var("y")), R)
    assert evaluate(let, {}) == 9
    assert evaluate(A.Builtin("abs", (lit(-5),), R), {}) == 5
    assert evaluate(A.Builtin("min", (lit(2), lit(-1)), R), {}) == -1
    assert evaluate(A.Ite(cmp("<", lit(1), lit(2)), lit(10), lit(20), R), {}) == 10


def test_definitions_are_inlined():
    x = var("x")
    d = A.Definition("conservative", (A.Param("x", R),), R, op("*", lit("0.7"), x))
    call = A.Call("conservative", (lit(10),), R)
    assert evaluate(call, {}, {"conservative": d}) == 7


def test_finite_quantifiers_enumerate_and_infinite_ones_are_undecidable():
    f = fin(3)
    q = A.Quant("forall", "i", f, cmp("≥", at("v", var("i", f), 3), lit(0)))
    assert evaluate(q, {"v": lambda i: F([1, 2, 3][int(i)])}) is True
    assert evaluate(q, {"v": lambda i: F([1, -2, 3][int(i)])}) is False
    inf = A.Quant("forall", "y", R, cmp("≥", op("*", var("y"), var("y")), lit(0)))
    with pytest.raises(Undecidable):
        evaluate(inf, {})
    # but a decided side of a connective is enough
    assert evaluate(A.Logic("∨", cmp("<", lit(0), lit(1)), inf), {}) is True
    assert evaluate(A.Logic("→", cmp("<", lit(1), lit(0)), inf), {}) is True


def test_check_counterexample_on_the_false_war_bound():
    st = war_statement(var("n", N))
    good = {"n": "1", "w": ["1"], "a": ["100"], "d": ["2"]}
    assert check_counterexample(st, good) is True
    not_cex = {"n": "1", "w": ["1"], "a": ["100"], "d": ["1/2"]}
    assert check_counterexample(st, not_cex) is False  # the goal holds
    bad_hyp = {"n": "1", "w": ["1/2"], "a": ["100"], "d": ["2"]}
    assert check_counterexample(st, bad_hyp) is False  # Σ w ≠ 1
    with pytest.raises(EvalError):
        check_counterexample(st, {"n": "2", "w": ["1"], "a": ["100"], "d": ["2"]})
    with pytest.raises(EvalError):
        check_counterexample(st, {"n": "1", "w": ["1"], "a": ["100"]})


def test_check_counterexample_with_function_tables_and_undecidable_goals():
    f = A.Var("f", A.Arrow(R, R))
    st = stmt([("f", f.ty)], [], cmp("=", A.App(f, lit(0), R), A.App(f, lit(1), R)))
    assert check_counterexample(st, {"f": {"entries": [["1", "3/2"]], "else": "0"}}) is True
    assert check_counterexample(st, {"f": {"entries": [], "else": "7"}}) is False
    x = var("x")
    nested = A.Quant("exists", "y", R, cmp(">", var("y"), x))
    st2 = stmt([("x", R)], [], nested)
    assert check_counterexample(st2, {"x": "1"}) is None


def test_integer_variables_must_be_integers():
    st = stmt([("k", N)], [], cmp("≥", var("k", N), lit(0, N)))
    with pytest.raises(EvalError):
        check_counterexample(st, {"k": "1/2"})
    with pytest.raises(EvalError):
        check_counterexample(st, {"k": "-1"})


def test_vectors_decode_with_their_size():
    st = stmt(
        [("v", vec(2))],
        [],
        land(cmp("=", at("v", lit(0, N), 2), lit(1)), cmp("=", at("v", lit(1, N), 2), lit(2))),
    )
    assert check_counterexample(st, {"v": ["1", "3"]}) is True
    assert check_counterexample(st, {"v": ["1", "2"]}) is False
