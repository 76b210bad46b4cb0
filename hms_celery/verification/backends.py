"""The solver backends by name: where :func:`get_backend` finds Z3 and cvc5."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .cvc5_backend import Cvc5Backend
from .solvers import SolverBackend
from .z3_session import Z3Backend

#: Backend name → factory (keyword options: ``strategy``/``ctx`` for Z3; none needed for cvc5).
BACKENDS: dict[str, Callable[..., SolverBackend]] = {"z3": Z3Backend, "cvc5": Cvc5Backend}


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
