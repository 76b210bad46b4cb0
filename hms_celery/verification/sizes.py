"""Size parameters: the ℕ variables a statement uses as a ``Fin`` size, a ``Finset.range``
bound or an exponent, and the order in which the bounded search tries their values.

Not Z3-specific: the prover enumerates these, and every backend compiles one instance."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from . import ast as A


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
