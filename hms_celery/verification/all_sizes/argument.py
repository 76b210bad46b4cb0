"""What an argument for every size is: fixed-size obligations and the record of the proof."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ast as A
from ..ast_walk import RewriteRefused
from ..verdict import ProofOutcome

#: How a fixed statement is proved: ``run(statement, budget_s)`` → its outcome (the caller's
#: backend, strategy, limits and confirmation).
Runner = Callable[[A.Statement, float], ProofOutcome]


class NotApplicable(RewriteRefused):
    """The method cannot justify this claim; the message says why."""


@dataclass(frozen=True)
class Obligation:
    """One fixed-size statement a method needs PROVED."""

    role: str  # "reduced" | "base" | "step" | "conclusion"
    statement: A.Statement


@dataclass(frozen=True)
class Argument:
    """A candidate argument for all sizes: the obligations and what to record if they hold."""

    method: str
    detail: dict[str, Any]
    obligations: tuple[Obligation, ...]
