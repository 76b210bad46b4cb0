"""The solver interface: where an SMT solver plugs into HMS.

The solver-neutral form of a problem is the list of Z3 terms HMS compiles: a typed statement
is compiled once, by :func:`~.z3_backend.compile_statement` (Lean semantics — ``x/0 = 0``,
truncated ℕ subtraction, Euclidean division — are encoded in the terms), and HMS's own sound
preprocessing (:func:`~.z3_backend.product_bounds`) rewrites those terms.  A solver backend
decides such a list: ``unsat`` (no model: a proof of the statement), ``sat`` (a model, whose
values :class:`ModelValues` reads back) or ``unknown`` (with a reason; ``"timeout"`` when the
budget ran out).  A construct the backend cannot express raises
:class:`~.z3_backend.Unsupported` — never a guess.

Two backends exist: :class:`Z3Backend` (the prover's own Z3 check, with a strategy) and
:class:`~.cvc5_backend.Cvc5Backend` (the terms translated to cvc5).  A third solver needs one
class with :class:`SolverBackend`'s shape and one line in :data:`BACKENDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import z3

from .strategy import Strategy, strategy_from_any
from .z3_backend import VarEncoding, Z3ModelValues

Status = Literal["unsat", "sat", "unknown"]


class ModelValues(Protocol):
    """Values of a model, in the ``ProofOutcome`` counterexample JSON format."""

    def scalar(self, term: z3.ExprRef, what: str) -> Any:
        """The value of the Z3 constant ``term``: ``"p/q"``/``"n"`` or a bool.  Raises
        :class:`~.z3_backend.CounterexampleError` if it has no exact rational value."""
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
        :class:`~.z3_backend.Unsupported` for a construct it cannot express."""
        ...


class Z3Backend:
    """Z3 with a :class:`~.strategy.Strategy`: exactly the prover's own check (``prover._solve``).

    The solver is built in the assertions' context (``ctx`` for an empty list)."""

    name = "z3"

    def __init__(
        self,
        strategy: Strategy | dict[str, Any] | str | None = None,
        ctx: z3.Context | None = None,
    ) -> None:
        self.strategy = strategy_from_any(strategy)
        self.ctx = ctx
        self.version = z3.get_version_string()

    def check(
        self, assertions: list[z3.BoolRef], *, timeout_s: float, rlimit: int | None = None
    ) -> SolverAnswer:
        from .prover import _solve

        ctx = assertions[0].ctx if assertions else (self.ctx or z3.main_ctx())
        t0 = time.monotonic()
        check = _solve(list(assertions), self.strategy, ctx, t0, timeout_s, rlimit)
        values = Z3ModelValues(check.model) if check.model is not None else None
        return SolverAnswer(
            cast(Status, check.status),  # _solve answers one of the three
            check.reason,
            check.seconds,
            check.rlimit_used,
            values=values,
            model=check.model,
        )


def _cvc5(**options: Any) -> SolverBackend:
    from .cvc5_backend import Cvc5Backend

    return Cvc5Backend(**options)


#: Backend name → factory (keyword options: ``strategy``/``ctx`` for Z3; none needed for cvc5).
BACKENDS: dict[str, Callable[..., SolverBackend]] = {"z3": Z3Backend, "cvc5": _cvc5}


def get_backend(name: str, **options: Any) -> SolverBackend:
    """A new backend ``name`` (:data:`BACKENDS`); :class:`ValueError` for an unknown name."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; known: {sorted(BACKENDS)}") from None
    return factory(**options)


def other_solver(name: str) -> str:
    """The solver that confirms ``name``'s proofs: cvc5 for Z3, Z3 for cvc5."""
    return "cvc5" if name == "z3" else "z3"
