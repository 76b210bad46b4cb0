"""Step 1: witness search for a leading ``∃`` (the instance with ``x := t`` is proved)."""

from __future__ import annotations

import time

import z3

from .. import ast as A
from .. import ast_walk
from ..ast_walk import CaptureError
from ..bignum import parse_fraction
from ..verdict import ProofOutcome, Verdict
from ..z3_compile import compile_statement
from ..z3_model import read_counterexample
from ..z3_terms import CounterexampleError, Unsupported
from .attempt import (
    WITNESS_UNTIL,
    Attempt,
    prove_nested,
)
from .prenex import (
    Peeled,
    candidates,
    show_term,
)


def _model_values(peeled: Peeled, ctx: z3.Context, until: float) -> dict[str, A.Expr] | None:
    """Exact values of the chain that satisfy the body under the hypotheses, from one short
    Z3 check (a hint only: the instance is proved before anything is reported)."""
    probe = A.Statement(
        (*peeled.variables, *peeled.chain),
        peeled.hypotheses,
        A.Not(peeled.body),
        definitions=peeled.definitions,
    )
    compiled = compile_statement(probe, {}, ctx)
    solver = z3.Solver(ctx=ctx)
    budget_ms = int(min(0.5, max(until - time.monotonic(), 0.0) / 4) * 1000)
    if budget_ms <= 0:
        return None
    solver.set("timeout", budget_ms)
    solver.add(*compiled.assertions)
    try:
        if solver.check() != z3.sat:
            return None
        values = read_counterexample(compiled, solver.model())
    except (z3.Z3Exception, CounterexampleError):
        return None
    try:
        return {p.name: ast_walk.lit(parse_fraction(values[p.name]), p.ty) for p in peeled.chain}
    except (KeyError, TypeError, ValueError):
        return None


def witness_search(peeled: Peeled, attempt: Attempt, ctx: z3.Context) -> ProofOutcome | None:
    """Step 1: PROVED with a witness whose instance is proved, or None."""
    until = attempt.until(WITNESS_UNTIL)
    try:
        model = _model_values(peeled, ctx, until)
    except Unsupported:
        model = None
    cands = candidates(peeled, model)
    for k, cand in enumerate(cands):
        t0 = time.monotonic()
        if until - t0 <= 0.02:
            break
        try:
            instance = peeled.instance(cand)
        except CaptureError:
            continue
        shown = {k: show_term(v, peeled.definitions) for k, v in cand.items()}
        # a share of the time left, so that an undecided candidate leaves time for the next
        share = (until - t0) / min(len(cands) - k, 4)
        out = prove_nested(instance, attempt, t0 + share, confirm=attempt.confirm)
        step = "witness " + ", ".join(f"{k} = {v}" for k, v in shown.items())
        attempt.record(
            step, out.verdict.value, time.monotonic() - t0, out.stats.get("rlimit_count")
        )
        if out.verdict is not Verdict.PROVED:
            continue
        inner = out.proof or {}
        witness = {**shown, **(inner.get("witness") or {})}
        text = ", ".join(f"{k} = {v}" for k, v in witness.items())
        return ProofOutcome(
            Verdict.PROVED,
            reason=f"witness {text}: the instance is proved",
            stats=attempt.stats,
            confirmed_by=out.confirmed_by,
            proof={
                "method": "witness",
                "witness": witness,
                "instance": instance.source,
                "instance_proof": out.proof,
                "instance_reason": out.reason,
            },
        )
    return None
