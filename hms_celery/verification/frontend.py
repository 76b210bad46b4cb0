"""The front end: statement text → typed :class:`~hms_celery.verification.ast.Statement`.

The layers point one way: surface syntax and its parser (:mod:`.parser`) → the elaborator
(:mod:`.elaborate`) and the workspace definitions (:mod:`.definitions`) → this module, which
joins them: it assembles a statement (variables, assumptions, the goal's leading ``∀`` and
``→`` peeled) from elaborated parts.  Nothing below imports it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from hms_celery.errors import StatementError
from hms_celery.verification.ast import Call, Definition, Expr, Logic, Param, Quant, Statement
from hms_celery.verification.ast_walk import nodes
from hms_celery.verification.definitions import definitions_for, workspace_signature
from hms_celery.verification.elaborate import PROP, Elaborator, Scope
from hms_celery.verification.parser import parse_expression, parse_type
from hms_celery.verification.surface import LEAN_IDENT, SExpr, canonical_name

_LABEL = re.compile(r"^(\s*)([^\W\d][\w'.]*)(\s*):(?!=)")


def parse_statement(
    text: str,
    assumptions: Sequence[str] = (),
    variables: Mapping[str, str] | None = None,
    definitions: Mapping[str, Definition] | None = None,
) -> Statement:
    """Parse and elaborate a claim into a typed :class:`~hms_celery.verification.ast.Statement`.

    ``variables`` maps names to Lean type text, in order; ``assumptions`` are propositions
    (an ``h_name:`` label is stripped); leading ``∀`` binders and ``→`` premises of ``text`` are
    peeled into the statement's variables and hypotheses.  ``definitions=None`` uses the
    Moneyball definitions of the default ``lean_workspace``.  Raises ``StatementError``.
    """
    if definitions is None:
        # The common case (default workspace) is cached: clients and workers see the same
        # statements again and again. Statements are immutable, so sharing them is safe.
        root, signature = workspace_signature()
        return _parse_with_workspace(
            text, tuple(assumptions), tuple((variables or {}).items()), root, signature
        )
    return elaborate_statement(text, assumptions, variables or {}, definitions)


@lru_cache(maxsize=2048)
def _parse_with_workspace(
    text: str,
    assumptions: tuple[str, ...],
    variables: tuple[tuple[str, str], ...],
    root: str,
    signature: tuple[tuple[str, int, int], ...],
) -> Statement:
    return elaborate_statement(text, assumptions, dict(variables), definitions_for(root, signature))


# --------------------------------------------------------------------------- statements


def _prefixed(exc: StatementError, what: str, source: str) -> StatementError:
    """Re-raise an error of a part (assumption / variable type) saying which part it is."""
    err = StatementError(
        f"{what}: {exc.message}", line=exc.line, column=exc.column, expected=exc.expected,
        source=source,
    )  # fmt: skip
    where = f"{exc.line}:{exc.column}: " if exc.line else ""
    err.args = (f"{what}: {where}{exc.message}",)
    return err


def _strip_label(text: str) -> SExpr:
    """Parse an assumption, dropping an ``h_name:`` label (replaced by spaces: same columns)."""
    m = _LABEL.match(text)
    if m:
        try:
            return parse_expression(" " * m.end() + text[m.end() :])
        except StatementError as exc:
            try:
                return parse_expression(text)
            except StatementError:
                raise exc from None
    return parse_expression(text)


def _peel(goal: Expr, variables: list[Param], hypotheses: list[Expr]) -> Expr:
    names = {p.name for p in variables}
    while True:
        if isinstance(goal, Quant) and goal.kind == "forall" and goal.var not in names:
            variables.append(Param(goal.var, goal.dom))
            names.add(goal.var)
            goal = goal.body
        elif isinstance(goal, Logic) and goal.op == "→":
            hypotheses.append(goal.left)
            goal = goal.right
        else:
            return goal


def _calls(e: Any) -> Iterable[str]:
    return (x.name for x in nodes(e) if isinstance(x, Call))


def used_definitions(
    names: Iterable[str], definitions: Mapping[str, Definition]
) -> dict[str, Definition]:
    """``names`` and every definition their bodies call, in the order of ``definitions``."""
    todo, seen = list(names), set()
    while todo:
        n = todo.pop()
        if n in seen or n not in definitions:
            continue
        seen.add(n)
        todo.extend(_calls(definitions[n].body))
    return {k: d for k, d in definitions.items() if k in seen}


def elaborate_statement(
    text: str,
    assumptions: Sequence[str],
    variables: Mapping[str, str],
    definitions: Mapping[str, Definition],
) -> Statement:
    """Parse and elaborate a claim (see
    :func:`~hms_celery.verification.frontend.parse_statement`)."""
    if isinstance(assumptions, str):
        assumptions = [assumptions]
    try:
        return _elaborate_statement(text, assumptions, variables, definitions)
    except RecursionError:  # the parser's nesting limits should make this unreachable
        raise StatementError(
            "the statement is nested too deeply", line=1, column=1, source=text
        ) from None


def _variable_name_ok(name: str) -> bool:
    return bool(LEAN_IDENT.fullmatch(name)) or (
        name.startswith("«") and name.endswith("»") and "»" not in name[1:-1] and len(name) > 2
    )


def _bad_name_column(name: str) -> int:
    """1-based column of the first character that makes ``name`` not an identifier."""
    m = LEAN_IDENT.match(name)
    return (m.end() if m else 0) + 1


def _elaborate_statement(
    text: str,
    assumptions: Sequence[str],
    variables: Mapping[str, str],
    definitions: Mapping[str, Definition],
) -> Statement:
    used: set[str] = set()
    scope: Scope = {}
    params: list[Param] = []
    for raw_name, type_text in variables.items():
        name = canonical_name(raw_name) if isinstance(raw_name, str) else raw_name
        if not isinstance(name, str) or not _variable_name_ok(name):
            bad = _bad_name_column(name) if isinstance(name, str) else 1
            raise StatementError(
                f"variable name {name!r} is not a Lean identifier (at column {bad} of the name)",
                line=1, column=bad, source=str(name),
            )  # fmt: skip
        try:
            ty = Elaborator(definitions, str(type_text)).elab_type(
                parse_type(str(type_text)), scope
            )
        except StatementError as exc:
            raise _prefixed(exc, f"type of variable {name}", str(type_text)) from None
        scope[name] = ty
        params.append(Param(name, ty))

    el = Elaborator(definitions, text, used)
    body = el.elab(parse_expression(text), scope, PROP)
    hypotheses: list[Expr] = []
    goal = _peel(body, params, hypotheses)
    scope = {p.name: p.ty for p in params}

    given: list[Expr] = []
    for i, a in enumerate(assumptions, 1):
        try:
            given.append(Elaborator(definitions, a, used).elab(_strip_label(a), scope, PROP))
        except StatementError as exc:
            raise _prefixed(exc, f"assumption {i}", a) from None
    return Statement(
        variables=tuple(params),
        hypotheses=tuple(given + hypotheses),
        goal=goal,
        source=text,
        definitions=used_definitions(used, definitions),
    )
