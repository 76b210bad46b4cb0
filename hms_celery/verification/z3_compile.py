"""Compile one instance of a :class:`~hms_celery.verification.ast.Statement` to Z3 terms.

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

One class by design: :class:`Compiler`'s methods are the cases of one recursive translation
(they share its environment, polarity and fresh names), so it is kept whole (~420 lines).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import reduce
from typing import Any

import z3

from . import ast as A
from . import exact, limits
from .bignum import describe, fraction_to_str, int_to_decimal
from .z3_terms import Compiled, Unsupported, VarEncoding, hidden_name, sort_of

Value = Any  # Fraction | bool | z3.ExprRef | Callable[[Value], Value]


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
        doms, cod = A.arrow_parts(ty)
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
        op = A.CMP_ALIASES.get(e.op, e.op)
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
