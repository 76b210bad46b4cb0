"""Step 2: Z3's quantifier elimination (``nlqsat``, ``qe`` then ``smt``) on the compiled
assertions; its model only suggests a counterexample, for step 3."""

from __future__ import annotations

import time
from typing import Any

import z3

from .. import ast as A
from ..confirm import confirm_proved
from ..cvc5_backend import cvc5_version
from ..verdict import ProofOutcome, Verdict
from ..z3_compile import compile_statement
from ..z3_model import read_counterexample
from ..z3_session import solve
from ..z3_terms import CounterexampleError
from .attempt import (
    ELIMINATE_UNTIL,
    NLQSAT,
    QE_SMT,
    Attempt,
)
from .refutation import refute_from_model

# --------------------------------------------------------------------------- step 2: elimination


def _has_quantifier(terms: list[z3.ExprRef]) -> bool:
    seen: set[int] = set()
    todo: list[z3.ExprRef] = list(terms)
    while todo:
        t = todo.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_quantifier(t):
            return True
        if z3.is_app(t):
            todo.extend(t.children())
    return False


def _nonlinear(terms: list[z3.ExprRef]) -> bool:
    """Is there a product of two non-numerals, or a division, modulus or power by one?"""

    def numeral(t: z3.ExprRef) -> bool:
        return z3.is_rational_value(t) or z3.is_int_value(t) or z3.is_algebraic_value(t)

    seen: set[int] = set()
    todo: list[z3.ExprRef] = list(terms)
    while todo:
        t = todo.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_quantifier(t):
            todo.append(t.body())
            continue
        if not z3.is_app(t):
            continue
        kids = t.children()
        if z3.is_mul(t) and sum(not numeral(k) for k in kids) >= 2:
            return True
        if (z3.is_div(t) or z3.is_idiv(t) or z3.is_mod(t) or z3.is_app_of(t, z3.Z3_OP_POWER)) and (
            not numeral(kids[-1])
        ):
            return True
        todo.extend(kids)
    return False


def _not_confirmed(status: str) -> dict[str, Any]:
    return {
        "solver": "cvc5",
        "version": cvc5_version(),
        "budget_s": 0.0,
        "seconds": 0.0,
        "status": status,
    }


def eliminate(statement: A.Statement, ctx: z3.Context, attempt: Attempt) -> ProofOutcome | None:
    """Step 2 (and 3 on its model): PROVED, REFUTED, UNKNOWN with the reason, or None.

    Z3 eliminates the quantifiers whichever solver the attempt uses; for cvc5 its model is a
    hint for step 3 only (whose claims cvc5 proves), and its proof is not used."""
    compiled = compile_statement(statement, {}, ctx)
    assertions = compiled.assertions
    if not _has_quantifier(assertions):
        return None
    until = attempt.until(ELIMINATE_UNTIL)
    for i, strat in enumerate((NLQSAT, QE_SMT)):
        left = until - time.monotonic()
        if left <= 0.02:
            return None
        share = left / 2 if i == 0 else left  # nlqsat first, but never all of the time
        t0 = time.monotonic()
        check = solve(list(assertions), strat, ctx, t0, share, attempt.rlimit)
        attempt.record(
            f"quantifier elimination ({strat.describe()})",
            check.status,
            check.seconds,
            check.rlimit_used,
        )
        if check.status == "unsat":
            if attempt.solver != "z3":  # Z3's proof is not the requested solver's proof
                return None
            proved = ProofOutcome(
                Verdict.PROVED,
                reason=f"quantifier elimination ({strat.describe()}): hypotheses ∧ ¬goal is "
                "unsatisfiable",
                stats=attempt.stats,
                proof={"method": "quantifier-elimination", "strategy": strat.to_json()},
            )
            if not attempt.confirm:
                return proved
            if strat is NLQSAT and _nonlinear(assertions):
                # cvc5 has no decision procedure here, and overruns its time limit on such
                # problems by seconds: this proof is Z3's alone, and says so.
                proved.confirmed_by = _not_confirmed(
                    "unconfirmed (unsupported: cvc5 does not decide quantified nonlinear real "
                    "arithmetic)"
                )
                return proved
            return confirm_proved(
                proved,
                assertions,
                proved_by="z3",
                start=attempt.start,
                timeout_s=attempt.timeout_s,
                rlimit=attempt.rlimit,
                strategy=attempt.strategy,
                statement=statement,
                compiled=compiled,
            )
        if check.status == "sat":
            try:
                cex: dict[str, Any] | None = read_counterexample(compiled, check.model)
            except CounterexampleError:
                cex = None
            return refute_from_model(statement, cex, attempt, strat.describe())
    return None
