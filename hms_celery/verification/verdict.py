"""Verdicts and the outcome record every prover backend returns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What a backend concluded about a statement."""

    PROVED = "PROVED"  # holds for every value of every variable
    REFUTED = "REFUTED"  # a counterexample exists, re-checked by exact evaluation
    BOUNDED = "BOUNDED"  # holds for every size parameter ≤ bound that was tried: not a proof
    UNKNOWN = "UNKNOWN"  # the backend gave up (incomplete theory, resource limit)
    TIMEOUT = "TIMEOUT"  # the time limit ran out
    UNSUPPORTED = "UNSUPPORTED"  # outside this backend's fragment
    ERROR = "ERROR"  # bad input: the reason says what


@dataclass
class ProofOutcome:
    """The result of one proof attempt.

    ``counterexample`` maps every statement variable to a JSON value made of exact rationals
    written as strings (``"3/2"``, ``"-100"``): a scalar is a string, a vector ``Fin n → ℝ`` a
    list of strings, a function ``ℝ → ℝ`` ``{"entries": [[x, y], ...], "else": y}``.

    ``confirmed_by`` (PROVED, and a disagreement's ERROR): the other solver's check of the
    assertions found unsatisfiable — ``{"solver", "version", "status", "seconds",
    "budget_s"}``, status ``"confirmed"`` or ``"unconfirmed (timeout | unknown: … |
    unsupported: …)"`` (see :func:`~.confirm.confirm_proved`); None when not confirmed at all.

    ``proof`` (PROVED, and REFUTED when the counterexample needed a proof of its own): how the
    verdict was reached, with enough detail to re-check it — ``{"method": …, …}``, e.g.
    ``"sum-abstraction"`` with the reduced problem, ``"induction"`` with base case and step,
    ``"witness"`` with the witness term.  None for a direct solver check of the statement.
    """

    verdict: Verdict
    reason: str = ""
    counterexample: dict[str, Any] | None = None
    bound: int | None = None  # BOUNDED: every size parameter ≤ bound was checked
    backend: str = "z3"
    strategy: dict[str, Any] | None = None
    elapsed_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    confirmed_by: dict[str, Any] | None = None
    proof: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The outcome as JSON-ready data.  The nested values (already JSON data) are shared,
        not copied: ``dataclasses.asdict`` deep-copied them, which cost ~0.3 ms per proof."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["verdict"] = self.verdict.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProofOutcome:
        return cls(**{**data, "verdict": Verdict(data["verdict"])})


_FIELDS = tuple(f.name for f in fields(ProofOutcome))
