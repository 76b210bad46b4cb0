"""The single entry point of verification: :func:`prove` a statement, honestly.

``prove`` never raises.  It enumerates the size parameters (ℕ variables used as a ``Fin`` size,
a range bound or an exponent) level by level, 0 … ``max_size``; a size that is satisfiable
yields a counterexample, which becomes REFUTED only after the exact re-check of
:func:`exact.check_counterexample`.  A statement with size parameters is never PROVED: when
every size up to ``max_size`` is unsatisfiable the verdict is BOUNDED.

Two solvers decide the checks: ``backend="z3"`` (with a strategy) or ``backend="cvc5"`` (the
same compiled Z3 terms translated to cvc5: :mod:`.cvc5_backend`).  A PROVED verdict is
*confirmed* by the other solver (cvc5 for Z3, Z3 for cvc5) on exactly the assertions found
unsatisfiable (after preprocessing) — see :func:`~.confirm.confirm_proved`.  If the other
solver finds them satisfiable the verdict is ERROR ``"solvers disagree: …"``, never PROVED.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

import z3

from . import all_sizes, exact, quantifiers, z3_session
from . import ast as A
from .backends import get_backend
from .confirm import confirm_proved, confirm_setting
from .product_bounds import product_bounds
from .sizes import size_assignments, size_parameters
from .solvers import SolverBackend
from .strategy import Strategy, strategy_from_any
from .verdict import ProofOutcome, Verdict
from .z3_compile import compile_statement
from .z3_model import read_counterexample
from .z3_terms import CounterexampleError, Unsupported

#: Largest value tried for each size parameter (``n = 0 … DEFAULT_MAX_SIZE``); measured in
#: ``bench/strategies.py`` so that the whole Moneyball catalogue decides in a few seconds.
DEFAULT_MAX_SIZE = 20

BACKENDS = ("z3", "cvc5", "lean")

#: How verdict reasons name each solver.
_LABELS = {"z3": "Z3", "cvc5": "cvc5"}


def prove(
    statement: A.Statement,
    *,
    backend: str = "z3",
    strategy: Strategy | dict[str, Any] | str | None = None,
    timeout_s: float = 30.0,
    rlimit: int | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    confirm: bool | None = None,
) -> ProofOutcome:
    """Decide ``statement`` (``∀ variables, hypotheses → goal``); never raises.

    ``timeout_s`` bounds the whole call (split across sizes), ``rlimit`` bounds every Z3 check
    deterministically (cvc5: its own ``rlimit-per`` units), ``max_size`` is the largest size
    parameter tried.  ``backend`` is ``"z3"`` or ``"cvc5"`` (``strategy``'s preprocessing
    applies to both; its tactics to Z3 only).  ``confirm``: have the other solver confirm a
    PROVED verdict (None: the setting ``HMS_CONFIRM_PROVED``, default on).
    """
    start = time.monotonic()
    strategy_json: dict[str, Any] | None = None
    try:
        strat = strategy_from_any(strategy)
        strategy_json = strat.to_json()
        if backend in ("z3", "cvc5"):
            outcome = _prove_z3(
                statement,
                strat,
                start,
                float(timeout_s),
                rlimit,
                int(max_size),
                solver=backend,
                confirm=confirm_setting(confirm),
            )
        elif backend == "lean":
            outcome = _prove_lean()
        else:
            outcome = ProofOutcome(
                Verdict.ERROR,
                reason=f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}",
            )
    except ValueError as exc:
        outcome = ProofOutcome(Verdict.ERROR, reason=f"bad input: {exc}")
    except Exception as exc:
        outcome = ProofOutcome(Verdict.ERROR, reason=f"internal error: {type(exc).__name__}: {exc}")
    outcome.backend = backend
    outcome.strategy = strategy_json
    outcome.elapsed_s = round(time.monotonic() - start, 6)
    return outcome


def _prove_lean() -> ProofOutcome:
    found = shutil.which("lake") or shutil.which("lean")
    if not found:
        return ProofOutcome(
            Verdict.UNSUPPORTED,
            reason="Lean backend unavailable: lean/lake not found on PATH",
            backend="lean",
        )
    return ProofOutcome(
        Verdict.UNSUPPORTED,
        reason=f"Lean backend not implemented in this build (found {found})",
        backend="lean",
    )


def _prove_z3(
    statement: A.Statement,
    strat: Strategy,
    start: float,
    timeout_s: float,
    rlimit: int | None,
    max_size: int,
    *,
    solver: str = "z3",
    confirm: bool = False,
) -> ProofOutcome:
    """Enumerate the sizes; ``solver`` decides every check (``"z3"``: ``strat``'s Z3 solver)."""
    if max_size < 0:
        return ProofOutcome(Verdict.ERROR, reason=f"max_size must be ≥ 0, got {max_size}")
    if rlimit is not None and rlimit < 0:
        return ProofOutcome(Verdict.ERROR, reason=f"rlimit must be ≥ 0, got {rlimit}")
    try:
        sizes = size_parameters(statement)
    except Unsupported as exc:
        return ProofOutcome(Verdict.UNSUPPORTED, reason=str(exc))
    deadline = start + timeout_s
    checks: list[dict[str, Any]] = []
    stats: dict[str, Any] = {"size_parameters": sizes, "max_size": max_size, "checks": checks}
    if sizes:  # first a sound argument for every size; only without one, the bounded search
        for_all = _prove_all_sizes(
            statement, sizes, strat, solver, start, timeout_s, rlimit, confirm, stats
        )
        if for_all is not None:
            return for_all
    backend = None if solver == "z3" else get_backend(solver)
    try:
        with z3_session.watched_context(timeout_s, fresh=rlimit is not None) as ctx:

            def confirmation(outcome: ProofOutcome, check: z3_session.Check) -> ProofOutcome:
                return confirm_proved(
                    outcome,
                    check.assertions or [],
                    proved_by=solver,
                    start=start,
                    timeout_s=timeout_s,
                    rlimit=rlimit,
                    strategy=strat,
                    statement=statement,
                    compiled=check.compiled,
                )

            attempt = quantifiers.Attempt(
                strat, solver, start, timeout_s, rlimit, confirm, stats, prove=prove
            )
            if not sizes:  # ∃, ∀…∃, ∃…∀: a witness, quantifier elimination, no witness
                decided = quantifiers.decide(statement, ctx, attempt)
                if decided is not None:
                    return decided
            outcome = _enumerate(
                statement,
                strat,
                ctx,
                sizes,
                deadline,
                rlimit,
                max_size,
                stats,
                backend=backend,
                confirm=confirmation if confirm else None,
            )
            # a model that exact evaluation cannot re-check (a ∀ over ℝ inside): no witness?
            return quantifiers.recheck_model(outcome, statement, attempt)
    finally:
        total = sum(c.get("rlimit") or 0 for c in checks)
        stats["rlimit_count"] = total
        stats[f"{solver}_seconds"] = round(sum(c["seconds"] for c in checks), 6)


#: The share of an attempt's time the arguments for every size may use before the bounded
#: search (which finds small counterexamples) gets the rest.
ALL_SIZES_SHARE = 0.5


def _prove_all_sizes(
    statement: A.Statement,
    sizes: list[str],
    strat: Strategy,
    solver: str,
    start: float,
    timeout_s: float,
    rlimit: int | None,
    confirm: bool,
    stats: dict[str, Any],
) -> ProofOutcome | None:
    """PROVED for every size by an argument of :mod:`.all_sizes` (its fixed-size obligations
    proved by ``solver`` and confirmed as usual), a disagreement ERROR, or None."""

    def run(fixed: A.Statement, budget_s: float) -> ProofOutcome:
        return prove(
            fixed,
            backend=solver,
            strategy=strat,
            timeout_s=budget_s,
            rlimit=rlimit,
            max_size=0,
            confirm=confirm,
        )

    budget = max(start + timeout_s - time.monotonic(), 0.0) * ALL_SIZES_SHARE
    outcome, record = all_sizes.prove_for_all_sizes(statement, sizes, run, budget, time.monotonic)
    stats["all_sizes"] = record
    if outcome is not None:
        parts = outcome.stats.get("obligations", [])
        for key in ("rlimit_count", f"{solver}_seconds"):
            stats[key] = round(sum(part.get(key) or 0 for part in parts), 6)
        outcome.stats = {**stats, **outcome.stats}
    return outcome


def _enumerate(
    statement: A.Statement,
    strat: Strategy,
    ctx: z3.Context,
    sizes: list[str],
    deadline: float,
    rlimit: int | None,
    max_size: int,
    stats: dict[str, Any],
    *,
    backend: SolverBackend | None = None,
    confirm: Callable[[ProofOutcome, z3_session.Check], ProofOutcome] | None = None,
) -> ProofOutcome:
    """``backend`` decides every check (None: ``strat``'s Z3 solver); ``confirm`` is applied
    to a PROVED outcome (with the check that proved it)."""
    checks: list[dict[str, Any]] = stats["checks"]
    label = _LABELS.get(backend.name, backend.name) if backend is not None else "Z3"
    level_done = -1
    for level, assignments in size_assignments(sizes, max_size):
        for assign in assignments:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return z3_session.stopped(
                    sizes,
                    level_done,
                    assign,
                    Verdict.TIMEOUT,
                    "the time budget ran out",
                    stats,
                    solver=label,
                )
            try:
                check = _check(statement, assign, strat, ctx, remaining, rlimit, backend)
            except Unsupported as exc:
                return ProofOutcome(Verdict.UNSUPPORTED, reason=str(exc), stats=stats)
            checks.append(
                {
                    "sizes": assign,
                    "result": check.status,
                    "seconds": round(check.seconds, 6),
                    "rlimit": check.rlimit_used,
                    **({"reason": check.reason} if check.reason else {}),
                }
            )
            if check.status == "unsat":
                continue
            if check.status == "sat":
                stats["decided_at"] = assign
                return _refutation(statement, assign, check, stats, ctx)
            verdict = z3_session.classify_unknown(check, deadline, rlimit, solver=label)
            return z3_session.stopped(
                sizes, level_done, assign, verdict, check.reason, stats, solver=label
            )
        level_done = level
    if not sizes:
        stats["decided_at"] = {}
        proved = ProofOutcome(
            Verdict.PROVED, reason="hypotheses ∧ ¬goal is unsatisfiable", stats=stats
        )
        return proved if confirm is None else confirm(proved, check)
    names = ", ".join(sizes)
    return ProofOutcome(
        Verdict.BOUNDED,
        reason=f"holds for every {names} ≤ {max_size}; not a proof for all {names}",
        bound=max_size,
        stats=stats,
    )


def _check(
    statement: A.Statement,
    assign: dict[str, int],
    strat: Strategy,
    ctx: z3.Context,
    remaining_s: float,
    rlimit: int | None,
    backend: SolverBackend | None = None,
) -> z3_session.Check:
    t0 = time.monotonic()
    compiled = compile_statement(statement, assign, ctx)
    assertions = compiled.assertions
    if "product-bounds" in strat.preprocess:
        assertions = product_bounds(assertions)
    if backend is None:
        check = z3_session.solve(assertions, strat, ctx, t0, remaining_s, rlimit)
    else:
        left = remaining_s - (time.monotonic() - t0)
        answer = backend.check(assertions, timeout_s=left, rlimit=rlimit)
        check = z3_session.Check(
            answer.status,
            answer.reason,
            model=answer.values,
            rlimit_used=answer.rlimit_used,
            seconds=time.monotonic() - t0,
        )
    check.compiled = compiled
    check.assertions = assertions
    return check


def _refutation(
    statement: A.Statement,
    assign: dict[str, int],
    check: z3_session.Check,
    stats: dict[str, Any],
    ctx: z3.Context,
) -> ProofOutcome:
    where = f" at {z3_session.describe_sizes(assign)}" if assign else ""
    assert check.compiled is not None and check.model is not None
    try:
        cex = read_counterexample(check.compiled, check.model)
    except CounterexampleError as exc:
        return ProofOutcome(Verdict.UNKNOWN, reason=f"{exc}{where}", stats=stats)
    try:
        ok = exact.check_counterexample(statement, cex)
    except exact.TooLarge as exc:  # a size limit of limits.py: not checkable, not a bug
        return ProofOutcome(
            Verdict.UNKNOWN,
            reason=f"counterexample could not be re-checked exactly{where}: {exc}",
            counterexample=cex,
            stats=stats,
        )
    except exact.EvalError as exc:
        return ProofOutcome(
            Verdict.ERROR,
            reason=f"internal: counterexample could not be evaluated exactly: {exc}",
            counterexample=cex,
            stats=stats,
        )
    if ok is True:
        return ProofOutcome(
            Verdict.REFUTED,
            reason=f"counterexample{where}, re-checked by exact evaluation",
            counterexample=cex,
            stats=stats,
        )
    if ok is False:
        return ProofOutcome(
            Verdict.ERROR,
            reason=f"internal: model failed exact re-check{where}",
            counterexample=cex,
            stats=stats,
        )
    return ProofOutcome(
        Verdict.UNKNOWN,
        reason=(
            f"counterexample could not be re-checked exactly{where}: the formula quantifies "
            "over an infinite type inside"
        ),
        counterexample=cex,
        stats=stats,
    )
