"""Generic rewriting of the core AST: walk, map, substitute (capture-checked), inline calls.

One walker for every rewrite that needs to see all nodes (types included: a ``Var``'s type may
mention a size, a ``Sum``'s domain is a ``FinT``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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


def nodes(e: Any, *, stop: Callable[[Any], bool] | None = None) -> Iterator[Any]:
    """Every node of ``e``, ``e`` included (types too), in pre-order, left to right; the
    children of a node for which ``stop(node)`` holds are not visited.

    Works on any tree of dataclasses (the surface ``S*`` nodes too); positions are skipped."""
    stack = [e]
    while stack:
        x = stack.pop()
        yield x
        if stop is None or not stop(x):
            stack.extend(reversed(list(children(x))))


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
    if not is_dataclass(e) or isinstance(e, type | A.Pos):  # nodes are instances, not classes
        return e
    changes = {}
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            changes[f.name] = tuple(map_expr(x, fn) for x in v)
        elif is_dataclass(v):
            changes[f.name] = map_expr(v, fn)
    return replace(e, **changes) if changes else e


def names_in(*roots: Any) -> set[str]:
    """Every variable and binder name in the ``roots`` (over-approximates their free names)."""
    out = {x.name for root in roots for x in nodes(root) if isinstance(x, A.Var)}
    for root in roots:
        out |= binders(root)
    return out


class CaptureError(RewriteRefused):
    """A substituted term would be captured by a binder of the same name."""


def substitute(e: Any, mapping: Mapping[str, A.Expr]) -> Any:
    """``e`` with the free variables of ``mapping`` replaced (in types too).  Raises
    :class:`CaptureError` when a binder of ``e`` rebinds a name the replacements mention.

    A binder that *shadows* a substituted name just ends the substitution in its body:
    fixing ``x`` at a value in ``p x ∧ ∀ x, q x`` gives ``p 1 ∧ ∀ x, q x``."""
    if not mapping:
        return e
    if isinstance(e, A.Var):
        if e.name in mapping:
            return mapping[e.name]
        return replace(e, ty=substitute(e.ty, mapping))
    bound = getattr(e, "var", None) if isinstance(e, A.Quant | A.Lambda | A.Sum) else None
    if isinstance(e, A.Let):
        bound = e.name
    if bound is not None:
        inner = {k: v for k, v in mapping.items() if k != bound}
        if inner and any(bound in names_in(v) for v in inner.values()):
            raise CaptureError(bound)
        changes = {}
        for f in fields(e):
            value = getattr(e, f.name)
            body_field = f.name == "body"
            changes[f.name] = substitute(value, inner if body_field else mapping)
        return replace(e, **changes)
    if isinstance(e, tuple):
        return tuple(substitute(x, mapping) for x in e)
    if is_dataclass(e) and not isinstance(e, type | A.Pos):
        changes = {f.name: substitute(getattr(e, f.name), mapping) for f in fields(e)}
        return replace(e, **changes)
    return e


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
