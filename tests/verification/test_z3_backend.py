"""The Z3 backend and ``prove``: verdict rules, Lean semantics, sizes, counterexamples, limits."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from hms_celery.verification import ast as A
from hms_celery.verification import prover
from hms_celery.verification.exact import check_counterexample
from hms_celery.verification.product_bounds import product_bounds
from hms_celery.verification.prover import prove
from hms_celery.verification.sizes import size_assignments, size_parameters
from hms_celery.verification.verdict import ProofOutcome, Verdict
from hms_celery.verification.z3_compile import compile_statement

from .hand_ast import N, Q, R, Z, at, cmp, fin, land, lit, op, stmt, var, vec, war_statement

x, y = var("x"), var("y")


def test_ground_true_statement_is_proved():
    out = prove(stmt([("x", R)], [], cmp("≥", op("*", x, x), lit(0))))
    assert out.verdict is Verdict.PROVED
    assert out.bound is None and out.counterexample is None
    assert out.backend == "z3" and out.strategy is not None and out.elapsed_s > 0
    assert out.stats["decided_at"] == {} and "rlimit_count" in out.stats


def test_refutation_carries_an_exactly_rechecked_counterexample():
    st = stmt([("x", R)], [cmp(">", x, lit(0))], cmp(">", op("*", x, x), x))
    out = prove(st)
    assert out.verdict is Verdict.REFUTED
    value = Fraction(out.counterexample["x"])
    assert 0 < value <= 1
    assert check_counterexample(st, out.counterexample) is True


def test_division_by_zero_is_zero_in_every_type():
    assert (
        prove(stmt([("x", R)], [], cmp("=", op("/", x, lit(0)), lit(0)))).verdict is Verdict.PROVED
    )
    k = var("k", Z)
    st = stmt([("k", Z)], [], cmp("=", op("/", k, lit(0, Z), Z), lit(0, Z)))
    assert prove(st).verdict is Verdict.PROVED
    # symbolic zero divisor too
    st2 = stmt([("x", R), ("y", R)], [cmp("=", y, lit(0))], cmp("=", op("/", x, y), lit(0)))
    assert prove(st2).verdict is Verdict.PROVED


def test_nat_subtraction_is_truncated():
    a, b = var("a", N), var("b", N)
    le = stmt([("a", N), ("b", N)], [], cmp("≤", op("-", a, b, N), a))
    assert prove(le).verdict is Verdict.PROVED
    back = stmt([("a", N), ("b", N)], [], cmp("=", op("+", op("-", a, b, N), b, N), a))
    out = prove(back)
    assert out.verdict is Verdict.REFUTED
    assert int(out.counterexample["a"]) < int(out.counterexample["b"])


def test_integer_division_is_euclidean():
    a, b = var("a", Z), var("b", Z)
    q = op("/", a, b, Z)
    r = op("%", a, b, Z)
    facts = land(cmp("=", op("+", op("*", b, q, Z), r, Z), a), cmp("≥", r, lit(0, Z)))
    st = stmt([("a", Z), ("b", Z)], [cmp("≠", b, lit(0, Z))], facts)
    assert prove(st).verdict is Verdict.PROVED
    concrete = cmp("=", op("/", lit(-7, Z), lit(2, Z), Z), lit(-4, Z))
    assert prove(stmt([], [], concrete)).verdict is Verdict.PROVED


def test_decimals_are_exact():
    s = op("+", op("+", op("+", lit("0.4"), lit("0.3")), lit("0.2")), lit("0.1"))
    assert prove(stmt([], [], cmp("=", s, lit(1)))).verdict is Verdict.PROVED
    assert prove(stmt([], [], cmp("=", op("+", lit("0.1"), lit("0.2")), lit("0.3")))).verdict is (
        Verdict.PROVED
    )


def test_function_variable_counterexample_is_a_table():
    f = A.Var("f", A.Arrow(R, R))
    fx = A.App(f, x, R)
    assert prove(stmt([("f", f.ty), ("x", R)], [], cmp("=", fx, fx))).verdict is Verdict.PROVED
    st = stmt([("f", f.ty)], [], cmp("=", A.App(f, lit(0), R), A.App(f, lit(1), R)))
    out = prove(st)
    assert out.verdict is Verdict.REFUTED
    table = out.counterexample["f"]
    assert set(table) == {"entries", "else"}
    assert check_counterexample(st, out.counterexample) is True


def test_irrational_model_is_unknown_never_a_float_refutation():
    out = prove(stmt([("x", R)], [], cmp("≠", op("*", x, x), lit(2))))
    assert out.verdict is Verdict.UNKNOWN
    assert "irrational" in out.reason
    assert out.counterexample is None


def test_exists_goal_is_proved():
    goal = A.Quant("exists", "x", R, cmp(">", var("x"), lit(5)))
    assert prove(stmt([], [], goal)).verdict is Verdict.PROVED


def test_nested_quantifiers_are_handled():
    # ∀ x, (∀ y, y ≤ x) → False : the hypothesis quantifier stays a Z3 ∀
    hyp = A.Quant("forall", "y", R, cmp("≤", var("y"), x))
    st = stmt([("x", R)], [hyp], A.BoolLit(False))
    assert prove(st).verdict is Verdict.PROVED
    # ∀ x : ℚ, ∃ y : ℚ, y > x : ℚ under ∃ cannot be read over ℝ
    goal = A.Quant("exists", "y", Q, cmp(">", var("y", Q), var("x", Q)))
    out = prove(stmt([("x", Q)], [], goal))
    assert out.verdict is Verdict.UNSUPPORTED and "ℚ" in out.reason


def test_rational_variable_universal_is_read_over_reals():
    q = var("q", Q)
    assert prove(stmt([("q", Q)], [], cmp("≥", op("*", q, q, Q), lit(0, Q)))).verdict is (
        Verdict.PROVED
    )


def test_size_parameters_are_detected():
    n = var("n", N)
    assert size_parameters(war_statement(n)) == ["n"]
    assert size_parameters(war_statement(3)) == []
    k = var("k", N)
    pow_st = stmt([("x", R), ("k", N)], [], cmp("≥", A.Pow(x, k, R), lit(0)))
    assert size_parameters(pow_st) == ["k"]
    rng = A.Sum("i", A.Range(k), lit(1), R)
    assert size_parameters(stmt([("k", N)], [], cmp("≥", rng, lit(0)))) == ["k"]
    plain = stmt([("k", N)], [], cmp("≥", k, lit(0, N)))
    assert size_parameters(plain) == []


def test_size_parameters_through_definition_calls():
    m = var("m", N)
    v = A.Var("v", vec(m))
    body = A.Sum("i", fin(m), at("v", var("i", fin(m)), m), R)
    d = A.Definition("total", (A.Param("m", N, implicit=True), A.Param("v", vec(m))), R, body)
    n = var("n", N)
    call = A.Call("total", (n, A.Var("w", vec(n))), R)
    st = A.Statement(
        (A.Param("n", N), A.Param("w", vec(n))), (), cmp("=", call, call), definitions={"total": d}
    )
    assert size_parameters(st) == ["n"]
    out = prove(st, max_size=3)  # the sum inside the definition is abstracted: every n
    assert out.verdict is Verdict.PROVED and out.proof["method"] == "sum-abstraction"
    assert out.proof["sums"] == ["∑ i : Fin n, w i"] and v.name == "v"


def beyond_the_methods(st: A.Statement) -> A.Statement:
    """``st`` with ``0 ≤ ∑ i in Finset.range (n + 1), (i : ℝ)`` conjoined to its goal: true,
    but no argument for every size covers a sum over ``range (n + 1)``, so only the bounded
    search is left."""
    n, i = var("n", N), var("i", N)
    shifted = A.Range(A.BinOp("+", n, A.Lit(Fraction(1), N), N))
    extra = cmp("≤", lit(0), A.Sum("i", shifted, A.Cast(i, R), R))
    return replace(st, goal=land(st.goal, extra))


def test_symbolic_size_without_an_argument_gives_bounded_never_proved():
    n = var("n", N)
    f = fin(n)
    i = var("i", f)
    nonneg = A.Quant("forall", "i", f, cmp("≥", at("x", i, n), lit(0)))
    goal = cmp("≥", A.Sum("i", f, at("x", i, n), R), lit(0))
    st = beyond_the_methods(stmt([("n", N), ("x", vec(n))], [nonneg], goal))
    out = prove(st, max_size=6)
    assert out.verdict is Verdict.BOUNDED
    assert out.bound == 6 and "not a proof" in out.reason
    assert [c["sizes"]["n"] for c in out.stats["checks"]] == list(range(7))
    assert "range (n + 1)" in " ".join(out.stats["all_sizes"]["not_applicable"])


def test_false_war_bound_refuted_at_the_smallest_size():
    out = prove(war_statement(var("n", N)))
    assert out.verdict is Verdict.REFUTED
    cex = out.counterexample
    assert cex["n"] == "1" and len(cex["w"]) == len(cex["a"]) == len(cex["d"]) == 1
    w, a, d = (Fraction(cex[k][0]) for k in "wad")
    assert w == 1 and abs(w * a * d) > 100


def test_war_abs_bound_is_fast_with_the_default_strategy():
    out = prove(war_statement(var("n", N), abs_bound=True), max_size=10, timeout_s=60)
    assert out.verdict is Verdict.PROVED and out.proof["method"] == "sum-abstraction"
    sized = prove(beyond_the_methods(war_statement(var("n", N), abs_bound=True)), max_size=10)
    assert sized.verdict is Verdict.BOUNDED and sized.bound == 10
    fixed = prove(war_statement(30, abs_bound=True), timeout_s=60)
    assert fixed.verdict is Verdict.PROVED


def test_several_size_parameters_are_enumerated_by_level():
    levels = list(size_assignments(["n", "m"], 2))
    assert [lvl for lvl, _ in levels] == [0, 1, 2]
    assert levels[1][1] == [{"n": 0, "m": 1}, {"n": 1, "m": 0}, {"n": 1, "m": 1}]
    assert sum(len(a) for _, a in levels) == 9


def test_tiny_budgets_give_timeout_or_unknown():
    hard = war_statement(30, abs_bound=True)
    out = prove(hard, strategy="smt", timeout_s=0.2)
    assert out.verdict is Verdict.TIMEOUT, out.reason
    limited = prove(hard, strategy="smt", rlimit=10_000, timeout_s=60)
    assert limited.verdict is Verdict.UNKNOWN
    assert "resource" in limited.reason


def test_budget_running_out_after_some_sizes_gives_bounded_up_to_the_last_complete_size():
    n = var("n", N)
    out = prove(
        beyond_the_methods(war_statement(n, abs_bound=True)),
        strategy="smt",
        rlimit=2_000_000,
        max_size=30,
        timeout_s=5,
    )
    assert out.verdict is Verdict.BOUNDED, out.reason
    assert 1 <= out.bound < 30
    assert f"n={out.bound + 1}" in out.reason


def test_unknown_and_lean_backends(monkeypatch):
    st = stmt([], [], A.BoolLit(True))
    bad = prove(st, backend="coq")
    assert bad.verdict is Verdict.ERROR and "unknown backend 'coq'; available: z3" in bad.reason
    monkeypatch.setattr(prover.shutil, "which", lambda name: None)
    lean = prove(st, backend="lean")
    assert lean.verdict is Verdict.UNSUPPORTED
    assert lean.reason == "Lean backend unavailable: lean/lake not found on PATH"


def test_prove_never_raises():
    broken = stmt([], [], cmp("=", var("ghost"), lit(0)))
    assert prove(broken).verdict in (Verdict.UNSUPPORTED, Verdict.ERROR)
    real_pow = stmt([("x", R)], [], cmp("≥", A.Pow(x, x, R), lit(0)))
    out = prove(real_pow)
    assert out.verdict is Verdict.UNSUPPORTED and "exponent" in out.reason
    assert prove(stmt([], [], A.BoolLit(True)), strategy="no-such").verdict is Verdict.ERROR
    assert prove(stmt([], [], A.BoolLit(True)), max_size=-1).verdict is Verdict.ERROR


def test_outcome_json_round_trip():
    out = prove(stmt([("x", R)], [cmp(">", x, lit(0))], cmp(">", op("*", x, x), x)))
    again = ProofOutcome.from_json(out.to_json())
    assert again.verdict is out.verdict and again.counterexample == out.counterexample


def test_product_bounds_is_sound_and_linearises():
    ctx = z3.Context()
    compiled = compile_statement(war_statement(3, abs_bound=True), {}, ctx)
    lemmas = product_bounds(compiled.assertions)
    assert len(lemmas) > len(compiled.assertions)
    s = z3.Solver(ctx=ctx)
    s.add(*lemmas)
    assert s.check() == z3.unsat
    # a satisfiable instance stays satisfiable
    compiled = compile_statement(war_statement(3), {}, ctx)
    s = z3.Solver(ctx=ctx)
    s.add(*product_bounds(compiled.assertions))
    assert s.check() == z3.sat


def _walk_finds_product_or_division(terms: list[z3.ExprRef]) -> bool:
    stack = list(terms)
    while stack:
        t = stack.pop()
        if z3.is_quantifier(t):
            stack.append(t.body())
        elif z3.is_app(t):
            if z3.is_app_of(t, z3.Z3_OP_MUL) or z3.is_app_of(t, z3.Z3_OP_DIV):
                return True
            stack.extend(t.children())
    return False


_PB_CTX = z3.Context()
_PB_LEAVES = [
    z3.Real("x", _PB_CTX),
    z3.Real("y", _PB_CTX),
    z3.Real("(*", _PB_CTX),  # a quoted name with the text of a product: the slow path
    z3.RealVal("1/2", _PB_CTX),
    z3.RealVal(3, _PB_CTX),
    z3.ToReal(z3.Int("n", _PB_CTX)),
]


@st.composite
def _pb_terms(draw: st.DrawFn, depth: int = 3) -> z3.ArithRef:
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(_PB_LEAVES))
    a, b = draw(_pb_terms(depth - 1)), draw(_pb_terms(depth - 1))
    kind = draw(st.sampled_from(["+", "-", "*", "/", "ite", "neg"]))
    if kind == "ite":
        return z3.If(a > b, a, b)
    if kind == "neg":
        return -a
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[kind]


@given(st.lists(_pb_terms(), min_size=1, max_size=3), st.booleans())
@settings(max_examples=200, deadline=None)
def test_product_bounds_skips_only_what_it_would_return_unchanged(terms, quantify) -> None:
    """The fast path (no product or division in Z3's printed terms) returns the assertions
    unchanged, and is never taken when a walk of the terms finds a product or a division."""
    from hms_celery.verification import product_bounds as pb

    assertions = [t >= 0 for t in terms]
    if quantify:
        x = _PB_LEAVES[0]
        assertions = [z3.ForAll([x], a) for a in assertions]
    found = _walk_finds_product_or_division(assertions)
    if found:
        assert pb._has_product_or_division(assertions)
    if not pb._has_product_or_division(assertions):
        assert product_bounds(assertions) is assertions


def test_product_bounds_fast_path_matches_the_rewrite(monkeypatch) -> None:
    """Without a product or a division, the full rewrite returns the assertions too."""
    from hms_celery.verification import product_bounds as pb

    ctx = z3.Context()
    compiled = compile_statement(stmt([("x", R)], [], cmp("=", op("+", x, lit(0)), x)), {}, ctx)
    assert not pb._has_product_or_division(compiled.assertions)
    monkeypatch.setattr(pb, "_has_product_or_division", lambda assertions: True)
    assert product_bounds(compiled.assertions) is compiled.assertions


def test_vectors_are_separate_constants():
    ctx = z3.Context()
    compiled = compile_statement(war_statement(var("n", N)), {"n": 4}, ctx)
    terms = compiled.variables["w"].term
    assert [c.decl().name().split("»")[0] for c in terms] == ["w[0]", "w[1]", "w[2]", "w[3]"]
    assert len({c.get_id() for c in terms}) == 4
    assert compiled.variables["n"].size == 4


def test_generated_names_cannot_meet_user_names():
    """`w : Fin 2 → ℝ` and scalars `w_0`, `w[0]`, `w!0` stay distinct constants (issue 8.1)."""
    ctx = z3.Context()
    from hms_celery.verification import parse_statement

    st = parse_statement(
        "∀ (w : Fin 2 → ℝ) (w_0 w_1 : ℝ) («w[0]» «w!0» : ℝ), ∑ i, w i = w_0 + w_1 + «w[0]» - «w!0»"
    )
    compiled = compile_statement(st, {}, ctx)
    consts = [*compiled.variables["w"].term]
    consts += [compiled.variables[n].term for n in ("w_0", "w_1", "«w[0]»", "w!0")]
    assert len({c.decl().name() for c in consts}) == 6
    assert prove(st).verdict is Verdict.REFUTED


@pytest.mark.parametrize("strategy", ["linearise-restarts", "linearise-smt", "z3-default"])
def test_strategy_is_recorded_in_the_outcome(strategy):
    out = prove(stmt([], [], A.BoolLit(True)), strategy=strategy)
    assert out.verdict is Verdict.PROVED and out.strategy["name"] == strategy


def test_unused_names_are_not_confused_with_y():
    st = stmt(
        [("x", R), ("y", R)], [cmp("<", x, y)], cmp("<", op("+", x, lit(1)), op("+", y, lit(1)))
    )
    assert prove(st).verdict is Verdict.PROVED
