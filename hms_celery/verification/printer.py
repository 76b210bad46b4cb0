"""Lean 4 text of the core AST: the inverse of ``parse_statement``, for results that must be
re-checkable (a witness term, the closed statement a refutation proved).

The text parses back (with ``parse_statement``) to a statement with the same meaning: every
literal carries its type — ``(-1 : ℝ)``, ``(3/2 : ℚ)``, ``(2 : Fin 3)`` — except a
non-negative integer inside an arithmetic tree that also holds a variable (or cast, call,
application) of the literal's type, where Lean's ``binop%`` elaborator gives it that type
anyway (``b / a + 1``).  Casts are written as ascriptions ``(x : ℝ)``; binder forms (``∀ ∃ fun
let if ∑``) are parenthesised unless they are the whole text; implicit arguments of a ``def``
are left out, as in the source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from fractions import Fraction

from . import ast as A
from .surface import LEAN_NAME

#: Lean 4 precedences (grammar.lark): binder forms extend as far as possible, so they get 0.
_LEAD, _IFF, _IMP, _OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _APP, _MAX = (
    0, 20, 25, 30, 35, 40, 50, 65, 70, 75, 1024, 2048,
)  # fmt: skip
_LOGIC = {"↔": (_IFF, _IFF + 1, _IFF + 1), "→": (_IMP, _IMP + 1, _IMP),
          "∨": (_OR, _OR + 1, _OR), "∧": (_AND, _AND + 1, _AND)}  # fmt: skip
_PLAIN = re.compile(LEAN_NAME)
_KEYWORDS = frozenset(
    {
        "fun",
        "let",
        "if",
        "then",
        "else",
        "in",
        "at",
        "by",
        "do",
        "have",
        "show",
        "from",
        "with",
        "match",
        "forall",
        "exists",
        "Type",
        "Prop",
        "True",
        "False",
    }
)
_ARITH = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "%": _MUL}
_LOGIC_ALIASES = {"/\\": "∧", "\\/": "∨", "->": "→", "<->": "↔", "and": "∧", "or": "∨"}


def ident(name: str) -> str:
    """``name`` as Lean reads it back: «quoted» unless it is a plain identifier (generated
    names such as ``λ1`` or ``w@1`` are not: ``λ`` is a keyword, ``@`` no identifier
    character)."""
    return name if _PLAIN.fullmatch(name) and name not in _KEYWORDS else f"«{name}»"


def show_type(t: A.Type) -> str:
    """Lean text of a core type: ``ℝ``, ``Fin (n + 1)``, ``(Fin n → ℝ) → ℝ``."""
    if isinstance(t, A.Arrow):
        dom = show_type(t.dom)
        return f"{f'({dom})' if isinstance(t.dom, A.Arrow) else dom} → {show_type(t.cod)}"
    if isinstance(t, A.FinT):
        return f"Fin {_Printer({}).show(t.size, _MAX, frozenset({A.NAT}))}"  # sizes are ℕ
    if isinstance(t, A.PropT):
        return "Prop"
    return str(t)


def show_expr(e: A.Expr, definitions: Mapping[str, A.Definition] | None = None) -> str:
    """Lean text of a core expression (``definitions``: to leave out implicit arguments)."""
    return _Printer(definitions or {}).show(e, _LEAD)


def show_statement(st: A.Statement) -> str:
    """Lean text of ``∀ variables, hypotheses → goal``."""
    p = _Printer(st.definitions)
    parts = [p.show(h, _IMP + 1) for h in st.hypotheses]
    body = " → ".join([*parts, p.show(st.goal, _IMP if parts else _LEAD)])
    if not st.variables:
        return body
    binders = " ".join(f"({ident(v.name)} : {show_type(v.ty)})" for v in st.variables)
    return f"∀ {binders}, {body}"


def _literal(v: Fraction) -> str:
    """``3``, ``-0.25`` (a finite decimal is one Lean literal), else ``1/3``."""
    if v.denominator == 1:
        return str(v.numerator)
    d, twos, fives = v.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{v.numerator}/{v.denominator}"
    places = max(twos, fives)
    digits = str(abs(v.numerator) * 10**places // v.denominator).rjust(places + 1, "0")
    sign = "-" if v < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _tree_leaves(e: A.Expr) -> Iterator[A.Expr]:
    """The leaves of the arithmetic tree rooted at ``e`` (what Lean's ``binop%`` sees)."""
    if isinstance(e, A.BinOp):
        yield from _tree_leaves(e.left)
        yield from _tree_leaves(e.right)
    elif isinstance(e, A.Neg):
        yield from _tree_leaves(e.arg)
    else:
        yield e


def _anchors(*roots: A.Expr) -> frozenset[A.Type]:
    """Types fixed by a non-literal leaf of the trees (a bare numeral takes such a type)."""
    anchoring = (A.Var, A.Cast, A.App, A.Call)
    return frozenset(x.ty for r in roots for x in _tree_leaves(r) if isinstance(x, anchoring))


class _Printer:
    def __init__(self, definitions: Mapping[str, A.Definition]) -> None:
        self.definitions = definitions

    def show(self, e: A.Expr, prec: int, tree: frozenset[A.Type] | None = None) -> str:
        """``e`` in a context that needs precedence ``prec``; ``tree``: the anchored types of
        the arithmetic tree ``e`` is a leaf or node of (None outside a tree)."""
        text, own = self._show(e, tree)
        return f"({text})" if own < prec else text

    def _show(self, e: A.Expr, tree: frozenset[A.Type] | None) -> tuple[str, int]:
        if isinstance(e, A.Var):
            return ident(e.name), _MAX
        if isinstance(e, A.Lit):
            v = Fraction(e.value)
            if tree is not None and e.ty in tree and v.denominator == 1 and v >= 0:
                return _literal(v), _MAX
            return f"({_literal(v)} : {show_type(e.ty)})", _MAX
        if isinstance(e, A.BoolLit):
            return ("True" if e.value else "False"), _MAX
        if isinstance(e, A.Cast):
            # `(e : T)` elaborates `e` at type T (the cast would move into a tree): a compound
            # argument keeps its own type by a second ascription, `((a - b : ℕ) : ℝ)`.
            arg = self.show(e.arg, _LEAD)
            if not isinstance(e.arg, A.Var | A.Lit | A.App | A.Call):
                arg = f"({arg} : {show_type(e.arg.ty)})"
            return f"({arg} : {show_type(e.ty)})", _MAX
        if isinstance(e, A.Neg):
            inner = tree if tree is not None else _anchors(e)
            return f"-{self.show(e.arg, _NEG, inner)}", _NEG
        if isinstance(e, A.BinOp):
            inner = tree if tree is not None else _anchors(e)
            p = _ARITH[e.op]
            left = self.show(e.left, p, inner)
            return f"{left} {e.op} {self.show(e.right, p + 1, inner)}", p
        if isinstance(e, A.Pow):
            return f"{self.show(e.base, _APP + 1)} ^ {self.show(e.exp, _NEG)}", _NEG
        if isinstance(e, A.Builtin):
            if e.name == "abs":
                return f"|{self.show(e.args[0], _LEAD)}|", _MAX
            return self._apply(e.name, e.args)
        if isinstance(e, A.Ite):
            text = (
                f"if {self.show(e.cond, _LEAD)} then {self.show(e.then, _LEAD)} "
                f"else {self.show(e.orelse, _LEAD)}"
            )
            return text, _LEAD
        if isinstance(e, A.App):
            args: list[A.Expr] = []
            fn: A.Expr = e
            while isinstance(fn, A.App):
                args.insert(0, fn.arg)
                fn = fn.fn
            return self._apply(self.show(fn, _MAX), args)
        if isinstance(e, A.Lambda):
            body = self.show(e.body, _LEAD)
            return f"fun ({ident(e.var)} : {show_type(e.dom)}) => {body}", _LEAD
        if isinstance(e, A.Let):
            value = self.show(e.value, _LEAD)
            body = self.show(e.body, _LEAD)
            return f"let {ident(e.name)} : {show_type(e.value.ty)} := {value}; {body}", _LEAD
        if isinstance(e, A.Sum):
            if isinstance(e.domain, A.Range):
                over = f"in Finset.range {self.show(e.domain.bound, _MAX)}"
            else:
                over = f": {show_type(e.domain)}"
            return f"∑ {ident(e.var)} {over}, {self.show(e.body, _MUL)}", _LEAD
        if isinstance(e, A.Call):
            d = self.definitions.get(e.name)
            explicit = (
                list(e.args)
                if d is None
                else [a for p, a in zip(d.params, e.args, strict=True) if not p.implicit]
            )
            return self._apply(e.name, explicit) if explicit else (e.name, _MAX)
        if isinstance(e, A.Compare):
            op = A.CMP_ALIASES.get(e.op, e.op)
            inner = _anchors(e.left, e.right)
            left = self.show(e.left, _ADD, inner)
            return f"{left} {op} {self.show(e.right, _ADD, inner)}", _CMP
        if isinstance(e, A.Not):
            return f"¬{self.show(e.arg, _NOT)}", _NOT
        if isinstance(e, A.Logic):
            op = _LOGIC_ALIASES.get(e.op, e.op)
            own, lp, rp = _LOGIC[op]
            return f"{self.show(e.left, lp)} {op} {self.show(e.right, rp)}", own
        if isinstance(e, A.Quant):
            q = "∀" if e.kind == "forall" else "∃"
            return f"{q} {ident(e.var)} : {show_type(e.dom)}, {self.show(e.body, _LEAD)}", _LEAD
        raise ValueError(f"no Lean text for {type(e).__name__}")

    def _apply(self, fn: str, args: list[A.Expr] | tuple[A.Expr, ...]) -> tuple[str, int]:
        return " ".join([fn, *(self.show(a, _MAX) for a in args)]), _APP
