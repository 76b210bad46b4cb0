"""Text → surface syntax tree (the entry point that also elaborates is
:func:`hms_celery.verification.frontend.parse_statement`).

The grammar (``grammar.lark``) is parsed with Lark's LALR(1) parser, built once per process.
The Lark tree is converted into the small frozen *surface* dataclasses below (``S*`` nodes, each
with a 1-based :class:`~hms_celery.verification.ast.Pos`); binder predicates (``∀ x > 0, P``) and
multi-name binders are desugared here.  :mod:`.elaborate` turns surface nodes into the typed
core AST.  Every syntax error becomes a :class:`~hms_celery.errors.StatementError` with line,
column and human-readable ``expected`` items.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from hms_celery.errors import StatementError
from hms_celery.verification.ast import Num, Pos
from hms_celery.verification.bignum import decimal_to_int

# The surface → core → solver passes recurse over the tree; MAX_NESTING and MAX_CHAIN keep it
# bounded, and this limit (Python frames live on the heap since 3.11) lets a chain of
# MAX_CHAIN operators through every pass.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 60_000))

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
MAX_EXPONENT_DIGITS = 4  # `1e9999` is fine, `1e99999999` would hang Fraction()
#: Deepest nesting of brackets, binders and prefix operators accepted (a chain of one binary
#: operator, such as a flat sum of 1,000 terms, counts once): deeper input is refused with
#: the position where the limit is crossed, instead of exhausting Python's stack later.
MAX_NESTING = 200
#: Longest chain of one binary operator (``a + b + … + z`` has one link per ``+``).
MAX_CHAIN = 5_000

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

# --------------------------------------------------------------------------- the Lark parser


class _LetLayout:
    """Post-lexer: ends a ``let`` value at a new line that starts at or left of ``let``.

    ``let x := e`` followed, on a later line, by a token whose column is ≤ the column of ``let``
    (at the same bracket depth) gets a ``;`` inserted before that token, as Lean's layout rule.
    """

    always_accept: tuple[str, ...] = ()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        stack: list[list[int]] = []  # [column of `let`, bracket depth, saw `:=`]
        depth = 0
        prev_line = 0
        for tok in stream:
            if prev_line and tok.line is not None and tok.line > prev_line:
                while (
                    stack
                    and stack[-1][2]
                    and stack[-1][1] == depth
                    and cast(int, tok.column) <= stack[-1][0]
                ):
                    stack.pop()
                    yield Token.new_borrow_pos("_SEMI", ";", tok)
            value = tok.value
            if value in ("(", "{"):
                depth += 1
            elif value in (")", "}"):
                depth -= 1
                while stack and stack[-1][1] > depth:
                    stack.pop()
            elif tok.type == "LET":
                stack.append([tok.column or 0, depth, 0])
            elif value == ":=" and stack and stack[-1][1] == depth:
                stack[-1][2] = 1
            elif tok.type == "_SEMI" and stack and stack[-1][1] == depth and stack[-1][2]:
                stack.pop()
            prev_line = tok.end_line or tok.line or prev_line
            yield tok


# Tokens after which an expression may end (so a `|` there can close an open `|…|`).
_ENDS_EXPRESSION = frozenset({"NAME", "NUMBER", "RPAR", "RBRACE", "TRUE", "FALSE", "ABS_CLOSE"})


def _abs_bars(stream: Iterator[Token]) -> Iterator[Token]:
    """Tell the bars of ``|x|`` apart: a ``|`` closes the innermost open ``|`` of the same
    bracket depth when the token before it can end an expression; otherwise it opens one.
    So ``min |x| |y|`` and ``||x| - |y||`` read as Mathlib's ``|a|`` notation does."""
    opened: list[int] = []  # bracket depth of each open `|`
    depth = 0
    prev = ""
    for tok in stream:
        if tok.value in ("(", "{"):
            depth += 1
        elif tok.value in (")", "}"):
            depth -= 1
            while opened and opened[-1] > depth:
                opened.pop()
        elif tok.type == "VBAR":
            if opened and opened[-1] == depth and prev in _ENDS_EXPRESSION:
                opened.pop()
                tok = Token.new_borrow_pos("ABS_CLOSE", tok.value, tok)
            else:
                opened.append(depth)
        prev = tok.type
        yield tok


class _PostLex(_LetLayout):
    """The layout rule for ``let``, then the ``|x|`` bars."""

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        return _abs_bars(super().process(stream))


@cache
def _lark() -> Lark:
    """The LALR parser, built once (≈80 ms) and shared."""
    return Lark(
        GRAMMAR_PATH.read_text(encoding="utf-8").replace("@LEAN_NAME@", LEAN_NAME),
        parser="lalr",
        lexer="basic",
        postlex=_PostLex(),
        start=["statement", "type_only", "definition"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


# --------------------------------------------------------------------------- error translation

_CANONICAL = {
    "forall": "∀", "exists": "∃", "->": "→", "<->": "↔", "/\\": "∧", "\\/": "∨", "<=": "≤",
    ">=": "≥", "!=": "≠", "Real": "ℝ", "Rat": "ℚ", "Int": "ℤ", "Nat": "ℕ", "λ": "fun",
    "↦": "=>", "∈": "in",
}  # fmt: skip
_EXPRESSION_STARTS = {
    "NAME", "NUMBER", "(", "∀", "∃", "fun", "let", "if", "∑", "¬", "-", "|", "True", "False",
}  # fmt: skip


_OPERATORS = {
    "+", "-", "*", "/", "%", "^", "=", "≠", "<", "≤", ">", "≥", "∧", "∨", "→", "↔",
}  # fmt: skip


@cache
def _terminal_text() -> dict[str, str]:
    """Terminal name → the text it stands for (``RPAR`` → ``)``), canonical spelling."""
    out = {}
    for term in _lark().terminals:
        if term.pattern.type == "str":
            out[term.name] = _CANONICAL.get(term.pattern.value, term.pattern.value)
    out["ABS_CLOSE"] = "|"
    return out


def _acceptable(exc: UnexpectedToken) -> set[str]:
    """The terminals really acceptable at the error (LALR's ``expected`` over-approximates)."""
    try:
        return set(exc.interactive_parser.accepts()) or set(exc.expected)
    except Exception:  # pragma: no cover - defensive; fall back to the table's lookaheads
        return set(exc.expected)


def _expected_names(names: set[str] | frozenset[str]) -> tuple[str, ...]:
    """Human names of what the parser would have accepted (operators folded when many)."""
    texts = {_terminal_text().get(n, n) for n in names}
    items: list[str] = []
    operators = texts & _OPERATORS
    if len(operators) >= 3:
        texts -= _OPERATORS
        items.append("an operator")
    if {"NAME", "NUMBER", "("} <= texts:
        items.append("an expression")
        texts -= _EXPRESSION_STARTS
    if "NAME" in texts:
        items.append("an identifier")
    if "NUMBER" in texts:
        items.append("a number")
    if "$END" in texts:
        items.append("end of input")
    texts -= {"NAME", "NUMBER", "$END"}
    items.extend(f"'{t}'" for t in sorted(texts))
    return tuple(items)


def _describe_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    if tok.type == "NAME":
        return f"identifier '{tok.value}'"
    if tok.type == "NUMBER":
        return f"number {tok.value}"
    return f"'{tok.value}'"


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character of ``text``."""
    stripped = text.rstrip()
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, column


def _syntax_error(exc: UnexpectedInput, text: str) -> StatementError:
    if isinstance(exc, UnexpectedToken):
        expected = _expected_names(_acceptable(exc))
        tok = exc.token
        if tok.type == "$END":  # just after the last token (not after a trailing comment)
            if tok.end_line and tok.end_column:
                line, column = tok.end_line, tok.end_column
            else:
                line, column = _end_position(text)
        else:
            line, column = exc.line, exc.column
        what = _describe_token(tok)
        if tok.type == "RPAR" and _unmatched_close(text, line, column):
            what += " (there is no '(' to close)"
        if tok.type == "_SEMI" and tok.value == ";" and text[_offset(text, line, column)] != ";":
            what = "line break (a line starting at or left of `let` ends its value)"
    elif isinstance(exc, UnexpectedCharacters):
        expected = _expected_names(exc.allowed or set())
        line, column = exc.line, exc.column
        what = f"character {text[cast(int, exc.pos_in_stream)]!r}"
    else:  # pragma: no cover - UnexpectedEOF is not raised by the LALR parser
        expected, (line, column), what = (), _end_position(text), "end of input"
    message = f"unexpected {what}"
    if expected:
        message += f"; expected {_join_or(expected)}"
    return StatementError(message, line=line, column=column, expected=expected, source=text)


def _unmatched_close(text: str, line: int, column: int) -> bool:
    before = text[: _offset(text, line, column)]
    return before.count("(") <= before.count(")")


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return min(sum(len(s) + 1 for s in lines[: line - 1]) + column - 1, len(text) - 1)


def _join_or(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# --------------------------------------------------------------------------- Lark tree → surface

_CMP = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
_ARITH = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}
_LOGIC = {"and_": "∧", "or_": "∨", "imp": "→", "iff": "↔"}
_SCALARS = {"real": Num.REAL, "rat": Num.RAT, "int": Num.INT, "nat": Num.NAT}
_BASES = {"0x": 16, "0b": 2, "0o": 8}
_DECIMAL_PARTS = re.compile(r"([0-9]+)(\.[0-9]*)?(?:[eE]([+-]?[0-9]+))?")
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
        tree = _lark().parse(blank_comments(text), start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
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
