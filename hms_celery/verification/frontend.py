"""The front end: statement text → typed :class:`~hms_celery.verification.ast.Statement`.

The layers point one way: surface syntax and its parser (:mod:`.parser`) → the elaborator
(:mod:`.elaborate`) and the workspace definitions (:mod:`.definitions`) → this module, which
joins them.  Nothing below imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from hms_celery.verification.ast import Definition, Statement
from hms_celery.verification.definitions import definitions_for, workspace_signature
from hms_celery.verification.elaborate import elaborate_statement


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
