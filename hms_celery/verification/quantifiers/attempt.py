"""The proof attempt the quantifier steps run in, its budget shares, and nested proofs."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import ast as A
from ..strategy import Strategy, TacticStep
from ..verdict import ProofOutcome

#: Nested ``prove`` calls (a witness instance, an obligation) at most this deep.
MAX_DEPTH = 3
#: Candidate witnesses tried for one ``∃``.
MAX_CANDIDATES = 14
#: Candidate counterexamples tried when the model of step 2 cannot be used as it is.
MAX_OUTER_CANDIDATES = 6
#: Where each step must end, as a fraction of the attempt's ``timeout_s`` from its start; the
#: ordinary check gets the rest (an undecided step leaves it at least 10 %).
WITNESS_UNTIL, ELIMINATE_UNTIL, REFUTE_UNTIL = 0.3, 0.6, 0.9

#: Z3 decision procedures for quantified arithmetic (both on ``strategy.SOUND_TACTICS``).
NLQSAT = Strategy(name="nlqsat", decider=TacticStep("nlqsat"))
QE_SMT = Strategy(
    name="qe-smt", pipeline=(TacticStep("simplify"), TacticStep("qe")), decider=TacticStep("smt")
)

LABELS: dict[str | None, str] = {"z3": "Z3", "cvc5": "cvc5"}  # looked up by optional names

_depth: contextvars.ContextVar[int] = contextvars.ContextVar("hms_quantifier_depth", default=0)


class Prover(Protocol):
    """How the steps prove a smaller claim: :func:`~.prover.prove` (passed in by the prover,
    which calls this module: a nested claim goes through the whole prover again)."""

    def __call__(
        self,
        statement: A.Statement,
        *,
        backend: str,
        strategy: Strategy,
        timeout_s: float,
        rlimit: int | None,
        confirm: bool | None,
    ) -> ProofOutcome:
        """Decide ``statement``; never raises."""
        ...


@dataclass
class Attempt:
    """The proof attempt the steps run in: its solver, strategy, budget and records, and the
    prover that decides its nested claims."""

    strategy: Strategy
    solver: str  # "z3" | "cvc5": the solver that decides every nested claim
    start: float
    timeout_s: float
    rlimit: int | None
    confirm: bool
    stats: dict[str, Any] = field(default_factory=dict)
    prove: Prover = field(kw_only=True)

    def until(self, share: float) -> float:
        """The monotonic time at which the step ending at ``share`` of the budget must end."""
        return self.start + share * self.timeout_s

    def record(self, step: str, result: str, seconds: float, rlimit: int | None = None) -> None:
        """One entry of ``stats["checks"]`` (the prover sums their seconds and rlimit)."""
        self.stats.setdefault("checks", []).append(
            {
                "sizes": {},
                "step": step,
                "result": result,
                "seconds": round(seconds, 6),
                "rlimit": rlimit,
            }
        )


def depth() -> int:
    """How many nested ``prove`` calls of these steps the current call is inside."""
    return _depth.get()


@contextmanager
def _nested() -> Iterator[None]:
    token = _depth.set(_depth.get() + 1)
    try:
        yield
    finally:
        _depth.reset(token)


def prove_nested(statement: A.Statement, attempt: Attempt, until: float, *, confirm: bool) -> Any:
    """``prove`` a smaller claim with half the time left until ``until`` (its confirmation
    may take as long again), one level deeper."""
    left = max(until - time.monotonic(), 0.0) / 2
    with _nested():
        return attempt.prove(
            statement,
            backend=attempt.solver,
            strategy=attempt.strategy,
            timeout_s=max(left, 0.01),
            rlimit=attempt.rlimit,
            confirm=confirm,
        )
