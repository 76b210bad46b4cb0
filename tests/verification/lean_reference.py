"""An independent reference semantics for HMS's Lean fragment, written from Lean 4's sources.

This module is the referee of ``test_lean_conformance.py`` and ``test_differential.py``.  It
shares no code with HMS's own pipeline (it must not import ``elaborate``, ``exact``, ``parser``
or the Z3 compiler from ``hms_celery.verification``; ``test_lean_conformance.py`` checks that):
it has its own tokenizer, its own Pratt parser, its own elaborator that follows Lean's rules,
and it evaluates with :class:`fractions.Fraction`.

:func:`evaluate` decides a *closed* statement (finite ``∀``/``∃``/``∑`` over ``Fin n`` are
enumerated); with an environment it decides a statement whose leading ``∀`` binders (and the
premises between them) are given values -- that is how :func:`check_counterexample` re-checks a
counterexample: hypotheses true, goal false.  Text that Lean would reject (parse error, type
error, failed instance) raises :class:`Rejected`; text outside this module's fragment raises
:class:`NotCovered` (a subclass: "not decided here", never "Lean rejects").

Sources (Lean ``v4.15.0`` is the workspace toolchain, ``lean_workspace/lean-toolchain``; the
files are cited at each rule below, all in the ``leanprover/lean4`` repository unless marked
Mathlib):

* tokens: ``src/Lean/Parser/Basic.lean`` (``whitespace``, ``finishCommentBlock`` with nesting,
  ``numberFnAux``/``decimalNumberFn``/``hexNumberFn``/``binNumberFn``/``octalNumberFn``,
  ``identFnAux``, ``isIdCont``, ``isToken``) and ``src/Init/Meta/Defs.lean`` (older copies in
  ``src/Init/Meta.lean``: ``isLetterLike``, ``isSubScriptAlnum``, ``isIdFirst``, ``isIdRest``);
* precedences: ``src/Init/Notation.lean`` (``infixl:65 " + "``, ``infixl:70 " * "``,
  ``infixr:80 " ^ "``, ``prefix:75 "-"``, ``infix:50 " = "``, ``infixr:35 " ∧ "``,
  ``infixr:30 " ∨ "``, ``notation:max "¬" p:40``), ``src/Init/Core.lean`` (``↔`` 20),
  ``src/Lean/Parser/Term.lean`` (``arrow``: ``→`` 25, ``∀``/``let``/``if`` at ``leadPrec``,
  application arguments at ``maxPrec``, ``↑`` at ``maxPrec``);
* elaboration of ``+ - * / % ^`` and comparisons: ``src/Lean/Elab/Extra.lean`` (``binop%``,
  ``unop%``, ``rightact%`` for ``^``, ``binrel%``; ``analyze``, ``applyCoe``, ``isUnknown``);
  ``let``: ``src/Lean/Elab/BuiltinNotation.lean`` / ``Binders.lean`` (``elabLetDeclAux``);
* default instances: ``src/Init/Prelude.lean`` (``@[default_instance 100] instOfNatNat``),
  ``src/Init/Data/Int/Basic.lean`` (``@[default_instance mid] instance : Neg Int``),
  ``src/Init/Data/OfScientific.lean`` (``@[default_instance mid+1] OfScientific Float``);
* arithmetic: ``src/Init/Data/Int/DivMod/Basic.lean`` (``Int.ediv``/``Int.emod`` are ``/``/``%``),
  ``src/Init/Prelude.lean`` and ``src/Init/Data/Nat/Div.lean`` (``Nat.sub`` truncates,
  ``n / 0 = 0``, ``n % 0 = n``), ``src/Init/Data/Fin/Basic.lean`` (``Fin.add``/``sub``/``mul``/
  ``div``/``mod``, ``Fin.ofNat'``, ``instOfNat [NeZero n]``, ``coeToNat``), Mathlib
  ``Mathlib/Data/Fin/Basic.lean`` (``Fin.neg``: ``(n - a) % n``), Mathlib
  ``Mathlib/Algebra/Order/Group/Unbundled/Abs.lean`` (``|a|`` is ``abs a``, written with no
  space inside the bars), Mathlib ``Mathlib/Algebra/BigOperators/Group/Finset.lean`` (``∑`` with
  body at precedence 67).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = [
    "NotCovered",
    "Rejected",
    "check_counterexample",
    "elaborate",
    "evaluate",
    "parse",
]


class Rejected(Exception):
    """Lean 4 + Mathlib rejects this text (parse error, type error, failed instance)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotCovered(Rejected):
    """Outside this reference's fragment: not decided here (it does NOT mean Lean rejects)."""


# =============================================================================== tokens

# src/Lean/Parser/Basic.lean, `whitespace`: ' ' and '\n' are whitespace, a tab is an error
# ("tabs are not allowed"), an isolated '\r' too; other Unicode spaces are not whitespace.
_WS = " \n"

# src/Init/Meta/Defs.lean `isLetterLike` (the Latin-1/Latin-Extended-A ranges of newer Lean
# releases are not used: identifiers with them are NotCovered below, since v4.15 predates them).
_LATIN_LATE = ((0x00C0, 0x00FF), (0x0100, 0x017F))


def _is_letter_like(c: str) -> bool:
    v = ord(c)
    return (
        (0x3B1 <= v <= 0x3C9 and v != 0x3BB)  # lower Greek except λ
        or (0x391 <= v <= 0x3A9 and v not in (0x3A0, 0x3A3))  # upper Greek except Π Σ
        or 0x3CA <= v <= 0x3FB  # Coptic
        or 0x1F00 <= v <= 0x1FFE  # polytonic Greek
        or 0x2100 <= v <= 0x214F  # letter-like block (ℕ ℤ ℚ ℝ ℓ …)
        or 0x1D49C <= v <= 0x1D59F  # script, double-struck, Fraktur Latin letters
    )


def _is_sub_script_alnum(c: str) -> bool:
    # src/Init/Meta/Defs.lean `isSubScriptAlnum`
    v = ord(c)
    return 0x2080 <= v <= 0x2089 or 0x2090 <= v <= 0x209C or 0x1D62 <= v <= 0x1D6A


def _ascii_alpha(c: str) -> bool:
    # `Char.isAlpha` / `Char.isAlphanum` are ASCII-only in Lean (src/Init/Data/Char/Basic.lean)
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def is_id_first(c: str) -> bool:
    """``Lean.isIdFirst``: ASCII letter, ``_`` or letter-like."""
    return _ascii_alpha(c) or c == "_" or _is_letter_like(c)


def is_id_rest(c: str) -> bool:
    """``Lean.isIdRest``: also digits, ``'``, ``!``, ``?`` and subscripts."""
    return (
        _ascii_alpha(c)
        or ("0" <= c <= "9")
        or c in "_'!?"
        or _is_letter_like(c)
        or _is_sub_script_alnum(c)
    )


def _latin_late(c: str) -> bool:
    return any(lo <= ord(c) <= hi for lo, hi in _LATIN_LATE) and c not in "×÷"


# Symbol tokens of the term grammar (Lean's token table is longest-match, `matchPrefix`).
_SYMBOLS = sorted(
    [
        "<->", "->", "<=", ">=", "!=", ":=", "/\\", "\\/", "=>", "==",
        "↔", "→", "∧", "∨", "¬", "≠", "≤", "≥", "=", "<", ">", "+", "-", "*", "/", "%", "^",
        "(", ")", ",", ":", ";", "|", "↑", "∀", "∃", "∑", "∏", "∈", "ℕ", "ℤ", "ℚ", "ℝ", "λ",
        "↦", "·", "⟨", "⟩", "[", "]", "{", "}", "!", ".", "@", "#", "$", "&", "?", "∘", "•",
        "⁻¹", "∣", "∉", "×",
    ],
    key=len,
    reverse=True,
)  # fmt: skip
# Keywords are tokens that are also valid identifiers: the token wins when it is at least as
# long as the identifier (src/Lean/Parser/Basic.lean, `isToken` / `mkIdResult`).
_KEYWORDS = {
    "fun", "let", "if", "then", "else", "in", "forall", "exists", "Type", "Prop", "Sort",
    "have", "show", "from", "by", "do", "match", "with", "at", "open", "where", "suffices",
    "calc", "nomatch", "nofun", "deriving", "instance", "theorem", "def", "example",
}  # fmt: skip
_TOKEN_IDENT_LETTERS = {"ℕ", "ℤ", "ℚ", "ℝ"}  # Mathlib notations that are letter-like tokens


@dataclass(frozen=True)
class Tok:
    kind: str  # "num" | "sci" | "ident" | "sym" | "eof"
    text: str
    value: Any
    pos: int
    ws_before: bool
    ws_after: bool = False


def _skip_ws(s: str, i: int) -> int:
    """Lean's ``whitespace``: spaces, newlines, ``--`` line comments, nested ``/- -/``."""
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\t":
            raise Rejected("tabs are not allowed (Lean's whitespace parser)")
        if c == "\r":
            raise NotCovered("carriage return in the text")
        if c in _WS:
            i += 1
        elif s.startswith("--", i):
            j = s.find("\n", i)
            i = n if j < 0 else j + 1
        elif s.startswith("/-", i):
            if i + 2 < n and s[i + 2] in "-!":
                raise Rejected("a doc comment `/--` or `/-!` is a token, not whitespace")
            i = _finish_comment_block(s, i + 2)
        else:
            break
    return i


def _finish_comment_block(s: str, i: int) -> int:
    # src/Lean/Parser/Basic.lean `finishCommentBlock (nesting : Nat)`: `/-` nests, `-/` closes.
    nesting = 1
    n = len(s)
    while i < n:
        if s.startswith("-/", i):
            nesting -= 1
            i += 2
            if nesting == 0:
                return i
        elif s.startswith("/-", i):
            nesting += 1
            i += 2
        else:
            i += 1
    raise Rejected("unterminated comment")


def _digits(s: str, i: int, ok: Callable[[str], bool]) -> int:
    while i < len(s) and ok(s[i]):
        i += 1
    return i


def _number(s: str, i: int) -> tuple[str, Any, int]:
    """``numberFnAux``: ``0x``/``0b``/``0o`` (either case) or decimal/scientific."""
    start = i
    if s[i] == "0" and i + 1 < len(s) and s[i + 1] in "xXbBoO":
        base = {"x": 16, "b": 2, "o": 8}[s[i + 1].lower()]
        digit = {
            16: lambda c: c in "0123456789abcdefABCDEF",
            2: lambda c: c in "01",
            8: lambda c: c in "01234567",
        }[base]
        j = _digits(s, i + 2, digit)
        if j == i + 2:
            raise Rejected(f"expected a base-{base} digit after {s[i : i + 2]!r}")
        if j < len(s) and s[j] == "_":
            raise NotCovered("digit separators `_` (not in Lean v4.15)")
        return "num", int(s[i + 2 : j], base), j
    j = _digits(s, i, lambda c: "0" <= c <= "9")
    if j < len(s) and s[j] == "_":
        raise NotCovered("digit separators `_` (not in Lean v4.15)")
    int_part = s[start:j]
    if j < len(s) and s[j] in ".eE":
        # `decimalNumberFn.parseScientific`: an optional `.digits` (a bare `.` is consumed),
        # then an optional exponent `e`/`E`, sign, digits (digits required).
        frac = ""
        if s[j] == ".":
            k = _digits(s, j + 1, lambda c: "0" <= c <= "9")
            frac = s[j + 1 : k]
            j = k
        exp = 0
        if j < len(s) and s[j] in "eE":
            k = j + 1
            sign = 1
            if k < len(s) and s[k] in "+-":
                sign = -1 if s[k] == "-" else 1
                k += 1
            m = _digits(s, k, lambda c: "0" <= c <= "9")
            if m == k:
                raise Rejected("missing exponent digits in scientific literal")
            if m - k > 4:
                raise NotCovered("huge exponent")
            exp = sign * int(s[k:m])
            j = m
        mantissa = int(int_part + frac)
        value = Fraction(mantissa) * Fraction(10) ** (exp - len(frac))
        return "sci", value, j
    return "num", int(int_part), j


def tokenize(s: str) -> list[Tok]:
    out: list[Tok] = []
    i = _skip_ws(s, 0)
    ws = True
    while i < len(s):
        c = s[i]
        start = i
        if "0" <= c <= "9":
            kind, value, i = _number(s, i)
            tok = Tok(kind, s[start:i], value, start, ws)
        elif c == "«" or is_id_first(c):
            i, name = _ident(s, i)
            sym = _match_symbol(s, start)
            if sym is not None and len(sym) >= i - start:
                i = start + len(sym)
                tok = Tok("sym", sym, sym, start, ws)
            elif name in _KEYWORDS:
                tok = Tok("sym", name, name, start, ws)
            else:
                tok = Tok("ident", s[start:i], name, start, ws)
        else:
            sym = _match_symbol(s, i)
            if sym is None:
                if _latin_late(c):
                    raise NotCovered(f"identifier character {c!r} (newer Lean releases only)")
                raise Rejected(f"unexpected character {c!r} at {i}")
            i += len(sym)
            tok = Tok("sym", sym, sym, start, ws)
        j = _skip_ws(s, i)
        ws = j > i
        out.append(Tok(tok.kind, tok.text, tok.value, tok.pos, tok.ws_before, ws))
        i = j
    out.append(Tok("eof", "", None, len(s), ws, True))
    return out


def _match_symbol(s: str, i: int) -> str | None:
    for sym in _SYMBOLS:
        if s.startswith(sym, i):
            return sym
    return None


def _ident(s: str, i: int) -> tuple[int, str]:
    """``identFnAux``: atomic parts (plain or «quoted») joined by ``.`` (``isIdCont``)."""
    parts: list[str] = []
    while True:
        if s[i] == "«":
            j = s.find("»", i + 1)
            if j < 0:
                raise Rejected("unterminated identifier escape")
            parts.append(s[i + 1 : j])
            i = j + 1
        else:
            j = i + 1
            while j < len(s) and is_id_rest(s[j]):
                j += 1
            if j < len(s) and _latin_late(s[j]):
                raise NotCovered("Latin-1 identifier characters (newer Lean releases only)")
            parts.append(s[i:j])
            i = j
        if i + 1 < len(s) and s[i] == "." and (s[i + 1] == "«" or is_id_first(s[i + 1])):
            i += 1
            continue
        return i, ".".join(parts)


# =============================================================================== surface AST


@dataclass(frozen=True)
class SNum:
    value: int


@dataclass(frozen=True)
class SSci:
    value: Fraction
    text: str


@dataclass(frozen=True)
class SIdent:
    name: str


@dataclass(frozen=True)
class SBool:
    value: bool


@dataclass(frozen=True)
class SBin:
    op: str  # + - * / %
    left: Any
    right: Any


@dataclass(frozen=True)
class SNeg:
    arg: Any


@dataclass(frozen=True)
class SPow:
    base: Any
    exp: Any


@dataclass(frozen=True)
class SCmp:
    op: str  # = ≠ < ≤ > ≥
    left: Any
    right: Any


@dataclass(frozen=True)
class SLogic:
    op: str  # ∧ ∨ → ↔
    left: Any
    right: Any


@dataclass(frozen=True)
class SNot:
    arg: Any


@dataclass(frozen=True)
class SQuant:
    kind: str  # forall | exists
    name: str
    ty: Any
    body: Any


@dataclass(frozen=True)
class SSum:
    name: str
    ty: Any  # a type or None
    over: Any  # None (Finset.univ) or the set term after `in` / `∈`
    body: Any


@dataclass(frozen=True)
class SLet:
    name: str
    ty: Any
    value: Any
    body: Any


@dataclass(frozen=True)
class SIte:
    cond: Any
    then: Any
    orelse: Any


@dataclass(frozen=True)
class SApp:
    fn: Any
    args: tuple[Any, ...]


@dataclass(frozen=True)
class SAbs:
    arg: Any


@dataclass(frozen=True)
class SCoe:
    arg: Any


@dataclass(frozen=True)
class SAscr:
    expr: Any
    ty: Any


# surface types
@dataclass(frozen=True)
class TyNum:
    name: str  # ℕ ℤ ℚ ℝ


@dataclass(frozen=True)
class TyFin:
    size: int | str


@dataclass(frozen=True)
class TyArrow:
    dom: Any
    cod: Any


@dataclass(frozen=True)
class TyProp:
    pass


# =============================================================================== parser

MAX_PREC = 1024  # Lean's maxPrec
LEAD_PREC = MAX_PREC - 1  # leadPrec
ARG_PREC = MAX_PREC

# (precedence, minimal precedence of the left operand, precedence of the right operand)
# src/Init/Notation.lean: infixl:65 + -, infixl:70 * / %, infixr:80 ^, infix:50 relations,
# infixr:35 ∧, infixr:30 ∨; src/Init/Core.lean: infix:20 ↔; src/Lean/Parser/Term.lean
# `arrow`: trailing_parser checkPrec 25 >> " → " >> termParser 25.
_BINARY: dict[str, tuple[str, str, int, int, int]] = {
    "+": ("bin", "+", 65, 65, 66),
    "-": ("bin", "-", 65, 65, 66),
    "*": ("bin", "*", 70, 70, 71),
    "/": ("bin", "/", 70, 70, 71),
    "%": ("bin", "%", 70, 70, 71),
    "^": ("pow", "^", 80, 81, 80),
    "=": ("cmp", "=", 50, 51, 51),
    "≠": ("cmp", "≠", 50, 51, 51),
    "<": ("cmp", "<", 50, 51, 51),
    ">": ("cmp", ">", 50, 51, 51),
    "≤": ("cmp", "≤", 50, 51, 51),
    "<=": ("cmp", "≤", 50, 51, 51),
    "≥": ("cmp", "≥", 50, 51, 51),
    ">=": ("cmp", "≥", 50, 51, 51),
    "∧": ("logic", "∧", 35, 36, 35),
    "/\\": ("logic", "∧", 35, 36, 35),
    "∨": ("logic", "∨", 30, 31, 30),
    "\\/": ("logic", "∨", 30, 31, 30),
    "→": ("logic", "→", 25, 0, 25),
    "->": ("logic", "→", 25, 0, 25),
    "↔": ("logic", "↔", 20, 21, 21),
    "<->": ("logic", "↔", 20, 21, 21),
}
_NOT_COVERED_OPS = {"!=", "==", "∘", "•", "∣", "∈", "∉", "×", "⁻¹", "$", "."}


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    # ------------------------------------------------------------------ helpers
    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, *syms: str) -> bool:
        t = self.peek()
        return t.kind == "sym" and t.text in syms

    def expect(self, *syms: str) -> Tok:
        t = self.next()
        if t.kind != "sym" or t.text not in syms:
            raise Rejected(f"expected {' or '.join(syms)} at {t.pos}, found {t.text!r}")
        return t

    def ident(self) -> str:
        t = self.next()
        if t.kind != "ident":
            raise Rejected(f"expected an identifier at {t.pos}, found {t.text!r}")
        return t.value

    # ------------------------------------------------------------------ entry points
    def statement(self) -> Any:
        e = self.term(0)
        if self.peek().kind != "eof":
            t = self.peek()
            if t.kind == "sym" and t.text in _NOT_COVERED_OPS:
                raise NotCovered(f"operator {t.text!r}")
            raise Rejected(f"unexpected {t.text!r} at {t.pos}")
        return e

    def type_only(self) -> Any:
        ty = self.type_()
        if self.peek().kind != "eof":
            raise Rejected(f"unexpected {self.peek().text!r} after a type")
        return ty

    # ------------------------------------------------------------------ types
    def type_(self) -> Any:
        dom = self.type_atom()
        if self.at("→", "->"):
            self.next()
            return TyArrow(dom, self.type_())
        return dom

    def type_atom(self) -> Any:
        t = self.next()
        if t.kind == "sym" and t.text in ("ℕ", "ℤ", "ℚ", "ℝ"):
            return TyNum(t.text)
        if t.kind == "sym" and t.text == "Prop":
            return TyProp()
        if t.kind == "sym" and t.text == "(":
            ty = self.type_()
            self.expect(")")
            return ty
        if t.kind == "ident":
            named = {"Nat": "ℕ", "Int": "ℤ", "Rat": "ℚ", "Real": "ℝ"}
            if t.value in named:
                return TyNum(named[t.value])
            if t.value == "Fin":
                a = self.next()
                if a.kind == "num":
                    return TyFin(a.value)
                if a.kind == "ident" and "." not in a.value:
                    return TyFin(a.value)
                raise NotCovered("Fin of a compound size")
        raise NotCovered(f"type {t.text!r}")

    # ------------------------------------------------------------------ terms (Pratt)
    def term(self, prec: int) -> Any:
        left, lprec = self.leading(prec)
        while True:
            t = self.peek()
            if t.kind == "sym" and t.text in _BINARY:
                kind, op, p, lmin, rprec = _BINARY[t.text]
                if prec > p or lprec < lmin:
                    break
                self.next()
                right = self.term(rprec)
                if kind == "bin":
                    left = SBin(op, left, right)
                elif kind == "pow":
                    left = SPow(left, right)
                elif kind == "cmp":
                    left = SCmp(op, left, right)
                else:
                    left = SLogic(op, left, right)
                lprec = p
                continue
            # application: `trailing_parser:leadPrec:maxPrec many1 argArg`
            if lprec >= MAX_PREC and prec <= LEAD_PREC and self.starts_arg():
                args = []
                while self.starts_arg():
                    a = self.argument()
                    if a is None:
                        break
                    args.append(a)
                if args:
                    left = SApp(left, tuple(args))
                    lprec = LEAD_PREC
                    continue
            break
        return left

    def argument(self) -> Any:
        """One application argument; a `|` that does not open an `|a|` ends the arguments
        (Mathlib's `atomic("|" noWs)` backtracks)."""
        if not self.at("|"):
            return self.leading(ARG_PREC)[0]
        saved = self.i
        try:
            return self.leading(ARG_PREC)[0]
        except NotCovered:
            raise
        except Rejected:
            self.i = saved
            return None

    def starts_arg(self) -> bool:
        t = self.peek()
        if t.kind in ("num", "sci", "ident"):
            return True
        if t.kind == "sym" and t.text in ("(", "↑", "¬"):
            return True
        return t.kind == "sym" and t.text == "|" and not t.ws_after

    def check(self, prec: int, node_prec: int) -> None:
        if prec > node_prec:
            raise Rejected(
                f"unexpected token at this precedence level at {self.peek().pos}; "
                "consider parenthesizing"
            )

    def leading(self, prec: int) -> tuple[Any, int]:
        t = self.peek()
        if t.kind == "num":
            self.next()
            return SNum(t.value), MAX_PREC
        if t.kind == "sci":
            self.next()
            return SSci(t.value, t.text), MAX_PREC
        if t.kind == "ident":
            self.next()
            if t.value == "True":
                return SBool(True), MAX_PREC
            if t.value == "False":
                return SBool(False), MAX_PREC
            return SIdent(t.value), MAX_PREC
        if t.kind == "eof":
            raise Rejected("unexpected end of input")
        s = t.text
        if s in ("∀", "forall", "∃", "exists"):
            self.check(prec, LEAD_PREC)
            self.next()
            return self.binder_term("forall" if s in ("∀", "forall") else "exists"), LEAD_PREC
        if s == "¬":  # notation:max "¬" p:40
            self.next()
            return SNot(self.term(40)), MAX_PREC
        if s == "-":  # prefix:75 "-"  (node precedence 75, argument at 75)
            self.check(prec, 75)
            self.next()
            return SNeg(self.term(75)), 75
        if s == "↑":  # coeNotation := leading_parser:maxPrec "↑" >> termParser maxPrec
            self.next()
            arg, _ = self.leading(MAX_PREC)
            return SCoe(arg), MAX_PREC
        if s == "|":
            # Mathlib: macro:max atomic("|" noWs) a:term noWs "|" : term => `(abs $a)
            if t.ws_after:
                raise Rejected("`| a |` with spaces inside the bars is not Mathlib's |a|")
            self.next()
            inner = self.term(0)
            close = self.peek()
            if not (close.kind == "sym" and close.text == "|") or close.ws_before:
                raise Rejected("expected a closing `|` right after the term")
            self.next()
            return SAbs(inner), MAX_PREC
        if s == "(":
            self.next()
            if self.at(")"):
                raise NotCovered("unit `()`")
            e = self.term(0)
            if self.at(":"):
                self.next()
                if self.at(")"):
                    raise NotCovered("`(e :)`")
                ty = self.type_()
                self.expect(")")
                return SAscr(e, ty), MAX_PREC
            if self.at(","):
                raise NotCovered("tuples")
            self.expect(")")
            return e, MAX_PREC
        if s == "let":
            self.check(prec, LEAD_PREC)
            self.next()
            name = self.ident()
            ty = None
            if self.at(":"):
                self.next()
                ty = self.type_()
            self.expect(":=")
            value = self.term(0)
            if not self.at(";"):
                raise NotCovered("`let` without `;`")
            self.next()
            return SLet(name, ty, value, self.term(0)), LEAD_PREC
        if s == "if":
            self.check(prec, LEAD_PREC)
            self.next()
            if self.peek().kind == "ident" and self.peek(1).text == ":":
                raise NotCovered("dependent if `if h : c then …`")
            cond = self.term(0)
            self.expect("then")
            a = self.term(0)
            self.expect("else")
            return SIte(cond, a, self.term(0)), LEAD_PREC
        if s == "∑":
            self.next()
            return self.sum_term(), LEAD_PREC
        if s in ("fun", "λ", "∏", "⟨", "[", "{", "·", "@"):
            raise NotCovered(f"{s!r} terms")
        if s in ("ℕ", "ℤ", "ℚ", "ℝ", "Prop", "Type", "Sort"):
            raise NotCovered("a type used as a term")
        raise Rejected(f"unexpected token {s!r} at {t.pos}")

    def binder_names(self) -> list[tuple[str, Any]]:
        """``x y : T`` or ``(x : T) (y z : U)``; an untyped binder is NotCovered."""
        groups: list[tuple[str, Any]] = []
        if self.at("("):
            while self.at("("):
                self.next()
                names = [self.ident()]
                while self.peek().kind == "ident":
                    names.append(self.ident())
                self.expect(":")
                ty = self.type_()
                self.expect(")")
                groups += [(n, ty) for n in names]
            if not self.at(","):
                raise NotCovered("mixed binder groups")
            return groups
        names = [self.ident()]
        while self.peek().kind == "ident":
            names.append(self.ident())
        if self.at(":"):
            self.next()
            ty = self.type_()
            return [(n, ty) for n in names]
        if self.at(">", "<", "≥", "≤", "≠", ">=", "<=", "∈"):
            raise NotCovered("binder predicates `∀ x > 0, …`")
        return [(n, None) for n in names]

    def binder_term(self, kind: str) -> Any:
        groups = self.binder_names()
        for _, ty in groups:
            if ty is None:
                raise NotCovered("a quantifier without a binder type")
        self.expect(",")
        body = self.term(0)
        for name, ty in reversed(groups):
            body = SQuant(kind, name, ty, body)
        return body

    def sum_term(self) -> Any:
        # Mathlib: syntax (name := bigsum) "∑ " bigOpBinders ("with " term)? ", " term:67
        name = self.ident()
        ty = None
        over = None
        if self.at(":"):
            self.next()
            ty = self.type_()
        if self.at("in", "∈"):
            self.next()
            over = self.term(51)
        if self.at("with"):
            raise NotCovered("∑ … with …")
        self.expect(",")
        return SSum(name, ty, over, self.term(67))


def parse(text: str) -> Any:
    """Text → surface tree (raises :class:`Rejected` on a Lean parse error)."""
    return _Parser(text).statement()


def parse_type(text: str) -> Any:
    return _Parser(text).type_only()


# =============================================================================== types

NAT, INT, RAT, REAL = "ℕ", "ℤ", "ℚ", "ℝ"
_RANK = {NAT: 0, INT: 1, RAT: 2, REAL: 3}
PROP = "Prop"


@dataclass(frozen=True)
class Fin:
    size: int | str  # a literal or the name of a ℕ variable


@dataclass(frozen=True)
class Vec:
    dom: Fin
    cod: Any


@dataclass(eq=False)
class Meta:
    """A metavariable for an unknown numeric type (a numeral's ``?α``)."""

    parent: Any = None
    sci: bool = False  # an OfScientific literal waits on it (default instance Float)
    neg: bool = False  # a Neg waits on it (default instance Int)

    def __repr__(self) -> str:
        return f"?m{id(self) % 1000}"


def find(t: Any) -> Any:
    while isinstance(t, Meta) and t.parent is not None:
        t = t.parent
    return t


def show(t: Any) -> str:
    t = find(t)
    if isinstance(t, Fin):
        return f"Fin {t.size}"
    if isinstance(t, Vec):
        return f"{show(t.dom)} → {show(t.cod)}"
    return str(t)


def is_num(t: Any) -> bool:
    return t in _RANK


# =============================================================================== typed terms


@dataclass(eq=False)
class TE:
    ty: Any


@dataclass(eq=False)
class TLit(TE):
    value: Fraction = Fraction(0)


@dataclass(eq=False)
class TVar(TE):
    name: str = ""


@dataclass(eq=False)
class TCast(TE):
    arg: TE | None = None


@dataclass(eq=False)
class TBin(TE):
    op: str = "+"
    left: TE | None = None
    right: TE | None = None


@dataclass(eq=False)
class TNeg(TE):
    arg: TE | None = None


@dataclass(eq=False)
class TPow(TE):
    base: TE | None = None
    exp: TE | None = None


@dataclass(eq=False)
class TCall(TE):
    fn: str = ""  # min | max | abs
    args: list[TE] = field(default_factory=list)


@dataclass(eq=False)
class TIte(TE):
    cond: TE | None = None
    then: TE | None = None
    orelse: TE | None = None


@dataclass(eq=False)
class TSum(TE):
    var: str = ""
    dom: Any = None  # Fin | ("range", TE)
    body: TE | None = None


@dataclass(eq=False)
class TLet(TE):
    name: str = ""
    value: TE | None = None
    body: TE | None = None


@dataclass(eq=False)
class TApp(TE):
    fn: TE | None = None
    arg: TE | None = None


@dataclass(eq=False)
class TCmp(TE):
    op: str = "="
    left: TE | None = None
    right: TE | None = None


@dataclass(eq=False)
class TLogic(TE):
    op: str = "∧"
    left: TE | None = None
    right: TE | None = None


@dataclass(eq=False)
class TNot(TE):
    arg: TE | None = None


@dataclass(eq=False)
class TQuant(TE):
    kind: str = "forall"
    var: str = ""
    dom: Any = None
    body: TE | None = None


@dataclass(eq=False)
class TBool(TE):
    value: bool = True


@dataclass(eq=False)
class _CoeLeaf:
    """A ``↑e`` leaf of a numeric tree: unknown type until the tree's maximum is known."""

    inner: TE


# =============================================================================== elaborator


@dataclass
class _Scope:
    vars: dict[str, Any]

    def bind(self, name: str, ty: Any) -> _Scope:
        return _Scope({**self.vars, name: ty})


class _Elab:
    """Elaboration following Lean 4's rules (see the module docstring for the sources)."""

    def __init__(self) -> None:
        self.metas: list[Meta] = []
        self.constraints: list[tuple[str, Any, Any]] = []

    # ------------------------------------------------------------------ metas
    def meta(self) -> Meta:
        m = Meta()
        self.metas.append(m)
        return m

    def unify(self, a: Any, b: Any) -> None:
        a, b = find(a), find(b)
        if a is b:
            return
        if isinstance(a, Meta) and isinstance(b, Meta):
            a.parent = b
            b.sci |= a.sci
            b.neg |= a.neg
        elif isinstance(a, Meta):
            a.parent = b
            self.constraints.append(("flags", b, a))
        elif isinstance(b, Meta):
            self.unify(b, a)
        elif a != b:
            raise Rejected(f"type mismatch: {show(a)} vs {show(b)}")

    def need(self, cls: str, ty: Any, info: Any = None) -> None:
        self.constraints.append((cls, ty, info))

    # ------------------------------------------------------------------ coercions
    def has_coe(self, a: Any, b: Any) -> bool:
        """Is there a coercion ``a → b`` (Lean's ``hasCoe`` in ``binop%``)?"""
        if is_num(a) and is_num(b):
            return _RANK[a] < _RANK[b]  # Nat.cast, Int.cast, Rat.cast (Mathlib)
        if isinstance(a, Fin) and is_num(b):
            return True  # Fin.coeToNat : CoeOut (Fin n) Nat (src/Init/Data/Fin/Basic.lean)
        if isinstance(a, Fin) and isinstance(b, Fin):
            # Fin m → ℕ → Fin n would chain CoeOut with Mathlib's NatCast (Fin n): unsure
            raise NotCovered(f"coercion {show(a)} → {show(b)}")
        if is_num(a) and isinstance(b, Fin):
            if a in (NAT, INT):
                # Mathlib has NatCast/IntCast (Fin n) for [NeZero n]: whether that is a
                # coercion found by `binop%` depends on the Mathlib version.
                raise NotCovered(f"coercion {a} → {show(b)}")
            return False
        return False

    def ensure(self, te: TE, expected: Any) -> TE:
        """``ensureHasType``: unify, or insert a coercion, or reject."""
        if expected is None:
            return te
        a, b = find(te.ty), find(expected)
        if a is b or a == b:
            return te
        if isinstance(a, Meta) or isinstance(b, Meta):
            self.unify(a, b)
            return te
        if self.has_coe(a, b):
            return TCast(b, te)
        raise Rejected(f"type mismatch: {show(a)} is not {show(b)} (no coercion)")

    # ------------------------------------------------------------------ types
    def elab_type(self, ty: Any, scope: _Scope) -> Any:
        if isinstance(ty, TyNum):
            return ty.name
        if isinstance(ty, TyFin):
            if isinstance(ty.size, str) and find(scope.vars.get(ty.size)) != NAT:
                raise Rejected(f"Fin {ty.size}: {ty.size} is not a natural number")
            return Fin(ty.size)
        if isinstance(ty, TyArrow):
            dom = self.elab_type(ty.dom, scope)
            cod = self.elab_type(ty.cod, scope)
            if isinstance(dom, Fin) and (is_num(cod) or isinstance(cod, Fin)):
                return Vec(dom, cod)
            raise NotCovered("function types other than Fin n → number")
        if isinstance(ty, TyProp):
            raise NotCovered("variables of type Prop")
        raise NotCovered(f"type {ty!r}")

    # ------------------------------------------------------------------ propositions
    def prop(self, s: Any, scope: _Scope) -> TE:
        if isinstance(s, SBool):
            return TBool(PROP, s.value)
        if isinstance(s, SCmp):
            return self.binrel(s, scope)
        if isinstance(s, SLogic):
            return TLogic(PROP, s.op, self.prop(s.left, scope), self.prop(s.right, scope))
        if isinstance(s, SNot):
            return TNot(PROP, self.prop(s.arg, scope))
        if isinstance(s, SQuant):
            dom = self.elab_type(s.ty, scope)
            body = self.prop(s.body, scope.bind(s.name, dom))
            return TQuant(PROP, s.kind, s.name, dom, body)
        if isinstance(s, SLet):
            value, ty = self.let_value(s, scope)
            body = self.prop(s.body, scope.bind(s.name, ty))
            return TLet(PROP, s.name, value, body)
        if isinstance(s, (SNum, SSci, SBin, SNeg, SPow, SAbs, SCoe)):
            raise Rejected("a number where a proposition is expected")
        if isinstance(s, SIdent):
            t = scope.vars.get(s.name)
            if t is not None:
                raise Rejected(f"{s.name} : {show(t)} is not a proposition")
            if s.name.split(".")[0] in scope.vars:
                raise Rejected(f"{s.name}: not a proposition")
            raise Rejected(f"unknown identifier {s.name!r}")
        raise NotCovered(f"proposition {type(s).__name__}")

    def binrel(self, s: SCmp, scope: _Scope) -> TE:
        # `binrel%`: both sides form one tree, analysed WITHOUT the expected type (Prop).
        lt, rt, _ = self.tree([s.left, s.right], scope, None)
        return TCmp(PROP, s.op, lt, rt)

    # ------------------------------------------------------------------ numeric terms
    def elab(self, s: Any, scope: _Scope, expected: Any) -> TE:
        if isinstance(s, (SBin, SNeg, SPow)):
            (te,) = self.tree([s], scope, expected)[:1]
            return te
        if isinstance(s, SNum):
            return self.literal(Fraction(s.value), expected, sci=False)
        if isinstance(s, SSci):
            return self.literal(s.value, expected, sci=True)
        if isinstance(s, SIdent):
            return self.ensure(self.ident(s, scope), expected)
        if isinstance(s, SAscr):
            ty = self.elab_type(s.ty, scope)
            if not (is_num(ty) or isinstance(ty, Fin)):
                raise NotCovered("ascription to a non-numeric type")
            te = self.ensure(self.elab(s.expr, scope, ty), ty)
            return self.ensure(te, expected)
        if isinstance(s, SCoe):
            exp = find(expected)
            if exp is None or isinstance(exp, Meta):
                raise NotCovered("↑e without an expected type")
            inner = self.elab(s.arg, scope, None)
            return self.coerce(inner, exp)
        if isinstance(s, SAbs):
            return self.poly("abs", [s.arg], scope, expected)
        if isinstance(s, SIte):
            cond = self.prop(s.cond, scope)
            te = self.poly("ite", [s.then, s.orelse], scope, expected)
            assert isinstance(te, TCall)
            return TIte(te.ty, cond, te.args[0], te.args[1])
        if isinstance(s, SApp):
            return self.app(s, scope, expected)
        if isinstance(s, SSum):
            return self.sum(s, scope, expected)
        if isinstance(s, SLet):
            value, ty = self.let_value(s, scope)
            body = self.elab(s.body, scope.bind(s.name, ty), expected)
            body = self.ensure(body, expected)
            return TLet(body.ty, s.name, value, body)
        if isinstance(s, (SCmp, SLogic, SNot, SQuant, SBool)):
            raise NotCovered("a proposition used as a value")
        raise NotCovered(f"term {type(s).__name__}")

    def literal(self, value: Fraction, expected: Any, *, sci: bool) -> TE:
        t = find(expected)
        if t is None:
            t = self.meta()
        if isinstance(t, Meta) and sci:
            t.sci = True
        self.need("OfScientific" if sci else "OfNat", t, value)
        return TLit(t, value)

    def ident(self, s: SIdent, scope: _Scope) -> TE:
        if s.name in scope.vars:
            return TVar(scope.vars[s.name], s.name)
        head, _, rest = s.name.partition(".")
        if rest and head in scope.vars:
            t = find(scope.vars[head])
            if rest == "val" and isinstance(t, Fin):
                # `Fin.val` (structure projection): a natural number
                return TCast(NAT, TVar(t, head))
            raise Rejected(f"invalid field notation {s.name!r} on {show(t)}")
        if s.name in ("min", "max", "abs"):
            raise NotCovered(f"{s.name} without its arguments")
        raise Rejected(f"unknown identifier {s.name!r}")

    def coerce(self, inner: TE, target: Any) -> TE:
        a = find(inner.ty)
        if isinstance(a, Meta):
            raise NotCovered("↑ of a term of unknown type")
        if a == target:
            return inner
        if self.has_coe(a, target):
            return TCast(target, inner)
        raise Rejected(f"no coercion from {show(a)} to {show(target)}")

    def let_value(self, s: SLet, scope: _Scope) -> tuple[TE, Any]:
        # `elabLetDeclAux`: the type (a fresh metavariable when omitted) is elaborated first, the
        # value with that expected type; NO default instances are applied before the body, so
        # the body can still fix an unknown type (`let x := 2 - 3; (x : ℝ) < 0`).
        ty = self.elab_type(s.ty, scope) if s.ty is not None else self.meta()
        if isinstance(ty, Vec):
            raise NotCovered("let of a function")
        value = self.ensure(self.elab(s.value, scope, ty), ty)
        return value, ty

    def poly(self, fn: str, args: Sequence[Any], scope: _Scope, expected: Any) -> TE:
        """``min a b``, ``max a b``, ``abs a``, ``ite c a b``: ``α`` is the expected type when it
        is known (elabAppArgs propagates it before the arguments), otherwise the first argument
        with a known type fixes it; a later, bigger argument is a type mismatch."""
        exp = find(expected)
        alpha = exp if exp is not None else self.meta()
        tes = [self.ensure(self.elab(a, scope, alpha), alpha) for a in args]
        self.need(fn, alpha)
        return TCall(alpha, fn, tes)

    def app(self, s: SApp, scope: _Scope, expected: Any) -> TE:
        fn = s.fn
        if not isinstance(fn, SIdent):
            if isinstance(fn, (SNum, SSci)):
                raise Rejected("a numeral is not a function")
            raise NotCovered("application of a compound term")
        name = fn.name
        if name in scope.vars:
            t = find(scope.vars[name])
            if not isinstance(t, Vec):
                raise Rejected(f"{name} : {show(t)} is not a function")
            if len(s.args) != 1:
                raise Rejected(f"{name} takes one argument")
            idx = self.ensure(self.elab(s.args[0], scope, t.dom), t.dom)
            return self.ensure(TApp(t.cod, TVar(t, name), idx), expected)
        if name in ("min", "max"):
            if len(s.args) != 2:
                raise NotCovered(f"{name} with {len(s.args)} arguments")
            return self.poly(name, s.args, scope, expected)
        if name == "abs":
            if len(s.args) != 1:
                raise NotCovered("abs with several arguments")
            return self.poly("abs", s.args, scope, expected)
        if name in ("Finset.range",):
            raise NotCovered("Finset.range outside ∑")
        if "." in name and name.split(".")[0] in scope.vars:
            raise NotCovered("field notation applied to arguments")
        raise NotCovered(f"function {name!r}")

    def sum(self, s: SSum, scope: _Scope, expected: Any) -> TE:
        if s.over is not None:
            over = s.over
            if not (
                isinstance(over, SApp)
                and isinstance(over.fn, SIdent)
                and over.fn.name == "Finset.range"
                and len(over.args) == 1
            ):
                raise NotCovered("∑ over a set other than Finset.range n")
            if s.ty is not None and self.elab_type(s.ty, scope) != NAT:
                raise NotCovered("typed binder over Finset.range")
            bound = self.ensure(self.elab(over.args[0], scope, NAT), NAT)
            dom: Any = ("range", bound)
            var_ty: Any = NAT
        elif s.ty is not None:
            var_ty = self.elab_type(s.ty, scope)
            if not isinstance(var_ty, Fin):
                # `Finset.univ` needs `Fintype ℕ` etc.: fails
                raise Rejected(f"∑ over {show(var_ty)}: no Fintype instance")
            dom = var_ty
        else:
            var_ty = _index_type(s.body, s.name, scope)
            dom = var_ty
        exp = find(expected)
        beta = exp if exp is not None else self.meta()
        body = self.ensure(self.elab(s.body, scope.bind(s.name, var_ty), beta), beta)
        self.need("sum", beta)
        return TSum(beta, s.name, dom, body)

    # ------------------------------------------------------------------ binop% trees
    def tree(self, roots: Sequence[Any], scope: _Scope, expected: Any) -> list[TE]:
        """``binop%``/``binrel%`` (src/Lean/Elab/Extra.lean): every leaf is elaborated WITHOUT
        expected type, the maximal type of the known leaf types (starting from the expected
        type, if known) is computed, unknown leaves are unified with it and smaller leaves
        coerced; with no known type at all, everything is unified (default instances later)."""
        leaves: list[Any] = []  # TE or _CoeLeaf, in elaboration order

        def collect(s: Any) -> Any:
            if isinstance(s, SBin):
                return ("bin", s.op, collect(s.left), collect(s.right))
            if isinstance(s, SNeg):
                return ("neg", collect(s.arg))
            if isinstance(s, SPow):
                base = collect(s.base)
                return ("pow", base, self.exponent(s.exp, scope))
            if isinstance(s, SCoe):
                leaf: Any = _CoeLeaf(self.elab(s.arg, scope, None))
            else:
                leaf = self.elab(s, scope, None)
            leaves.append(leaf)
            return ("leaf", len(leaves) - 1)

        shapes = [collect(r) for r in roots]
        exp = find(expected)
        mx = exp if (exp is not None and not isinstance(exp, Meta)) else None
        for leaf in leaves:
            if isinstance(leaf, _CoeLeaf):
                continue  # `↑e` postpones: its type is unknown here
            t = find(leaf.ty)
            if isinstance(t, Meta):
                continue
            if not (is_num(t) or isinstance(t, Fin)):
                raise Rejected(f"{show(t)} in an arithmetic expression")
            if mx is None:
                mx = t
            elif t == mx or self.has_coe(t, mx):
                pass
            elif self.has_coe(mx, t):
                mx = t
            else:
                raise Rejected(f"uncomparable types {show(mx)} and {show(t)}")
        if mx is None:
            if any(isinstance(leaf, _CoeLeaf) for leaf in leaves):
                raise NotCovered("↑ in a tree without any known type")
            # default elaboration: HAdd ?a ?b ?c … are unified by the default instance
            # `instHAdd : HAdd α α α`, so all unknown leaves share one type
            mx = self.meta()
            for leaf in leaves:
                self.unify(leaf.ty, mx)
            if exp is not None:
                self.unify(mx, exp)
            final = leaves
        else:
            final = []
            for leaf in leaves:
                if isinstance(leaf, _CoeLeaf):
                    final.append(self.coerce(leaf.inner, mx))
                    continue
                t = find(leaf.ty)
                if isinstance(t, Meta):
                    self.unify(t, mx)
                    final.append(leaf)
                elif t == mx:
                    final.append(leaf)
                else:
                    final.append(TCast(mx, leaf))

        def build(shape: Any) -> TE:
            tag = shape[0]
            if tag == "leaf":
                return final[shape[1]]
            if tag == "bin":
                op = shape[1]
                if op == "%":
                    self.need("Mod", mx)
                return TBin(mx, op, build(shape[2]), build(shape[3]))
            if tag == "neg":
                m = find(mx)
                if isinstance(m, Meta):
                    m.neg = True
                self.need("Neg", mx)
                return TNeg(mx, build(shape[1]))
            self.need("Pow", mx)
            return TPow(mx, build(shape[1]), shape[2])

        out = [build(sh) for sh in shapes]
        if exp is not None and len(out) == 1:
            out[0] = self.ensure(out[0], exp)
        return [*out, mx]  # type: ignore[list-item]

    def exponent(self, s: Any, scope: _Scope) -> TE:
        # `rightact% HPow.hPow`: the exponent is a separate leaf; Mathlib's
        # `@[default_instance high] Monoid.Pow : Pow M ℕ` makes an unknown exponent ℕ.
        te = self.elab(s, scope, None)
        t = find(te.ty)
        if isinstance(t, Meta):
            if t.neg or t.sci:
                raise NotCovered("negative or decimal exponent")
            self.unify(t, NAT)
            return te
        if t == NAT:
            return te
        raise NotCovered(f"exponent of type {show(t)} (zpow/rpow)")

    # ------------------------------------------------------------------ finishing
    def finish(self) -> None:
        """Default instances, then the instance problems that waited on them."""
        for m in self.metas:
            r = find(m)
            if isinstance(r, Meta):
                if r.sci:
                    # src/Init/Data/OfScientific.lean: @[default_instance mid+1] OfScientific
                    # Float outranks Neg Int (mid) and OfNat Nat (low = 100)
                    raise Rejected(
                        "an untyped decimal literal is a Float in Lean (default instance "
                        "OfScientific Float); give it a type, e.g. (0.1 : ℝ)"
                    )
                # src/Init/Data/Int/Basic.lean: @[default_instance mid] Neg Int outranks
                # src/Init/Prelude.lean: @[default_instance 100] instOfNatNat
                r.parent = INT if r.neg else NAT
        for cls, ty, info in self.constraints:
            t = find(ty)
            if cls == "flags":
                if info.sci and t not in (RAT, REAL):
                    raise Rejected(f"failed to synthesize OfScientific {show(t)}")
                if info.neg and t == NAT:
                    raise Rejected("failed to synthesize Neg ℕ")
                continue
            _check_instance(cls, t, info)


def _check_instance(cls: str, t: Any, info: Any) -> None:
    if cls == "OfNat":
        if isinstance(t, Fin):
            # src/Init/Data/Fin/Basic.lean: instOfNat {n} [NeZero n] : OfNat (Fin n) i
            if isinstance(t.size, str) or t.size == 0:
                raise Rejected(f"failed to synthesize OfNat ({show(t)}) {info}: NeZero")
        elif not is_num(t):
            raise Rejected(f"numeral of type {show(t)}")
    elif cls == "OfScientific":
        if t not in (RAT, REAL):
            raise Rejected(f"failed to synthesize OfScientific {show(t)}")
    elif cls == "Neg":
        if t == NAT:
            raise Rejected("failed to synthesize Neg ℕ")
    elif cls == "Mod":
        if t in (RAT, REAL):
            raise NotCovered(f"% on {t}")
    elif cls == "Pow":
        if not is_num(t):
            raise NotCovered(f"^ on {show(t)}")
    elif cls == "abs":
        if t == NAT:
            raise Rejected("failed to synthesize AddGroup ℕ (|·| on ℕ)")
        if not is_num(t):
            raise NotCovered(f"|·| on {show(t)}")
    elif cls in ("min", "max", "ite"):
        if not (is_num(t) or isinstance(t, Fin)):
            raise NotCovered(f"{cls} on {show(t)}")
    elif cls == "sum" and not is_num(t):
        raise NotCovered(f"∑ in {show(t)}")


def _index_type(body: Any, var: str, scope: _Scope) -> Fin:
    """``∑ i, body``: the binder type comes from a use ``w i`` with ``w : Fin n → _``."""
    found: list[Fin] = []

    def walk(s: Any) -> None:
        if isinstance(s, SApp) and isinstance(s.fn, SIdent) and s.fn.name in scope.vars:
            t = find(scope.vars[s.fn.name])
            if isinstance(t, Vec) and any(isinstance(a, SIdent) and a.name == var for a in s.args):
                found.append(t.dom)
        if isinstance(s, (SQuant, SSum, SLet)) and s.name == var:
            return
        if hasattr(s, "__dataclass_fields__"):
            for f in s.__dataclass_fields__:
                v = getattr(s, f)
                if isinstance(v, tuple):
                    for x in v:
                        walk(x)
                else:
                    walk(v)

    walk(body)
    if not found or any(f != found[0] for f in found):
        raise NotCovered(f"∑ {var}, … whose index type is not fixed by a vector")
    return found[0]


# =============================================================================== evaluation


def _size(t: Fin, env: Mapping[str, Any]) -> int:
    if isinstance(t.size, int):
        return t.size
    if t.size not in env:
        raise NotCovered(f"Fin {t.size} with an unknown size")
    return int(env[t.size])


def _arith(op: str, t: Any, a: Fraction, b: Fraction, env: Mapping[str, Any]) -> Fraction:
    if isinstance(t, Fin):
        n = _size(t, env)
        ai, bi = int(a), int(b)
        # src/Init/Data/Fin/Basic.lean: Fin.add/mul ⟨(a ∘ b) % n⟩, Fin.sub ⟨((n - b) + a) % n⟩,
        # Fin.div ⟨a / b⟩, Fin.mod ⟨a % b⟩ (Nat division and modulus of the values)
        if op == "+":
            return Fraction((ai + bi) % n)
        if op == "*":
            return Fraction((ai * bi) % n)
        if op == "-":
            return Fraction(((n - bi) + ai) % n)
        if op == "/":
            return Fraction(0 if bi == 0 else ai // bi)
        if op == "%":
            return Fraction(ai if bi == 0 else ai % bi)
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return max(a - b, Fraction(0)) if t == NAT else a - b  # Nat.sub truncates
    if op == "/":
        if b == 0:
            return Fraction(0)  # Nat.div, Int.ediv, div_zero (Mathlib): x / 0 = 0
        if t == NAT:
            return Fraction(int(a) // int(b))
        if t == INT:
            return Fraction(_ediv(int(a), int(b)))
        return a / b
    if op == "%":
        if t == NAT:
            return a if b == 0 else Fraction(int(a) % int(b))
        if t == INT:
            return Fraction(int(a) - int(b) * _ediv(int(a), int(b)))  # Int.emod, x % 0 = x
        raise NotCovered(f"% on {t}")
    raise NotCovered(f"operator {op}")


def _ediv(a: int, b: int) -> int:
    """``Int.ediv`` (src/Init/Data/Int/DivMod/Basic.lean): floor for b > 0, ceil for b < 0."""
    if b == 0:
        return 0
    return a // b if b > 0 else -(a // -b)


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "≠": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "≤": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "≥": lambda a, b: a >= b,
}


def _domain(dom: Any, env: Mapping[str, Any]) -> Iterable[Fraction]:
    if isinstance(dom, Fin):
        return (Fraction(k) for k in range(_size(dom, env)))
    raise NotCovered(f"a quantifier over {show(dom)} cannot be enumerated")


MAX_POW_EXPONENT = 512


def ev(te: TE, env: Mapping[str, Any]) -> Any:
    t = find(te.ty)
    if isinstance(te, TLit):
        if isinstance(t, Fin):
            return Fraction(int(te.value) % _size(t, env))  # Fin.ofNat' n i = ⟨i % n⟩
        return te.value
    if isinstance(te, TVar):
        if te.name not in env:
            raise NotCovered(f"no value for {te.name}")
        return env[te.name]
    if isinstance(te, TCast):
        return ev(te.arg, env)  # every coercion of the fragment preserves the value
    if isinstance(te, TBin):
        return _arith(te.op, t, ev(te.left, env), ev(te.right, env), env)
    if isinstance(te, TNeg):
        a = ev(te.arg, env)
        if isinstance(t, Fin):
            n = _size(t, env)
            return Fraction((n - int(a)) % n)  # Mathlib Fin.neg: ⟨(n - a) % n⟩
        return -a
    if isinstance(te, TPow):
        e = ev(te.exp, env)
        if e > MAX_POW_EXPONENT:
            raise NotCovered("exponent too large to evaluate")
        return ev(te.base, env) ** int(e)  # Monoid.npow: x ^ 0 = 1
    if isinstance(te, TCall):
        vals = [ev(a, env) for a in te.args]
        if te.fn == "min":
            return vals[0] if vals[0] <= vals[1] else vals[1]
        if te.fn == "max":
            return vals[1] if vals[0] <= vals[1] else vals[0]
        if te.fn == "abs":
            return abs(vals[0])
        raise NotCovered(te.fn)
    if isinstance(te, TIte):
        return ev(te.then, env) if ev(te.cond, env) else ev(te.orelse, env)
    if isinstance(te, TSum):
        if isinstance(te.dom, tuple):
            n = ev(te.dom[1], env)
            if n > 10_000:
                raise NotCovered("sum too long")
            points: Iterable[Fraction] = (Fraction(k) for k in range(int(n)))
        else:
            points = _domain(te.dom, env)
        total = Fraction(0)
        for k in points:
            total += ev(te.body, {**env, te.var: k})
        return total
    if isinstance(te, TLet):
        return ev(te.body, {**env, te.name: ev(te.value, env)})
    if isinstance(te, TApp):
        vec = ev(te.fn, env)
        k = int(ev(te.arg, env))
        return vec[k]
    if isinstance(te, TCmp):
        return _CMP[te.op](ev(te.left, env), ev(te.right, env))
    if isinstance(te, TLogic):
        a = ev(te.left, env)
        if te.op == "∧":
            return a and ev(te.right, env)
        if te.op == "∨":
            return a or ev(te.right, env)
        if te.op == "→":
            return (not a) or ev(te.right, env)
        return a == ev(te.right, env)
    if isinstance(te, TNot):
        return not ev(te.arg, env)
    if isinstance(te, TQuant):
        vals = (ev(te.body, {**env, te.var: k}) for k in _domain(te.dom, env))
        return all(vals) if te.kind == "forall" else any(vals)
    if isinstance(te, TBool):
        return te.value
    raise NotCovered(type(te).__name__)


# =============================================================================== public API


def _build(
    text: str, variables: Mapping[str, str] | None, assumptions: Sequence[str]
) -> tuple[Any, list[tuple[str, Any]]]:
    body = parse(text)
    hyps = [parse(_strip_label(a)) for a in assumptions]
    for h in reversed(hyps):
        body = SLogic("→", h, body)
    binders = [(name, parse_type(ty)) for name, ty in (variables or {}).items()]
    for name, ty in reversed(binders):
        body = SQuant("forall", name, ty, body)
    return body, binders


def _strip_label(text: str) -> str:
    head, sep, rest = text.partition(":")
    if sep and head.strip().startswith("h") and head.strip().isidentifier() and rest[:1] != "=":
        return rest
    return text


def elaborate(
    text: str,
    *,
    variables: Mapping[str, str] | None = None,
    assumptions: Sequence[str] = (),
) -> TE:
    """Parse and elaborate a statement into a typed, fully resolved tree."""
    surface, _ = _build(text, variables, assumptions)
    el = _Elab()
    te = el.prop(surface, _Scope({}))
    el.finish()
    return te


def _value(raw: Any, ty: Any, env: Mapping[str, Any]) -> Any:
    ty = find(ty)
    if isinstance(ty, Vec):
        if not isinstance(raw, list):
            raise ValueError(f"expected a list for {show(ty)}, got {raw!r}")
        n = _size(ty.dom, env)
        if len(raw) != n:
            raise ValueError(f"a vector of {show(ty)} has {n} entries, got {len(raw)}")
        return [_value(x, ty.cod, env) for x in raw]
    v = Fraction(str(raw))
    if isinstance(ty, Fin):
        if v.denominator != 1 or not 0 <= v < _size(ty, env):
            raise ValueError(f"{raw!r} is not a value of {show(ty)}")
    elif ty in (NAT, INT) and (v.denominator != 1 or (ty == NAT and v < 0)):
        raise ValueError(f"{raw!r} is not a value of {ty}")
    return v


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith("«") and name.endswith("»") else name


def evaluate(
    text: str,
    env: Mapping[str, Any] | None = None,
    *,
    variables: Mapping[str, str] | None = None,
    assumptions: Sequence[str] = (),
) -> bool:
    """Truth value of a statement.

    Without ``env`` the statement must be closed (quantifiers over ``Fin n`` with a literal
    ``n`` are enumerated).  With ``env`` (names → JSON values as in HMS's counterexamples: exact
    rationals as strings, vectors as lists, ``Fin`` values as integer strings), the leading
    ``∀`` binders -- and those after leading premises ``H →``, as HMS peels them -- take their
    values from ``env``.  Raises :class:`Rejected` / :class:`NotCovered`; a malformed ``env``
    raises ``ValueError``.
    """
    te = elaborate(text, variables=variables, assumptions=assumptions)
    remaining = {_unquote(k): v for k, v in (env or {}).items()}
    result = _peel(te, remaining, {})
    if remaining:
        raise ValueError(f"values for variables the statement does not bind: {sorted(remaining)}")
    return bool(result)


def _peel(te: TE, remaining: dict[str, Any], local: dict[str, Any]) -> Any:
    if isinstance(te, TQuant) and te.kind == "forall" and te.var in remaining:
        value = _value(remaining.pop(te.var), te.dom, local)
        return _peel(te.body, remaining, {**local, te.var: value})
    if isinstance(te, TLogic) and te.op == "→":
        return (not ev(te.left, local)) or _peel(te.right, remaining, local)
    return ev(te, local)


def check_counterexample(
    text: str,
    counterexample: Mapping[str, Any],
    *,
    variables: Mapping[str, str] | None = None,
    assumptions: Sequence[str] = (),
) -> bool:
    """Is ``counterexample`` a real one: every hypothesis true and the goal false?"""
    return not evaluate(text, counterexample, variables=variables, assumptions=assumptions)


def peeled_binders(
    text: str,
    *,
    variables: Mapping[str, str] | None = None,
    assumptions: Sequence[str] = (),
) -> list[tuple[str, Any]]:
    """The variables HMS peels off a statement: leading ``∀`` binders, also after premises."""
    te: Any = elaborate(text, variables=variables, assumptions=assumptions)
    out: list[tuple[str, Any]] = []
    while True:
        if isinstance(te, TQuant) and te.kind == "forall" and te.var not in dict(out):
            out.append((te.var, te.dom))
            te = te.body
        elif isinstance(te, TLogic) and te.op == "→":
            te = te.right
        else:
            return out


_SAMPLE_Q = ("-2", "-1", "-1/2", "0", "1/3", "1/2", "1", "2", "7")


def sample_environment(binders: Sequence[tuple[str, Any]], rng: Any) -> dict[str, Any]:
    """Random small values (JSON form, as in HMS's counterexamples) for ``binders``."""
    env: dict[str, Any] = {}
    sizes: dict[str, int] = {}

    def one(ty: Any) -> Any:
        ty = find(ty)
        if isinstance(ty, Vec):
            n = ty.dom.size if isinstance(ty.dom.size, int) else sizes[ty.dom.size]
            return [one(ty.cod) for _ in range(n)]
        if isinstance(ty, Fin):
            n = ty.size if isinstance(ty.size, int) else sizes[ty.size]
            return str(rng.randrange(n)) if n > 0 else None
        if ty == NAT:
            return str(rng.choice((0, 0, 1, 2, 3, 5)))
        if ty == INT:
            return str(rng.randint(-3, 3))
        return rng.choice(_SAMPLE_Q)

    for name, ty in binders:
        v = one(ty)
        if v is None:
            raise NotCovered("a binder over the empty type Fin 0")
        env[name] = v
        if find(ty) == NAT:
            sizes[name] = int(v)
    return env
