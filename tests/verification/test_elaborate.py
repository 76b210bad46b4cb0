"""Elaboration: name resolution, binder type inference, coercions, calls, type errors."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hms_celery.errors import StatementError
from hms_celery.verification.ast import (
    INT,
    NAT,
    RAT,
    REAL,
    App,
    Arrow,
    BinOp,
    Call,
    Cast,
    Compare,
    FinT,
    Lambda,
    Lit,
    Logic,
    Neg,
    Param,
    Quant,
    Range,
    Sum,
    Var,
)
from hms_celery.verification.frontend import parse_statement

N = Var("n", NAT)
VEC_T = Arrow(FinT(N), REAL)
VEC = {"n": "ℕ", "w": "Fin n → ℝ", "a": "Fin n → ℝ", "d": "Fin n → ℝ"}


def st(text, variables=None, assumptions=()):
    return parse_statement(text, assumptions, variables or {})


def err(text, variables=None, assumptions=()) -> StatementError:
    with pytest.raises(StatementError) as info:
        parse_statement(text, assumptions, variables or {})
    return info.value


def casts(e) -> list[Cast]:
    out = []

    def walk(x):
        if isinstance(x, Cast):
            out.append(x)
        if hasattr(x, "__dataclass_fields__"):
            for f in x.__dataclass_fields__:
                v = getattr(x, f)
                for y in v if isinstance(v, tuple) else (v,):
                    walk(y)

    walk(e)
    return out


# --------------------------------------------------------------------------- coercions


def test_nat_is_cast_to_real_in_a_mixed_tree() -> None:
    g = st("∀ (n : ℕ) (x : ℝ), x + n > x").goal
    assert g.left == BinOp("+", Var("x", REAL), Cast(Var("n", NAT), REAL), REAL)
    assert casts(g) == [Cast(Var("n", NAT), REAL)]


def test_literals_take_the_tree_type_and_default_to_nat() -> None:
    assert st("1 + 1 = 2").goal.left == BinOp("+", Lit(Fraction(1), NAT), Lit(1, NAT), NAT)
    g = st("∀ (q : ℚ) (k : ℤ), q + k + 1 > 0").goal
    assert g.right == Lit(Fraction(0), RAT)
    assert Cast(Var("k", INT), RAT) in casts(g)


def test_expected_type_raises_the_tree_type() -> None:
    # (n + 1 : ℝ) is ↑n + 1 in Lean, not ↑(n + 1)
    g = st("∀ (n : ℕ), (n + 1 : ℝ) > 0").goal
    assert g.left == BinOp("+", Cast(Var("n", NAT), REAL), Lit(Fraction(1), REAL), REAL)
    g = st("∀ (n : ℕ), conservative n ≥ 0").goal
    assert g.left == Call("conservative", (Cast(Var("n", NAT), REAL),), REAL)


def test_negation_of_a_nat_leaf_in_a_real_tree_is_fine() -> None:
    g = st("∀ (n : ℕ) (x : ℝ), x + -n ≤ x").goal
    assert g.left.right == Neg(Cast(Var("n", NAT), REAL), REAL)


def test_fin_indices_are_fin_values_and_cast_to_nat_explicitly() -> None:
    # `i + 1` with `i : Fin n` is Fin arithmetic, and its numeral needs `NeZero n`, which
    # Lean cannot synthesize for a variable n (src/Init/Data/Fin/Basic.lean: Fin.instOfNat)
    with pytest.raises(StatementError, match="NeZero") as err:
        st("∀ i, w i ≥ 0 ∧ i + 1 ≥ 1", VEC)
    assert (err.value.line, err.value.column) == (1, 20)
    s = st("∀ i, w i ≥ 0 ∧ i.val + 1 ≥ 1", VEC)
    assert s.variables[-1] == Param("i", FinT(N))
    right = s.goal.right
    assert right.left == BinOp("+", Cast(Var("i", FinT(N)), NAT), Lit(Fraction(1), NAT), NAT)
    # a ℕ variable next to a `Fin n` value with a variable n: the Fin value is coerced to ℕ
    s = st("∀ i, w i ≥ 0 ∧ i + n ≥ n", VEC)
    assert s.goal.right.left == BinOp("+", Cast(Var("i", FinT(N)), NAT), N, NAT)
    g = st("∀ i, w i ≥ (i : ℝ)", VEC).goal
    assert g.right == Cast(Cast(Var("i", FinT(N)), NAT), REAL)


def test_range_sum_index_is_nat() -> None:
    g = st("∀ (m : ℕ), ∑ k in Finset.range m, (k : ℝ) ≥ 0").goal
    assert g.left == Sum("k", Range(Var("m", NAT)), Cast(Var("k", NAT), REAL), REAL)


# --------------------------------------------------------------------------- binder inference


def test_index_binder_type_is_inferred_from_use() -> None:
    s = st("∑ i, w i = 1", VEC)
    assert s.goal.left.domain == FinT(N)
    s = st("∀ i, 0 < w i", VEC)
    assert s.variables[-1] == Param("i", FinT(N))


def test_binder_type_is_inferred_from_the_other_leaves() -> None:
    s = st("∀ x, x + y > 0", {"y": "ℝ"})
    assert s.variables[-1] == Param("x", REAL)
    s = st("∀ x, x > 0 ∧ x + y > 0", {"y": "ℚ"})  # the first use alone does not decide
    assert s.variables[-1] == Param("x", RAT)
    s = st("∀ f, conservative f > 0 → f > 0")
    assert s.variables[-1] == Param("f", REAL)
    with pytest.raises(StatementError, match="cannot infer the type of f"):
        st("∀ f, f 1 = 2")  # a function variable needs its type written


def test_binder_type_defaults_to_nat_only_through_a_literal() -> None:
    assert st("∀ x, x > 0").variables[0] == Param("x", NAT)  # as Lean: OfNat default
    e = err("∀ x, x = x")
    assert "cannot infer the type of x" in e.message and (e.line, e.column) == (1, 3)
    e = err("∃ y, True")
    assert "cannot infer the type of y" in e.message


def test_sum_over_an_inferred_nat_is_an_error() -> None:
    assert "Finset.range" in err("∑ i, i = 0").message


def test_shadowing() -> None:
    g = st("∀ (x : ℝ), ∃ (x : ℕ), x = 1").goal
    assert isinstance(g, Quant) and g.kind == "exists" and g.dom == NAT
    assert g.body == Compare("=", Var("x", NAT), Lit(Fraction(1), NAT))
    s = st("∀ (x : ℕ), x = x", {"x": "ℝ"})  # the inner x is not peeled over the outer one
    assert s.variables == (Param("x", REAL),) and isinstance(s.goal, Quant)


# --------------------------------------------------------------------------- definitions


def test_implicit_parameters_are_inferred() -> None:
    g = st("warScore w a d = 0", VEC).goal
    assert g.left == Call("warScore", (N, Var("w", VEC_T), Var("a", VEC_T), Var("d", VEC_T)), REAL)
    v3 = {"u": "Fin 3 → ℝ"}
    g = st("warScore u u u ≥ 0", v3).goal
    assert g.left.args[0] == Lit(Fraction(3), NAT)


def test_lambda_argument_gets_its_domain_from_the_parameter() -> None:
    g = st("warScore (fun i => 1) a d = ∑ i, a i * d i", VEC).goal
    lam = g.left.args[1]
    assert lam == Lambda("i", FinT(N), Lit(Fraction(1), REAL), VEC_T)
    g = st("warScore w (fun i => w i) (fun _i => 2) ≥ 0", VEC).goal
    assert g.left.args[0] == N
    with pytest.raises(StatementError, match="implicit argument n"):
        st("warScore (fun i => 1) (fun i => 1) (fun i => 1) = 0")


def test_definitions_used_are_recorded_with_their_dependencies() -> None:
    s = st("drp 1 w a d 0.5 ≥ 0", VEC)
    assert set(s.definitions) == {"drp", "rawReduction"}
    assert st("1 = 1").definitions == {}


def test_function_variables_and_curried_application() -> None:
    g = st("∀ (g : ℝ → ℝ → ℝ) (x : ℝ), g x 1 = g 1 x").goal
    gt = Arrow(REAL, Arrow(REAL, REAL))
    assert g.left == App(App(Var("g", gt), Var("x", REAL), Arrow(REAL, REAL)), Lit(1, REAL), REAL)


# --------------------------------------------------------------------------- statements


def test_variables_assumptions_and_labels() -> None:
    s = st(
        "∀ i, 0 ≤ w i → warScore w w w ≥ 0",
        VEC,
        ["h_pos: 0 < n", "h : ∑ i, w i = 1", "∀ i, w i ≤ 1"],
    )
    assert [p.name for p in s.variables] == ["n", "w", "a", "d", "i"]
    assert len(s.hypotheses) == 4  # three assumptions, then the text's premise
    assert s.hypotheses[0] == Compare("<", Lit(Fraction(0), NAT), N)
    assert isinstance(s.hypotheses[1].left, Sum)


def test_assumption_errors_say_which_assumption() -> None:
    e = err("x > 0", {"x": "ℝ"}, ["x > 0", "x + foo > 0"])
    assert str(e) == "assumption 2: 1:5: unknown identifier 'foo'"
    assert (e.line, e.column) == (1, 5)
    e = err("x > 0", {"x": "ℝ"}, ["h_x: x + foo > 0"])  # the label keeps the columns
    assert (e.line, e.column) == (1, 10) and "assumption 1" in str(e)
    e = err("x > 0", {"x": "ℝ"}, ["h: x >"])
    assert str(e).startswith("assumption 1: 1:7: unexpected end of input")


def test_variable_type_errors() -> None:
    e = err("True", {"w": "Fin m → ℝ"})
    assert "type of variable w" in str(e) and "unknown identifier 'm'" in str(e)
    bad = err("True", {"x y": "ℝ"})
    assert "not a Lean identifier" in bad.message and (bad.line, bad.column) == (1, 2)


# --------------------------------------------------------------------------- type errors


def test_unknown_identifier_with_suggestion() -> None:
    e = err("warscore w a d > 0", VEC)
    assert (e.line, e.column) == (1, 1)
    assert "unknown identifier 'warscore'" in e.message and "warScore" in e.message
    e = err("x > 0 ∧\n  y > zz", {"x": "ℝ", "y": "ℝ"})
    assert (e.line, e.column) == (2, 7)


def test_type_mismatches() -> None:
    e = err("warScore w a x > 0", {**VEC, "x": "ℝ"})
    assert "has type ℝ but Fin n → ℝ is expected" in e.message and (e.line, e.column) == (1, 14)
    e = err("warScore u v v > 0", {"u": "Fin 3 → ℝ", "v": "Fin 4 → ℝ"})
    assert "Fin 4 → ℝ" in e.message and "Fin 3 → ℝ" in e.message and e.column == 12
    e = err("(1 < 2) + 1 > 0")
    assert "proposition" in e.message and e.column == 2
    e = err("∀ x : ℝ, x")
    assert "Prop" in e.message and e.column == 10
    e = err("w 1 > 0", VEC)
    assert "Fin n" in e.message
    e = err("∀ (m : ℕ), w m > 0", VEC)
    assert "has type ℕ but Fin n is expected" in e.message
    e = err("∀ (x : ℝ), (x : ℕ) = 0")
    assert "x has type ℝ but ℕ is expected" in e.message


def test_arity_errors() -> None:
    e = err("warScore w a > 0", VEC)
    assert "warScore expects 3 argument(s)" in e.message and e.column == 1
    e = err("conservative 1 2 > 0")
    assert "too many arguments" in e.message and e.column == 16
    e = err("abs 1 2 > 0")
    assert "'abs' expects 1 argument(s)" in e.message


def test_nat_negation_and_decimals_need_the_right_types() -> None:
    e = err("∀ (n : ℕ), -n < 0")
    assert "ℕ has no negation" in e.message and (e.line, e.column) == (1, 12)
    e = err("∀ (n : ℕ), n > 0.5")
    assert "decimal literal 0.5 cannot have type ℕ" in e.message and e.column == 16
    e = err("0.4 + 0.6 = 1")
    assert "decimal literal" in e.message
    assert "'%'" in err("∀ (x : ℝ), x % 2 = 0").message
    assert "exponent" in err("∀ (x y : ℝ), x ^ y = 0").message
    assert "not defined on ℕ" in err("∀ (n : ℕ), |n| = n").message


def test_logic_connectives_need_propositions() -> None:
    e = err("∀ (x : ℝ), x ∧ True")
    assert "Prop" in e.message
    g = st("∀ (x : ℝ), x > 0 → x ≥ 0 ∨ False").goal
    assert isinstance(g, Logic)
