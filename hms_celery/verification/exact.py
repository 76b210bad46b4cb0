"""Exact evaluation of the core AST on Python :class:`~fractions.Fraction` values.

This is the referee of every counterexample: a Z3 model only becomes a REFUTED verdict once
:func:`check_counterexample` confirms, with exact rationals and Lean's semantics (``x/0 = 0``,
truncated ℕ subtraction, Euclidean ℕ/ℤ division), that the hypotheses hold and the goal fails.

Values: numbers are ``Fraction``; propositions ``bool``; function-typed values (vectors,
``f : ℝ → ℝ``, lambdas) are Python callables of one argument.  Finite quantifiers (over
``Fin n`` with a concrete ``n``, or over ``Prop``) and sums are evaluated by enumeration; a
quantifier over an infinite type raises :class:`Undecidable`.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from math import floor
from typing import Any

from . import ast as A
from .ast import Not
from .bignum import describe, parse_fraction
from .limits import TooLarge, Unroller, check_number, check_power

Value = Any  # Fraction | bool | Callable[[Value], Value]

_LOGIC_ALIASES = {"/\\": "∧", "\\/": "∨", "->": "→", "<->": "↔", "and": "∧", "or": "∨"}


class Undecidable(Exception):
    """The value cannot be computed exactly (e.g. a quantifier over ℝ)."""


class EvalError(ValueError):
    """The expression is ill-formed for exact evaluation (a bug or a malformed input)."""


# --------------------------------------------------------------------------- arithmetic


def ediv(a: Fraction, b: Fraction) -> Fraction:
    """Lean's ``Int.ediv`` (``a / 0 = 0``); the remainder :func:`emod` is always ≥ 0."""
    if b == 0:
        return Fraction(0)
    return Fraction(floor(a / b)) if b > 0 else Fraction(-floor(a / -b))


def emod(a: Fraction, b: Fraction) -> Fraction:
    """Lean's ``Int.emod`` (``a % 0 = a``)."""
    return a - b * ediv(a, b)


def is_integral(ty: A.Type) -> bool:
    return isinstance(ty, A.FinT) or (isinstance(ty, A.Scalar) and ty.num in (A.Num.NAT, A.Num.INT))


def arith(op: str, ty: A.Type, a: Fraction, b: Fraction) -> Fraction:
    """``a op b`` in type ``ty`` with Lean's semantics; a result over
    :data:`.limits.MAX_NUMBER_BITS` raises :class:`TooLarge`."""
    return check_number(_arith(op, ty, a, b), f"the result of '{op}'")


def _arith(op: str, ty: A.Type, a: Fraction, b: Fraction) -> Fraction:
    nat = isinstance(ty, A.Scalar) and ty.num is A.Num.NAT
    if op == "+":
        return a + b
    if op == "-":
        return max(a - b, Fraction(0)) if nat else a - b
    if op == "*":
        return a * b
    if op == "/":
        if is_integral(ty):
            return ediv(a, b)
        return Fraction(0) if b == 0 else a / b
    if op == "%":
        if not is_integral(ty):
            raise EvalError(f"'%' on {ty} is not supported")
        return emod(a, b)
    raise EvalError(f"unknown arithmetic operator {op!r}")


def fin_arith(op: str, n: int, a: Fraction, b: Fraction) -> Fraction:
    """``a op b`` in ``Fin n`` (src/Init/Data/Fin/Basic.lean): ``+ - *`` wrap modulo ``n``
    (``Fin.sub a b = ((n - b) + a) % n``), ``/`` and ``%`` are ``Fin.div``/``Fin.mod`` on the
    values (``a / 0 = 0``, ``a % 0 = a``)."""
    if n <= 0:
        raise EvalError("Fin 0 has no values")
    if op == "+":
        return (a + b) % n
    if op == "-":
        return ((n - b) + a) % n
    if op == "*":
        return (a * b) % n
    if op == "/":
        return ediv(a, b)
    if op == "%":
        return emod(a, b)
    raise EvalError(f"unknown arithmetic operator {op!r} on Fin {n}")


def fin_size(ty: A.Type, size_value: Any) -> int | None:
    """The size of ``ty`` if it is a ``Fin`` type (``size_value`` evaluates its size)."""
    if not isinstance(ty, A.FinT):
        return None
    return as_nat(size_value(ty.size), "Fin size")


def compare(op: str, a: Any, b: Any) -> bool:
    op = A.CMP_ALIASES.get(op, op)
    if op == "=":
        return bool(a == b)
    if op == "≠":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "≤":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    if op == "≥":
        return bool(a >= b)
    raise EvalError(f"unknown comparison {op!r}")


def logic_op(op: str) -> str:
    return _LOGIC_ALIASES.get(op, op)


def as_nat(value: Any, what: str) -> int:
    """``value`` as a Python int ≥ 0 (sizes, exponents, indices)."""
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise EvalError(f"{what} is not a number: {value!r}")
    if Fraction(value).denominator != 1 or value < 0:
        raise EvalError(f"{what} is not a natural number: {describe(Fraction(value))}")
    return int(value)


# --------------------------------------------------------------------------- evaluator


def evaluate(
    expr: A.Expr,
    env: Mapping[str, Value],
    definitions: Mapping[str, A.Definition] | None = None,
) -> Value:
    """The exact value of ``expr`` with the free variables bound by ``env``."""
    return _Evaluator(definitions or {}).eval(expr, dict(env))


class _Evaluator:
    def __init__(self, definitions: Mapping[str, A.Definition]) -> None:
        self.definitions = definitions
        self.unroller = Unroller()  # MAX_UNROLL terms per evaluator (one re-check)

    def eval(self, e: A.Expr, env: dict[str, Value]) -> Value:
        if isinstance(e, A.Var):
            if e.name not in env:
                raise EvalError(f"unbound variable {e.name!r}")
            return env[e.name]
        if isinstance(e, A.Lit):
            n = fin_size(e.ty, lambda x: self.eval(x, env))
            if n is not None:  # `(5 : Fin 3) = 2`
                if n == 0:
                    raise EvalError("Fin 0 has no numerals")
                return Fraction(e.value) % n
            return Fraction(e.value)
        if isinstance(e, A.BoolLit):
            return bool(e.value)
        if isinstance(e, A.Cast):
            return self.eval(e.arg, env)
        if isinstance(e, A.Neg):
            n = fin_size(e.ty, lambda x: self.eval(x, env))
            v = self.eval(e.arg, env)
            return -v if n is None else (n - v) % n  # Fin.neg
        if isinstance(e, A.BinOp):
            left, right = self.eval(e.left, env), self.eval(e.right, env)
            n = fin_size(e.ty, lambda x: self.eval(x, env))
            if n is not None:
                return fin_arith(e.op, n, left, right)
            return arith(e.op, e.ty, left, right)
        if isinstance(e, A.Pow):
            base = self.eval(e.base, env)
            k = as_nat(self.eval(e.exp, env), "exponent")
            check_power(base, k, e)  # before computing
            return base**k
        if isinstance(e, A.Builtin):
            args = [self.eval(a, env) for a in e.args]
            if e.name == "abs":
                return abs(args[0])
            if e.name == "min":
                return min(args)
            if e.name == "max":
                return max(args)
            raise EvalError(f"unknown builtin {e.name!r}")
        if isinstance(e, A.Ite):
            cond = self.eval(e.cond, env)
            return self.eval(e.then if cond else e.orelse, env)
        if isinstance(e, A.App):
            fn = self.eval(e.fn, env)
            if not callable(fn):
                raise EvalError(f"applying a non-function: {fn!r}")
            return fn(self.eval(e.arg, env))
        if isinstance(e, A.Lambda):
            return lambda v, _e=e, _env=env: self.eval(_e.body, {**_env, _e.var: v})
        if isinstance(e, A.Let):
            return self.eval(e.body, {**env, e.name: self.eval(e.value, env)})
        if isinstance(e, A.Sum):
            total = Fraction(0)
            for i in self.domain_values(e.domain, env, e):
                total += self.eval(e.body, {**env, e.var: i})
            return total
        if isinstance(e, A.Call):
            return self.call(e, env)
        if isinstance(e, A.Compare):
            return compare(e.op, self.eval(e.left, env), self.eval(e.right, env))
        if isinstance(e, A.Not):
            return not self.eval(e.arg, env)
        if isinstance(e, A.Logic):
            return self.logic(e, env)
        if isinstance(e, A.Quant):
            return self.quant(e, env)
        raise EvalError(f"cannot evaluate {type(e).__name__}")

    def call(self, e: A.Call, env: dict[str, Value]) -> Value:
        d = self.definitions.get(e.name)
        if d is None:
            raise EvalError(f"unknown definition {e.name!r}")
        if len(d.params) != len(e.args):
            raise EvalError(f"{e.name} expects {len(d.params)} arguments, got {len(e.args)}")
        local = {p.name: self.eval(a, env) for p, a in zip(d.params, e.args, strict=True)}
        return self.eval(d.body, local)

    def logic(self, e: A.Logic, env: dict[str, Value]) -> bool:
        """Kleene three-valued logic: an undecidable side only matters when it must."""
        op = logic_op(e.op)

        def side(x: A.Expr) -> bool | None:
            try:
                return bool(self.eval(x, env))
            except Undecidable:
                return None

        left = side(e.left)
        if op == "∧" and left is False:
            return False
        if op == "∨" and left is True:
            return True
        if op == "→" and left is False:
            return True
        right = side(e.right)
        if op == "∧":
            result = False if right is False else (None if None in (left, right) else True)
        elif op == "∨" or op == "→":
            result = True if right is True else (None if None in (left, right) else False)
        elif op == "↔":
            result = None if None in (left, right) else left == right
        else:
            raise EvalError(f"unknown connective {e.op!r}")
        if result is None:
            raise Undecidable(f"cannot decide both sides of '{op}' exactly")
        return result

    def domain_values(
        self, dom: A.Type | A.Range, env: dict[str, Value], node: Any = None
    ) -> list[Value]:
        """The values ``node`` (a sum or quantifier) ranges over, within :data:`MAX_UNROLL`."""
        what = "the terms of the sum ∑" if isinstance(node, A.Sum) else "the instances of"
        if isinstance(node, A.Quant):
            what = f"the instances of {'∀' if node.kind == 'forall' else '∃'} {node.var}"
        if isinstance(dom, A.FinT):
            n = as_nat(self.eval(dom.size, env), "Fin size")
            self.unroller.charge(n, what, node)
            return [Fraction(i) for i in range(n)]
        if isinstance(dom, A.Range):
            n = as_nat(self.eval(dom.bound, env), "range bound")
            self.unroller.charge(n, what, node)
            return [Fraction(i) for i in range(n)]
        if isinstance(dom, A.PropT):
            return [False, True]
        raise Undecidable(f"quantifier over the infinite type {dom}")

    def quant(self, e: A.Quant, env: dict[str, Value]) -> bool:
        values = self.domain_values(e.dom, env, e)
        undecided = False
        for v in values:
            try:
                holds = bool(self.eval(e.body, {**env, e.var: v}))
            except Undecidable:
                undecided = True
                continue
            if e.kind == "forall" and not holds:
                return False
            if e.kind == "exists" and holds:
                return True
        if undecided:
            raise Undecidable(f"cannot decide the body of a quantifier over {e.dom} exactly")
        return e.kind == "forall"


# --------------------------------------------------------------------------- counterexamples


def _number(text: Any, ty: A.Type, name: str) -> Fraction:
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise EvalError(f"{name}: expected a number written as a string, got {text!r}")
    try:  # any length: a model value may have more digits than int(str) accepts
        value = parse_fraction(text) if isinstance(text, str) else Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise EvalError(f"{name}: not an exact rational: {_shown(text)}") from exc
    if is_integral(ty) and value.denominator != 1:
        raise EvalError(f"{name}: {ty} value must be an integer, got {_shown(text)}")
    if isinstance(ty, A.Scalar) and ty.num is A.Num.NAT and value < 0:
        raise EvalError(f"{name}: ℕ value must be ≥ 0, got {_shown(text)}")
    return value


def _shown(text: Any) -> str:
    if isinstance(text, int):
        return describe(text)
    return repr(text) if len(text) <= 80 else f"{text[:40]!r}… ({len(text)} characters)"


def decode_value(
    ty: A.Type, data: Any, env: Mapping[str, Value], name: str = "value", evaluator: Any = None
) -> Value:
    """A counterexample's JSON value (see ``verdict.ProofOutcome``) as an exact value of ``ty``;
    ``env`` holds the earlier variables (for ``Fin n`` sizes)."""
    ev = evaluator or _Evaluator({})
    if isinstance(ty, A.PropT):
        if not isinstance(data, bool):
            raise EvalError(f"{name}: expected true/false, got {data!r}")
        return data
    if isinstance(ty, A.Scalar):
        return _number(data, ty, name)
    if isinstance(ty, A.FinT):
        value = _number(data, ty, name)
        size = as_nat(ev.eval(ty.size, dict(env)), "Fin size")
        if not 0 <= value < size:
            raise EvalError(f"{name}: index {value} is outside Fin {size}")
        return value
    if isinstance(ty, A.Arrow):
        doms, cod = A.arrow_parts(ty)
        if all(isinstance(d, A.FinT) for d in doms):
            return _decode_vector(ty, data, env, name, ev)
        return _decode_table(doms, cod, data, name)
    raise EvalError(f"{name}: cannot decode a value of type {ty}")


def _decode_vector(ty: A.Type, data: Any, env: Mapping[str, Value], name: str, ev: Any) -> Value:
    if not isinstance(ty, A.Arrow):
        return decode_value(ty, data, env, name, ev)
    assert isinstance(ty.dom, A.FinT)
    size = as_nat(ev.eval(ty.dom.size, dict(env)), "Fin size")
    if not isinstance(data, list) or len(data) != size:
        raise EvalError(f"{name}: expected a list of {size} values, got {data!r}")
    items = [_decode_vector(ty.cod, x, env, f"{name}[{i}]", ev) for i, x in enumerate(data)]

    def vector(i: Value, _items: list[Value] = items) -> Value:
        k = as_nat(i, f"index of {name}")
        if k >= len(_items):
            raise EvalError(f"index {k} out of range for {name}")
        return _items[k]

    return vector


def _decode_table(doms: list[A.Type], cod: A.Type, data: Any, name: str) -> Value:
    if not isinstance(data, dict) or "entries" not in data or "else" not in data:
        raise EvalError(f"{name}: expected {{'entries': [...], 'else': ...}}, got {data!r}")
    arity = len(doms)
    table: dict[tuple[Value, ...], Value] = {}
    for row in data["entries"]:
        if not isinstance(row, list) or len(row) != arity + 1:
            raise EvalError(f"{name}: a table entry has {arity} arguments and a value: {row!r}")
        key = tuple(decode_value(d, x, {}, name) for d, x in zip(doms, row[:-1], strict=True))
        table[key] = decode_value(cod, row[-1], {}, name)
    default = decode_value(cod, data["else"], {}, name)

    def curry(args: tuple[Value, ...]) -> Value:
        if len(args) == arity:
            return table.get(args, default)
        return lambda v: curry((*args, v))

    return curry(())


def check_counterexample(statement: A.Statement, cex: Mapping[str, Any]) -> bool | None:
    """Is ``cex`` (JSON values per variable) a counterexample of ``statement``?

    True: every hypothesis holds and the goal fails; False: it is not a counterexample;
    None: cannot be decided exactly (e.g. a quantifier over ℝ inside the formula).
    Raises :class:`EvalError` when ``cex`` is malformed or misses a variable.
    """
    ev = _Evaluator(statement.definitions)
    env: dict[str, Value] = {}
    for p in statement.variables:
        if p.name not in cex:
            raise EvalError(f"counterexample has no value for {p.name!r}")
        env[p.name] = decode_value(p.ty, cex[p.name], env, p.name, ev)
    undecided = False
    for prop in (*statement.hypotheses, Not(statement.goal)):
        try:
            if not ev.eval(prop, env):
                return False
        except Undecidable:
            undecided = True
    return None if undecided else True


__all__ = [
    "EvalError",
    "TooLarge",
    "Undecidable",
    "arith",
    "check_counterexample",
    "compare",
    "decode_value",
    "ediv",
    "emod",
    "evaluate",
]
