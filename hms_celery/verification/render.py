"""Render a core AST back to statement text that HMS (and Lean) read the same way.

Used for the proof records of :mod:`.all_sizes` (the reduced problem a proof rests on must be
re-checkable by reading it) and for tests that parse the rendering again.  Every compound term
is parenthesised and every literal carries its type, so the text does not depend on
precedence or on default instances: ``Lit(3/2, ℝ)`` is ``(3 / 2 : ℝ)``, a coercion is
``(↑(e) : ℝ)``.  Names that are not plain identifiers are «quoted».
"""

from __future__ import annotations

import re

from . import ast as A
from .parser import LEAN_NAME

_LOGIC = {"∧": "∧", "∨": "∨", "→": "→", "↔": "↔"}
_PLAIN = re.compile(LEAN_NAME)


def name(text: str) -> str:
    """``text`` as an identifier: «quoted» unless it is a plain Lean identifier."""
    return text if _PLAIN.fullmatch(text) else f"«{text}»"


def render_type(t: A.Type) -> str:
    """Lean text of a core type."""
    if isinstance(t, A.Scalar):
        return t.num.value
    if isinstance(t, A.PropT):
        return "Prop"
    if isinstance(t, A.FinT):
        return f"Fin ({render(t.size)})"
    if isinstance(t, A.Arrow):
        return f"({render_type(t.dom)} → {render_type(t.cod)})"
    raise TypeError(f"cannot render type {t!r}")


def render(e: A.Expr) -> str:
    """Lean text of a core expression (fully parenthesised, literals typed)."""
    if isinstance(e, A.Var):
        return name(e.name)
    if isinstance(e, A.Lit):
        v = e.value
        text = str(v.numerator) if v.denominator == 1 else f"{v.numerator} / {v.denominator}"
        return f"({text} : {render_type(e.ty)})"
    if isinstance(e, A.BoolLit):
        return "True" if e.value else "False"
    if isinstance(e, A.Cast):
        return f"(↑({render(e.arg)}) : {render_type(e.ty)})"
    if isinstance(e, A.Neg):
        return f"(-{render(e.arg)})"
    if isinstance(e, A.BinOp):
        return f"({render(e.left)} {e.op} {render(e.right)})"
    if isinstance(e, A.Pow):
        return f"({render(e.base)} ^ {render(e.exp)})"
    if isinstance(e, A.Builtin):
        if e.name == "abs":
            return f"|{render(e.args[0])}|"
        return f"({e.name} {' '.join(render(a) for a in e.args)})"
    if isinstance(e, A.Ite):
        return f"(if {render(e.cond)} then {render(e.then)} else {render(e.orelse)})"
    if isinstance(e, A.App):
        return f"({render(e.fn)} {render(e.arg)})"
    if isinstance(e, A.Lambda):
        return f"(fun ({name(e.var)} : {render_type(e.dom)}) => {render(e.body)})"
    if isinstance(e, A.Let):
        return f"(let {name(e.name)} := {render(e.value)}; {render(e.body)})"
    if isinstance(e, A.Sum):
        if isinstance(e.domain, A.Range):
            return (
                f"(∑ {name(e.var)} in Finset.range ({render(e.domain.bound)}), ({render(e.body)}))"
            )
        return f"(∑ {name(e.var)} : {render_type(e.domain)}, ({render(e.body)}))"
    if isinstance(e, A.Call):
        raise TypeError(f"inline the call of {e.name} before rendering")
    if isinstance(e, A.Compare):
        return f"({render(e.left)} {e.op} {render(e.right)})"
    if isinstance(e, A.Not):
        return f"(¬{render(e.arg)})"
    if isinstance(e, A.Logic):
        return f"({render(e.left)} {_LOGIC[e.op]} {render(e.right)})"
    if isinstance(e, A.Quant):
        q = "∀" if e.kind == "forall" else "∃"
        return f"({q} {name(e.var)} : {render_type(e.dom)}, {render(e.body)})"
    raise TypeError(f"cannot render {type(e).__name__}")


def render_statement(st: A.Statement) -> str:
    """``∀ (x : T) …, h₁ → … → goal`` for a statement without calls."""
    parts = [render(h) for h in st.hypotheses] + [render(st.goal)]
    body = " → ".join(parts)
    if not st.variables:
        return body
    binders = " ".join(f"({name(p.name)} : {render_type(p.ty)})" for p in st.variables)
    return f"∀ {binders}, {body}"
