"""Compile a :class:`~hms_celery.verification.ast.Statement` to Z3 and decide one instance.

The statement ``∀ vars, hyps → goal`` becomes the assertions ``hyps ∧ ¬goal`` (UNSAT = proof).
Size parameters (ℕ variables used as a ``Fin`` size, a ``Finset.range`` bound or an exponent)
must be given concrete values: then vectors become ``n`` separate constants ``w_0 … w_{n-1}``,
sums and quantifiers over ``Fin n`` are unrolled and powers are expanded.

Compile-time values are ``Fraction``/``bool`` (concrete, folded exactly with
:mod:`exact`'s arithmetic), Z3 expressions, or Python callables (vectors, functions, lambdas,
which are beta-reduced at compile time).  Lean semantics: ``x/0 = 0``, truncated ℕ
subtraction, Euclidean ℕ/ℤ division (guarded for a zero divisor).

Quantifiers: a ``∀`` in positive position (or ``∃`` in negative position) outside any Z3 binder
is skolemised into fresh constants; other quantifiers over ℝ/ℤ/ℕ become ``z3.ForAll/Exists``.
ℚ is encoded as ℝ only where that is sound (universal in positive position); elsewhere the
construct is :class:`Unsupported`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import reduce
from typing import Any

import z3

from . import ast as A
from . import exact, limits
from .bignum import decimal_to_int, describe, fraction_to_str, int_to_decimal

Value = Any  # Fraction | bool | z3.ExprRef | Callable[[Value], Value]


class Unsupported(Exception):
    """A construct outside the fragment this backend decides; the message names it."""


class CounterexampleError(Exception):
    """A model cannot be turned into an exact counterexample (the message says why)."""


# --------------------------------------------------------------------------- size parameters


def _free_vars(e: Any, bound: frozenset[str] = frozenset()) -> set[str]:
    """Free variable names of an expression, type or range (a structural walk)."""
    out: set[str] = set()
    if isinstance(e, A.Var):
        if e.name not in bound:
            out.add(e.name)
        return out | _free_vars(e.ty, bound)
    if isinstance(e, A.Lambda | A.Quant):
        dom = e.dom
        return _free_vars(dom, bound) | _free_vars(e.body, bound | {e.var})
    if isinstance(e, A.Sum):
        return _free_vars(e.domain, bound) | _free_vars(e.body, bound | {e.var})
    if isinstance(e, A.Let):
        return _free_vars(e.value, bound) | _free_vars(e.body, bound | {e.name})
    if isinstance(e, tuple):
        for x in e:
            out |= _free_vars(x, bound)
        return out
    if hasattr(e, "__dataclass_fields__"):
        for name in e.__dataclass_fields__:
            if name in ("ty",) and not isinstance(e, A.Cast):
                continue
            out |= _free_vars(getattr(e, name), bound)
    return out


def _size_exprs(e: Any, definitions: Mapping[str, A.Definition], seen: set[str]) -> list[Any]:
    """Sub-expressions in size position: Fin sizes, range bounds, exponents (calls included)."""
    found: list[Any] = []
    if isinstance(e, A.FinT):
        found.append(e.size)
    elif isinstance(e, A.Range):
        found.append(e.bound)
    elif isinstance(e, A.Pow):
        found.append(e.exp)
        found += _size_exprs(e.base, definitions, seen)
        return found
    if isinstance(e, A.Call):
        d = definitions.get(e.name)
        if d is not None:
            positions = _definition_size_params(d, definitions, seen)
            for p, arg in zip(d.params, e.args, strict=False):
                if p.name in positions:
                    found.append(arg)
    if isinstance(e, tuple):
        for x in e:
            found += _size_exprs(x, definitions, seen)
    elif hasattr(e, "__dataclass_fields__"):
        for name in e.__dataclass_fields__:
            found += _size_exprs(getattr(e, name), definitions, seen)
    return found


def _definition_size_params(
    d: A.Definition, definitions: Mapping[str, A.Definition], seen: set[str]
) -> set[str]:
    if d.name in seen:
        return set()
    seen = seen | {d.name}
    exprs = _size_exprs((tuple(p.ty for p in d.params), d.body), definitions, seen)
    params = {p.name for p in d.params}
    return {v for x in exprs for v in _free_vars(x)} & params


def size_parameters(
    statement: A.Statement, definitions: Mapping[str, A.Definition] | None = None
) -> list[str]:
    """The statement's ℕ variables in size positions, in declaration order."""
    defs = {**statement.definitions, **(definitions or {})}
    exprs = _size_exprs(
        (tuple(p.ty for p in statement.variables), statement.hypotheses, statement.goal),
        defs,
        set(),
    )
    names = {v for x in exprs for v in _free_vars(x)}
    return [
        p.name
        for p in statement.variables
        if p.name in names and isinstance(p.ty, A.Scalar) and p.ty.num is A.Num.NAT
    ]


# --------------------------------------------------------------------------- encodings


@dataclass
class VarEncoding:
    """How one statement variable is represented in Z3 (for reading a model back)."""

    kind: str  # "size" | "scalar" | "fin" | "prop" | "vector" | "function"
    ty: A.Type
    term: Any = None  # the constant, nested list of constants, or FuncDecl
    size: int | None = None  # for "size"
    cod: A.Type | None = None  # functions: codomain scalar type


@dataclass
class Compiled:
    """The Z3 form of one instance of a statement (sizes fixed)."""

    ctx: z3.Context
    assertions: list[z3.BoolRef]
    variables: dict[str, VarEncoding]
    sizes: dict[str, int]
    notes: list[str] = field(default_factory=list)


def hidden_name(base: str, k: int) -> str:
    """The solver-side name of generated constant number ``k`` (per problem) for ``base``.

    Every constant HMS creates is named ``base»|k``: a Lean identifier cannot contain ``»``
    (not even a «quoted» one) and an SMT-LIB symbol cannot contain ``|``, so no user name —
    from a statement or an SMT-LIB problem — can reach a generated one, and two generated
    names differ in ``k``.  (Z3's ``FreshConst`` is no substitute: ``FreshConst(s, "x")`` *is*
    the user constant ``x!0``.)"""
    return f"{base}»|{k}"


def sort_of(ty: A.Type, ctx: z3.Context) -> z3.SortRef:
    if isinstance(ty, A.PropT):
        return z3.BoolSort(ctx)
    if isinstance(ty, A.FinT):
        return z3.IntSort(ctx)
    if isinstance(ty, A.Scalar):
        if ty.num in (A.Num.NAT, A.Num.INT):
            return z3.IntSort(ctx)
        return z3.RealSort(ctx)
    raise Unsupported(f"no Z3 sort for the type {ty}")


def _is_nat(ty: A.Type) -> bool:
    return isinstance(ty, A.Scalar) and ty.num is A.Num.NAT


def _is_concrete(v: Value) -> bool:
    return isinstance(v, Fraction | bool)


_CMP = {
    "=": lambda a, b: a == b,
    "≠": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "≤": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "≥": lambda a, b: a >= b,
}


class Compiler:
    """Compiles expressions of one statement instance (see the module docstring)."""

    def __init__(
        self, ctx: z3.Context, definitions: Mapping[str, A.Definition], sizes: Mapping[str, int]
    ) -> None:
        self.ctx = ctx
        self.definitions = definitions
        self.sizes = dict(sizes)
        self.fresh = itertools.count()
        self.side: list[z3.BoolRef] = []  # extra facts (e.g. ℕ-valued function ≥ 0)
        self.unroller = limits.Unroller()  # MAX_UNROLL terms per compiled instance

    # ------------------------------------------------------------------ helpers

    def fresh_name(self, base: str) -> str:
        """A solver name for one constant of this problem: see :func:`hidden_name`."""
        return hidden_name(base, next(self.fresh))

    def to_z3(self, v: Value, ty: A.Type) -> z3.ExprRef:
        if isinstance(v, bool):
            return z3.BoolVal(v, self.ctx)
        if isinstance(v, Fraction):
            sort = sort_of(ty, self.ctx)
            if sort.kind() == z3.Z3_INT_SORT:
                if v.denominator != 1:
                    raise Unsupported(f"non-integer literal {describe(v)} of type {ty}")
                return z3.IntVal(int_to_decimal(v.numerator), self.ctx)
            return z3.RealVal(fraction_to_str(v), self.ctx)
        if isinstance(v, z3.ExprRef):
            sort = sort_of(ty, self.ctx)
            if v.sort().kind() == z3.Z3_INT_SORT and sort.kind() == z3.Z3_REAL_SORT:
                return z3.ToReal(v)
            return v
        raise Unsupported(f"a function-valued expression where a {ty} value is needed")

    def concrete_nat(self, e: A.Expr, env: dict[str, Value], what: str) -> int:
        v = self.expr(e, env, 0, False)
        if not isinstance(v, Fraction):
            raise Unsupported(f"{what} is not a concrete natural number after size substitution")
        return exact.as_nat(v, what)

    # ------------------------------------------------------------------ statement

    def variable(self, p: A.Param, env: dict[str, Value]) -> tuple[Value, VarEncoding]:
        ty = p.ty
        if p.name in self.sizes:
            n = self.sizes[p.name]
            return Fraction(n), VarEncoding("size", ty, size=n)
        if isinstance(ty, A.Scalar | A.PropT):
            const = z3.Const(self.fresh_name(p.name), sort_of(ty, self.ctx))
            if _is_nat(ty):
                self.side.append(const >= 0)
            kind = "prop" if isinstance(ty, A.PropT) else "scalar"
            return const, VarEncoding(kind, ty, const)
        if isinstance(ty, A.FinT):
            n = self.concrete_nat(ty.size, env, f"the size of {p.name}'s type")
            const = z3.Int(self.fresh_name(p.name), self.ctx)
            self.side.append(z3.And(const >= 0, const < n))
            return const, VarEncoding("fin", ty, const)
        if isinstance(ty, A.Arrow):
            return self.function_value(p.name, ty, env)
        raise Unsupported(f"variable {p.name} of type {ty}")

    def function_value(
        self, name: str, ty: A.Arrow, env: dict[str, Value]
    ) -> tuple[Value, VarEncoding]:
        doms, cod = exact._arrow_parts(ty)
        if not isinstance(cod, A.Scalar | A.PropT):
            raise Unsupported(f"{name}: codomain {cod} is not a number or a proposition")
        if all(isinstance(d, A.FinT) for d in doms):
            consts = self._vector_consts(name, ty, env)
            return self._vector_fn(consts, name), VarEncoding("vector", ty, consts, cod=cod)
        if any(isinstance(d, A.FinT | A.Arrow) for d in doms):
            raise Unsupported(f"{name}: mixed vector/function type {ty}")
        sorts = [sort_of(d, self.ctx) for d in doms]
        fdecl = z3.Function(self.fresh_name(name), *sorts, sort_of(cod, self.ctx))
        if _is_nat(cod):
            xs = [z3.Const(self.fresh_name("x"), s) for s in sorts]
            self.side.append(z3.ForAll(xs, fdecl(*xs) >= 0))
        arity = len(doms)

        def curry(args: tuple[Value, ...]) -> Value:
            if len(args) == arity:
                zargs = [self.to_z3(a, d) for a, d in zip(args, doms, strict=True)]
                return fdecl(*zargs)
            return lambda v: curry((*args, v))

        return curry(()), VarEncoding("function", ty, fdecl, cod=cod)

    def _vector_consts(self, name: str, ty: A.Type, env: dict[str, Value]) -> Any:
        if not isinstance(ty, A.Arrow):
            const = z3.Const(self.fresh_name(name), sort_of(ty, self.ctx))
            if _is_nat(ty):
                self.side.append(const >= 0)
            return const
        assert isinstance(ty.dom, A.FinT)
        n = self.concrete_nat(ty.dom.size, env, f"the length of {name}")
        self.unroller.charge(n, f"the entries of the vector {name}", ty.dom.size)
        return [self._vector_consts(f"{name}[{i}]", ty.cod, env) for i in range(n)]

    def _vector_fn(self, items: Any, name: str) -> Value:
        if not isinstance(items, list):
            return items

        def vector(i: Value) -> Value:
            if isinstance(i, Fraction):
                k = exact.as_nat(i, f"index of {name}")
                if k >= len(items):
                    raise Unsupported(f"index {k} out of range for {name}")
                return self._vector_fn(items[k], name)
            if not items:
                raise Unsupported(f"symbolic index into the empty vector {name}")
            parts = [self._vector_fn(x, name) for x in items]
            if any(callable(p) for p in parts):
                raise Unsupported(f"symbolic index into the matrix {name}")
            out = parts[-1]
            for k in range(len(parts) - 2, -1, -1):
                out = z3.If(i == k, parts[k], out)
            return out

        return vector

    def statement(self, st: A.Statement) -> Compiled:
        env: dict[str, Value] = {}
        encodings: dict[str, VarEncoding] = {}
        for p in st.variables:
            value, enc = self.variable(p, env)
            env[p.name] = value
            encodings[p.name] = enc
        assertions: list[z3.BoolRef] = []
        for h in st.hypotheses:
            assertions.append(self.to_z3(self.expr(h, env, -1, False), A.PROP))
        goal = self.to_z3(self.expr(st.goal, env, +1, False), A.PROP)
        assertions.append(z3.Not(goal))
        return Compiled(self.ctx, self.side + assertions, encodings, dict(self.sizes))

    # ------------------------------------------------------------------ expressions

    def expr(self, e: A.Expr, env: dict[str, Value], pol: int, bound: bool) -> Value:
        """Compile ``e``; ``pol`` is its polarity in the statement (+1, -1, 0 = both) and
        ``bound`` is True under a Z3 quantifier (no skolemisation there)."""
        if isinstance(e, A.Var):
            if e.name not in env:
                raise Unsupported(f"unbound variable {e.name!r}")
            return env[e.name]
        if isinstance(e, A.Lit):
            if isinstance(e.ty, A.FinT):  # `(5 : Fin 3) = 2`
                n = self.concrete_nat(e.ty.size, env, "a Fin size")
                if n == 0:
                    raise Unsupported("Fin 0 has no numerals")
                return Fraction(e.value) % n
            return Fraction(e.value)
        if isinstance(e, A.BoolLit):
            return bool(e.value)
        if isinstance(e, A.Cast):
            v = self.expr(e.arg, env, pol, bound)
            return v if _is_concrete(v) or callable(v) else self.to_z3(v, e.ty)
        if isinstance(e, A.Neg):
            v = self.expr(e.arg, env, pol, bound)
            if isinstance(e.ty, A.FinT):  # Fin.neg: (n - a) % n
                n = self.concrete_nat(e.ty.size, env, "a Fin size")
                if isinstance(v, Fraction):
                    return (n - v) % n
                return (z3.IntVal(n, self.ctx) - v) % n
            return -v
        if isinstance(e, A.BinOp):
            return self.binop(e, env, bound)
        if isinstance(e, A.Pow):
            base = self.expr(e.base, env, 0, bound)
            k = self.concrete_nat(e.exp, env, "the exponent")
            if isinstance(base, Fraction):
                limits.check_power(base, k, e)  # before computing: 3 ^ 3 ^ 3 ^ 3 is refused
                return base**k
            if k == 0:
                return Fraction(1)
            limits.check_symbolic_power(k, e)
            self.unroller.charge(k, "the factors of the power", e)
            return reduce(lambda a, b: a * b, [base] * k)
        if isinstance(e, A.Builtin):
            args = [self.expr(a, env, 0, bound) for a in e.args]
            if all(isinstance(a, Fraction) for a in args):
                fold: dict[str, Callable[..., Fraction]] = {"abs": abs, "min": min, "max": max}
                return fold[e.name](*args)
            z = [self.to_z3(a, e.ty) for a in args]
            if e.name == "abs":
                return z3.If(z[0] >= 0, z[0], -z[0])
            if e.name == "min":
                return z3.If(z[0] <= z[1], z[0], z[1])
            if e.name == "max":
                return z3.If(z[0] >= z[1], z[0], z[1])
            raise Unsupported(f"builtin {e.name!r}")
        if isinstance(e, A.Ite):
            cond = self.expr(e.cond, env, 0, bound)
            if isinstance(cond, bool):
                return self.expr(e.then if cond else e.orelse, env, pol, bound)
            then = self.expr(e.then, env, pol, bound)
            orelse = self.expr(e.orelse, env, pol, bound)
            if callable(then) or callable(orelse):
                raise Unsupported("if-then-else between functions")
            return z3.If(cond, self.to_z3(then, e.ty), self.to_z3(orelse, e.ty))
        if isinstance(e, A.App):
            fn = self.expr(e.fn, env, pol, bound)
            if not callable(fn):
                raise Unsupported("application of a non-function")
            return fn(self.expr(e.arg, env, 0, bound))
        if isinstance(e, A.Lambda):
            return lambda v, _e=e, _env=env: self.expr(_e.body, {**_env, _e.var: v}, 0, bound)
        if isinstance(e, A.Let):
            value = self.expr(e.value, env, 0, bound)
            return self.expr(e.body, {**env, e.name: value}, pol, bound)
        if isinstance(e, A.Sum):
            n = self.bound_of(e.domain, env)
            self.unroller.charge(n, "the terms of the sum ∑", e)
            terms = [self.expr(e.body, {**env, e.var: Fraction(i)}, 0, bound) for i in range(n)]
            return self.add_all(terms, e.ty)
        if isinstance(e, A.Call):
            d = self.definitions.get(e.name)
            if d is None:
                raise Unsupported(f"unknown definition {e.name!r}")
            if len(d.params) != len(e.args):
                raise Unsupported(f"{e.name} expects {len(d.params)} arguments")
            local = {
                p.name: self.expr(a, env, 0, bound) for p, a in zip(d.params, e.args, strict=True)
            }
            return self.expr(d.body, local, pol, bound)
        if isinstance(e, A.Compare):
            return self.compare(e, env, bound)
        if isinstance(e, A.Not):
            v = self.expr(e.arg, env, -pol, bound)
            return (not v) if isinstance(v, bool) else z3.Not(v)
        if isinstance(e, A.Logic):
            return self.logic(e, env, pol, bound)
        if isinstance(e, A.Quant):
            return self.quant(e, env, pol, bound)
        raise Unsupported(f"the construct {type(e).__name__}")

    def _unrolled_bound(self, e: A.Quant, dom: A.FinT, env: dict[str, Value]) -> int:
        n = self.bound_of(dom, env)
        kind = "∀" if e.kind == "forall" else "∃"
        self.unroller.charge(n, f"the instances of {kind} {e.var} : Fin n", e)
        return n

    def bound_of(self, dom: A.FinT | A.Range, env: dict[str, Value]) -> int:
        if isinstance(dom, A.FinT):
            return self.concrete_nat(dom.size, env, "a Fin size")
        return self.concrete_nat(dom.bound, env, "a Finset.range bound")

    def add_all(self, terms: list[Value], ty: A.Type) -> Value:
        concrete = sum((t for t in terms if isinstance(t, Fraction)), Fraction(0))
        symbolic = [self.to_z3(t, ty) for t in terms if not isinstance(t, Fraction)]
        if not symbolic:
            return concrete
        total = symbolic[0] if len(symbolic) == 1 else z3.Sum(*symbolic)
        return total + self.to_z3(concrete, ty) if concrete else total

    def binop(self, e: A.BinOp, env: dict[str, Value], bound: bool) -> Value:
        left = self.expr(e.left, env, 0, bound)
        right = self.expr(e.right, env, 0, bound)
        if isinstance(e.ty, A.FinT):
            return self.fin_binop(e, self.concrete_nat(e.ty.size, env, "a Fin size"), left, right)
        if isinstance(left, Fraction) and isinstance(right, Fraction):
            return exact.arith(e.op, e.ty, left, right)
        a, b = self.to_z3(left, e.ty), self.to_z3(right, e.ty)
        zero = self.to_z3(Fraction(0), e.ty)
        integral = exact.is_integral(e.ty)
        if e.op == "+":
            return a + b
        if e.op == "*":
            return a * b
        if e.op == "-":
            return z3.If(a >= b, a - b, zero) if _is_nat(e.ty) else a - b
        if e.op == "/":
            if isinstance(right, Fraction):  # a concrete divisor keeps the problem linear
                if right == 0:
                    return Fraction(0)
                if not integral:
                    return a * self.to_z3(1 / right, e.ty)
                return a / b
            return z3.If(b == 0, zero, a / b)
        if e.op == "%":
            if not integral:
                raise Unsupported(f"'%' on {e.ty}")
            if isinstance(right, Fraction):
                return a if right == 0 else a % b
            return z3.If(b == 0, a, a % b)
        raise Unsupported(f"operator {e.op!r}")

    def fin_binop(self, e: A.BinOp, n: int, left: Value, right: Value) -> Value:
        """``+ - * / %`` on ``Fin n`` values (integers in ``[0, n)``), as ``exact.fin_arith``."""
        if isinstance(left, Fraction) and isinstance(right, Fraction):
            return exact.fin_arith(e.op, n, left, right)
        if n <= 0:
            raise Unsupported("arithmetic on Fin 0")
        a, b = self.to_z3(left, A.NAT), self.to_z3(right, A.NAT)
        if e.op == "+":
            return (a + b) % n
        if e.op == "-":
            return ((n - b) + a) % n
        if e.op == "*":
            return (a * b) % n
        if e.op == "/":
            return z3.If(b == 0, z3.IntVal(0, self.ctx), a / b)
        if e.op == "%":
            return z3.If(b == 0, a, a % b)
        raise Unsupported(f"operator {e.op!r} on Fin {n}")

    def compare(self, e: A.Compare, env: dict[str, Value], bound: bool) -> Value:
        op = exact._CMP_ALIASES.get(e.op, e.op)
        left = self.expr(e.left, env, 0, bound)
        right = self.expr(e.right, env, 0, bound)
        if callable(left) or callable(right):
            raise Unsupported("comparison of functions")
        if _is_concrete(left) and _is_concrete(right):
            return exact.compare(op, left, right)
        ty = e.left.ty
        if isinstance(ty, A.Scalar) and isinstance(e.right.ty, A.Scalar):
            ty = ty if ty.num.rank >= e.right.ty.num.rank else e.right.ty
        if op not in _CMP:
            raise Unsupported(f"comparison {e.op!r}")
        return _CMP[op](self.to_z3(left, ty), self.to_z3(right, ty))

    def logic(self, e: A.Logic, env: dict[str, Value], pol: int, bound: bool) -> Value:
        op = exact.logic_op(e.op)
        lpol = {"∧": pol, "∨": pol, "→": -pol, "↔": 0}.get(op)
        if lpol is None:
            raise Unsupported(f"connective {e.op!r}")
        rpol = 0 if op == "↔" else pol
        left = self.expr(e.left, env, lpol, bound)
        if isinstance(left, bool):  # fold constants (keeps unrolled formulas small)
            if op == "∧" and not left:
                return False
            if op == "∨" and left:
                return True
            if op == "→" and not left:
                return True
        right = self.expr(e.right, env, rpol, bound)
        a, b = self.to_z3(left, A.PROP), self.to_z3(right, A.PROP)
        if op == "∧":
            return z3.And(a, b)
        if op == "∨":
            return z3.Or(a, b)
        if op == "→":
            return z3.Implies(a, b)
        return a == b

    def quant(self, e: A.Quant, env: dict[str, Value], pol: int, bound: bool) -> Value:
        universal = (e.kind == "forall" and pol > 0) or (e.kind == "exists" and pol < 0)
        dom = e.dom
        if isinstance(dom, A.FinT | A.PropT):
            values: list[Value] = (
                [False, True]
                if isinstance(dom, A.PropT)
                else [Fraction(i) for i in range(self._unrolled_bound(e, dom, env))]
            )
            parts = [self.expr(e.body, {**env, e.var: v}, pol, bound) for v in values]
            if e.kind == "forall":
                if any(p is False for p in parts):
                    return False
                rest = [self.to_z3(p, A.PROP) for p in parts if p is not True]
                return True if not rest else z3.And(*rest)
            if any(p is True for p in parts):
                return True
            rest = [self.to_z3(p, A.PROP) for p in parts if p is not False]
            return False if not rest else z3.Or(*rest)
        if isinstance(dom, A.Scalar) and dom.num is A.Num.RAT and not universal:
            raise Unsupported(
                f"a quantifier over ℚ ({'∃' if e.kind == 'exists' else '∀'} {e.var}) in a "
                "position where reading it over ℝ would be unsound"
            )
        if universal and not bound:  # skolemise: a fresh constant (or vector / function)
            name = self.fresh_name(e.var)
            if isinstance(dom, A.Arrow):
                value, _ = self.function_value(name, dom, env)
                return self.expr(e.body, {**env, e.var: value}, pol, bound)
            if not isinstance(dom, A.Scalar):
                raise Unsupported(f"a quantifier over {dom}")
            const = z3.Const(name, sort_of(dom, self.ctx))
            body = self.to_z3(self.expr(e.body, {**env, e.var: const}, pol, bound), A.PROP)
            guard = const >= 0 if _is_nat(dom) else None
            if guard is None:
                return body
            return z3.Implies(guard, body) if e.kind == "forall" else z3.And(guard, body)
        if not isinstance(dom, A.Scalar):
            raise Unsupported(
                f"a quantifier over {dom} ({e.var}) that cannot be expanded or skolemised"
            )
        const = z3.Const(self.fresh_name(e.var), sort_of(dom, self.ctx))
        body = self.to_z3(self.expr(e.body, {**env, e.var: const}, pol, True), A.PROP)
        if e.kind == "forall":
            if _is_nat(dom):
                body = z3.Implies(const >= 0, body)
            return z3.ForAll([const], body)
        if _is_nat(dom):
            body = z3.And(const >= 0, body)
        return z3.Exists([const], body)


def compile_statement(
    statement: A.Statement,
    sizes: Mapping[str, int],
    ctx: z3.Context,
    definitions: Mapping[str, A.Definition] | None = None,
) -> Compiled:
    """Compile one instance (every size parameter in ``sizes``) of ``statement``."""
    defs = {**statement.definitions, **(definitions or {})}
    try:
        return Compiler(ctx, defs, sizes).statement(statement)
    except limits.TooLarge as exc:  # a size limit (limits.py): outside what HMS computes
        raise Unsupported(str(exc)) from None


# --------------------------------------------------------------------------- product bounds


def _exact_value(t: z3.ExprRef) -> Fraction:
    """A Z3 integer or rational numeral as a Fraction, of any size (``as_long()`` goes
    through ``int(str)``, which Python limits to 4300 digits)."""
    if z3.is_int_value(t):
        return Fraction(decimal_to_int(t.as_string()))
    return Fraction(
        decimal_to_int(t.numerator().as_string()), decimal_to_int(t.denominator().as_string())
    )


def _numeral(t: z3.ExprRef) -> Fraction | None:
    if z3.is_int_value(t) or z3.is_rational_value(t):
        return _exact_value(t)
    # SMT-LIB writes negative constants as ``(- 100.0)``: a unary minus of a numeral.
    if z3.is_app_of(t, z3.Z3_OP_UMINUS):
        inner = _numeral(t.arg(0))
        return None if inner is None else -inner
    return None


def _is_atom(t: z3.ExprRef) -> bool:
    if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
        return True
    return z3.is_to_real(t) and _is_atom(t.arg(0))


def _flatten_mul(t: z3.ExprRef) -> tuple[Fraction, list[z3.ExprRef]] | None:
    coeff, atoms = Fraction(1), []
    stack = [t]
    while stack:
        x = stack.pop()
        if z3.is_mul(x):
            stack.extend(x.children())
            continue
        num = _numeral(x)
        if num is not None:
            coeff *= num
        elif z3.is_quantifier(x) or not z3.is_app(x) or z3.is_var(x):
            return None
        else:
            atoms.append(x)
    return coeff, atoms


def _collect_bounds(
    facts: list[z3.BoolRef],
) -> tuple[dict[int, tuple[Fraction | None, Fraction | None]], set[int]]:
    """Bounds of constants from the top-level facts, and the constants known to be > 0."""
    bounds: dict[int, list[Fraction | None]] = {}
    positive: set[int] = set()

    def note(atom: z3.ExprRef, lo: Fraction | None, hi: Fraction | None) -> None:
        cur = bounds.setdefault(atom.get_id(), [None, None])
        if lo is not None and (cur[0] is None or lo > cur[0]):
            cur[0] = lo
        if hi is not None and (cur[1] is None or hi < cur[1]):
            cur[1] = hi

    stack = list(facts)
    while stack:
        f = stack.pop()
        if z3.is_and(f):
            stack.extend(f.children())
            continue
        negated = z3.is_not(f)
        if negated:
            f = f.arg(0)
        kinds = {
            z3.Z3_OP_LE: "le",
            z3.Z3_OP_LT: "le",
            z3.Z3_OP_GE: "ge",
            z3.Z3_OP_GT: "ge",
            z3.Z3_OP_EQ: "eq",
        }
        if not z3.is_app(f) or f.decl().kind() not in kinds or f.num_args() != 2:
            continue
        kind = kinds[f.decl().kind()]
        if negated:
            if kind == "eq":
                continue
            kind = "ge" if kind == "le" else "le"
        x, y = f.arg(0), f.arg(1)
        if _is_atom(x) and (cy := _numeral(y)) is not None:
            atom, c, flip = x, cy, False
        elif _is_atom(y) and (cx := _numeral(x)) is not None:
            atom, c, flip = y, cx, True
        else:
            continue
        if kind == "eq":
            note(atom, c, c)
        elif (kind == "le") != flip:  # atom ≤ c
            note(atom, None, c)
        else:  # atom ≥ c
            note(atom, c, None)
            strict = f.decl().kind() in (z3.Z3_OP_LT, z3.Z3_OP_GT) and not negated
            if c > 0 or (c == 0 and strict):
                positive.add(atom.get_id())
    return {k: (v[0], v[1]) for k, v in bounds.items()}, positive


Bound = tuple[Fraction | None, Fraction | None]


def _mul_interval(a: Bound, b: Bound) -> Bound:
    """Interval product; ``None`` is an infinite end (``0 · ∞ = 0`` for interval ends)."""
    inf = float("inf")

    def ends(x: Bound) -> tuple[Any, Any]:
        return (-inf if x[0] is None else x[0], inf if x[1] is None else x[1])

    def times(u: Any, v: Any) -> Any:
        return 0 if u == 0 or v == 0 else u * v

    (alo, ahi), (blo, bhi) = ends(a), ends(b)
    products = [times(alo, blo), times(alo, bhi), times(ahi, blo), times(ahi, bhi)]
    lo, hi = min(products), max(products)
    return (
        None if lo in (inf, -inf) else Fraction(lo),
        None if hi in (inf, -inf) else Fraction(hi),
    )


class _Intervals:
    """Interval bounds of terms from the bounds of constants (sums, products, ``If``)."""

    def __init__(self, atoms: dict[int, Bound]) -> None:
        self.atoms = atoms
        self.memo: dict[int, Bound] = {}

    def of(self, t: z3.ExprRef) -> Bound:
        tid = t.get_id()
        if tid not in self.memo:
            self.memo[tid] = (None, None)  # cycles cannot occur; this just bounds recursion
            self.memo[tid] = self._compute(t)
        return self.memo[tid]

    def _compute(self, t: z3.ExprRef) -> Bound:
        num = _numeral(t)
        if num is not None:
            return (num, num)
        if t.get_id() in self.atoms:
            return self.atoms[t.get_id()]
        if not z3.is_app(t) or z3.is_quantifier(t):
            return (None, None)
        if z3.is_to_real(t):
            return self.of(t.arg(0))
        kids = t.children()
        if z3.is_add(t):
            bs = [self.of(k) for k in kids]
            los = [b[0] for b in bs if b[0] is not None]
            his = [b[1] for b in bs if b[1] is not None]
            lo = sum(los, Fraction(0)) if len(los) == len(bs) else None  # None: unbounded
            hi = sum(his, Fraction(0)) if len(his) == len(bs) else None
            return (lo, hi)
        if z3.is_sub(t) and len(kids) == 2:
            (alo, ahi), (blo, bhi) = self.of(kids[0]), self.of(kids[1])
            lo = None if alo is None or bhi is None else alo - bhi
            hi = None if ahi is None or blo is None else ahi - blo
            return (lo, hi)
        if z3.is_app_of(t, z3.Z3_OP_UMINUS):
            lo, hi = self.of(kids[0])
            return (None if hi is None else -hi, None if lo is None else -lo)
        if z3.is_mul(t):
            out: Bound = (Fraction(1), Fraction(1))
            for k in kids:
                out = _mul_interval(out, self.of(k))
            return out
        if z3.is_app_of(t, z3.Z3_OP_ITE):
            (alo, ahi), (blo, bhi) = self.of(kids[1]), self.of(kids[2])
            lo = None if alo is None or blo is None else min(alo, blo)
            hi = None if ahi is None or bhi is None else max(ahi, bhi)
            return (lo, hi)
        return (None, None)


def _sign(b: Bound) -> int | None:
    if b[0] is not None and b[0] >= 0:
        return 1
    if b[1] is not None and b[1] <= 0:
        return -1
    return None


def product_bounds(assertions: list[z3.BoolRef], max_monomials: int = 5000) -> list[z3.BoolRef]:
    """The ``product-bounds`` preprocessing step (sound: the result is equisatisfiable).

    Every product of two or more non-constant factors is replaced by a fresh variable ``M``
    with the definition ``M = x·y·…``; for each factor ``x`` with an interval ``lo ≤ x ≤ hi``
    (from the top-level bound facts, propagated through sums and products) and a rest ``R`` of
    known sign, the implied lemmas ``lo·R ≤ M ≤ hi·R`` (reversed for ``R ≤ 0``) and the sign
    of ``M`` are added.  With them, weighted sums such as ``Σ wᵢ·aᵢ·dᵢ`` or ``raw·M`` with
    ``0 < M ≤ 1`` are bounded by linear reasoning alone.
    """
    if not assertions:
        return assertions
    atom_bounds, strict_pos = _collect_bounds(assertions)
    intervals = _Intervals(atom_bounds)
    bounds: dict[int, Bound] = {}  # rewritten factor id -> interval
    monos: dict[tuple[int, ...], z3.ExprRef] = {}
    factors_of: dict[tuple[int, ...], list[z3.ExprRef]] = {}
    facts: list[z3.BoolRef] = []
    queue: list[tuple[int, ...]] = []
    memo: dict[int, z3.ExprRef] = {}
    fresh = itertools.count()

    def fresh_const(sort: z3.SortRef, kind: str) -> z3.ExprRef:
        # "»kind»|k": no user name (Lean or SMT-LIB) and no compiler name starts with "»".
        return z3.Const(hidden_name(f"»{kind}", next(fresh)), sort)

    def mono_var(factors: list[z3.ExprRef]) -> z3.ExprRef:
        key = tuple(sorted(f.get_id() for f in factors))
        if key not in monos:
            product = reduce(lambda a, b: a * b, factors)
            var = fresh_const(product.sort(), "mono")
            monos[key] = var
            factors_of[key] = factors
            facts.append(var == product)
            queue.append(key)
        return monos[key]

    def numeral(c: Fraction, like: z3.ExprRef) -> z3.ExprRef:
        if like.is_real():
            return z3.RealVal(fraction_to_str(c), like.ctx)
        return z3.IntVal(int_to_decimal(int(c)), like.ctx)

    def divide(t: z3.ExprRef, a: z3.ExprRef, b: z3.ExprRef) -> z3.ExprRef:
        """``a / b`` as a fresh ``D`` with ``b ≠ 0 → D·b = a`` (and the sign of ``D``)."""
        d = fresh_const(t.sort(), "quot")
        na, nb = intervals.of(t.arg(0)), intervals.of(t.arg(1))
        sa = _sign(na)
        positive = nb[0] is not None and (nb[0] > 0 or t.arg(1).get_id() in strict_pos)
        if sa is not None and positive:
            facts.append(d >= 0 if sa > 0 else d <= 0)
            bounds[d.get_id()] = (Fraction(0), None) if sa > 0 else (None, Fraction(0))
        bounds[b.get_id()] = nb
        facts.append(z3.Implies(b != 0, mono_var([d, b]) == a))
        return d

    def rewrite(t: z3.ExprRef) -> z3.ExprRef:
        tid = t.get_id()
        if tid in memo:
            return memo[tid]
        result = t
        if z3.is_app(t) and not z3.is_quantifier(t) and t.num_args() > 0:
            flat = _flatten_mul(t) if z3.is_mul(t) else None
            if flat is not None and len(flat[1]) >= 2 and len(monos) < max_monomials:
                coeff, originals = flat
                factors = [rewrite(f) for f in originals]
                for orig, new in zip(originals, factors, strict=True):
                    bounds[new.get_id()] = intervals.of(orig)
                var = mono_var(factors)
                result = var if coeff == 1 else numeral(coeff, var) * var
            elif z3.is_app_of(t, z3.Z3_OP_DIV) and t.is_real() and len(monos) < max_monomials:
                result = divide(t, rewrite(t.arg(0)), rewrite(t.arg(1)))
            else:
                kids = [rewrite(k) for k in t.children()]
                if any(not k.eq(c) for k, c in zip(kids, t.children(), strict=True)):
                    result = t.decl()(*kids)
        memo[tid] = result
        return result

    rewritten = [rewrite(a) for a in assertions]
    if not monos:
        return assertions

    def sign_of(factors: list[z3.ExprRef]) -> int | None:
        """+1 (≥ 0), -1 (≤ 0) or None; even powers are ≥ 0."""
        counts: dict[int, int] = {}
        for f in factors:
            counts[f.get_id()] = counts.get(f.get_id(), 0) + 1
        result = 1
        for fid, count in counts.items():
            if count % 2 == 0:
                continue
            s = _sign(bounds.get(fid, (None, None)))
            if s is None:
                return None
            result *= s
        return result

    lemmas: list[z3.BoolRef] = []
    while queue and len(monos) < max_monomials:
        key = queue.pop()
        factors, m = factors_of[key], monos[key]
        s = sign_of(factors)
        if s is not None:
            lemmas.append(m >= 0 if s > 0 else m <= 0)
        done: set[int] = set()
        for i, x in enumerate(factors):
            if x.get_id() in done:
                continue
            done.add(x.get_id())
            lo, hi = bounds.get(x.get_id(), (None, None))
            if lo is None and hi is None:
                continue
            rest_factors = factors[:i] + factors[i + 1 :]
            rs = sign_of(rest_factors)
            if rs is None:
                continue
            rest = rest_factors[0] if len(rest_factors) == 1 else mono_var(rest_factors)
            if m.is_real() and not rest.is_real():
                rest = z3.ToReal(rest)
            lower, upper = (lo, hi) if rs > 0 else (hi, lo)
            for c, is_lower in ((lower, True), (upper, False)):
                if c is None or (not rest.is_real() and c.denominator != 1):
                    continue
                scaled = numeral(c, rest) * rest
                lemmas.append(m >= scaled if is_lower else m <= scaled)
    return [*rewritten, *facts, *lemmas]


# --------------------------------------------------------------------------- models


def _value_json(v: z3.ExprRef, what: str) -> Any:
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_int_value(v) or z3.is_rational_value(v):
        return fraction_to_str(_exact_value(v))
    if z3.is_algebraic_value(v):
        approx = v.approx(12).as_decimal(12).rstrip("?")
        raise CounterexampleError(f"counterexample is irrational ({what} ≈ {approx})")
    raise CounterexampleError(f"{what} has no exact value in the model: {v}")


class Z3ModelValues:
    """A Z3 model's values in the counterexample JSON format (``solvers.ModelValues``)."""

    def __init__(self, model: z3.ModelRef) -> None:
        self.model = model

    def scalar(self, term: z3.ExprRef, what: str) -> Any:
        return _value_json(self.model.eval(term, model_completion=True), what)

    def function(self, enc: VarEncoding, what: str) -> dict[str, Any]:
        return _read_function(enc, self.model, what)


def read_counterexample(compiled: Compiled, model: Any) -> dict[str, Any]:
    """Every statement variable's value in ``model``, in the ``ProofOutcome`` JSON format.

    ``model`` is a Z3 model or any solver's model values (``scalar(term, what)`` and
    ``function(enc, what)``: :class:`~.solvers.ModelValues`, e.g. cvc5's).
    Raises :class:`CounterexampleError` (e.g. an irrational value)."""
    values = Z3ModelValues(model) if isinstance(model, z3.ModelRef) else model
    out: dict[str, Any] = {}
    for name, enc in compiled.variables.items():
        if enc.kind == "size":
            out[name] = str(enc.size)
        elif enc.kind in ("scalar", "fin", "prop"):
            out[name] = values.scalar(enc.term, name)
        elif enc.kind == "vector":
            out[name] = _read_nested(enc.term, values, name)
        elif enc.kind == "function":
            out[name] = values.function(enc, name)
    return out


def _read_nested(items: Any, values: Any, name: str) -> Any:
    if isinstance(items, list):
        return [_read_nested(x, values, f"{name}[{i}]") for i, x in enumerate(items)]
    return values.scalar(items, name)


def _read_function(enc: VarEncoding, model: z3.ModelRef, name: str) -> dict[str, Any]:
    fdecl: z3.FuncDeclRef = enc.term
    interp = model.get_interp(fdecl) if any(d.eq(fdecl) for d in model.decls()) else None
    cod = enc.cod
    default_value: Any = False if isinstance(cod, A.PropT) else "0"
    if interp is None:
        return {"entries": [], "else": default_value}
    if not isinstance(interp, z3.FuncInterp):
        raise CounterexampleError(f"{name}'s interpretation is not a finite table: {interp}")
    entries = []
    for i in range(interp.num_entries()):
        entry = interp.entry(i)
        args = [_value_json(entry.arg_value(j), name) for j in range(entry.num_args())]
        entries.append([*args, _value_json(entry.value(), f"{name}(…)")])
    else_value = interp.else_value()
    if else_value is None:
        return {"entries": entries, "else": default_value}
    return {"entries": entries, "else": _value_json(else_value, f"{name}'s default value")}


def size_assignments(names: list[str], max_size: int) -> Iterator[tuple[int, list[dict[str, int]]]]:
    """``(level, assignments)`` for level 0 … max_size: the assignments whose largest size is
    ``level`` (smallest total first), so after level L every combination ≤ L was tried."""
    if not names:
        yield 0, [{}]
        return
    for level in range(max_size + 1):
        combos = [
            c for c in itertools.product(range(level + 1), repeat=len(names)) if max(c) == level
        ]
        combos.sort(key=lambda c: (sum(c), c))
        yield level, [dict(zip(names, c, strict=True)) for c in combos]
