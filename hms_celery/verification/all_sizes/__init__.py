"""Proofs for every size: reduce a claim over a symbolic size to finitely many fixed problems.

A statement with a size parameter (``n`` in ``Fin n → ℝ``, an exponent ``Y``) cannot be
compiled for all values at once; :mod:`.prover` checks ``n = 0 … max_size`` and calls that
BOUNDED.  This module finds *sound arguments for all sizes*; each one ends in fixed-size
statements that the ordinary prover must find PROVED (and the other solver confirms):

* **Sum abstraction** (:func:`sum_abstraction`).  When the vectors enter only through sums
  ``∑ i, T(x i)`` of per-index terms, through per-index hypotheses ``∀ i, φ(x i)`` and through
  constraints on those sums, every reachable vector of the ``m`` distinct sums is a finite sum
  of points ``T(xᵢ)``, hence (Carathéodory's theorem for cones) a combination
  ``Σⱼ λⱼ·T(yⱼ)`` of at most ``m`` of those very points with ``λⱼ > 0``.  So the claim for
  all ``n`` (``n = 0`` included) follows from one problem over ``m`` points ``yⱼ`` and
  multipliers ``λⱼ ≥ 0``, in which ``φ(yⱼ)`` is assumed only where ``λⱼ > 0`` (a point that
  does not contribute need not exist: with ``n = 0`` there is none).  Hypotheses of any other
  shape are dropped, which only strengthens what is proved.  If the problem is satisfiable
  that is no counterexample: the caller falls back to the bounded search.
* **Induction on an exponent** (:func:`power_induction`).  When ``Y`` occurs only as the
  exponent of one base ``b``, replace ``b ^ Y`` by a fresh ``p`` and look for an invariant
  ``I(p)``: ``I(1)`` (Lean: ``b ^ 0 = 1``), ``I(p) → I(p * b)`` (``b ^ (Y+1) = b ^ Y * b``)
  and ``I(p) → claim(p)``, each under the hypotheses that do not mention ``Y``.  Candidates are
  the claim itself and the intervals ``0 ≤ p ≤ 1``, ``0 ≤ p``, ``1 ≤ p``, ``-1 ≤ p ≤ 1``.

Both work on the typed AST, after inlining the Moneyball ``def``s, so the fixed problems keep
Lean's semantics exactly (they are compiled like any statement).  Every reduction refuses
what it cannot justify (:class:`NotApplicable`): a size used anywhere else (``(n : ℝ)``, ``w 0``,
``Finset.range n``), an index used other than as a vector argument, nested sums, shadowed
names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ast as A
from ..ast_walk import RewriteRefused
from ..verdict import ProofOutcome, Verdict
from .argument import Argument, NotApplicable, Obligation, Runner
from .induction import power_induction, size_induction
from .sum_abstraction import sum_abstraction

__all__ = [
    "Argument",
    "NotApplicable",
    "Obligation",
    "Runner",
    "arguments_for",
    "prove_for_all_sizes",
]


def arguments_for(st: A.Statement, sizes: list[str]) -> tuple[list[Argument], list[str]]:
    """The candidate arguments for ``st`` (one size parameter), and why others do not apply."""
    notes: list[str] = []
    if len(sizes) != 1:
        return [], [f"{len(sizes)} size parameters (the methods handle one)"]
    (n,) = sizes
    out: list[Argument] = []
    for method, build in (
        ("sum-abstraction", lambda: [sum_abstraction(st, n)]),
        ("induction on the size", lambda: [size_induction(st, n)]),
        ("induction", lambda: power_induction(st, n)),
    ):
        try:
            out += build()
        except RewriteRefused as exc:
            notes.append(f"{method}: {exc}")
    return out, notes


def _combined_confirmation(outcomes: list[ProofOutcome]) -> dict[str, Any] | None:
    records = [o.confirmed_by for o in outcomes]
    if any(r is None for r in records):
        return None
    first = dict(records[0] or {})
    bad = [r for r in records if r and r.get("status") != "confirmed"]
    first["status"] = bad[0]["status"] if bad else "confirmed"
    first["seconds"] = round(sum(r.get("seconds") or 0 for r in records if r), 6)
    first["budget_s"] = round(sum(r.get("budget_s") or 0 for r in records if r), 3)
    first["obligations"] = len(records)
    return first


def prove_for_all_sizes(
    st: A.Statement, sizes: list[str], run: Runner, budget_s: float, clock: Callable[[], float]
) -> tuple[ProofOutcome | None, dict[str, Any]]:
    """Try each argument within ``budget_s``: a PROVED outcome for every size (with
    ``proof``), or an ERROR if two solvers disagreed on an obligation, or None; and a
    record of what was tried (for the outcome's stats)."""
    deadline = clock() + budget_s
    arguments, notes = arguments_for(st, sizes)
    tried: list[dict[str, Any]] = []
    record: dict[str, Any] = {"not_applicable": notes, "tried": tried}
    for arg in arguments:
        outcomes: list[ProofOutcome] = []
        entry: dict[str, Any] = {"method": arg.method, "obligations": []}
        tried.append(entry)
        for ob in arg.obligations:
            left = deadline - clock()
            if left <= 0:
                entry["result"] = "time budget spent"
                return None, record
            out = run(ob.statement, left)
            entry["obligations"].append({"role": ob.role, "verdict": out.verdict.value})
            if out.verdict is Verdict.ERROR and out.reason.startswith("solvers disagree"):
                out.reason = f"{arg.method} ({ob.role}): {out.reason}"
                return out, record
            if out.verdict is not Verdict.PROVED:
                entry["result"] = f"{ob.role}: {out.verdict.value} ({out.reason})"
                break
            outcomes.append(out)
        else:
            entry["result"] = "PROVED"
            n = sizes[0]
            proof = {"method": arg.method, **arg.detail}
            what = (
                f"Carathéodory reduction to {arg.detail['points']} point"
                f"{'' if arg.detail['points'] == 1 else 's'}"
                if arg.method == "sum-abstraction"
                else f"induction on {n} with invariant {arg.detail['invariant']}"
            )
            return (
                ProofOutcome(
                    Verdict.PROVED,
                    reason=f"holds for every {n}: {what} (proof.method {arg.method})",
                    confirmed_by=_combined_confirmation(outcomes),
                    proof=proof,
                    stats={"obligations": [o.stats for o in outcomes]},
                ),
                record,
            )
    return None, record
