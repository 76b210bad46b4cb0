"""Text → surface syntax tree (the entry point that also elaborates is
:func:`hms_celery.verification.frontend.parse_statement`).

The grammar (``grammar.lark``) is parsed with Lark's LALR(1) parser, built once per process.
The Lark tree is converted into the small frozen *surface* dataclasses of :mod:`.surface`
(``S*`` nodes, each with a 1-based :class:`~hms_celery.verification.ast.Pos`); binder
predicates (``∀ x > 0, P``) and multi-name binders are desugared here.  :mod:`.elaborate`
turns surface nodes into the typed core AST.  Every syntax error becomes a
:class:`~hms_celery.errors.StatementError` (:mod:`.parse_errors`) with line, column and
human-readable ``expected`` items.
"""

from __future__ import annotations

import re
import sys
from fractions import Fraction
from typing import cast

from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from hms_celery.errors import StatementError
from hms_celery.verification.ast import Num, Pos
from hms_celery.verification.bignum import decimal_to_int
from hms_celery.verification.lark_parser import lark_parser
from hms_celery.verification.parse_errors import syntax_error
from hms_celery.verification.surface import (
    SAbs,
    SApp,
    SAscribe,
    SBin,
    SBinder,
    SBool,
    SCmp,
    SCoe,
    SDef,
    SExpr,
    SIte,
    SLambda,
    SLet,
    SLogic,
    SName,
    SNeg,
    SNot,
    SNum,
    SParam,
    SPow,
    SQuant,
    SSum,
    SType,
    TArrow,
    TFin,
    TProp,
    TScalar,
    canonical_name,
)

# The surface → core → solver passes recurse over the tree; MAX_NESTING and MAX_CHAIN keep it
# bounded, and this limit (Python frames live on the heap since 3.11) lets a chain of
# MAX_CHAIN operators through every pass.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 60_000))

MAX_EXPONENT_DIGITS = 4  # `1e9999` is fine, `1e99999999` would hang Fraction()
#: Deepest nesting of brackets, binders and prefix operators accepted (a chain of one binary
#: operator, such as a flat sum of 1,000 terms, counts once): deeper input is refused with
#: the position where the limit is crossed, instead of exhausting Python's stack later.
MAX_NESTING = 200
#: Longest chain of one binary operator (``a + b + … + z`` has one link per ``+``).
MAX_CHAIN = 5_000


# --------------------------------------------------------------------------- Lark tree → surface

_CMP = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
_LOGIC = {"and_": "∧", "or_": "∨", "imp": "→", "iff": "↔"}
_SCALARS = {"real": Num.REAL, "rat": Num.RAT, "int": Num.INT, "nat": Num.NAT}
_BASES = {"0x": 16, "0b": 2, "0o": 8}
_DECIMAL_PARTS = re.compile(r"([0-9]+)(\.[0-9]*)?(?:[eE]([+-]?[0-9]+))?")


def _pos(node: Tree | Token) -> Pos:
    if isinstance(node, Token):
        return Pos(node.line or 0, node.column or 0)
    meta = node.meta
    return Pos(getattr(meta, "line", 0), getattr(meta, "column", 0))


class _Converter:
    """Converts Lark trees to surface nodes; ``text`` is used for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, node: Tree | Token | Pos, message: str) -> StatementError:
        pos = node if isinstance(node, Pos) else _pos(node)
        return StatementError(message, line=pos.line, column=pos.column, source=self.text)

    # ----- expressions

    def expr(self, t: Tree | Token) -> SExpr:
        if isinstance(t, Token):  # pragma: no cover - every token is wrapped by a rule
            raise self.error(t, f"unexpected {t.value!r}")
        kind = t.data
        ch = t.children
        pos = _pos(t)
        if kind == "statement":
            return self.expr(ch[0])
        if kind == "name":
            return SName(canonical_name(str(ch[0])), pos)
        if kind == "number":
            return self.number(cast(Token, ch[0]))
        if kind in ("true", "false"):
            return SBool(kind == "true", pos)
        if kind in _ARITH:
            return SBin(_ARITH[kind], self.expr(ch[0]), self.expr(ch[1]), _pos(ch[0]))
        if kind in _CMP:
            return SCmp(_CMP[kind], self.expr(ch[0]), self.expr(ch[1]), _pos(ch[0]))
        if kind in _LOGIC:
            return SLogic(_LOGIC[kind], self.expr(ch[0]), self.expr(ch[1]), _pos(ch[0]))
        if kind == "not_":
            return SNot(self.expr(ch[0]), pos)
        if kind == "neg":
            return SNeg(self.expr(ch[0]), pos)
        if kind == "pow":
            return SPow(self.expr(ch[0]), self.expr(ch[1]), _pos(ch[0]))
        if kind == "abs":
            return SAbs(self.expr(ch[0]), pos)
        if kind == "app":
            return SApp(self.expr(ch[0]), tuple(self.expr(c) for c in ch[1:]), pos)
        if kind == "ascribe":
            return SAscribe(self.expr(ch[0]), self.type(ch[1]), pos)
        if kind == "coe":
            return SCoe(self.expr(ch[0]), pos)
        if kind in ("proj", "proj_ascribe"):  # `(e).val`, `(e : Fin n).val`
            arg = (
                self.expr(ch[0])
                if kind == "proj"
                else SAscribe(self.expr(ch[0]), self.type(ch[1]), pos)
            )
            field = str(ch[-1])
            if field != "val":
                raise self.error(ch[-1], f"unknown field '.{field}' (only Fin's .val is known)")
            return SApp(SName("Fin.val", _pos(ch[-1])), (arg,), pos)
        if kind in ("forall", "exists"):
            binders, pred = self.binders(ch[0])
            return self.quant(kind, binders, pred, self.expr(ch[1]), pos)
        if kind == "lambda":
            binders, pred = self.binders(ch[0])
            if pred is not None:
                raise self.error(pred[2], "a `fun` binder cannot have a predicate")
            body = self.expr(ch[1])
            for b in reversed(binders):
                body = SLambda(b, body, pos)
            return body
        if kind == "let":
            name, ty, value, let_body = ch
            declared = self.type(ty) if ty is not None else None
            return SLet(
                canonical_name(str(name)), declared, self.expr(value), self.expr(let_body), pos
            )
        if kind == "ite":
            return SIte(self.expr(ch[0]), self.expr(ch[1]), self.expr(ch[2]), pos)
        if kind == "sum":
            binders, pred = self.binders(ch[0])
            if pred is not None:
                raise self.error(pred[2], "a `∑` binder cannot have a predicate; use `if`")
            over = self.expr(ch[1]) if ch[1] is not None else None
            body = self.expr(ch[2])
            for b in reversed(binders):
                body = SSum(b, over, body, pos)
            return body
        raise self.error(t, f"unsupported syntax {kind!r}")  # pragma: no cover

    def number(self, tok: Token) -> SNum:
        text = str(tok)
        base = _BASES.get(text[:2].lower())
        if base is not None:  # 0x10, 0b101, 0o17: natural numerals, as Lean reads them
            return SNum(text, Fraction(int(text[2:], base)), False, _pos(tok))
        m = _DECIMAL_PARTS.fullmatch(text)
        assert m is not None  # the NUMBER terminal only matches these forms
        whole, dot, exp = m.group(1), m.group(2), m.group(3)
        frac = dot[1:] if dot else ""
        if exp and len(exp.lstrip("+-").lstrip("0")) > MAX_EXPONENT_DIGITS:
            raise self.error(tok, f"exponent of {text} is too large")
        value = Fraction(decimal_to_int(whole + frac), 10 ** len(frac))
        if exp:
            e = int(exp)
            value = value * 10**e if e >= 0 else value / 10**-e
        decimal = dot is not None or exp is not None  # Lean's scientificLit
        return SNum(text, value, decimal, _pos(tok))

    def binders(self, t: Tree) -> tuple[list[SBinder], tuple[str, SExpr, Pos] | None]:
        """The binders of ``∀ ∃ fun ∑``, and a binder predicate ``(op, bound, pos)`` if any."""
        groups = [c for c in t.children if isinstance(c, Tree) and c.data in ("bare", "typed")]
        rest = t.children[len(groups) :]
        out: list[SBinder] = []
        for g in groups:
            if g.data == "bare":
                out.append(SBinder(canonical_name(str(g.children[0])), None, _pos(g.children[0])))
            else:
                ty = self.type(g.children[-1])
                out.extend(SBinder(canonical_name(str(n)), ty, _pos(n)) for n in g.children[:-1])
        pred = None
        if t.data == "plain_binders":
            if rest and rest[0] is not None:
                if any(g.data == "typed" for g in groups):
                    raise self.error(rest[0], "write either `x y : T` or `(x : T) (y : U)`")
                ty = self.type(rest[0])
                out = [SBinder(b.name, ty, b.pos) for b in out]
        else:
            p = rest[0]
            pred = (_CMP[p.data], self.expr(p.children[0]), _pos(p))
        return out, pred

    def quant(
        self,
        kind: str,
        binders: list[SBinder],
        pred: tuple[str, SExpr, Pos] | None,
        body: SExpr,
        pos: Pos,
    ) -> SExpr:
        """Nest multi-variable binders; ``∀ x > 0, P`` ↦ ``∀ x, x > 0 → P`` (``∃``: ``∧``)."""
        for b in reversed(binders):
            if pred is not None:
                op, bound, ppos = pred
                guard = SCmp(op, SName(b.name, b.pos), bound, ppos)
                body = SLogic("→" if kind == "forall" else "∧", guard, body, ppos)
            body = SQuant(kind, b, body, pos)
        return body

    # ----- types and definitions

    def type(self, t: Tree) -> SType:
        pos = _pos(t)
        if t.data in _SCALARS:
            return TScalar(_SCALARS[t.data], pos)
        if t.data == "prop":
            return TProp(pos)
        if t.data == "fin":
            return TFin(self.expr(t.children[0]), pos)
        if t.data == "arrow":
            return TArrow(self.type(t.children[0]), self.type(t.children[1]), pos)
        if t.data == "type_only":
            return self.type(t.children[0])
        raise self.error(t, f"unsupported type syntax {t.data!r}")  # pragma: no cover

    def definition(self, t: Tree) -> SDef:
        name, *binders, ret, body = t.children
        params: list[SParam] = []
        for b in binders:
            ty = self.type(b.children[-1])
            implicit = b.data == "implicit_binder"
            params.extend(
                SParam(canonical_name(str(n)), ty, implicit, _pos(n)) for n in b.children[:-1]
            )
        return SDef(
            str(name), tuple(params), self.type(ret) if ret is not None else None,
            self.expr(body), _pos(name),
        )  # fmt: skip


def blank_comments(text: str) -> str:
    """``text`` with its comments replaced by spaces (newlines kept, so every position stays).

    As Lean's ``whitespace`` (src/Lean/Parser/Basic.lean): ``--`` runs to the end of the line
    and ``/- … -/`` nests (``/- a /- b -/ c -/`` is one comment); ``«…»`` is an identifier,
    not a comment start.  An unterminated block comment is an error at its start."""
    out: list[str] = []
    i, n = 0, len(text)
    depth, opened = 0, 0
    while i < n:
        two = text[i : i + 2]
        if depth:
            if two == "/-":
                depth, i = depth + 1, i + 2
                out.append("  ")
            elif two == "-/":
                depth, i = depth - 1, i + 2
                out.append("  ")
            else:
                out.append("\n" if text[i] == "\n" else " ")
                i += 1
            continue
        if two == "/-":
            depth, opened, i = 1, i, i + 2
            out.append("  ")
        elif two == "--":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text[i] == "«":
            end = text.find("»", i)
            end = n if end < 0 else end + 1
            out.append(text[i:end])
            i = end
        else:
            out.append(text[i])
            i += 1
    if depth:
        line, column = _line_column(text, opened)
        raise StatementError(
            "unterminated comment: '/-' has no matching '-/'", line=line, column=column,
            source=text,
        )  # fmt: skip
    return "".join(out)


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# Binary rules whose operands may repeat the rule without deepening the nesting (a chain).
_CHAINS = frozenset({*("add", "sub", "mul", "div", "mod"), *("and_", "or_", "imp", "app")})
_LEVELS = {"add": "+", "sub": "+", "mul": "*", "div": "*", "mod": "*"}


def _check_nesting(tree: Tree, text: str) -> None:
    """Refuse input nested deeper than :data:`MAX_NESTING` (or with a chain longer than
    :data:`MAX_CHAIN`) with the position where the limit is crossed; iterative, so it cannot
    overflow the stack itself."""
    stack: list[tuple[Tree, int, int]] = [(tree, 0, 0)]
    while stack:
        node, depth, chain = stack.pop()
        for child in node.children:
            if not isinstance(child, Tree):
                continue
            same = child.data in _CHAINS and _LEVELS.get(child.data, child.data) == _LEVELS.get(
                node.data, node.data
            )
            d, c = (depth, chain + 1) if same else (depth + 1, 0)
            if d > MAX_NESTING or c > MAX_CHAIN:
                pos = _pos(child)
                what = (
                    f"nested more than {MAX_NESTING} levels deep"
                    if d > MAX_NESTING
                    else f"a chain of more than {MAX_CHAIN} operators"
                )
                raise StatementError(
                    f"the expression is too deep: {what}", line=pos.line, column=pos.column,
                    source=text,
                )  # fmt: skip
            stack.append((child, d, c))


def _parse(text: str, start: str) -> Tree:
    try:
        tree = lark_parser().parse(blank_comments(text), start=start)
    except UnexpectedInput as exc:
        raise syntax_error(exc, text) from None
    except LarkError as exc:  # pragma: no cover - defensive: any other Lark failure
        raise StatementError(f"cannot parse: {exc}", source=text) from None
    _check_nesting(tree, text)
    return tree


def _guard_depth(fn, text: str):  # type: ignore[no-untyped-def]
    # The nesting check keeps trees within MAX_NESTING / MAX_CHAIN, which the recursive
    # passes handle with the raised recursion limit; this is the last line of defence.
    try:
        return fn()
    except RecursionError:
        raise StatementError(
            "the statement is nested too deeply", line=1, column=1, source=text
        ) from None


def parse_expression(text: str) -> SExpr:
    """Parse a proposition or term to a surface tree (no name resolution, no types)."""
    return _guard_depth(lambda: _Converter(text).expr(_parse(text, "statement")), text)


def parse_type(text: str) -> SType:
    """Parse a Lean type such as ``Fin n → ℝ``."""
    return _guard_depth(lambda: _Converter(text).type(_parse(text, "type_only")), text)


def parse_definition(text: str) -> SDef:
    """Parse one ``def name binders : type := body`` item."""
    return _guard_depth(lambda: _Converter(text).definition(_parse(text, "definition")), text)
