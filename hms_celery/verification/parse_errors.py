"""Lark's syntax errors as :class:`~hms_celery.errors.StatementError`: line, column and
human-readable ``expected`` items (Lean's spelling of tokens, operators grouped)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import cast

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from hms_celery.errors import StatementError
from hms_celery.verification.lark_parser import lark_parser

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
    for term in lark_parser().terminals:
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


def syntax_error(exc: UnexpectedInput, text: str) -> StatementError:
    """Lark's ``exc`` on ``text`` as a :class:`StatementError` with position and expected items."""
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
