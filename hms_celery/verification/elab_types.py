"""Type-level helpers of the elaborator: numeric types, ``NeZero`` sizes, codomains,
and the implicit size parameters of a definition (unification, substitution)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hms_celery.verification.ast import (
    NAT,
    PROP,
    Arrow,
    BinOp,
    Definition,
    Expr,
    FinT,
    Lit,
    PropT,
    Scalar,
    Type,
    Var,
)
from hms_celery.verification.ast_walk import map_expr, nodes


def numeric_type(t: Type | None) -> Scalar | None:
    if isinstance(t, FinT):
        return NAT
    return t if isinstance(t, Scalar) else None


def first_known(types: Iterable[Type | None]) -> Type | None:
    """The first known type (Lean fixes a polymorphic ``α`` from the first argument)."""
    for t in types:
        if t is not None:
            return PROP if isinstance(t, PropT) else t
    return None


def has_nezero(size: Expr) -> bool:
    """Can Lean synthesize ``NeZero size``?  For a positive literal and for ``e + k``
    (``NeZero.succ``, k ≥ 1 a literal), not for a variable."""
    if isinstance(size, Lit):
        return size.value > 0
    return (
        isinstance(size, BinOp) and size.op == "+"
        and isinstance(size.right, Lit) and size.right.value >= 1
    )  # fmt: skip


def above(t: Type, expected: Type) -> bool:
    """Is ``t`` a type that does not coerce to ``expected`` inside a tree?"""
    if isinstance(t, Scalar) and isinstance(expected, Scalar):
        return t.num.rank > expected.num.rank
    return not (isinstance(t, FinT) and isinstance(expected, Scalar))


def codomain(t: Type | None, k: int) -> Type | None:
    for _ in range(k):
        if not isinstance(t, Arrow):
            return None
        t = t.cod
    return t


def subst_type(t: Type, subst: Mapping[str, Expr]) -> Type:
    """``t`` with the variables of ``subst`` replaced (types hold no binders: no capture)."""
    if not subst:
        return t
    return map_expr(t, lambda x: subst.get(x.name, x) if isinstance(x, Var) else None)


def type_names(t: Any) -> set[str]:
    """The variable names ``t`` mentions (not looking inside a variable's own type)."""
    return {x.name for x in nodes(t, stop=_is_var) if isinstance(x, Var)}


def _is_var(x: Any) -> bool:
    return isinstance(x, Var)


def mentions_any(t: Type, names: set[str]) -> bool:
    return bool(names) and bool(type_names(t) & names)


def depends(d: Definition, name: str) -> bool:
    """Does a parameter type or the result type of ``d`` mention the parameter ``name``?"""
    return any(name in type_names(p.ty) for p in d.params) or name in type_names(d.ret)


def unify(pattern: Type, actual: Type, implicit: set[str], subst: dict[str, Expr]) -> None:
    """Bind implicit parameters so that ``pattern`` matches ``actual`` (sizes of ``Fin``)."""
    if isinstance(pattern, FinT) and isinstance(actual, FinT):
        size = pattern.size
        if isinstance(size, Var) and size.name in implicit and size.name not in subst:
            subst[size.name] = actual.size
    elif isinstance(pattern, Arrow) and isinstance(actual, Arrow):
        unify(pattern.dom, actual.dom, implicit, subst)
        unify(pattern.cod, actual.cod, implicit, subst)
