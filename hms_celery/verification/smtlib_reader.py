"""SMT-LIB 2.6 scripts as data: a reader, and the allow-list HMS decides a problem from.

Z3's own script parser (``z3.parse_smt2_string``) *executes* a script: ``set-option`` changes
Z3's global parameters or opens output files, ``include`` reads a file, ``echo`` writes, and
unknown commands are skipped with a warning.  So HMS reads the text itself first, and gives
Z3 only the declarations, definitions and assertions of the problem, re-emitted from the
tokens read here:

* the text must be SMT-LIB text: no NUL or other control character (tab, newline and carriage
  return aside), no lone surrogate; outside strings, quoted symbols and comments only ASCII;
* tokens: parentheses, simple and ``|quoted|`` symbols (which may span lines; no ``\\``),
  string literals (``""`` is a quote), numerals, decimals, ``#x…``/``#b…``, keywords
  ``:foo``, comments ``;`` to the end of the line.  Atoms are separated by white space,
  parentheses or a comment;
* commands, each a parenthesised list headed by its name, on an allow-list
  (:data:`PROBLEM_COMMANDS`, :data:`IGNORED_COMMANDS`, :data:`QUERY_COMMANDS`, ``push``,
  ``pop``, ``check-sat``, ``exit``); every other command — every ``set-option``, ``include``,
  ``echo``, ``reset``, ``get-assertions``, ``check-sat-assuming``, ``declare-datatype(s)``,
  unknown ones — is refused;
* ``push``/``pop`` are supported: declarations, definitions and assertions made in a popped
  scope are not part of the problem.  The problem is what is asserted at the ``check-sat``
  (everything still asserted at the end if there is none).  After a ``check-sat`` only
  queries (``get-model``, ``get-value``, ``eval``, ``get-info``: accepted and ignored, they
  do not change the problem), ``push``/``pop``, another ``check-sat`` about the same
  assertions, ``set-info`` and ``exit`` may follow: a later declaration or assertion would
  be a second question, or one never asked;
* term annotations ``(! t …)`` may only carry :data:`TERM_ATTRIBUTES` (Z3 would ignore
  others with a warning);
* nothing after ``(exit)`` is read, but it must still be text.

Every refusal is an :class:`SmtlibError` naming the command and its ``line:column``
(1-based; a column counts characters, a tab is one).  ``set-info`` is checked but not
re-emitted (Z3 does nothing with it).  ``set-logic`` is re-emitted, because the logic changes
how Z3 reads numerals (in a reals-only logic ``8`` is the real ``8.0``, elsewhere
``(to_real 8)``), but only once, before any declaration, and only with a standard logic name
(:data:`LOGIC_NAME`; Z3 would ignore an unknown one with a warning).
:meth:`Problem.to_smt2` puts every re-emitted token at its original line and column, so the
positions in Z3's own messages are positions in the user's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from hms_celery.errors import InputError
from hms_celery.verification.smtlib_tokens import (
    BANG,
    Command,
    Kind,
    LexError,
    Pos,
    Source,
    Token,
    lex,
)

__all__ = [
    "IGNORED_COMMANDS",
    "LOGIC_NAME",
    "PROBLEM_COMMANDS",
    "QUERY_COMMANDS",
    "TERM_ATTRIBUTES",
    "Problem",
    "SmtlibError",
    "read_commands",
    "read_problem",
]

SYNTAX = "SMT-LIB text does not parse"
REFUSED = "SMT-LIB command not allowed"


class SmtlibError(InputError):
    """An SMT-LIB problem HMS does not decide: text that does not parse (the reader's or Z3's
    message), or a command it refuses; the message says where (``line:column``)."""


# Declarations, definitions and assertions: the problem, re-emitted to Z3.  The number is
# the count of arguments the command takes (a tuple: the counts it may take).
PROBLEM_COMMANDS: dict[str, tuple[int, ...]] = {
    "declare-sort": (1, 2),
    "declare-const": (2,),
    "declare-fun": (3,),
    "define-fun": (4,),
    "define-sort": (3,),
    "define-fun-rec": (4,),
    "define-funs-rec": (2,),
    "assert": (1,),
}
# Accepted anywhere, checked for shape, not re-emitted.
IGNORED_COMMANDS = frozenset({"set-info", "get-info"})
# Questions about the answer of a check-sat: accepted and ignored after one.
QUERY_COMMANDS = frozenset({"get-model", "get-value", "eval"})
TERM_ATTRIBUTES = frozenset({":named", ":pattern", ":no-pattern", ":weight", ":qid", ":skolemid"})
# SMT-LIB logic names (QF_, arrays, UF, BV, FP, datatypes, strings, arithmetic) and ALL: Z3
# accepts every one of them silently but the bare "S" (tests/verification/test_smtlib_hostile).
LOGIC_NAME = re.compile(
    r"ALL|(?!S$)(?=.)(QF_)?(AX|A)?(UF)?(BV)?(FP)?(DT)?(S)?(IDL|RDL|LIA|LRA|NIA|NRA|LIRA|NIRA)?"
    r"(?<!QF_)"
)

# Why a command people do write is refused (the others are simply not on the allow-list).
_REFUSAL_HINTS = {
    "set-option": "options change Z3's global state or open files; HMS sets the solver itself",
    "include": "HMS does not read files named in a problem",
    "echo": "HMS does not run output commands",
    "reset": "a problem is one script, decided once",
    "reset-assertions": "a problem is one script, decided once",
    "check-sat-assuming": "the problem is the assertions (use assert)",
    "declare-datatype": "datatypes are not supported",
    "declare-datatypes": "datatypes are not supported",
}


# --- commands ------------------------------------------------------------------------------


def read_commands(text: str) -> Iterator[Command]:
    """The top-level commands of the SMT-LIB script ``text``, in order, up to ``(exit)``.

    Only the syntax is checked here (text, tokens, balanced parentheses, each command a list
    headed by a symbol).  Raises :class:`SmtlibError`."""
    src = Source(text)
    # The lists open in the current command: [items so far, whether it is a (! …)].
    lists: list[list[int]] = []
    tokens: list[Token] = []
    odd: Token | None = None
    try:
        for tok in lex(src):
            kind = tok.kind
            if not lists:
                if kind is not Kind.LPAREN:
                    raise LexError(
                        "unbalanced parentheses: this ')' closes nothing"
                        if kind is Kind.RPAREN
                        else f"{tok.text[:40]!r} is outside a command (a command is a "
                        "parenthesised list headed by its name)",
                        tok.pos,
                    )
                lists.append([0, 0])
                tokens, odd = [tok], None
                continue
            tokens.append(tok)
            top = lists[-1]
            if kind is Kind.RPAREN:
                lists.pop()
                if lists:
                    continue
                command = _command(tuple(tokens), top[0] - 1, odd)
                if command.name == "exit":
                    _check_rest(src, command)
                    yield command
                    return
                yield command
                continue
            top[0] += 1
            if kind is Kind.LPAREN:
                lists.append([0, 0])
            elif top[0] == 1 and tok.text in BANG:
                top[1] = 1
            elif top[1] and top[0] >= 3 and kind is Kind.KEYWORD and odd is None:
                # an attribute of (! term :attr value …); Z3 skips unknown ones with a warning
                odd = None if tok.text in TERM_ATTRIBUTES else tok
    except LexError as exc:
        where = f" (in {_head(tokens)})" if lists else ""
        raise SmtlibError(f"{SYNTAX}: line {exc.pos}: {exc.message}{where}") from None
    if lists:
        raise SmtlibError(
            f"{SYNTAX}: unbalanced parentheses: the '(' of {_head(tokens)} is never closed"
        )


def _head(tokens: list[Token]) -> str:
    """The command being read: ``name at line L:C``."""
    head = tokens[1] if len(tokens) > 1 else None
    name = head.text if head is not None and head.kind is Kind.SYMBOL else "a command"
    return f"{name} at line {tokens[0].pos}"


def _command(tokens: tuple[Token, ...], arity: int, odd: Token | None) -> Command:
    head = tokens[1]
    if head.kind is not Kind.SYMBOL:
        raise LexError("a command must start with its name", tokens[0].pos)
    return Command(head.text, tokens[0].pos, tokens, arity, odd)


def _check_rest(src: Source, exit_command: Command) -> None:
    """Nothing after ``(exit)`` is read, but it must still be text."""
    if src.bad is not None:
        what, pos = src.not_text()
        raise SmtlibError(
            f"{SYNTAX}: line {pos}: {what} after {exit_command} (the rest is not read, but "
            "must still be text)"
        )


# --- the problem ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """The declarations, definitions and assertions an SMT-LIB script asks about."""

    commands: tuple[Command, ...]
    check_sat: Command | None

    @property
    def assertions(self) -> int:
        """How many ``assert`` commands the problem has."""
        return sum(c.name == "assert" for c in self.commands)

    def to_smt2(self) -> str:
        """The problem as SMT-LIB text for Z3, every token at its original line:column."""
        out: list[str] = []
        line, column = 1, 1
        for command in self.commands:
            for _, text, tok_line, tok_column in command.tokens:
                if tok_line > line:
                    out.append("\n" * (tok_line - line))
                    line, column = tok_line, 1
                if tok_column > column:
                    out.append(" " * (tok_column - column))
                out.append(text)
                if "\n" in text:  # a string or quoted symbol over several lines
                    line += text.count("\n")
                    column = len(text) - text.rfind("\n")
                else:
                    column = tok_column + len(text)
        out.append("\n")
        return "".join(out)

    def command_at(self, line: int, column: int) -> Command | None:
        """The re-emitted command that spans ``line``:``column`` (a position in Z3's message)."""
        found = None
        for command in self.commands:
            if command.pos > Pos(line, column):
                break
            found = command
        return found


def read_problem(text: str) -> Problem:
    """The problem of the SMT-LIB script ``text`` (see the module docstring).

    Raises :class:`SmtlibError` naming the offending command and its ``line:column``."""
    scopes = _Scopes()
    declared = False
    checked: tuple[int, ...] | None = None
    check_sat: Command | None = None
    problem: tuple[Command, ...] = ()
    logic: Command | None = None
    for command in read_commands(text):
        name = command.name
        if name in PROBLEM_COMMANDS:
            if check_sat is not None:
                raise _refused(
                    command,
                    f"it comes after {check_sat}: the problem is what is asserted at the "
                    "check-sat, and a script that changes it afterwards asks a second "
                    "question (or one it never checks)",
                )
            _check_arity(command, PROBLEM_COMMANDS[name])
            if command.odd_attribute is not None:
                raise _refused(
                    command,
                    f"the attribute {command.odd_attribute.text} at line "
                    f"{command.odd_attribute.pos} is not supported (only "
                    f"{', '.join(sorted(TERM_ATTRIBUTES))})",
                )
            scopes.add(command)
            declared = True
        elif name == "set-logic":
            _check_logic(command, logic, declared or check_sat is not None)
            logic = command
        elif name in ("push", "pop"):
            scopes.apply(command)
        elif name == "check-sat":
            _check_arity(command, (0,))
            live = scopes.live()
            ids = tuple(id(c) for c in live if c.name == "assert")
            if check_sat is None:
                checked, check_sat, problem = ids, command, live
            elif ids != checked:
                raise _refused(
                    command,
                    f"the assertions differ from those at {check_sat} (popped since): a "
                    "second check-sat about other assertions is ambiguous, HMS decides one "
                    "problem",
                )
        elif name in QUERY_COMMANDS:
            if check_sat is None:
                raise _refused(command, "there is no check-sat before it to query")
            _check_arity(command, (0,) if name == "get-model" else (1,), at_least=name == "eval")
        elif name in IGNORED_COMMANDS:
            _check_ignored(command)
        elif name == "exit":
            _check_arity(command, (0,))
        else:
            hint = _REFUSAL_HINTS.get(name, "it is not on HMS's allow-list of SMT-LIB commands")
            raise _refused(command, hint)
    if check_sat is None:
        problem = scopes.live()
    return Problem((logic, *problem) if logic else problem, check_sat)


def _refused(command: Command, why: str) -> SmtlibError:
    return SmtlibError(f"{REFUSED}: {command}: {why}")


def _malformed(command: Command, what: str) -> SmtlibError:
    return SmtlibError(f"{SYNTAX}: {command}: {what}")


def _check_arity(command: Command, counts: tuple[int, ...], *, at_least: bool = False) -> None:
    n = command.arity
    if n in counts or (at_least and n >= min(counts)):
        return
    expected = " or ".join(map(str, counts)) + (" or more" if at_least else "")
    raise _malformed(command, f"takes {expected} argument(s), got {n}")


def _check_logic(command: Command, before: Command | None, late: bool) -> None:
    args = command.args
    first = args[0] if args else None
    if len(args) != 1 or not (isinstance(first, Token) and first.kind is Kind.SYMBOL):
        raise _malformed(command, "expected (set-logic <symbol>)")
    if before is not None:
        raise _malformed(command, f"the logic is already set by {before}")
    if late:
        raise _malformed(command, "set-logic must come before declarations and assertions")
    if not LOGIC_NAME.fullmatch(first.text):
        raise _refused(
            command,
            f"{first.text[:40]!r} is not a standard SMT-LIB logic name (Z3 would ignore it)",
        )


def _check_ignored(command: Command) -> None:
    args = command.args
    first = args[0] if args else None
    if command.name == "set-info":
        if not (1 <= len(args) <= 2 and isinstance(first, Token) and first.kind is Kind.KEYWORD):
            raise _malformed(command, "expected (set-info <keyword> [<value>])")
    elif len(args) != 1 or not (isinstance(first, Token) and first.kind is Kind.KEYWORD):
        raise _malformed(command, "expected (get-info <keyword>)")


class _Scopes:
    """The assertion stack: frames of (levels, commands); ``(push n)`` opens ``n`` levels as
    one frame, whose commands belong to its innermost level."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, list[Command]]] = [(0, [])]

    def add(self, command: Command) -> None:
        self.frames[-1][1].append(command)

    def live(self) -> tuple[Command, ...]:
        """The commands of every open scope, in order (the outer scopes' come first)."""
        return tuple(c for _, commands in self.frames for c in commands)

    def apply(self, command: Command) -> None:
        """Apply ``(push n)`` / ``(pop n)`` (``n`` defaults to 1, as Z3 reads it)."""
        args = command.args
        first = args[0] if args else None
        if len(args) > 1 or (
            args and not (isinstance(first, Token) and first.kind is Kind.NUMERAL)
        ):
            raise _malformed(command, f"expected ({command.name} [<numeral>])")
        if isinstance(first, Token) and len(first.text) > 9:
            raise _malformed(command, f"{first.text[:20]}… scopes are too many")
        count = int(first.text) if isinstance(first, Token) else 1
        if command.name == "push":
            if count:
                self.frames.append((count, []))
            return
        depth = sum(levels for levels, _ in self.frames)
        if count > depth:
            raise _malformed(command, f"pops {count} scope(s) but only {depth} are open")
        while count:
            levels, _ = self.frames.pop()
            if levels > count:  # the innermost level goes, with the frame's commands
                self.frames.append((levels - count, []))
            count -= min(levels, count)
