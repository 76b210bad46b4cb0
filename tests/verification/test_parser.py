"""Parser: the accepted syntax, Lean precedences, ASCII spellings, positions of syntax errors."""

from __future__ import annotations

import random
import time
from fractions import Fraction

import pytest

from hms_celery.errors import StatementError
from hms_celery.verification.ast import (
    REAL,
    BinOp,
    Builtin,
    Compare,
    Ite,
    Lambda,
    Let,
    Lit,
    Logic,
    Neg,
    Not,
    Pow,
    Quant,
    Sum,
    Var,
)
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.parser import parse_expression
from hms_celery.verification.surface import (
    SApp,
    SBin,
    SCmp,
    SLogic,
    SName,
    SNeg,
    SNot,
    SNum,
    SPow,
    SQuant,
    SSum,
)

VEC = {"n": "ℕ", "w": "Fin n → ℝ", "a": "Fin n → ℝ", "d": "Fin n → ℝ"}
REALS = {"x": "ℝ", "y": "ℝ", "z": "ℝ"}


def goal(text: str, variables=None, assumptions=()):
    return parse_statement(text, assumptions, variables or {}).goal


def core(text: str, variables=None):
    st = parse_statement(text, (), variables or {})
    return st.variables, st.hypotheses, st.goal


def err(text: str, variables=None, assumptions=()) -> StatementError:
    with pytest.raises(StatementError) as info:
        parse_statement(text, assumptions, variables or {})
    return info.value


def x_(name: str = "x") -> Var:
    return Var(name, REAL)


# --------------------------------------------------------------------------- accepted syntax


@pytest.mark.parametrize(
    "text",
    [
        "∀ (x : ℝ), x * x ≥ 0",
        "∀ x y : ℝ, x ≤ y ∨ y ≤ x",
        "∀ (a b : ℝ) (n : ℕ), a ^ n * b ^ n = (a * b) ^ n",
        "∀ x > 0, ∃ y ≥ (1 : ℝ), x * y > 0",
        "∃ (x : ℚ), x * 2 = 1",
        "∀ (f : ℝ → ℝ), f 0 = f 0",
        "∀ (g : ℝ → ℝ → ℝ) (x : ℝ), g x x = g x x",
        "∀ (v : Fin 3 → ℝ), ∑ i, v i ≥ ∑ i, v i",
        "∀ (x : ℝ), |x| ≥ 0 ∧ abs x = |x| ∧ min x 0 ≤ max x 0",
        "∀ (x : ℝ), (if x > 0 then x else -x) = |x|",
        "∀ (n : ℕ), ∑ i in Finset.range n, (i : ℝ) ≥ 0",
        "∀ (n : ℕ), ∑ i ∈ Finset.range n, i ≥ 0",
        "∀ (n : ℕ) (w : Fin n → ℝ), ∑ i : Fin n, w i = ∑ i, w i",
        "(fun x => x + 1) (2 : ℝ) = 3",
        "(fun (x : ℝ) ↦ x) 2 = 2",
        "(λ x => x * 2) (1 : ℚ) = 2",
        "let x := (2 : ℝ); x * x = 4",
        "let x : ℝ := 2\nx * x = 4",
        "(0.4 : ℝ) + 1e-3 = 0.401",
        "True ∧ ¬ False",
        "∀ (x : ℝ), x = x ↔ True",
        "∀ (p q : ℕ), p % 2 = 0 → q / 2 ≤ q",
        "∀ (x : ℤ), -x ^ 2 ≤ 0",
        "Not (1 = 2)",
        "∀ (x : ℝ), x ≠ x + 1",
        "Finset.sum (Finset.range 3) (fun i => i) = 3",
        "∀ (x : ℝ), x > 0 -- a comment\n  → x ≥ 0",
        "∀ (x : ℝ), /- a block\ncomment -/ x ≥ x",
    ],
)
def test_accepts(text: str) -> None:
    st = parse_statement(text)
    assert st.source == text


def test_accepts_the_definition_calls() -> None:
    for text in [
        "warScore w a d ≤ 100",
        "Moneyball.warScore w a d ≤ 100",
        "drp 1 w a d 0.5 ≥ 0",
        "financialStability w a d 2 ≤ 1",
        "sps 1 2 3 4 + marketHealth 1 1 1 1 + businessSupport 0 0 0 0 ≥ 0",
        "unifiedModel 1 1 1 1 = 1 ∧ warDashboard 5 5 5 5 = 5",
        "drpProjected 100 0.1 3 ≤ 100 ∧ conservative 10 = 7",
        "rawReduction w a d ≥ 0",
    ]:
        parse_statement(text, (), VEC)


# --------------------------------------------------------------------------- ASCII spellings


@pytest.mark.parametrize(
    ("unicode", "ascii"),
    [
        ("∀ x : ℝ, x ≤ x", "forall x : Real, x <= x"),
        ("∃ x : ℕ, x ≥ 1", "exists x : Nat, x >= 1"),
        ("∀ (p : ℤ) (q : ℚ), p ≠ 0 → q ≠ 0", "forall (p : Int) (q : Rat), p != 0 -> q != 0"),
        ("∀ x : ℝ, x > 0 ∧ x < 1 ∨ x = 2", "forall x : Real, x > 0 /\\ x < 1 \\/ x = 2"),
        ("∀ x : ℝ, x > 0 ↔ ¬ x ≤ 0", "forall x : Real, x > 0 <-> Not (x <= 0)"),
        ("(fun x ↦ x) (1 : ℝ) = 1", "(fun x => x) (1 : Real) = 1"),
        ("∀ f : ℝ → ℝ, f 1 = 1", "forall f : Real -> Real, f 1 = 1"),
    ],
)
def test_ascii_spellings_give_the_same_ast(unicode: str, ascii: str) -> None:
    assert core(unicode) == core(ascii)


# --------------------------------------------------------------------------- precedence


def test_big_operator_body_is_parsed_at_67() -> None:
    s = parse_expression("∑ i, w i * a i = 1")
    assert isinstance(s, SCmp) and s.op == "="
    assert isinstance(s.left, SSum) and isinstance(s.left.body, SBin) and s.left.body.op == "*"
    s = parse_expression("∑ i, f i + 1")
    assert isinstance(s, SBin) and s.op == "+" and isinstance(s.left, SSum)
    s = parse_expression("x * ∑ i, f i * 2")
    assert isinstance(s, SBin) and isinstance(s.right, SSum) and isinstance(s.right.body, SBin)
    g = goal("∑ i, w i * a i = 1", VEC)
    assert isinstance(g, Compare) and isinstance(g.left, Sum) and g.right == Lit(Fraction(1), REAL)


def test_unary_minus_and_power() -> None:
    assert goal("∀ x : ℝ, -x^2 ≤ 0").left == Neg(Pow(x_(), Lit(Fraction(2), _nat()), REAL), REAL)
    g = goal("-x*y = 0", REALS)
    assert g.left == BinOp("*", Neg(x_(), REAL), x_("y"), REAL)
    s = parse_expression("2 ^ 3 ^ 2")
    assert isinstance(s, SPow) and isinstance(s.exp, SPow)
    s = parse_expression("x - -y")
    assert isinstance(s, SBin) and isinstance(s.right, SNeg)


def _nat():
    from hms_celery.verification.ast import NAT

    return NAT


def test_left_associative_arithmetic() -> None:
    g = goal("x - y - z = 0", REALS)
    assert g.left == BinOp("-", BinOp("-", x_(), x_("y"), REAL), x_("z"), REAL)
    g = goal("x / y * z = 0", REALS)
    assert g.left == BinOp("*", BinOp("/", x_(), x_("y"), REAL), x_("z"), REAL)
    g = goal("x + y * z = 0", REALS)
    assert g.left == BinOp("+", x_(), BinOp("*", x_("y"), x_("z"), REAL), REAL)


def test_logic_precedence_and_associativity() -> None:
    s = parse_expression("p → q → r")
    assert isinstance(s, SLogic) and s.op == "→" and isinstance(s.right, SLogic)
    assert isinstance(s.left, SName)
    s = parse_expression("¬ a = b")
    assert isinstance(s, SNot) and isinstance(s.arg, SCmp)
    s = parse_expression("¬ p ∧ q")
    assert isinstance(s, SLogic) and s.op == "∧" and isinstance(s.left, SNot)
    s = parse_expression("p ∧ q ∨ r")
    assert s.op == "∨" and s.left.op == "∧"
    s = parse_expression("p ∨ q ∧ r")
    assert s.op == "∨" and s.right.op == "∧"
    s = parse_expression("p ↔ q → r")
    assert s.op == "↔" and s.right.op == "→"
    s = parse_expression("p ∧ q ∧ r")
    assert s.op == "∧" and isinstance(s.left, SName) and s.right.op == "∧"
    s = parse_expression("a + 1 = b ∧ c")
    assert s.op == "∧" and isinstance(s.left, SCmp)


def test_binders_extend_as_far_as_possible() -> None:
    s = parse_expression("p ∧ ∀ x, q x ∧ r")
    assert s.op == "∧" and isinstance(s.right, SQuant)
    assert isinstance(s.right.body, SLogic) and s.right.body.op == "∧"
    s = parse_expression("∀ x y, f x y")
    assert isinstance(s, SQuant) and isinstance(s.body, SQuant) and isinstance(s.body.body, SApp)


def test_peeling_of_binders_and_premises() -> None:
    st = parse_statement("∀ (x y : ℝ), 0 < x → x < y → x*x < y*y")
    assert [p.name for p in st.variables] == ["x", "y"]
    assert len(st.hypotheses) == 2
    assert st.goal == Compare("<", BinOp("*", x_(), x_(), REAL), BinOp("*", x_("y"), x_("y"), REAL))
    st = parse_statement("∀ a : ℝ, a > 0 → ∀ b : ℝ, b > a → b > 0")
    assert [p.name for p in st.variables] == ["a", "b"] and len(st.hypotheses) == 2
    st = parse_statement("∀ x > 0, x ≥ (0 : ℝ)")
    assert [p.name for p in st.variables] == ["x"] and len(st.hypotheses) == 1


def test_binder_predicates() -> None:
    st = parse_statement("∃ x ≥ 1, x * x = (4 : ℝ)")
    g = st.goal
    assert isinstance(g, Quant) and g.kind == "exists"
    assert isinstance(g.body, Logic) and g.body.op == "∧"
    assert g.body.left == Compare("≥", x_(), Lit(Fraction(1), REAL))


# --------------------------------------------------------------------------- literals and forms


def test_decimals_are_exact_fractions() -> None:
    g = goal("0.4 + 0.3 + 0.2 + 0.1 = (1 : ℝ)")
    lits = []

    def walk(e):
        if isinstance(e, Lit):
            lits.append(e.value)
        elif isinstance(e, BinOp):
            walk(e.left)
            walk(e.right)

    walk(g.left)
    assert lits == [Fraction(2, 5), Fraction(3, 10), Fraction(1, 5), Fraction(1, 10)]
    assert all(type(v) is Fraction for v in lits)
    assert sum(lits) == 1
    assert goal("(1e-3 : ℝ) = 1").left == Lit(Fraction(1, 1000), REAL)
    n = parse_expression("12.50")
    assert isinstance(n, SNum) and n.value == Fraction(25, 2) and n.decimal


def test_let_forms() -> None:
    g = goal("let s := x + y; s > 0", REALS)
    assert isinstance(g, Let) and g.name == "s" and g.value.ty == REAL
    g = goal("let s := x + y\nlet t := s * 2\nt > s", REALS)
    assert isinstance(g, Let) and isinstance(g.body, Let) and isinstance(g.body.body, Compare)
    g = goal("  let s :=\n    x + y\n  s > 0", REALS)  # value continues on an indented line
    assert isinstance(g, Let) and isinstance(g.value, BinOp)


def test_other_forms() -> None:
    g = goal("(if x > 0 then x else 0) ≥ 0", REALS)
    assert isinstance(g.left, Ite) and g.left.ty == REAL
    g = goal("|x - y| = abs (y - x)", REALS)
    assert isinstance(g.left, Builtin) and g.left.name == "abs"
    g = goal("(fun t => t * 2) x = 2 * x", REALS)
    assert isinstance(g.left.fn, Lambda) and g.left.fn.dom == REAL
    assert goal("¬ (x = y)", REALS) == Not(Compare("=", x_(), x_("y")))


def test_parsing_a_small_statement_is_fast() -> None:
    parse_statement("x + y > 0", (), REALS)  # build the parser and load the definitions
    start = time.perf_counter()
    for _ in range(50):
        parse_statement("∀ (a : ℝ), a > 0 → a + x > x", ("h: x > 0",), REALS)
    assert (time.perf_counter() - start) / 50 < 0.02


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "line", "column", "expected"),
    [
        ("(x + 1", 1, 7, "')'"),
        ("x + 1) > 0", 1, 6, None),
        ("x + 1 > (y", 1, 11, "')'"),
        ("x +", 1, 4, "an expression"),
        ("x > 0 ∧", 1, 8, "an expression"),
        ("∀ x : ℝ x > 0", 1, 9, "','"),
        ("x * * y > 0", 1, 5, "an expression"),
        ("x > 0 ∧\n  y +* 2 > 0", 2, 6, "an expression"),
        ("x < y < z", 1, 7, None),
        ("x > 0 $ y", 1, 7, None),
    ],
)
def test_syntax_errors_point_at_line_and_column(
    text: str, line: int, column: int, expected: str | None
) -> None:
    e = err(text, REALS)
    assert (e.line, e.column) == (line, column), str(e)
    assert str(e).startswith(f"{line}:{column}: ")
    if expected:
        assert expected in e.expected, e.expected
    for item in e.expected:  # human names, never Lark terminal names
        assert not item.isupper() and "ANON" not in item and "RPAR" not in item


def test_unmatched_close_paren_is_explained() -> None:
    assert "no '(' to close" in str(err("x + 1) > 0", REALS))


def test_errors_are_only_statement_errors() -> None:
    rng = random.Random(20240601)
    pieces = [
        "∀", "∃", "x", "y", "w", "i", "n", ":", "ℝ", "ℕ", "Fin", "→", ",", "(", ")", "+", "-",
        "*", "/", "^", "=", "<", "≤", "∧", "∨", "¬", "↔", "|", "0", "1", "0.5", "fun", "=>",
        "let", ":=", ";", "∑", "in", "Finset.range", "if", "then", "else", "warScore", "abs",
        "True", "\n", "--", "/-", "-/", "λ", "{", "}", "$", "1e99999999", "foo", "%", "@",
    ]  # fmt: skip
    valid = [
        "∀ (x y : ℝ), 0 < x → x < y → x*x < y*y",
        "∑ i, w i * a i = 1 ∧ warScore w a d ≤ 100",
        "let s := ∑ i, w i\ns ≥ 0",
        "∀ x > 0, ∃ y ≥ 1, x * y > (0 : ℝ)",
    ]
    texts = [" ".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    texts += [v[:k] for v in valid for k in range(len(v))]
    texts += ["".join(rng.choice(v) for _ in range(rng.randint(1, 25))) for v in valid * 25]
    texts += ["(" * 3000 + "x" + ")" * 3000, "-" * 3000 + "x > 0"]
    for text in texts:
        try:
            parse_statement(text, ("x > 0",), VEC)
        except StatementError as exc:
            assert exc.message
        for assumption in (text, "h: " + text):
            try:
                parse_statement("True", (assumption,), VEC)
            except StatementError as exc:
                assert str(exc).startswith("assumption 1: ")
