"""Renderings for the elaborator's error messages: core types and small expressions in
Lean's notation, surface nodes shortened (``f (x + 1)``, ``|a|``, "this expression")."""

from __future__ import annotations

from typing import Any

from hms_celery.verification.ast import (
    Arrow,
    BinOp,
    Cast,
    FinT,
    Lit,
    Var,
)
from hms_celery.verification.surface import (
    SAbs,
    SApp,
    SAscribe,
    SBin,
    SCmp,
    SName,
    SNeg,
    SNum,
    SPow,
    SSum,
)


def show_type(t: Any) -> str:
    """Lean-style rendering of a core type (``Fin n → ℝ``) for messages."""
    if isinstance(t, Arrow):
        dom = show_type(t.dom)
        return (
            f"({dom}) → {show_type(t.cod)}"
            if isinstance(t.dom, Arrow)
            else f"{dom} → {show_type(t.cod)}"
        )
    if isinstance(t, FinT):
        size = show_expr(t.size)
        return f"Fin {size}" if isinstance(t.size, (Var, Lit)) else f"Fin ({size})"
    return str(t)


def show_expr(e: Any) -> str:
    """Lean-style rendering of a (small) core expression, e.g. the size of a ``Fin``."""
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Lit):
        v = e.value
        return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if isinstance(e, BinOp):
        return f"{show_expr(e.left)} {e.op} {show_expr(e.right)}"
    if isinstance(e, Cast):
        return f"↑{show_expr(e.arg)}"
    return type(e).__name__


def show_surface(s: Any) -> str:
    """A short rendering of a surface node for messages."""
    if isinstance(s, SName):
        return s.name
    if isinstance(s, SNum):
        return s.text
    if isinstance(s, SApp):
        return " ".join([show_surface(s.fn), *(show_atom(a) for a in s.args)])
    if isinstance(s, SBin):
        return f"{show_surface(s.left)} {s.op} {show_surface(s.right)}"
    if isinstance(s, SNeg):
        return f"-{show_atom(s.arg)}"
    if isinstance(s, SPow):
        return f"{show_atom(s.base)} ^ {show_atom(s.exp)}"
    if isinstance(s, SAbs):
        return f"|{show_surface(s.arg)}|"
    if isinstance(s, SCmp):
        return f"{show_surface(s.left)} {s.op} {show_surface(s.right)}"
    if isinstance(s, SSum):
        return f"∑ {s.binder.name}, {show_surface(s.body)}"
    if isinstance(s, SAscribe):
        return f"({show_surface(s.expr)} : …)"
    return "this expression"


def show_atom(s: Any) -> str:
    """:func:`show_surface`, parenthesised unless ``s`` is a name, number or ``|…|``."""
    text = show_surface(s)
    return text if isinstance(s, (SName, SNum, SAbs)) else f"({text})"
