"""Differential test: HMS against the independent Lean reference on random closed statements.

A generator builds random well-typed statements in Lean syntax that mix ℕ ℤ ℚ ℝ and ``Fin n``
(literal ``n``), casts ``(e : T)`` and ``↑e``, ``if``/``min``/``max``/``|·|``/``∑``/``let``,
comparisons and connectives, and finite ``∀``/``∃`` over ``Fin n``; variables get random
literal values (inline ``(v : T)`` or ``let v : T := …;``), so every statement is closed and
``lean_reference.evaluate`` computes its truth value.  HMS must say PROVED when the reference
says True, REFUTED (with a counterexample the reference confirms) when it says False, and
ERROR/UNSUPPORTED exactly when the reference says Lean rejects the text.  A small share of the
statements is deliberately ill-typed (Float literals, ``Neg ℕ``, ``|·|`` on ℕ, …).

The run is deterministic (``derandomize=True``, no example database).  The number of examples
is ``HMS_TEST_DIFFERENTIAL_EXAMPLES`` (default 3000, about 20 s; ``tests/conftest.py`` drops
other ``HMS_*`` variables), e.g.
``HMS_TEST_DIFFERENTIAL_EXAMPLES=20000 pytest -q tests/verification/test_differential.py``;
the count is printed at the end.
``python -m tests.verification.test_differential 2000`` surveys 2000 statements (no
Hypothesis, no shrinking) and prints every disagreement, grouped by verdict pair.
"""

from __future__ import annotations

import os
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hms_celery.verification.verdict import Verdict
from tests.support import decide_text
from tests.verification import lean_reference as ref

# tests/conftest.py removes every HMS_* variable but HMS_TEST_*
EXAMPLES = int(os.environ.get("HMS_TEST_DIFFERENTIAL_EXAMPLES", "3000"))
STATS: Counter[str] = Counter()

NUMS = ("ℕ", "ℤ", "ℚ", "ℝ")
RANK = {t: i for i, t in enumerate(NUMS)}
# variable names exercising Lean's identifier rules (src/Init/Meta/Defs.lean isIdRest etc.)
NAMES = (
    "a", "b", "c", "x", "y", "z", "p", "q", "r", "s", "t", "u", "v", "m", "α", "β", "γ",
    "x₁", "x₂", "y'", "z'", "a?", "b!", "x_0", "ℓ", "𝔸", "ab", "n0", "«my var»", "w_1",
)  # fmt: skip
FIN_NAMES = ("i", "j", "k", "l", "i'", "j₁", "i_0", "k!")

# precedence levels of rendered terms (src/Init/Notation.lean)
ATOM, APP, POW, NEG, MUL, ADD = 1024, 1000, 80, 75, 70, 65


@dataclass
class N:
    """A rendered numeric term: its text, its precedence level, whether it has a leaf of the
    intended type ("anchor", which fixes the type of its binop% tree) and whether it relies on
    the intended type (negation, decimal literal) so that it must be anchored."""

    text: str
    prec: int = ATOM
    anchored: bool = False
    needs: bool = False


def paren(n: N, level: int) -> str:
    return n.text if n.prec >= level else f"({n.text})"


def is_fin(t: object) -> bool:
    return isinstance(t, tuple)


def show(t: object) -> str:
    return f"Fin {t[1]}" if isinstance(t, tuple) else str(t)


class Gen:
    """Random statements; ``integer(lo, hi)`` is the only source of randomness (Hypothesis'
    ``data.draw(st.integers(lo, hi))``, or ``random.randint``); 0 is always the simplest."""

    def __init__(self, integer: Callable[[int, int], int]) -> None:
        self.integer = integer
        self.lets: list[str] = []
        self.let_vars: list[tuple[str, object]] = []
        self.used: set[str] = set()
        self.fin_scope: list[tuple[str, int]] = []  # bound Fin variables (∀ ∃ ∑)
        self.nat_scope: list[str] = []  # ∑ … in Finset.range indices

    # ------------------------------------------------------------------ choices
    def choice(self, seq):
        return seq[self.integer(0, len(seq) - 1)]

    def chance(self, percent: int) -> bool:
        # high draws take the rarer branch: Hypothesis favours (and shrinks towards) 0
        return self.integer(0, 99) >= 100 - percent

    def fresh(self, pool: tuple[str, ...]) -> str:
        free = [n for n in pool if n not in self.used]
        name = self.choice(free) if free else f"v{len(self.used)}"
        self.used.add(name)
        return name

    # ------------------------------------------------------------------ statement
    def statement(self) -> str:
        body = self.prop(2)
        if self.chance(7):
            body = f"({body}) ∧ {self.ill_typed()}"
        text = "".join(self.lets) + body
        k = self.integer(0, 19)  # comments and line breaks (src/Lean/Parser/Basic.lean)
        if k == 1:
            text = "/- a /- nested -/ comment -/ " + text
        elif k == 2:
            text += " -- a trailing comment"
        elif k == 3:
            text = text.replace("; ", ";\n", 1)
        return text

    def prop(self, depth: int) -> str:
        k = self.integer(0, 9) if depth > 0 else 0
        if k <= 4 or k == 9:
            return self.comparison(depth)
        if k == 5:
            if self.chance(50):
                return f"¬ {self.comparison(depth - 1)}"  # notation:max "¬" p:40
            return f"¬({self.prop(depth - 1)})"
        if k == 6:
            op = self.choice(("∧", "∨", "→", "↔", "/\\", "\\/", "->", "<->"))
            if self.chance(40):  # comparisons (50) need no parentheses under connectives
                return f"{self.comparison(depth - 1)} {op} {self.comparison(depth - 1)}"
            return f"({self.prop(depth - 1)}) {op} ({self.prop(depth - 1)})"
        if k == 7:
            q = self.choice(("∀", "∃"))
            name = self.fresh(FIN_NAMES)
            size = self.integer(1, 3)
            self.fin_scope.append((name, size))
            body = self.prop(depth - 1)
            self.fin_scope.pop()
            return f"{q} {name} : Fin {size}, {body}"
        if k == 8 and self.chance(50):
            return self.choice(("True", "False"))
        return self.comparison(depth)

    def num_type(self) -> object:
        if self.chance(20):
            if self.fin_scope and self.chance(70):
                return ("Fin", self.choice(self.fin_scope)[1])
            return ("Fin", self.integer(1, 4))
        return self.choice(NUMS)

    def comparison(self, depth: int) -> str:
        ty = self.num_type()
        op = self.choice(("=", "≠", "<", "≤", ">", "≥", "<=", ">="))
        lhs = self.num(ty, min(depth, 2), expected=False)
        rhs = self.num(ty, min(depth, 2), expected=False)
        if not (lhs.anchored or rhs.anchored) and (lhs.needs or rhs.needs or self.chance(60)):
            lhs = N(f"({lhs.text} : {show(ty)})", anchored=True)
        return f"{paren(lhs, 51)} {op} {paren(rhs, 51)}"

    # ------------------------------------------------------------------ numeric terms
    def num(self, ty: object, depth: int, *, expected: bool) -> N:
        """A term meant to have type ``ty``; ``expected``: the tree has expected type ``ty``."""
        if depth <= 0 or self.chance(35):
            return self.leaf(ty, depth, expected=expected)
        kind = self.integer(0, 4)
        if kind <= 2:
            ops = ["+", "-", "*", "/"] + (["%"] if ty in ("ℕ", "ℤ") or is_fin(ty) else [])
            op = self.choice(ops)
            level = ADD if op in "+-" else MUL
            a = self.num(ty, depth - 1, expected=expected)
            b = self.num(ty, depth - 1, expected=expected)
            return N(
                f"{paren(a, level)} {op} {paren(b, level + 1)}",
                level,
                a.anchored or b.anchored,
                a.needs or b.needs,
            )
        if kind == 3 and ty != "ℕ":
            a = self.num(ty, depth - 1, expected=expected)
            inner = paren(a, NEG)
            # `--` would open a line comment (src/Lean/Parser/Basic.lean `whitespace`)
            return N(f"- {inner}" if inner.startswith("-") else f"-{inner}", NEG, a.anchored, True)
        if kind == 4 and not is_fin(ty):
            a = self.num(ty, depth - 1, expected=expected)
            if self.nat_scope and self.chance(30):
                e = self.choice(self.nat_scope)
            elif self.chance(20):
                e = self.var("ℕ", small=True).text
            else:
                e = str(self.integer(0, 3))
            return N(f"{paren(a, POW + 1)} ^ {e}", POW, a.anchored, a.needs)
        return self.leaf(ty, depth, expected=expected)

    def anchored(self, ty: object, depth: int) -> N:
        """A term that has type ``ty`` by itself (it carries a leaf of type ``ty``)."""
        n = self.num(ty, depth, expected=False)
        if not n.anchored:
            n = N(f"({n.text} : {show(ty)})", anchored=True)
        return n

    def leaf(self, ty: object, depth: int, *, expected: bool) -> N:
        k = self.integer(0, 13)
        fin = is_fin(ty)
        if k <= 2:
            return self.numeral(ty)
        if k <= 5:
            return self.var(ty)
        if depth <= 0:
            return self.var(ty) if k % 2 else self.numeral(ty)
        if k == 6:  # ascription: the inner tree has expected type ty
            return N(f"({self.num(ty, depth - 1, expected=True).text} : {show(ty)})", anchored=True)
        if k == 7 and not fin and ty != "ℕ":  # a cast up from a smaller type
            small = self.choice([t for t in NUMS if RANK[t] < RANK[ty]])
            inner = self.anchored(small, depth - 1)
            form = self.integer(0, 2)
            if form == 0:  # `((e : S) : T)`; `(e : T)` would elaborate e itself in T
                return N(f"(({inner.text} : {small}) : {show(ty)})", anchored=True)
            if form == 1:
                return N(f"(↑({inner.text}) : {show(ty)})", anchored=True)
            # a leaf of the smaller type, coerced by binop% (parentheses alone would not make
            # it a leaf: toTree looks through them)
            return N(f"({inner.text} : {small})")
        if k == 8 and self.fin_scope and not fin:  # a Fin index used as a number
            name, size = self.choice(self.fin_scope)
            form = self.integer(0, 5)
            if form == 4 and expected:
                return N(name)  # binop% coerces the Fin leaf to the (expected) maximal type
            if form == 5:
                inner = self.num(("Fin", size), depth - 1, expected=True)
                return N(f"(({inner.text} : Fin {size}) : {show(ty)})", anchored=True)
            if ty == "ℕ" and form <= 1:
                return N(f"{name}.val" if form == 0 else f"({name} : ℕ)", anchored=True)
            if form == 2 and expected:
                return N(f"↑{name}")
            return N(f"({name} : {show(ty)})", anchored=True)
        if k == 8 and self.nat_scope and not fin:
            return N(self.choice(self.nat_scope), anchored=ty == "ℕ")
        if k == 9:
            return self.poly(ty, depth)
        if k == 10 and not fin:
            return self.sum(ty, depth)
        if k == 11:
            return self.let_term(ty, depth)
        if k == 12 and ty in ("ℤ", "ℚ", "ℝ"):
            if self.chance(50):
                inner = self.num(ty, depth - 1, expected=True)
                return N(f"(|{inner.text}| : {show(ty)})", anchored=True)
            inner = self.anchored(ty, depth - 1)
            if self.chance(50):
                return N(f"|{inner.text}|", anchored=True)
            return N(f"abs {paren(inner, ATOM)}", APP, anchored=True)
        if k == 13 and expected and not fin:
            return N(f"↑{self.var(self.choice(NUMS[: RANK[ty] + 1])).text}")
        return self.var(ty)

    def numeral(self, ty: object) -> N:
        k = self.integer(0, 9)
        if k <= 5:
            return N(str(self.integer(0, 9)))
        if k == 6:
            return N(str(self.integer(10, 40)))
        if k == 7:
            value = self.integer(0, 31)
            return N(self.choice((hex(value), bin(value), oct(value))))
        if ty in ("ℚ", "ℝ"):
            return N(self.choice(("0.5", "2.25", "1e1", "1.5e-1", "0.125", "3.")), needs=True)
        return N(str(self.integer(0, 5)))

    def literal_value(self, ty: object) -> tuple[str, str]:
        """(value text for `let`, inline text)."""
        if is_fin(ty):
            v = str(self.integer(0, ty[1] + 2))
            return v, f"({v} : {show(ty)})"
        if ty == "ℕ":
            v = str(self.integer(0, 6))
            return v, f"({v} : ℕ)"
        if ty == "ℤ":
            v = str(self.integer(-6, 6))
            return v, f"({v} : ℤ)"
        num, den = self.integer(-6, 6), self.choice((1, 1, 2, 3, 4))
        if den == 1:
            v = str(num)
        elif den in (2, 4) and self.chance(30):
            v = str(float(Fraction(num, den)))
        else:
            v = f"{num}/{den}"
        return v, f"({v} : {ty})"

    def var(self, ty: object, *, small: bool = False) -> N:
        if is_fin(ty):
            bound = [n for n, size in self.fin_scope if size == ty[1]]
            if bound and self.chance(60):
                return N(self.choice(bound), anchored=True)
        same = [n for n, t in self.let_vars if t == ty]
        if same and not small and self.chance(50):
            return N(self.choice(same), anchored=True)
        if small:
            v = str(self.integer(0, 3))
            text = f"({v} : ℕ)"
        else:
            v, text = self.literal_value(ty)
        if self.chance(45):
            name = self.fresh(NAMES)
            self.lets.append(f"let {name} : {show(ty)} := {v}; ")
            self.let_vars.append((name, ty))
            return N(name, anchored=True)
        return N(text, anchored=True)

    def poly(self, ty: object, depth: int) -> N:
        kind = self.choice(("min", "max", "if"))
        typed = self.chance(50)
        if typed:  # the expected type reaches the arguments
            a = self.num(ty, depth - 1, expected=True)
            b = self.num(ty, depth - 1, expected=True)
        elif self.chance(75):  # the first argument fixes α: it must have type ty by itself
            a = self.anchored(ty, depth - 1)
            b = self.num(ty, depth - 1, expected=True)
        else:  # numerals wait: the first argument with a known type fixes α
            a = self.numeral(ty)
            b = self.anchored(ty, depth - 1)
        if kind == "if":
            cond = self.comparison(0)
            core = f"if {cond} then {a.text} else {b.text}"
            return N(f"({core} : {show(ty)})" if typed else f"({core})", anchored=True)
        core = f"{kind} {paren(a, ATOM)} {paren(b, ATOM)}"
        if typed:
            return N(f"({core} : {show(ty)})", anchored=True)
        return N(core, APP, anchored=True)

    def sum(self, ty: object, depth: int) -> N:
        typed = self.chance(50)
        over_fin = self.chance(50)
        if over_fin:
            name = self.fresh(FIN_NAMES)
            size = self.integer(0, 3)
            self.fin_scope.append((name, size))
            binder = f"{name} : Fin {size}"
        else:
            name = self.fresh(("n", "m", "o", "d", "e", "f"))
            self.nat_scope.append(name)
            binder = f"{name} in Finset.range {self.integer(0, 4)}"
            if self.chance(30):
                binder = binder.replace(" in ", " ∈ ")
        body = self.num(ty, depth - 1, expected=typed) if typed else self.anchored(ty, depth - 1)
        if over_fin:
            self.fin_scope.pop()
        else:
            self.nat_scope.pop()
        core = f"∑ {binder}, {paren(body, 67)}"
        return N(f"({core} : {show(ty)})" if typed else f"({core})", anchored=True)

    def let_term(self, ty: object, depth: int) -> N:
        name = self.fresh(NAMES)
        if self.chance(50):
            vty = self.choice((*NUMS, ty))
            value = self.num(vty, depth - 1, expected=True)
            decl = f"let {name} : {show(vty)} := {value.text}"
        elif self.chance(85):
            vty = self.choice((*NUMS, ty))
            value = self.anchored(vty, depth - 1)
            decl = f"let {name} := {value.text}"
        else:  # an unknown type: fixed later by the body (`elabLetDeclAux`, no defaulting)
            vty = ty
            value = self.num(ty, 1, expected=False)
            decl = f"let {name} := {value.text}"
            self.let_vars.append((name, vty))
            body = self.num(ty, depth - 1, expected=False)
            self.let_vars.remove((name, vty))
            body = N(f"{name} + {paren(body, ADD + 1)}", ADD, body.anchored, body.needs)
            if not body.anchored and (body.needs or value.needs):
                body = N(f"({body.text} : {show(ty)})", anchored=True)
            return N(f"({decl}; {body.text})", anchored=body.anchored)
        self.let_vars.append((name, vty))
        body = self.num(ty, depth - 1, expected=False)
        if vty == ty and self.chance(60):
            body = N(f"{name} + {paren(body, ADD + 1)}", ADD, True, body.needs)
        self.let_vars.remove((name, vty))  # (new top-level `let`s may follow it in the list)
        if not body.anchored and body.needs:
            body = N(f"({body.text} : {show(ty)})", anchored=True)
        return N(f"({decl}; {body.text})", anchored=body.anchored)

    # ------------------------------------------------------------------ ill-typed clauses
    def ill_typed(self) -> str:
        nat = self.var("ℕ").text
        return self.choice(
            (
                "0.5 + 0.25 = 0.75",  # Float (default instance OfScientific Float)
                f"-{nat} = 0",  # Neg ℕ
                f"|{nat}| = 0",  # |·| needs AddGroup
                f"{nat} + 0.5 = 1",  # OfScientific ℕ
                "(0 : Fin 0) = 0",  # OfNat (Fin 0) needs NeZero 0
                f"{nat} = 2 3",  # a number is not a function
            )
        )


# ====================================================================== comparison


hms_decide = decide_text


def disagreement(text: str) -> str | None:
    """None if HMS agrees with the reference on ``text``, else a description."""
    try:
        truth: bool | ref.Rejected = ref.evaluate(text)
    except ref.NotCovered as exc:
        return f"GENERATOR: the reference does not cover {text!r}: {exc.reason}"
    except ref.Rejected as exc:
        truth = exc
    verdict, reason, cex = hms_decide(text)
    STATS[f"{'rejected' if isinstance(truth, ref.Rejected) else truth} → {verdict}"] += 1
    if isinstance(truth, ref.Rejected):
        if verdict in (Verdict.ERROR, Verdict.UNSUPPORTED):
            return None
        return f"Lean rejects ({truth.reason}), HMS says {verdict} ({reason})"
    if verdict in (Verdict.ERROR, Verdict.UNSUPPORTED):
        return f"Lean accepts (truth {truth}), HMS says {verdict} ({reason})"
    if truth and verdict is not Verdict.PROVED:
        return f"true in Lean, HMS says {verdict} ({reason}; {cex})"
    if not truth:
        if verdict is not Verdict.REFUTED:
            return f"false in Lean, HMS says {verdict} ({reason})"
        try:
            ok = ref.check_counterexample(text, cex or {})
        except (ref.Rejected, ValueError) as exc:
            return f"HMS's counterexample {cex} cannot be checked: {exc}"
        if not ok:
            return f"HMS's counterexample {cex} is not one"
    return None


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_hms_agrees_with_the_lean_reference(data: st.DataObject) -> None:
    gen = Gen(lambda lo, hi: data.draw(st.integers(lo, hi)))
    text = gen.statement()
    STATS["examples"] += 1
    problem = disagreement(text)
    assert problem is None, f"{text}\n  {problem}"


def test_report_count(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the property test (file order): reports how many statements were compared."""
    with capsys.disabled():
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(STATS.items()) if k != "examples")
        print(f"\ndifferential: {STATS['examples']} statements compared ({summary})")
    assert STATS["examples"] >= 1 or EXAMPLES == 0


def test_generator_is_deterministic_and_covered() -> None:
    """The generator only writes text the reference decides (never NotCovered)."""
    for seed in range(300):
        rng = random.Random(seed)
        text = Gen(rng.randint).statement()
        assert text == Gen(random.Random(seed).randint).statement()
        try:
            ref.evaluate(text)
        except ref.NotCovered as exc:
            pytest.fail(f"{text!r}: {exc.reason}")
        except ref.Rejected:
            pass


def survey(count: int, seed: int = 0) -> int:
    """Print every disagreement on ``count`` random statements; returns how many."""
    groups: dict[str, list[str]] = {}
    for k in range(count):
        text = Gen(random.Random(seed + k).randint).statement()
        problem = disagreement(text)
        if problem is not None:
            head = problem.split("(")[0].strip()
            groups.setdefault(head, []).append(f"{text}\n      {problem}")
    for head, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"\n== {head}: {len(items)}")
        for item in items[:15]:
            print("  " + item)
    print(f"\n{count} statements; {sum(map(len, groups.values()))} disagreements; {dict(STATS)}")
    return sum(map(len, groups.values()))


if __name__ == "__main__":
    survey(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
