"""The single entry point of verification: :func:`prove` a statement, honestly.

``prove`` never raises.  It enumerates the size parameters (ℕ variables used as a ``Fin`` size,
a range bound or an exponent) level by level, 0 … ``max_size``; a size that is satisfiable
yields a counterexample, which becomes REFUTED only after the exact re-check of
:func:`exact.check_counterexample`.  A statement with size parameters is never PROVED: when
every size up to ``max_size`` is unsatisfiable the verdict is BOUNDED.

Two solvers decide the checks: ``backend="z3"`` (with a strategy) or ``backend="cvc5"`` (the
same compiled Z3 terms translated to cvc5: :mod:`.cvc5_backend`).  A PROVED verdict is
*confirmed* by the other solver (cvc5 for Z3, Z3 for cvc5) on exactly the assertions found
unsatisfiable (after preprocessing) — see :func:`confirm_proved`.  If the other solver finds
them satisfiable the verdict is ERROR ``"solvers disagree: …"``, never PROVED.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import z3

from . import all_sizes, exact, quantifiers
from . import ast as A
from .solvers import SolverAnswer, SolverBackend, get_backend, other_solver
from .strategy import Strategy, strategy_from_any
from .verdict import ProofOutcome, Verdict
from .z3_backend import (
    Compiled,
    CounterexampleError,
    Unsupported,
    compile_statement,
    product_bounds,
    read_counterexample,
    size_assignments,
    size_parameters,
)

#: Largest value tried for each size parameter (``n = 0 … DEFAULT_MAX_SIZE``); measured in
#: ``bench/strategies.py`` so that the whole Moneyball catalogue decides in a few seconds.
DEFAULT_MAX_SIZE = 20

BACKENDS = ("z3", "cvc5", "lean")

#: The confirmation of a PROVED verdict gets the time left of the attempt's budget, but at
#: least this many seconds (and never more than the whole budget ``timeout_s``): an attempt
#: takes at most ``timeout_s + CONFIRM_MIN_S``.
CONFIRM_MIN_S = 1.0

#: How verdict reasons name each solver.
_LABELS = {"z3": "Z3", "cvc5": "cvc5"}

#: Grace period after the budget before the watchdog interrupts Z3 (its own timeout first).
_WATCHDOG_GRACE_S = 0.5


@dataclass
class _Check:
    """The result of one Z3 check (one size assignment)."""

    status: str  # "unsat" | "sat" | "unknown"
    reason: str = ""
    model: Any = None  # a z3.ModelRef, or another solver's ModelValues
    rlimit_used: int | None = None
    seconds: float = 0.0
    compiled: Compiled | None = None
    assertions: list[z3.BoolRef] | None = None  # what was checked (after preprocessing)


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


def _describe(assign: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in assign.items()) or "the statement"


_contexts = threading.local()


def _thread_context() -> z3.Context:
    """This thread's Z3 context, created once: making and deleting a context costs ~2 ms,
    more than a small proof. Terms are reference-counted, so each call's are freed when it
    returns; a context is never shared between threads."""
    ctx = getattr(_contexts, "ctx", None)
    if ctx is None:
        ctx = _contexts.ctx = z3.Context()
    return ctx


@contextmanager
def _watched_context(timeout_s: float, *, fresh: bool = False) -> Iterator[z3.Context]:
    """This thread's Z3 context, interrupted by a watchdog if Z3 overruns ``timeout_s`` (plus
    a grace period: Z3's own timeout should fire first); an interrupted context is dropped.

    ``fresh``: a new context for this call only.  Z3's search depends on the terms a context
    already holds (their ids order its heuristics), so only a fresh context makes a run under
    a deterministic ``rlimit`` budget give the same answer every time."""
    ctx = z3.Context() if fresh else _thread_context()
    fired = threading.Event()

    def _interrupt() -> None:
        fired.set()
        ctx.interrupt()

    watchdog = threading.Timer(max(timeout_s, 0.0) + _WATCHDOG_GRACE_S, _interrupt)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield ctx
    finally:
        watchdog.cancel()
        if fired.is_set() and not fresh:  # an interrupted context is not reused
            _contexts.ctx = None


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
        with _watched_context(timeout_s, fresh=rlimit is not None) as ctx:

            def confirmation(outcome: ProofOutcome, check: _Check) -> ProofOutcome:
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

            attempt = quantifiers.Attempt(strat, solver, start, timeout_s, rlimit, confirm, stats)
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
    confirm: Callable[[ProofOutcome, _Check], ProofOutcome] | None = None,
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
                return _stopped(
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
            verdict = _classify_unknown(check, deadline, rlimit, solver=label)
            return _stopped(sizes, level_done, assign, verdict, check.reason, stats, solver=label)
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


def _stopped(
    sizes: list[str],
    level_done: int,
    assign: dict[str, int],
    verdict: Verdict,
    why: str,
    stats: dict[str, Any],
    *,
    solver: str = "Z3",
) -> ProofOutcome:
    what = "timed out" if verdict is Verdict.TIMEOUT else "undecided"
    if sizes and level_done >= 0:
        names = ", ".join(sizes)
        return ProofOutcome(
            Verdict.BOUNDED,
            reason=(
                f"holds for every {names} ≤ {level_done}; {_describe(assign)} {what} ({why}); "
                f"not a proof for all {names}"
            ),
            bound=level_done,
            stats=stats,
        )
    where = f" at {_describe(assign)}" if sizes else ""
    return ProofOutcome(verdict, reason=f"{solver} {what}{where}: {why}", stats=stats)


def _classify_unknown(
    check: _Check, deadline: float, rlimit: int | None, *, solver: str = "Z3"
) -> Verdict:
    reason = check.reason.lower()
    if rlimit and (
        "resource" in reason or (check.rlimit_used is not None and check.rlimit_used >= rlimit)
    ):
        check.reason = f"resource limit exhausted (rlimit {rlimit}; {solver}: {check.reason})"
        return Verdict.UNKNOWN
    if time.monotonic() >= deadline - 0.05 or reason in ("timeout", "canceled", "interrupted"):
        return Verdict.TIMEOUT
    return Verdict.UNKNOWN


def _check(
    statement: A.Statement,
    assign: dict[str, int],
    strat: Strategy,
    ctx: z3.Context,
    remaining_s: float,
    rlimit: int | None,
    backend: SolverBackend | None = None,
) -> _Check:
    t0 = time.monotonic()
    compiled = compile_statement(statement, assign, ctx)
    assertions = compiled.assertions
    if "product-bounds" in strat.preprocess:
        assertions = product_bounds(assertions)
    if backend is None:
        check = _solve(assertions, strat, ctx, t0, remaining_s, rlimit)
    else:
        left = remaining_s - (time.monotonic() - t0)
        answer = backend.check(assertions, timeout_s=left, rlimit=rlimit)
        check = _Check(
            answer.status,
            answer.reason,
            model=answer.values,
            rlimit_used=answer.rlimit_used,
            seconds=time.monotonic() - t0,
        )
    check.compiled = compiled
    check.assertions = assertions
    return check


def _solve(
    assertions: list[z3.BoolRef],
    strat: Strategy,
    ctx: z3.Context,
    t0: float,
    remaining_s: float,
    rlimit: int | None,
) -> _Check:
    """One check of ``assertions`` with ``strat``'s solver (no preprocessing): the time left
    is ``remaining_s`` from ``t0``, which also starts the check's ``seconds``."""
    solver = strat.build(ctx)
    remaining_ms = int((remaining_s - (time.monotonic() - t0)) * 1000)
    if remaining_ms <= 0:
        return _Check("unknown", "timeout", seconds=time.monotonic() - t0)
    solver.set("timeout", remaining_ms)
    if rlimit:
        solver.set("rlimit", int(rlimit))
    solver.add(*assertions)
    before = _rlimit_count(solver) or 0  # the context's counter is cumulative
    try:
        result = solver.check()
        reason = solver.reason_unknown() if result == z3.unknown else ""
    except z3.Z3Exception as exc:
        result, reason = z3.unknown, f"Z3 exception: {exc}"
    after = _rlimit_count(solver)
    used = None if after is None else after - before
    seconds = time.monotonic() - t0
    if result == z3.unsat:
        if not strat.sound_for_unsat:
            return _Check(
                "unknown",
                "unsat from an under-approximating tactic is not a proof",
                rlimit_used=used,
                seconds=seconds,
            )
        return _Check("unsat", rlimit_used=used, seconds=seconds)
    if result == z3.sat:
        return _Check("sat", model=solver.model(), rlimit_used=used, seconds=seconds)
    return _Check("unknown", reason or "unknown", rlimit_used=used, seconds=seconds)


def _rlimit_count(solver: z3.Solver) -> int | None:
    try:
        st = solver.statistics()
        names = list(st.keys())
        if "rlimit count" in names:
            return int(st.get_key_value("rlimit count"))
    except z3.Z3Exception:
        return None
    return None


def _refutation(
    statement: A.Statement,
    assign: dict[str, int],
    check: _Check,
    stats: dict[str, Any],
    ctx: z3.Context,
) -> ProofOutcome:
    where = f" at {_describe(assign)}" if assign else ""
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


# --------------------------------------------------------------------------- confirmation


def confirm_setting(confirm: bool | None) -> bool:
    """``confirm``, or the setting ``HMS_CONFIRM_PROVED`` when it is None."""
    if confirm is not None:
        return bool(confirm)
    from hms_celery.settings import get_settings

    return get_settings().confirm_proved


def _unconfirmed(answer: SolverAnswer) -> str:
    reason = answer.reason or "unknown"
    if reason.lower() in ("timeout", "canceled", "interrupted"):
        return "unconfirmed (timeout)"
    return f"unconfirmed (unknown: {reason})"


def confirm_proved(
    outcome: ProofOutcome,
    assertions: list[z3.BoolRef],
    *,
    proved_by: str,
    start: float,
    timeout_s: float,
    rlimit: int | None = None,
    strategy: Strategy | None = None,
    statement: A.Statement | None = None,
    compiled: Compiled | None = None,
    confirmer: SolverBackend | None = None,
) -> ProofOutcome:
    """Have the other solver check ``assertions``, which ``proved_by`` found unsatisfiable
    (the very assertions it checked, preprocessing included), and record its answer in
    ``outcome.confirmed_by``: ``{"solver", "version", "status", "seconds", "budget_s"}`` with
    status ``confirmed``, ``unconfirmed (timeout)``, ``unconfirmed (unknown: …)`` or
    ``unconfirmed (unsupported: …)``.  An unconfirmed proof stays PROVED: it is one solver's
    proof, as before confirmation existed.

    If the other solver finds the assertions *satisfiable*, the result is an ERROR outcome
    whose reason starts ``"solvers disagree:"`` and names both answers (``stats`` holds them
    under ``"disagreement"``; a statement's counterexample, if the model can be read, is
    attached with the outcome of its exact re-check) — never PROVED.

    The budget is the time left of the attempt (``start + timeout_s - now``), but at least
    :data:`CONFIRM_MIN_S` and at most ``timeout_s``.  ``rlimit`` is passed to a confirming Z3
    only (it is a Z3 budget); ``confirmer`` replaces the other solver (tests)."""
    name = confirmer.name if confirmer is not None else other_solver(proved_by)
    budget = min(timeout_s, max(start + timeout_s - time.monotonic(), CONFIRM_MIN_S))
    record: dict[str, Any] = {"solver": name, "version": None, "budget_s": round(budget, 3)}
    t0 = time.monotonic()
    try:
        solver = confirmer or get_backend(name, **({"strategy": strategy} if name == "z3" else {}))
        record["version"] = solver.version
        answer = solver.check(assertions, timeout_s=budget, rlimit=rlimit if name == "z3" else None)
    except Unsupported as exc:
        answer = None
        record["status"] = f"unconfirmed (unsupported: {exc})"
    except Exception as exc:  # the other solver failing must not lose the proof
        answer = None
        record["status"] = f"unconfirmed (unknown: {type(exc).__name__}: {exc})"
    record["seconds"] = round(answer.seconds if answer else time.monotonic() - t0, 6)
    if answer is not None:
        if answer.status == "unsat":
            record["status"] = "confirmed"
        elif answer.status == "unknown":
            record["status"] = _unconfirmed(answer)
        else:
            return _disagreement(outcome, record, answer, proved_by, statement, compiled)
    outcome.confirmed_by = record
    return outcome


def _disagreement(
    outcome: ProofOutcome,
    record: dict[str, Any],
    answer: SolverAnswer,
    proved_by: str,
    statement: A.Statement | None,
    compiled: Compiled | None,
) -> ProofOutcome:
    name = record["solver"]
    proved_version = z3.get_version_string() if proved_by == "z3" else None
    if proved_by != "z3":
        from .cvc5_backend import cvc5_version

        proved_version = cvc5_version()
    record["status"] = "disagrees (sat)"
    cex: dict[str, Any] | None = None
    note = ""
    if statement is not None and compiled is not None and answer.values is not None:
        try:
            cex = read_counterexample(compiled, answer.values)
            ok = exact.check_counterexample(statement, cex)
            note = {
                True: f"; {name}'s model passes the exact re-check",
                False: f"; {name}'s model fails the exact re-check",
                None: f"; {name}'s model cannot be re-checked exactly",
            }[ok]
        except Exception as exc:  # the model is evidence only: never let it crash the verdict
            note = f"; {name}'s model cannot be read ({exc})"
    disagreement = {
        "unsat": {"solver": proved_by, "version": proved_version},
        "sat": {"solver": name, "version": record["version"], "seconds": record["seconds"]},
    }
    return ProofOutcome(
        Verdict.ERROR,
        reason=(
            f"solvers disagree: {proved_by} {proved_version} says unsat (a proof), "
            f"{name} {record['version']} says sat (a model){note}; not PROVED"
        ),
        counterexample=cex,
        stats={**outcome.stats, "disagreement": disagreement},
        confirmed_by=record,
    )
