"""Quantifier alternation: decide ``∃``, ``∀ … ∃`` and ``∃ … ∀`` claims, with evidence.

:func:`~.prover.prove` calls :func:`decide` before its ordinary check of a statement that has
no size parameters and a quantifier over an infinite type inside, and
:func:`recheck_model` on a model that exact evaluation could not re-check.  Each step is
sound on its own:

1. **Witness search** (``proof.method == "witness"``).  The goal is put in prenex form at
   its top (``∀ x, …`` and ``h → …`` join the variables and hypotheses; ``¬∃ x, p`` is
   ``∀ x, ¬p``, ``¬∀ x, p`` is ``∃ x, ¬p``); for its leading ``∃ x``, candidate terms ``t``
   are tried: terms solving an atom of the body for ``x`` where ``x`` occurs linearly
   (``a * x > b`` gives ``b / a``, then ``t + 1``, ``t - 1`` and midpoints of two solutions),
   small constants, a model value of the body.  ``t`` is an AST term over the outer
   variables (so Lean's semantics, ``x / 0 = 0``, truncated ℕ subtraction, hold for it as
   everywhere), and the *instance* — the statement with ``x := t`` — is proved by
   :func:`~.prover.prove` itself (and confirmed like any proof).  A proved instance proves
   the ``∃``: the witness is reported.
2. **Quantifier elimination** (``"quantifier-elimination"``): Z3's decision procedures for
   quantified arithmetic — ``nlqsat`` (nonlinear real) and ``qe`` then ``smt`` (linear real
   and integer) — on the compiled assertions.  In a Z3 attempt ``unsat`` is a proof,
   confirmed by cvc5 on the same assertions — except for quantified *nonlinear* ones, which
   cvc5 cannot decide (and on which it overruns its time limit by seconds): that proof says
   ``unconfirmed (unsupported: …)``.  ``sat`` only *suggests* a counterexample (in a cvc5
   attempt too), which step 3 must establish.
3. **No-witness refutation** (``"no-witness"``): the statement's variables are fixed at the
   model's exact values (or small values when the model is irrational); every hypothesis
   must then hold — by exact evaluation, or as a closed claim proved *and confirmed* — and
   the negated goal at those values, a closed claim such as ``¬∃ x : ℝ, x * x = -1``, must be
   proved by one solver and confirmed by the other.  Only then is the verdict REFUTED, with
   the values as counterexample and the closed claims (Lean text) in ``proof``; otherwise
   UNKNOWN with the reason.

The steps call ``prove`` recursively on smaller claims, at most :data:`MAX_DEPTH` deep, and
within the attempt's budget: each share of it is a fraction of ``timeout_s``, and a nested
``prove`` gets half of what is left of its share (its confirmation may take as long again).
"""

from __future__ import annotations

import time

import z3

from .. import ast as A
from .. import exact
from ..verdict import ProofOutcome, Verdict
from ..z3_terms import Unsupported
from .attempt import MAX_DEPTH, Attempt, Prover, depth
from .elimination import eliminate
from .prenex import WITNESS_TYPES, has_infinite_quantifier, peel
from .refutation import refute_at
from .witness import witness_search

__all__ = ["Attempt", "Prover", "decide", "recheck_model"]


def decide(statement: A.Statement, ctx: z3.Context, attempt: Attempt) -> ProofOutcome | None:
    """Steps 1–3 for a statement without size parameters; None when undecided (the ordinary
    check follows) or when the statement has no quantifier over an infinite type."""
    if depth() >= MAX_DEPTH or not has_infinite_quantifier(statement):
        return None
    try:
        peeled = peel(statement)
        if peeled.chain and peeled.chain[0].ty in WITNESS_TYPES:
            found = witness_search(peeled, attempt, ctx)
            if found is not None:
                return found
        return eliminate(statement, ctx, attempt)
    except (Unsupported, z3.Z3Exception, exact.EvalError, exact.TooLarge):
        return None  # not for these steps: the ordinary check reports the construct


def recheck_model(outcome: ProofOutcome, statement: A.Statement, attempt: Attempt) -> ProofOutcome:
    """Step 3 for a model of the ordinary check that exact evaluation could not decide
    (UNKNOWN with a counterexample that :func:`exact.check_counterexample` finds undecidable,
    not one over a size limit): REFUTED when no witness exists there, else ``outcome`` with
    the reason extended."""
    if (
        outcome.verdict is not Verdict.UNKNOWN
        or outcome.counterexample is None
        or depth() >= MAX_DEPTH
        or attempt.until(1.0) - time.monotonic() <= 0.05
    ):
        return outcome
    try:  # only the case `ok is None` of the prover's re-check (a ∀ over ℝ inside)
        if exact.check_counterexample(statement, outcome.counterexample) is not None:
            return outcome
        refuted = refute_at(statement, outcome.counterexample, attempt, attempt.until(1.0))
    except (Unsupported, exact.EvalError, exact.TooLarge):
        return outcome
    if refuted.verdict is Verdict.REFUTED:
        refuted.stats = outcome.stats
        return refuted
    outcome.reason = f"{outcome.reason}; {refuted.reason}"
    return outcome
