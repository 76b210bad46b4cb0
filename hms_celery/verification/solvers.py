"""The solver interface: where an SMT solver plugs into HMS.

The solver-neutral form of a problem is the list of Z3 terms HMS compiles: a typed statement
is compiled once, by :func:`~.z3_compile.compile_statement` (Lean semantics — ``x/0 = 0``,
truncated ℕ subtraction, Euclidean division — are encoded in the terms), and HMS's own sound
preprocessing (:func:`~.product_bounds.product_bounds`) rewrites those terms.  A solver backend
decides such a list: ``unsat`` (no model: a proof of the statement), ``sat`` (a model, whose
values :class:`ModelValues` reads back) or ``unknown`` (with a reason; ``"timeout"`` when the
budget ran out).  A construct the backend cannot express raises
:class:`~.z3_terms.Unsupported` — never a guess.

Two backends exist: :class:`~.z3_session.Z3Backend` (the prover's own Z3 check, with a
strategy) and :class:`~.cvc5_backend.Cvc5Backend` (the terms translated to cvc5).  A third
solver needs one class with :class:`SolverBackend`'s shape and one line in
:data:`.backends.BACKENDS`.  This module is only the interface: it imports no backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import z3

from .z3_terms import VarEncoding

Status = Literal["unsat", "sat", "unknown"]


class ModelValues(Protocol):
    """Values of a model, in the ``ProofOutcome`` counterexample JSON format."""

    def scalar(self, term: z3.ExprRef, what: str) -> Any:
        """The value of the Z3 constant ``term``: ``"p/q"``/``"n"`` or a bool.  Raises
        :class:`~.z3_terms.CounterexampleError` if it has no exact rational value."""
        ...

    def function(self, enc: VarEncoding, what: str) -> dict[str, Any]:
        """The table ``{"entries": [[x…, y], …], "else": y}`` of the function ``enc.term``."""
        ...


@dataclass
class SolverAnswer:
    """One solver's answer about one list of assertions."""

    status: Status
    reason: str = ""  # for "unknown": why ("timeout", "resource limit exhausted", …)
    seconds: float = 0.0
    rlimit_used: int | None = None
    values: ModelValues | None = None  # for "sat"
    model: Any = None  # the solver's own model object, if it has one (Z3: a ModelRef)


class SolverBackend(Protocol):
    """A solver that decides a list of (Z3) assertions."""

    name: str
    version: str

    def check(
        self, assertions: list[z3.BoolRef], *, timeout_s: float, rlimit: int | None = None
    ) -> SolverAnswer:
        """Decide ``assertions`` within ``timeout_s`` seconds (``rlimit``: the solver's own
        deterministic resource budget, if it has one).  Raises
        :class:`~.z3_terms.Unsupported` for a construct it cannot express."""
        ...
