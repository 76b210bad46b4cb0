"""Surface syntax: the frozen ``S*``/``T*`` nodes the parser builds, and Lean identifiers.

Each node carries a 1-based :class:`~hms_celery.verification.ast.Pos`; binder predicates and
multi-name binders are already desugared.  :mod:`.parser` builds these nodes from text,
:mod:`.elaborate` turns them into the typed core AST.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from hms_celery.verification.ast import Num, Pos
from hms_celery.verification.ast_walk import nodes

# --------------------------------------------------------------------------- surface nodes


@dataclass(frozen=True)
class SName:
    name: str
    pos: Pos


@dataclass(frozen=True)
class SNum:
    """A numeric literal; ``decimal`` is true for ``0.4`` / ``1e-3`` (needs a field type)."""

    text: str
    value: Fraction
    decimal: bool
    pos: Pos


@dataclass(frozen=True)
class SBool:
    value: bool
    pos: Pos


@dataclass(frozen=True)
class SBin:
    """Arithmetic ``+ - * / %``."""

    op: str
    left: SExpr
    right: SExpr
    pos: Pos


@dataclass(frozen=True)
class SNeg:
    arg: SExpr
    pos: Pos


@dataclass(frozen=True)
class SPow:
    base: SExpr
    exp: SExpr
    pos: Pos


@dataclass(frozen=True)
class SCmp:
    op: str  # = ≠ < ≤ > ≥
    left: SExpr
    right: SExpr
    pos: Pos


@dataclass(frozen=True)
class SNot:
    arg: SExpr
    pos: Pos


@dataclass(frozen=True)
class SLogic:
    op: str  # ∧ ∨ → ↔
    left: SExpr
    right: SExpr
    pos: Pos


@dataclass(frozen=True)
class SAbs:
    arg: SExpr
    pos: Pos


@dataclass(frozen=True)
class SApp:
    fn: SExpr
    args: tuple[SExpr, ...]
    pos: Pos


@dataclass(frozen=True)
class SCoe:
    """``↑e``: coerce ``e`` to the type its context expects (Lean's ``↑`` notation)."""

    arg: SExpr
    pos: Pos


@dataclass(frozen=True)
class SAscribe:
    expr: SExpr
    ty: SType
    pos: Pos


@dataclass(frozen=True)
class SBinder:
    name: str
    ty: SType | None
    pos: Pos


@dataclass(frozen=True)
class SQuant:
    """``∀``/``∃`` over one variable (multi-variable binders are nested)."""

    kind: str  # "forall" | "exists"
    binder: SBinder
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class SLambda:
    binder: SBinder
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class SLet:
    name: str
    ty: SType | None
    value: SExpr
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class SIte:
    cond: SExpr
    then: SExpr
    orelse: SExpr
    pos: Pos


@dataclass(frozen=True)
class SSum:
    """``∑ binder, body``; ``over`` is the set after ``in``/``∈`` (or ``None``)."""

    binder: SBinder
    over: SExpr | None
    body: SExpr
    pos: Pos


@dataclass(frozen=True)
class TScalar:
    num: Num
    pos: Pos


@dataclass(frozen=True)
class TProp:
    pos: Pos


@dataclass(frozen=True)
class TFin:
    size: SExpr
    pos: Pos


@dataclass(frozen=True)
class TArrow:
    dom: SType
    cod: SType
    pos: Pos


@dataclass(frozen=True)
class SParam:
    name: str
    ty: SType
    implicit: bool
    pos: Pos


@dataclass(frozen=True)
class SDef:
    name: str
    params: tuple[SParam, ...]
    ret: SType | None
    body: SExpr
    pos: Pos


SExpr = (
    SName
    | SNum
    | SBool
    | SBin
    | SNeg
    | SPow
    | SCmp
    | SNot
    | SLogic
    | SAbs
    | SApp
    | SAscribe
    | SCoe
    | SQuant
    | SLambda
    | SLet
    | SIte
    | SSum
)
SType = TScalar | TProp | TFin | TArrow


# Lean's identifier characters (src/Init/Meta.lean: isIdFirst, isIdRest, isLetterLike,
# isSubScriptAlnum); the NAME terminal of grammar.lark spells out the same classes.
_LETTER_LIKE = (
    "\u03b1-\u03ba\u03bc-\u03c9\u0391-\u039f\u03a1\u03a2\u03a4-\u03a9\u03ca-\u03fb"
    "\u1f00-\u1ffe\u2100-\u214f\U0001d49c-\U0001d59f"
)
_ID_FIRST = "A-Za-z_" + _LETTER_LIKE
_ID_REST = _ID_FIRST + "0-9'!?\u2080-\u2089\u2090-\u209c\u1d62-\u1d6a"
#: One Lean identifier component, unquoted (``x``, ``w₀``, ``x'``, ``h!``).
LEAN_IDENT = re.compile(f"[{_ID_FIRST}][{_ID_REST}]*")
_COMPONENT = f"(?:«[^»]*»|{LEAN_IDENT.pattern})"
#: A whole identifier token: components, each plain or «quoted», joined by dots.
LEAN_NAME = f"{_COMPONENT}(?:\\.{_COMPONENT})*"


def canonical_name(text: str) -> str:
    """The name an identifier token denotes: ``«w»`` is ``w`` (as in Lean); a quoted component
    that is not a plain identifier keeps its quotes (``«w 0»``), so it cannot meet another."""
    parts = re.findall(r"«[^»]*»|[^.«]+", text)
    out = []
    for part in parts:
        if part.startswith("«"):
            inner = part[1:-1]
            part = inner if LEAN_IDENT.fullmatch(inner) else part
        out.append(part)
    return ".".join(out)


def surface_names(s: Any) -> Iterator[str]:
    """Every identifier mentioned in a surface node, in source order (binders not subtracted)."""
    return (x.name for x in nodes(s) if isinstance(x, SName))
