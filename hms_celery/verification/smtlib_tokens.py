"""SMT-LIB 2.6 text as tokens and commands: positions, token kinds, the lexer.

The lexer accepts SMT-LIB text only (see :mod:`.smtlib_reader`, which reads commands from
these tokens and decides what a problem is)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from enum import Enum
from typing import NamedTuple


class Pos(NamedTuple):
    """A 1-based line and column (in characters) of the text."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class Kind(Enum):
    """The kind of a token."""

    LPAREN = "("
    RPAREN = ")"
    SYMBOL = "symbol"
    STRING = "string"
    NUMERAL = "numeral"
    DECIMAL = "decimal"
    HEXADECIMAL = "hexadecimal"
    BINARY = "binary"
    KEYWORD = "keyword"


class Token(NamedTuple):
    """One token: its kind, its text exactly as in the source, and where it starts."""

    kind: Kind
    text: str
    line: int
    column: int

    @property
    def pos(self) -> Pos:
        """Where the token starts."""
        return Pos(self.line, self.column)

    @property
    def name(self) -> str:
        """A symbol's name (``|a b|`` is ``a b``); other tokens' text."""
        if self.kind is Kind.SYMBOL and self.text.startswith("|"):
            return self.text[1:-1]
        return self.text


class SList(NamedTuple):
    """A parenthesised list and the position of its ``(``."""

    items: tuple[SExpr, ...]
    pos: Pos


SExpr = Token | SList


class Command(NamedTuple):
    """A top-level command: its name, position, every token it spans (parentheses included),
    its number of arguments, and the first ``(! …)`` attribute outside
    :data:`TERM_ATTRIBUTES` in it, if any."""

    name: str
    pos: Pos
    tokens: tuple[Token, ...]
    arity: int
    odd_attribute: Token | None = None

    @property
    def args(self) -> tuple[SExpr, ...]:
        """The arguments, as s-expressions (built on demand: big commands only need their
        tokens)."""
        return _tree(self.tokens).items[1:]

    def __str__(self) -> str:
        return f"{self.name} at line {self.pos}"


def _tree(tokens: tuple[Token, ...]) -> SList:
    """The s-expression of a balanced token sequence (iteratively: terms may nest deeply)."""
    stack: list[tuple[Token, list[SExpr]]] = []
    for tok in tokens:
        if tok.kind is Kind.LPAREN:
            stack.append((tok, []))
        elif tok.kind is Kind.RPAREN:
            opened, items = stack.pop()
            node = SList(tuple(items), opened.pos)
            if not stack:
                return node
            stack[-1][1].append(node)
        else:
            stack[-1][1].append(tok)
    raise ValueError("unbalanced tokens")


# --- text and tokens ----------------------------------------------------------------------

_SYMBOL_CHARS = r"A-Za-z0-9~!@$%^&*_\-+=<>.?/"
# White space and comments (skipped), then one token: a comment runs to the end of the line.
_TOKEN = re.compile(
    rf"""
    (?:[ \t\r\n]++|;[^\n]*+)*+
    (?:
      (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<string>"(?:[^"]++|"")*+")
    | (?P<quoted>\|[^|\\]*\|)
    | (?P<keyword>:[{_SYMBOL_CHARS}]+)
    | (?P<hexadecimal>\#x[0-9A-Fa-f]+)
    | (?P<binary>\#b[01]+)
    | (?P<decimal>[0-9]+\.[0-9]+)
    | (?P<numeral>[0-9]+)
    | (?P<symbol>[A-Za-z~!@$%^&*_\-+=<>.?/][{_SYMBOL_CHARS}]*)
    )?
    """,
    re.VERBOSE,
)
_KINDS = {
    "lparen": Kind.LPAREN,
    "rparen": Kind.RPAREN,
    "string": Kind.STRING,
    "quoted": Kind.SYMBOL,
    "keyword": Kind.KEYWORD,
    "hexadecimal": Kind.HEXADECIMAL,
    "binary": Kind.BINARY,
    "decimal": Kind.DECIMAL,
    "numeral": Kind.NUMERAL,
    "symbol": Kind.SYMBOL,
}
# Not text: C0 controls but tab, LF and CR; DEL and C1 controls; lone surrogates (from a
# decoder's surrogateescape, or a JSON "\ud800"); the noncharacters U+FFFE and U+FFFF.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_DELIMITERS = frozenset(" \t\r\n();")
_PARENS = frozenset({"lparen", "rparen"})
_MULTILINE = frozenset({"string", "quoted"})  # the tokens that may hold a newline
BANG = frozenset({"!", "|!|"})  # Z3 reads |!| as ! too


def _describe(ch: str) -> str:
    code = ord(ch)
    if code == 0:
        return "a NUL byte (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"invalid text (a lone surrogate U+{code:04X})"
    if unicodedata.category(ch) == "Cc":
        return f"a control character (U+{code:04X})"
    if code < 0x80:
        return f"an unexpected character {ch!r}"
    return f"a character that is not text (U+{code:04X})"


class Source:
    """The text, and where it stops being text."""

    def __init__(self, text: str) -> None:
        self.text = text
        bad = _NOT_TEXT.search(text)
        self.bad = bad.start() if bad else None
        self.end = len(text) if self.bad is None else self.bad

    def pos(self, offset: int) -> Pos:
        """The line:column of ``offset`` (for messages: the tokenizer tracks its own)."""
        line_start = self.text.rfind("\n", 0, offset) + 1
        return Pos(self.text.count("\n", 0, offset) + 1, offset - line_start + 1)

    def not_text(self) -> tuple[str, Pos]:
        assert self.bad is not None
        return _describe(self.text[self.bad]), self.pos(self.bad)


class LexError(Exception):
    """Where the text stops being SMT-LIB text (or a token cannot start), and why."""

    def __init__(self, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def lex(src: Source) -> Iterator[Token]:
    """The tokens of ``src`` up to where it stops being text (then a :class:`LexError`)."""
    text, end = src.text, src.end
    pos = 1 if text.startswith("\ufeff") else 0  # a byte-order mark is not content
    line, line_start = 1, 0
    while pos < end:
        m = _TOKEN.match(text, pos, end)
        assert m is not None  # the token is optional: at worst white space matches
        group, stop = m.lastgroup, m.end()
        if group is None:  # white space, then the end, or no token
            if stop < end:
                raise LexError(*_no_token(src, stop))
            break
        start = m.start(group)
        breaks = text.count("\n", pos, start)  # in the white space and comments before it
        if breaks:
            line += breaks
            line_start = text.rfind("\n", pos, start) + 1
        if group not in _PARENS and stop < end and text[stop] not in _DELIMITERS:
            raise LexError(
                f"{_describe(text[stop])} right after {m.group(group)[:40]!r} "
                "(atoms are separated by white space, parentheses or a comment)",
                src.pos(stop),
            )
        yield Token(_KINDS[group], m.group(group), line, start - line_start + 1)
        if group in _MULTILINE:
            breaks = text.count("\n", start, stop)
            if breaks:
                line += breaks
                line_start = text.rfind("\n", start, stop) + 1
        pos = stop
    if src.bad is not None:
        raise LexError(*src.not_text())


def _no_token(src: Source, pos: int) -> tuple[str, Pos]:
    text, end = src.text, src.end
    ch = text[pos]
    if ch == '"':
        if src.bad is not None:  # the string runs into it (or is unterminated anyway)
            return src.not_text()
        return "the string literal starting here is never closed", src.pos(pos)
    if ch == "|":
        close = text.find("|", pos + 1, end)
        backslash = text.find("\\", pos + 1, close if close >= 0 else end)
        if backslash >= 0:
            return "a quoted symbol cannot contain '\\'", src.pos(backslash)
        if src.bad is not None:
            return src.not_text()
        return "the quoted symbol starting here is never closed", src.pos(pos)
    if ord(ch) >= 0x80:
        return (
            f"a non-ASCII character {ch!r} (U+{ord(ch):04X}) outside a string, quoted "
            "symbol or comment",
            src.pos(pos),
        )
    return f"{_describe(ch)} that starts no token", src.pos(pos)
