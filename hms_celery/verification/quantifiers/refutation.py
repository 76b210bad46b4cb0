"""Step 3: no-witness refutation at exact values (closed claims proved and confirmed)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from fractions import Fraction
from typing import Any

from .. import ast as A
from .. import exact
from ..ast_walk import substitute
from ..printer import show_statement
from ..verdict import ProofOutcome, Verdict
from ..z3_terms import Unsupported
from .attempt import (
    LABELS,
    MAX_OUTER_CANDIDATES,
    REFUTE_UNTIL,
    Attempt,
    prove_nested,
)
from .prenex import (
    small_constants,
)

# --------------------------------------------------------------------------- step 3: no witness


def refute_from_model(
    statement: A.Statement, cex: dict[str, Any] | None, attempt: Attempt, by: str
) -> ProofOutcome:
    """REFUTED at the model's values or at small values; else UNKNOWN saying why."""
    until = attempt.until(REFUTE_UNTIL)
    tried: list[dict[str, Any]] = [cex] if cex is not None else []
    for extra in _outer_candidates(statement):
        if len(tried) >= MAX_OUTER_CANDIDATES:
            break
        if extra not in tried:
            tried.append(extra)
    why = "its model has no exact rational value" if cex is None else ""
    for values in tried:
        if until - time.monotonic() <= 0.05:
            why = why or "the time budget ran out"
            break
        out = refute_at(statement, values, attempt, until)
        if out.verdict is Verdict.REFUTED:
            return out
        why = why or out.reason
    return ProofOutcome(
        Verdict.UNKNOWN,
        reason=f"{by} finds the claim false, but no counterexample was established: {why}",
        counterexample=cex,
        stats=attempt.stats,
    )


def _outer_candidates(statement: A.Statement) -> Iterator[dict[str, Any]]:
    """Small values for the statement's scalar variables (every combination, smallest first)."""
    params = statement.variables
    if not params or not all(isinstance(p.ty, A.Scalar) for p in params):
        return
    pools = [[str(v.value) for v in small_constants(p.ty)] for p in params]
    for combo in itertools.islice(itertools.product(*pools), MAX_OUTER_CANDIDATES):
        yield dict(zip((p.name for p in params), combo, strict=True))


def _literal_for(ty: A.Type, value: Any) -> A.Expr:
    if isinstance(ty, A.PropT):
        return A.BoolLit(bool(value))
    if isinstance(ty, A.Scalar | A.FinT):
        return A.Lit(Fraction(value), ty)
    raise Unsupported(f"a value of type {ty} cannot be written as a literal")


def _exact_truth(e: A.Expr, definitions: Mapping[str, A.Definition]) -> bool | None:
    try:
        return bool(exact.evaluate(e, {}, definitions))
    except (exact.Undecidable, exact.TooLarge):
        return None


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in values.items()) or "(no variables)"


def refute_at(
    statement: A.Statement, cex: Mapping[str, Any], attempt: Attempt, until: float
) -> ProofOutcome:
    """Step 3 at the values ``cex`` (counterexample JSON): REFUTED when the hypotheses hold
    there and the negated goal is proved and confirmed, else UNKNOWN with the reason."""
    defs = statement.definitions
    where = _describe(cex)
    mapping: dict[str, A.Expr] = {}
    env: dict[str, Any] = {}
    try:
        for p in statement.variables:
            ty = substitute(p.ty, mapping)
            env[p.name] = exact.decode_value(ty, cex[p.name], env, p.name)
            mapping[p.name] = _literal_for(ty, env[p.name])
    except (KeyError, exact.EvalError, Unsupported) as exc:
        return _unknown(f"values {where} cannot be fixed in the statement: {exc}", cex, attempt)
    claims: list[tuple[str, A.Expr]] = []
    for h in statement.hypotheses:
        fixed = substitute(h, mapping)
        truth = _exact_truth(fixed, defs)
        if truth is False:
            return _unknown(f"a hypothesis is false at {where}", cex, attempt)
        if truth is None:
            claims.append(("hypothesis", fixed))
    goal = substitute(statement.goal, mapping)
    truth = _exact_truth(goal, defs)
    if truth is True:
        return _unknown(f"the goal holds at {where}", cex, attempt)
    if truth is False and not claims:
        return ProofOutcome(
            Verdict.REFUTED,
            reason=f"counterexample {where}, re-checked by exact evaluation",
            counterexample=dict(cex),
            stats=attempt.stats,
        )
    if truth is None:
        claims.append(("goal", A.Not(goal)))
    return _prove_obligations(statement, claims, dict(cex), attempt, until)


def _prove_obligations(
    statement: A.Statement,
    claims: list[tuple[str, A.Expr]],
    cex: dict[str, Any],
    attempt: Attempt,
    until: float,
) -> ProofOutcome:
    where = _describe(cex)
    records: list[dict[str, Any]] = []
    for role, claim in claims:
        closed = A.Statement((), (), claim, definitions=statement.definitions)
        closed = replace(closed, source=show_statement(closed))
        t0 = time.monotonic()
        out = prove_nested(closed, attempt, until, confirm=True)  # always confirmed: it refutes
        attempt.record(
            f"no-witness {role} at {where}",
            out.verdict.value,
            time.monotonic() - t0,
            out.stats.get("rlimit_count"),
        )
        status = (out.confirmed_by or {}).get("status", "not confirmed")
        records.append(
            {
                "role": role,
                "claim": closed.source,
                "verdict": out.verdict.value,
                "reason": out.reason,
                "proof": out.proof,
                "confirmed_by": out.confirmed_by,
            }
        )
        if out.verdict is not Verdict.PROVED:
            return _unknown(
                f"at {where}, {closed.source} is {out.verdict.value} ({out.reason})", cex, attempt
            )
        if status != "confirmed":
            return _unknown(f"at {where}, {closed.source} is proved but {status}", cex, attempt)
    goal = next((r for r in records if r["role"] == "goal"), None)
    proof: dict[str, Any] = {"method": "no-witness", "outer": cex, "obligations": records}
    if goal is not None:
        proof["obligation"] = goal["claim"]
        proof["confirmed_by"] = goal["confirmed_by"]
        confirmer = LABELS.get((goal["confirmed_by"] or {}).get("solver"), "the other solver")
        at = f" at {where}" if cex else ""
        reason = (
            f"no witness{at}: {goal['claim']} is proved by {LABELS[attempt.solver]} and "
            f"confirmed by {confirmer}"
        )
    else:
        reason = f"counterexample {where}: its hypotheses are proved, its goal fails exactly"
    return ProofOutcome(
        Verdict.REFUTED, reason=reason, counterexample=cex, stats=attempt.stats, proof=proof
    )


def _unknown(why: str, cex: Mapping[str, Any], attempt: Attempt) -> ProofOutcome:
    return ProofOutcome(
        Verdict.UNKNOWN,
        reason=f"no-witness check: {why}",
        counterexample=dict(cex),
        stats=attempt.stats,
    )
