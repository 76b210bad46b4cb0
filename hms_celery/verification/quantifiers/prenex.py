"""Prenex form of a goal and candidate witness terms: pure AST work, no solver."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from .. import ast as A
from .. import ast_walk, exact
from ..ast_walk import names_in, substitute
from ..printer import show_expr, show_statement
from .attempt import (
    MAX_CANDIDATES,
)

# --------------------------------------------------------------------------- AST helpers

WITNESS_TYPES = (A.REAL, A.INT, A.NAT)  # ℚ: an ∃ over ℚ is left to the ordinary check


def _nodes(*roots: Any) -> Iterator[Any]:
    """Every node of the ``roots`` (types included)."""
    for root in roots:
        yield from ast_walk.nodes(root)


def has_infinite_quantifier(statement: A.Statement) -> bool:
    """Does a hypothesis or the goal hold a ``∀``/``∃`` over ℝ, ℚ, ℤ or ℕ?"""
    return any(
        isinstance(x, A.Quant) and isinstance(x.dom, A.Scalar)
        for x in _nodes(*statement.hypotheses, statement.goal)
    )


@dataclass(frozen=True)
class Peeled:
    """A statement with its goal in prenex form at the top: ``∀ variables, hypotheses →
    ∃ chain, body`` (logically equivalent to the statement it came from)."""

    variables: tuple[A.Param, ...]
    hypotheses: tuple[A.Expr, ...]
    chain: tuple[A.Param, ...]
    body: A.Expr
    definitions: dict[str, A.Definition]

    def instance(self, values: Mapping[str, A.Expr]) -> A.Statement:
        """The statement with the chain's leading variables fixed to ``values``."""
        rest = [p for p in self.chain if p.name not in values]
        goal = substitute(self.body, values)
        for p in reversed(rest):
            goal = A.Quant("exists", p.name, p.ty, goal)
        st = A.Statement(self.variables, self.hypotheses, goal, definitions=self.definitions)
        return replace(st, source=show_statement(st))


def peel(statement: A.Statement) -> Peeled:
    """Move the goal's leading ``∀``, ``→`` and ``∃`` (through ``¬``) into a :class:`Peeled`
    form; a bound name that clashes with a name already in use is renamed (``x'``)."""
    variables, hypotheses = list(statement.variables), list(statement.hypotheses)
    taken = {p.name for p in variables} | names_in(*statement.hypotheses, statement.goal)
    goal = statement.goal
    chain: list[A.Param] = []

    def fresh(q: A.Quant) -> tuple[str, A.Expr]:
        if q.var not in {p.name for p in (*variables, *chain)}:
            return q.var, q.body
        name = q.var + "'"
        while name in taken:
            name += "'"
        taken.add(name)
        return name, substitute(q.body, {q.var: A.Var(name, q.dom)})

    while True:
        if isinstance(goal, A.Not) and isinstance(goal.arg, A.Not):
            goal = goal.arg.arg
        elif isinstance(goal, A.Not) and isinstance(goal.arg, A.Quant):
            q = goal.arg
            flipped = "forall" if q.kind == "exists" else "exists"
            goal = A.Quant(flipped, q.var, q.dom, A.Not(q.body))
        elif isinstance(goal, A.Quant) and goal.kind == "forall" and not chain:
            name, body = fresh(goal)
            variables.append(A.Param(name, goal.dom))
            goal = body
        elif isinstance(goal, A.Logic) and goal.op in ("→", "->") and not chain:
            hypotheses.append(goal.left)
            goal = goal.right
        elif isinstance(goal, A.Quant) and goal.kind == "exists" and isinstance(goal.dom, A.Scalar):
            name, body = fresh(goal)
            chain.append(A.Param(name, goal.dom))
            goal = body
        else:
            break
    return Peeled(
        tuple(variables), tuple(hypotheses), tuple(chain), goal, dict(statement.definitions)
    )


# --------------------------------------------------------------------------- candidate terms


class _NotLinear(Exception):
    pass


def _arith(op: str, a: A.Expr | None, b: A.Expr | None, ty: A.Type) -> A.Expr | None:
    """``a op b`` with None as 0, literals folded exactly (Lean semantics), trivial identities
    dropped; raises :class:`_NotLinear` for a negation in ℕ."""
    a = None if isinstance(a, A.Lit) and a.value == 0 else a
    b = None if isinstance(b, A.Lit) and b.value == 0 else b
    if op == "+" and (a is None or b is None):
        return a if b is None else b
    if op in ("+", "-") and isinstance(b, A.Neg):  # a + -b = a - b, a - -b = a + b
        return _arith("-" if op == "+" else "+", a, b.arg, ty)
    if op == "-":
        if b is None:
            return a
        if a is None:
            if ty == A.NAT:
                raise _NotLinear("negation in ℕ")
            return ast_walk.lit(-b.value, ty) if isinstance(b, A.Lit) else A.Neg(b, ty)
    if op in ("*", "/") and (a is None or b is None):
        return None  # 0 · b = a · 0 = 0 / b = 0, and a / 0 = 0 in Lean
    assert a is not None and b is not None
    if isinstance(a, A.Lit) and isinstance(b, A.Lit):
        value = exact.arith(op, ty, Fraction(a.value), Fraction(b.value))
        return None if value == 0 else ast_walk.lit(value, ty)
    if op in ("*", "/") and isinstance(b, A.Lit) and b.value == 1:
        return a
    if op == "*" and isinstance(a, A.Lit) and a.value == 1:
        return b
    return A.BinOp(op, a, b, ty)


def _occurs(x: str, e: Any) -> bool:
    if isinstance(e, A.Var):
        return e.name == x
    if isinstance(e, A.Quant | A.Lambda | A.Sum) and e.var == x:
        return _occurs(x, getattr(e, "dom", None) or getattr(e, "domain", None))
    if isinstance(e, A.Let) and e.name == x:
        return _occurs(x, e.value)
    return any(_occurs(x, c) for c in ast_walk.children(e))


def _linear(e: A.Expr, x: str, ty: A.Type) -> tuple[A.Expr | None, A.Expr | None]:
    """``(c, r)`` with ``e = c·x + r`` (None for 0), ``c`` and ``r`` free of ``x``."""
    if not _occurs(x, e):
        return None, (None if isinstance(e, A.Lit) and e.value == 0 else e)
    if isinstance(e, A.Var) and e.name == x:
        return ast_walk.lit(1, ty), None
    if isinstance(e, A.BinOp) and e.ty == ty:
        (c1, r1), (c2, r2) = _linear(e.left, x, ty), _linear(e.right, x, ty)
        if e.op in ("+", "-"):
            if e.op == "-" and ty == A.NAT and c2 is not None:
                raise _NotLinear("x subtracted in ℕ")
            return _arith(e.op, c1, c2, ty), _arith(e.op, r1, r2, ty)
        if e.op == "*" and (c1 is None) != (c2 is None):
            k = e.left if c1 is None else e.right
            c, r = (c2, r2) if c1 is None else (c1, r1)
            return _arith("*", k, c, ty), _arith("*", k, r, ty)
        if e.op == "/" and c2 is None and ty in (A.REAL, A.RAT):
            return _arith("/", c1, e.right, ty), _arith("/", r1, e.right, ty)
    if isinstance(e, A.Neg) and e.ty == ty:
        c, r = _linear(e.arg, x, ty)
        return _arith("-", None, c, ty), _arith("-", None, r, ty)
    raise _NotLinear(type(e).__name__)


def _atoms(e: Any, x: str) -> Iterator[A.Compare]:
    """The comparisons of ``e`` in which ``x`` (not rebound) occurs."""
    if isinstance(e, A.Compare):
        if _occurs(x, e):
            yield e
        return
    if isinstance(e, A.Quant | A.Lambda | A.Sum) and e.var == x:
        return
    for c in ast_walk.children(e):
        yield from _atoms(c, x)


def solutions(body: A.Expr, x: A.Param, outer: set[str]) -> list[A.Expr]:
    """Terms ``t`` over the ``outer`` names with ``l = r`` at ``x = t`` for an atom ``l op r``
    of ``body`` in which ``x`` occurs linearly (at ``x``'s type; ℤ/ℕ division is Euclidean:
    the terms are candidates, and the instance's proof decides)."""
    found: list[A.Expr] = []
    for atom in _atoms(body, x.name):
        if atom.left.ty != x.ty or atom.right.ty != x.ty:
            continue
        coef: A.Expr | None
        try:
            (c1, r1), (c2, r2) = _linear(atom.left, x.name, x.ty), _linear(atom.right, x.name, x.ty)
            if c2 is None and c1 is not None:  # c1·x + r1 = r2
                coef, rest = c1, _arith("-", r2, r1, x.ty)
            elif c1 is None and c2 is not None:  # r1 = c2·x + r2
                coef, rest = c2, _arith("-", r1, r2, x.ty)
            elif c1 is not None and c2 is not None and x.ty != A.NAT:
                coef, rest = _arith("-", c1, c2, x.ty), _arith("-", r2, r1, x.ty)
            else:
                continue
        except _NotLinear:
            continue
        if coef is None:
            continue
        t = _arith("/", rest, coef, x.ty) or ast_walk.lit(0, x.ty)
        if names_in(t) <= outer:
            found.append(t)
    return found


def small_constants(ty: A.Type) -> list[A.Lit]:
    values: list[int | Fraction] = [0, 1, -1, 2, Fraction(1, 2)]
    if ty == A.NAT:
        values = [0, 1, 2]
    elif ty == A.INT:
        values = [0, 1, -1, 2]
    return [ast_walk.lit(v, ty) for v in values]


def candidates(peeled: Peeled, model: Mapping[str, A.Expr] | None) -> list[dict[str, A.Expr]]:
    """Candidate witnesses, at most :data:`MAX_CANDIDATES`: terms for the chain's first
    variable (atom solutions ``t``, ``t ± 1``, midpoints of two solutions, ``0, 1, -1``), the
    ``model``'s values for the whole chain, then other small constants."""
    x = peeled.chain[0]
    outer = {p.name for p in peeled.variables}
    terms: list[A.Expr] = []
    roots = solutions(peeled.body, x, outer)
    for t in roots:
        terms += [t, _arith("+", t, ast_walk.lit(1, x.ty), x.ty) or ast_walk.lit(0, x.ty)]
        terms.append(_arith("-", t, ast_walk.lit(1, x.ty), x.ty) or ast_walk.lit(0, x.ty))
    if x.ty != A.NAT and x.ty != A.INT:
        for s, t in itertools.combinations(roots, 2):
            mid = _arith("/", _arith("+", s, t, x.ty), ast_walk.lit(2, x.ty), x.ty)
            terms.append(mid or ast_walk.lit(0, x.ty))
    # 0, 1, -1 before the model's value (the simplest witness is the one reported), the other
    # constants after it
    small = small_constants(x.ty)
    out: list[dict[str, A.Expr]] = [{x.name: t} for t in (*terms, *small[:3])]
    out += [dict(model)] if model else []
    out += [{x.name: t} for t in small[3:]]
    unique: dict[tuple[tuple[str, str], ...], dict[str, A.Expr]] = {}
    for cand in out:
        unique.setdefault(_key(cand), cand)
    return list(unique.values())[:MAX_CANDIDATES]


def show_term(term: A.Expr, definitions: Mapping[str, A.Definition]) -> str:
    """A witness as reported: a value as in counterexamples (``"-1"``, ``"1/2"``), a term as
    Lean text over the outer variables (``"b / a + 1"``)."""
    if isinstance(term, A.Lit) and isinstance(term.ty, A.Scalar):
        return str(Fraction(term.value))
    return show_expr(term, definitions)


def _key(values: Mapping[str, A.Expr]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, show_expr(v)) for k, v in values.items()))
