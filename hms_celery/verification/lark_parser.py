"""The Lark parser of ``grammar.lark`` (LALR(1), built once per process) and its post-lexer:
``let`` layout by column and ``|…|`` absolute-value bars told from other bars."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import cast

from lark import Lark, Token

from hms_celery.verification.surface import LEAN_NAME

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")


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
def lark_parser() -> Lark:
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
