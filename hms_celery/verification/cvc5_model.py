"""cvc5's model values as counterexample JSON (exact: read from cvc5's printed rationals,
never through a Python ``int``); a value with no exact form raises
:class:`~.z3_terms.CounterexampleError`."""

from __future__ import annotations

import re
from typing import Any

import z3

from . import ast as A
from .cvc5_translate import Kind, Translator
from .z3_terms import CounterexampleError, VarEncoding

_INT = re.compile(r"(\d+)(?:\.0+)?")
_NEG = re.compile(r"\(- (.+)\)")
_DIV = re.compile(r"\(/ (\(- \d+(?:\.0+)?\)|\d+(?:\.0+)?) (\d+(?:\.0+)?)\)")


def rational_text(text: str) -> str | None:
    """cvc5's printed rational (``5``, ``5.0``, ``(- 5)``, ``(/ (- 1) 3)``) as ``"p"`` or
    ``"p/q"``, the counterexample format (cvc5 prints values normalised); None otherwise."""
    m = _INT.fullmatch(text)
    if m:
        return m.group(1)
    m = _NEG.fullmatch(text)
    if m:
        inner = rational_text(m.group(1))
        if inner is None or inner.startswith("-"):
            return None
        return inner if inner == "0" else f"-{inner}"
    m = _DIV.fullmatch(text)
    if m:
        num, den = rational_text(m.group(1)), rational_text(m.group(2))
        if num is None or den is None or den in ("0", "1"):
            return None
        return f"{num}/{den}"
    return None


def _value_json(v: Any, what: str) -> Any:
    """A cvc5 value as counterexample JSON (strings, never through a Python int)."""
    kind = v.getKind()
    if kind == Kind.CONST_BOOLEAN:
        return bool(v.getBooleanValue())
    if kind in (Kind.CONST_INTEGER, Kind.CONST_RATIONAL):
        text = rational_text(str(v))
        if text is None:
            raise CounterexampleError(f"{what}: cannot read cvc5's value {str(v)[:80]}")
        return text
    if v.isRealAlgebraicNumber():
        raise CounterexampleError(f"counterexample is irrational ({what} = {str(v)[:80]})")
    raise CounterexampleError(f"{what} has no exact value in cvc5's model: {str(v)[:80]}")


class Cvc5Values:
    """The values of a cvc5 model (a :class:`~.solvers.ModelValues`).  Holds the solver alive."""

    def __init__(self, solver: Any, translator: Translator) -> None:
        self.solver = solver
        self.translator = translator

    def scalar(self, term: z3.ExprRef, what: str) -> Any:
        return _value_json(self.solver.getValue(self.translator.term(term)), what)

    def function(self, enc: VarEncoding, what: str) -> dict[str, Any]:
        default: Any = False if isinstance(enc.cod, A.PropT) else "0"
        fn = self.translator.function(enc.term)
        if fn is None:  # the assertions never use it: any function will do
            return {"entries": [], "else": default}
        return _table(self.solver.getValue(fn), what)

    def table(self, decl: z3.FuncDeclRef, what: str) -> dict[str, Any]:
        """The table of the uninterpreted Z3 function ``decl`` (an SMT-LIB problem's)."""
        fn = self.translator.function(decl)
        if fn is None:  # the assertions never use it: any function will do
            default: Any = False if decl.range().kind() == z3.Z3_BOOL_SORT else "0"
            return {"entries": [], "else": default}
        return _table(self.solver.getValue(fn), what)


def _table(value: Any, what: str) -> dict[str, Any]:
    """A cvc5 function value ``(lambda (x…) (ite (= x c) v (ite …) e))`` as a table."""
    if value.getKind() != Kind.LAMBDA:
        raise CounterexampleError(f"{what}'s value is not a lambda: {str(value)[:80]}")
    variables = list(value[0])
    body = value[1]
    entries: list[list[Any]] = []
    seen: set[tuple[Any, ...]] = set()
    while body.getKind() == Kind.ITE:
        point = _point(body[0], variables, what)
        if point is None:
            raise CounterexampleError(f"{what}'s value is not a finite table: {str(value)[:80]}")
        key = tuple(point)
        if key not in seen:  # the first matching branch is the value
            seen.add(key)
            entries.append([*point, _value_json(body[1], f"{what}(…)")])
        body = body[2]
    if body.getSort().isBoolean() and body.getKind() != Kind.CONST_BOOLEAN:
        # A predicate's value is often a formula: a point, a disjunction of points, or the
        # negation of one of those (``(lambda (x y) (and (= x 3) (= y 1.0)))``).
        negated = body.getKind() == Kind.NOT
        inner = body[0] if negated else body
        disjuncts = list(inner) if inner.getKind() == Kind.OR else [inner]
        for d in disjuncts:
            point = _point(d, variables, what)
            if point is None:
                raise CounterexampleError(
                    f"{what}'s value is not a finite table: {str(value)[:80]}"
                )
            if tuple(point) not in seen:
                seen.add(tuple(point))
                entries.append([*point, not negated])
        return {"entries": entries, "else": negated}
    return {"entries": entries, "else": _value_json(body, f"{what}'s default value")}


def _point(cond: Any, variables: list[Any], what: str) -> list[Any] | None:
    """The argument values of a condition ``x₁ = c₁ ∧ …`` (every variable once), else None."""
    parts = list(cond) if cond.getKind() == Kind.AND else [cond]
    found: dict[int, Any] = {}
    for part in parts:
        if part.getKind() != Kind.EQUAL or part.getNumChildren() != 2:
            return None
        a, b = part[0], part[1]
        var, val = (a, b) if a.getKind() == Kind.VARIABLE else (b, a)
        if var.getKind() != Kind.VARIABLE or val.getKind() == Kind.VARIABLE:
            return None
        index = next((i for i, v in enumerate(variables) if v == var), None)
        if index is None or index in found:
            return None
        found[index] = _value_json(val, f"{what}'s argument")
    if len(found) != len(variables):
        return None
    return [found[i] for i in range(len(variables))]
