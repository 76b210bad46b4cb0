"""The Z3 side's shared vocabulary: what a compiled statement is, and the two refusals.

:class:`Compiled` and :class:`VarEncoding` are what :mod:`.z3_compile` produces and what
:mod:`.z3_model` and the cvc5 translation read back; :class:`Unsupported` is how every backend
refuses a construct (never a guess); :func:`exact_value` reads a Z3 numeral of any size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from . import ast as A
from .bignum import decimal_to_int


class Unsupported(Exception):
    """A construct outside the fragment this backend decides; the message names it."""


class CounterexampleError(Exception):
    """A model cannot be turned into an exact counterexample (the message says why)."""


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


def exact_value(t: z3.ExprRef) -> Fraction:
    """A Z3 integer or rational numeral as a Fraction, of any size (``as_long()`` goes
    through ``int(str)``, which Python limits to 4300 digits)."""
    if z3.is_int_value(t):
        return Fraction(decimal_to_int(t.as_string()))
    return Fraction(
        decimal_to_int(t.numerator().as_string()), decimal_to_int(t.denominator().as_string())
    )
