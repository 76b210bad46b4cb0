"""Generic rewriting of the core AST: walk, map, substitute (capture-checked), inline calls.

One walker for every rewrite that needs to see all nodes (types included: a ``Var``'s type may
mention a size, a ``Sum``'s domain is a ``FinT``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass, replace
from fractions import Fraction
from typing import Any

from . import ast as A


class RewriteRefused(Exception):
    """A rewrite would change the meaning (a capture, an unknown definition); says why."""


def children(e: Any) -> Iterator[Any]:
    """The direct sub-nodes of ``e`` (expressions and types; not positions)."""
    if not is_dataclass(e) or isinstance(e, A.Pos):
        return
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            yield from v
        elif is_dataclass(v):
            yield v


def nodes(e: Any) -> Iterator[Any]:
    """Every node of ``e``, ``e`` included (types too)."""
    stack = [e]
    while stack:
        x = stack.pop()
        yield x
        stack.extend(children(x))


def binders(e: Any) -> set[str]:
    """The names bound anywhere in ``e`` (∀ ∃ fun ∑ let)."""
    out: set[str] = set()
    for x in nodes(e):
        if isinstance(x, A.Quant | A.Lambda | A.Sum):
            out.add(x.var)
        elif isinstance(x, A.Let):
            out.add(x.name)
    return out


def mentions(e: Any, names: set[str]) -> bool:
    """Whether a variable named in ``names`` occurs in ``e`` (bound or free)."""
    return any(isinstance(x, A.Var) and x.name in names for x in nodes(e))


def map_expr(e: Any, fn: Callable[[Any], Any | None]) -> Any:
    """Rebuild ``e`` top-down: ``fn(node)`` returns a replacement (not visited further) or
    None (then the node's children are mapped)."""
    new = fn(e)
    if new is not None:
        return new
    if not is_dataclass(e) or isinstance(e, A.Pos):
        return e
    changes = {}
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            changes[f.name] = tuple(map_expr(x, fn) for x in v)
        elif is_dataclass(v):
            changes[f.name] = map_expr(v, fn)
    return replace(e, **changes) if changes else e


def substitute(e: Any, subst: dict[str, A.Expr]) -> Any:
    """Replace free variables (no binder of ``e`` may bind a name free in a replacement)."""
    free = {x.name for v in subst.values() for x in nodes(v) if isinstance(x, A.Var)}
    clash = binders(e) & (free | set(subst))
    if clash:
        raise RewriteRefused(f"bound name {sorted(clash)[0]!r} would capture a variable")
    return map_expr(e, lambda x: subst.get(x.name) if isinstance(x, A.Var) else None)


def inline_calls(e: Any, definitions: dict[str, A.Definition], depth: int = 0) -> Any:
    """``e`` with every call of a ``def`` replaced by its body (arguments substituted)."""
    if depth > 50:
        raise RewriteRefused("definitions nest too deeply to inline")

    def expand(x: Any) -> Any | None:
        if not isinstance(x, A.Call):
            return None
        d = definitions.get(x.name)
        if d is None:
            raise RewriteRefused(f"unknown definition {x.name!r}")
        args = [inline_calls(a, definitions, depth + 1) for a in x.args]
        body = inline_calls(d.body, definitions, depth + 1)
        return substitute(body, {p.name: a for p, a in zip(d.params, args, strict=True)})

    return map_expr(e, expand)


def conjuncts(e: A.Expr) -> list[A.Expr]:
    """``a ∧ (b ∧ c)`` → ``[a, b, c]``."""
    if isinstance(e, A.Logic) and e.op == "∧":
        return conjuncts(e.left) + conjuncts(e.right)
    return [e]


def conjoin(parts: list[A.Expr]) -> A.Expr:
    """``[a, b, c]`` → ``a ∧ b ∧ c`` (at least one part)."""
    out = parts[0]
    for p in parts[1:]:
        out = A.Logic("∧", out, p)
    return out


def fresh_name(base: str, taken: set[str]) -> str:
    """A name that no user can have written unquoted (``@`` is no identifier character)."""
    k, name = 0, base
    while name in taken:
        k += 1
        name = f"{base}@{k}"
    taken.add(name)
    return name


def lit(value: int | Fraction, ty: A.Type) -> A.Lit:
    """The literal ``value : ty``."""
    return A.Lit(Fraction(value), ty)
