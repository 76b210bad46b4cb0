"""SMT-LIB 2 input: decide a benchmark problem with the same strategies as a statement.

An SMT-LIB problem asks whether its assertions are *satisfiable*.  HMS reads it as the claim
"the assertions are unsatisfiable" — the form the Lean path checks too (hypotheses ∧ ¬goal):

* ``unsat`` → PROVED (reason ``"unsat"``);
* ``sat`` → REFUTED, the model being the counterexample: every constant occurring in the
  assertions (integers and reals as exact rationals ``"p/q"``, booleans as ``true``/``false``,
  other sorts and uninterpreted functions as Z3 prints them).  The model is re-checked first
  (:mod:`.smtlib_model`): an assertion that evaluates to true under it holds, one that
  evaluates to false is ERROR ``"internal: model failed re-check"``, and one that evaluates to
  neither (a quantified assertion) must be *proved* as a closed obligation — the model
  substituted, validity proved by Z3 and confirmed by cvc5 — recorded in ``outcome.proof``
  (``"method": "model-check"``).  An irrational value, or an obligation that is not proved,
  gives UNKNOWN (TIMEOUT when its time ran out);
* ``unknown`` → UNKNOWN or TIMEOUT, classified as for statements;

Never weaker than Z3 run directly: unless the strategy *is* Z3's plain ``Solver()`` on the
assertions as read, the problem is decided in two slices — the strategy (on its preprocessed
assertions) and the plain solver (on the assertions as read: product-bounds and tactics cannot
stand in its way) — each with half the time budget, a slice that ends early leaving its time
to the next.  The plain solver goes first on a problem with quantifiers (Z3 picks its
quantifier procedures itself; HMS's strategies are built for quantifier-free arithmetic), last
otherwise.  ``stats["checks"]`` records each slice (``"slice": "strategy" | "plain"``).

``backend="cvc5"`` decides the assertions as read with cvc5 (:mod:`.cvc5_backend`'s
translation; a construct it cannot express — a recursive function, strings, ``^`` — gives
UNSUPPORTED naming it); Z3's plain solver confirms an ``unsat``, and a ``sat`` model is
re-checked as above.
* text that does not parse, or a command HMS refuses → ERROR naming the command and its
  ``line:column``.

The text is pure data: :mod:`.smtlib_reader` reads it first (HMS's own SMT-LIB 2.6 reader)
and refuses everything but an allow-list — declarations, definitions, ``assert``,
``set-logic``, ``set-info``, ``push``/``pop``, ``check-sat``, the queries ``get-model``,
``get-value``, ``eval``, ``get-info`` after it (accepted and ignored), ``exit``.  Every
``set-option``, ``include``, ``echo`` and unknown command is an ERROR, as are NUL bytes and
other non-text.  Assertions made in a popped ``push`` scope are not part of the problem; the
problem is what is asserted at the ``check-sat``.  Only the declarations, definitions,
assertions and the logic are then given to Z3's parser (``z3.parse_smt2_string``), re-emitted
from the reader's tokens, in a fresh Z3 context per problem: Z3 never runs a command that
touches a file or its global parameters.
"""

from __future__ import annotations

import re
import time
from typing import Any

import z3

from . import smtlib_model, z3_session
from .confirm import confirm_proved, confirm_setting
from .cvc5_backend import Cvc5Backend
from .product_bounds import product_bounds
from .smtlib_reader import SYNTAX, Problem, SmtlibError, read_problem
from .smtlib_scan import Scan, scan_assertions, z3_counterexample
from .strategy import Z3_DEFAULT, Strategy, strategy_from_any
from .verdict import ProofOutcome, Verdict
from .z3_terms import CounterexampleError, Unsupported

__all__ = ["BACKENDS", "SmtlibError", "decide_smtlib", "parse_smtlib"]

#: The solvers that decide SMT-LIB problems (``backend=``).
BACKENDS = ("z3", "cvc5")

#: Z3 run directly: its plain ``Solver()``, which picks its own tactics per problem.
PLAIN = Z3_DEFAULT

#: The share of the time budget the first of two slices gets (the second gets the rest).
FIRST_SLICE_SHARE = 0.5


def parse_smtlib(text: str, ctx: z3.Context | None = None) -> list[z3.BoolRef]:
    """The assertions of the SMT-LIB problem ``text`` in ``ctx`` (a fresh context if None).

    Raises :class:`SmtlibError`: the reader's message (a refused command or malformed text,
    with its ``line:column``) or Z3's (``line L column C: …``, positions in ``text``)."""
    problem = read_problem(text)
    try:
        assertions = list(z3.parse_smt2_string(problem.to_smt2(), ctx=ctx or z3.Context()))
    except z3.Z3Exception as exc:
        raise SmtlibError(f"{SYNTAX}: {_z3_message(exc, problem)}") from None
    if len(assertions) != problem.assertions:  # the reader and Z3 must read the same commands
        raise SmtlibError(
            f"internal: Z3 read {len(assertions)} assertion(s) where HMS read {problem.assertions}"
        )
    return assertions


def _z3_message(exc: z3.Z3Exception, problem: Problem) -> str:
    """Z3's error messages, and the command the first one is about."""
    raw = exc.value.decode(errors="replace") if isinstance(exc.value, bytes) else str(exc.value)
    found = re.findall(r'\(error "(.*?)"\)', raw, flags=re.S)
    message = "; ".join(found) if found else raw.strip()
    where = re.match(r"line (\d+) column (\d+)", message)
    # Z3's columns count from 0; the reader's (like an editor's) from 1.
    command = problem.command_at(int(where[1]), int(where[2]) + 1) if where else None
    return f"{message} (in {command})" if command else message


def decide_smtlib(
    text: str,
    *,
    backend: str = "z3",
    strategy: Strategy | dict[str, Any] | str | None = None,
    timeout_s: float = 30,
    rlimit: int | None = None,
    confirm: bool | None = None,
) -> ProofOutcome:
    """Decide the SMT-LIB problem ``text`` (see the module docstring); never raises.

    ``backend`` is one of :data:`BACKENDS`; ``strategy``, ``timeout_s``, ``rlimit`` and
    ``confirm`` (the other solver confirms an ``unsat`` —
    :func:`~hms_celery.verification.confirm.confirm_proved` — and every proof obligation of a
    model) mean what they mean for :func:`~hms_celery.verification.prover.prove`."""
    start = time.monotonic()
    strategy_json: dict[str, Any] | None = None
    try:
        strat = strategy_from_any(strategy)
        strategy_json = strat.to_json()
        confirm = confirm_setting(confirm)
        if backend not in BACKENDS:
            outcome = ProofOutcome(
                Verdict.ERROR,
                reason=f"SMT-LIB problems are decided by {' or '.join(BACKENDS)}, not {backend!r}",
            )
        else:
            outcome = _decide(
                text, backend, strat, start, float(timeout_s), rlimit, confirm=confirm
            )
    except ValueError as exc:
        outcome = ProofOutcome(Verdict.ERROR, reason=f"bad input: {exc}")
    except Exception as exc:
        outcome = ProofOutcome(Verdict.ERROR, reason=f"internal error: {type(exc).__name__}: {exc}")
    outcome.backend = backend
    outcome.strategy = strategy_json
    outcome.elapsed_s = round(time.monotonic() - start, 6)
    return outcome


def _decide(
    text: str,
    backend: str,
    strat: Strategy,
    start: float,
    timeout_s: float,
    rlimit: int | None,
    *,
    confirm: bool = False,
) -> ProofOutcome:
    if rlimit is not None and rlimit < 0:
        return ProofOutcome(Verdict.ERROR, reason=f"rlimit must be ≥ 0, got {rlimit}")
    deadline = start + timeout_s
    # A fresh context per problem: nothing of a previous problem (terms, declarations) is
    # in it, and none of this one outlives it.  The watchdog leaves room for the model's
    # proof obligations, which may start just before the deadline.
    grace = smtlib_model.OBLIGATION_MIN_S
    with z3_session.watched_context(timeout_s + grace, fresh=True) as ctx:
        try:
            original = parse_smtlib(text, ctx)
        except SmtlibError as exc:
            return ProofOutcome(Verdict.ERROR, reason=str(exc))
        scan = scan_assertions(original)
        stats: dict[str, Any] = {"assertions": len(original), "preprocess": []}
        if backend == "cvc5":
            return _decide_cvc5(original, scan, stats, start, deadline, rlimit, confirm)
        return _decide_z3(original, scan, strat, ctx, stats, start, deadline, rlimit, confirm)


def _decide_z3(
    original: list[z3.BoolRef],
    scan: Scan,
    strat: Strategy,
    ctx: z3.Context,
    stats: dict[str, Any],
    start: float,
    deadline: float,
    rlimit: int | None,
    confirm: bool,
) -> ProofOutcome:
    assertions = original
    if "product-bounds" in strat.preprocess:
        # Sound for unsat (it only adds implied facts), and a model of the result satisfies
        # the original — except where a real division by zero occurs: SMT-LIB leaves x/0
        # unspecified, which the step's quotient variables do not capture.
        if scan.has_division:
            stats["preprocess_skipped"] = {"product-bounds": "the problem divides (/)"}
        elif not scan.has_product:  # product_bounds would return the assertions unchanged
            stats["preprocess_skipped"] = {"product-bounds": "no nonlinear product"}
        else:
            assertions = product_bounds(original)
            stats["preprocess"].append("product-bounds")
    slices = [("strategy", strat, assertions)]
    if strat.has_tactic or strat.params or assertions is not original:
        plain = ("plain", PLAIN, original)
        slices = [plain, *slices] if scan.has_quantifier else [*slices, plain]
    entries: list[dict[str, Any]] = []
    stats["checks"] = entries
    check, used = _run_slices(slices, ctx, deadline, rlimit, entries)
    stats["rlimit_count"] = sum(e["rlimit"] or 0 for e in entries)
    stats["z3_seconds"] = round(sum(e["seconds"] for e in entries), 6)
    if check.status == "unsat":
        stats["decided_by"] = used[0]
        proved = ProofOutcome(Verdict.PROVED, reason="unsat", stats=stats)
        if not confirm:
            return proved
        return confirm_proved(
            proved,
            used[2],
            proved_by="z3",
            start=start,
            timeout_s=deadline - start,
            rlimit=rlimit,
            strategy=used[1],
        )
    if check.status == "sat":
        stats["decided_by"] = used[0]
        assert check.model is not None
        model = smtlib_model.from_z3_model(check.model, scan.constants)
        cex = z3_counterexample(scan, check.model)
        return _refutation(original, model, cex, stats, deadline, rlimit, confirm)
    verdict = z3_session.classify_unknown(check, deadline, rlimit)
    entries[-1]["reason"] = check.reason
    why = check.reason
    if len(entries) > 1:  # what the earlier slice said, too
        first = entries[0]
        why += f" (after the {first['slice']} slice: {first.get('reason', first['result'])})"
    return z3_session.stopped([], -1, {}, verdict, why, stats)


def _run_slices(
    slices: list[tuple[str, Strategy, list[z3.BoolRef]]],
    ctx: z3.Context,
    deadline: float,
    rlimit: int | None,
    entries: list[dict[str, Any]],
) -> tuple[z3_session.Check, tuple[str, Strategy, list[z3.BoolRef]]]:
    """Run ``slices`` (label, strategy, assertions) in order until one decides; the first of
    two gets :data:`FIRST_SLICE_SHARE` of the time left (all of it under an ``rlimit``, which
    then bounds it, deterministically), the last whatever is left.  Returns the last check
    made and its slice; every check is appended to ``entries``."""
    check: z3_session.Check | None = None
    for k, item in enumerate(slices):
        label, strat, assertions = item
        t0 = time.monotonic()
        left = deadline - t0
        last = k == len(slices) - 1
        budget = left if last or rlimit else left * FIRST_SLICE_SHARE
        check = z3_session.solve(assertions, strat, ctx, t0, budget, rlimit)
        entry: dict[str, Any] = {
            "slice": label,
            "result": check.status,
            "seconds": round(check.seconds, 6),
            "budget_s": round(max(budget, 0.0), 3),
            "rlimit": check.rlimit_used,
        }
        if check.reason and not last:
            entry["reason"] = check.reason
        entries.append(entry)
        if check.status in ("sat", "unsat") or last:
            return check, item
    raise AssertionError("no slice")  # pragma: no cover - slices is never empty


def _decide_cvc5(
    original: list[z3.BoolRef],
    scan: Scan,
    stats: dict[str, Any],
    start: float,
    deadline: float,
    rlimit: int | None,
    confirm: bool,
) -> ProofOutcome:
    """cvc5 on the assertions as read; Z3's plain solver confirms an unsat."""
    solver = Cvc5Backend()
    try:
        answer = solver.check(original, timeout_s=deadline - time.monotonic(), rlimit=rlimit)
    except Unsupported as exc:
        return ProofOutcome(Verdict.UNSUPPORTED, reason=str(exc), stats=stats)
    entry: dict[str, Any] = {
        "slice": "cvc5",
        "result": answer.status,
        "seconds": round(answer.seconds, 6),
        "rlimit": None,
    }
    stats["checks"] = [entry]
    stats["cvc5_seconds"] = entry["seconds"]
    if answer.status == "unsat":
        proved = ProofOutcome(Verdict.PROVED, reason="unsat", stats=stats)
        if not confirm:
            return proved
        return confirm_proved(
            proved,
            original,
            proved_by="cvc5",
            start=start,
            timeout_s=deadline - start,
            strategy=PLAIN,
        )
    if answer.status == "sat":
        try:
            model, cex = _cvc5_model(scan, answer.values)
        except (CounterexampleError, ValueError) as exc:
            return ProofOutcome(Verdict.UNKNOWN, reason=str(exc), stats=stats)
        return _refutation(original, model, cex, stats, deadline, rlimit, confirm)
    entry["reason"] = answer.reason
    check = z3_session.Check("unknown", answer.reason, seconds=answer.seconds)
    verdict = z3_session.classify_unknown(check, deadline, None, solver="cvc5")
    return z3_session.stopped([], -1, {}, verdict, check.reason, stats, solver="cvc5")


def _cvc5_model(scan: Scan, values: Any) -> tuple[smtlib_model.ModelSubstitution, dict[str, Any]]:
    """cvc5's model (:class:`~.cvc5_backend.Cvc5Values`) as a substitution and as the
    counterexample (the same exact values)."""
    constants: dict[z3.FuncDeclRef, Any] = {}
    functions: dict[z3.FuncDeclRef, dict[str, Any]] = {}
    cex: dict[str, Any] = {}
    for name, decl in scan.symbols.items():
        if decl.arity() == 0:
            constants[decl] = cex[name] = values.scalar(decl(), name)
        else:
            functions[decl] = cex[name] = values.table(decl, name)
    return smtlib_model.from_values(constants, functions), cex


def _refutation(
    original: list[z3.BoolRef],
    model: smtlib_model.ModelSubstitution,
    cex: dict[str, Any] | CounterexampleError,
    stats: dict[str, Any],
    deadline: float,
    rlimit: int | None,
    confirm: bool,
) -> ProofOutcome:
    """REFUTED if ``model`` satisfies every assertion (:func:`smtlib_model.check_model`)."""
    if isinstance(cex, CounterexampleError):
        return ProofOutcome(Verdict.UNKNOWN, reason=str(cex), stats=stats)
    found = smtlib_model.check_model(
        original, model, deadline=deadline, rlimit=rlimit, confirm=confirm
    )
    stats.update(found.stats)
    return ProofOutcome(
        found.verdict,
        reason=found.reason,
        counterexample=cex,
        stats=stats,
        proof=found.proof,
        confirmed_by=found.confirmed_by,
    )
