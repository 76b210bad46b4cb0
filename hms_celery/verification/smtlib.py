"""SMT-LIB 2 input: decide a benchmark problem with the same strategies as a statement.

An SMT-LIB problem asks whether its assertions are *satisfiable*.  HMS reads it as the claim
"the assertions are unsatisfiable" — the form the Lean path checks too (hypotheses ∧ ¬goal):

* ``unsat`` → PROVED (reason ``"unsat"``);
* ``sat`` → REFUTED, the model being the counterexample: every constant occurring in the
  assertions (integers and reals as exact rationals ``"p/q"``, booleans as ``true``/``false``,
  other sorts and uninterpreted functions as Z3 prints them).  The model is re-checked first:
  every assertion must evaluate to true under it (``model.eval``, Z3's exact arithmetic), else
  ERROR ``"internal: model failed re-check"``; an irrational value, or an assertion the model
  cannot evaluate (a quantifier), gives UNKNOWN;
* ``unknown`` → UNKNOWN or TIMEOUT, classified as for statements;
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

from . import prover
from .smtlib_reader import SYNTAX, Problem, SmtlibError, read_problem
from .strategy import Strategy, strategy_from_any
from .verdict import ProofOutcome, Verdict
from .z3_backend import CounterexampleError, _value_json, product_bounds

__all__ = ["SmtlibError", "decide_smtlib", "parse_smtlib"]


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
    strategy: Strategy | dict[str, Any] | str | None = None,
    timeout_s: float = 30,
    rlimit: int | None = None,
    confirm: bool | None = None,
) -> ProofOutcome:
    """Decide the SMT-LIB problem ``text`` (see the module docstring); never raises.

    ``strategy``, ``timeout_s``, ``rlimit`` and ``confirm`` (cvc5 confirms an ``unsat``:
    :func:`~hms_celery.verification.prover.confirm_proved`) mean what they mean for
    :func:`~hms_celery.verification.prover.prove`."""
    start = time.monotonic()
    strategy_json: dict[str, Any] | None = None
    try:
        strat = strategy_from_any(strategy)
        strategy_json = strat.to_json()
        confirm = prover.confirm_setting(confirm)
        outcome = _decide(text, strat, start, float(timeout_s), rlimit, confirm=confirm)
    except ValueError as exc:
        outcome = ProofOutcome(Verdict.ERROR, reason=f"bad input: {exc}")
    except Exception as exc:
        outcome = ProofOutcome(Verdict.ERROR, reason=f"internal error: {type(exc).__name__}: {exc}")
    outcome.backend = "z3"
    outcome.strategy = strategy_json
    outcome.elapsed_s = round(time.monotonic() - start, 6)
    return outcome


def _decide(
    text: str,
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
    # in it, and none of this one outlives it.
    with prover._watched_context(timeout_s, fresh=True) as ctx:
        try:
            original = parse_smtlib(text, ctx)
        except SmtlibError as exc:
            return ProofOutcome(Verdict.ERROR, reason=str(exc))
        symbols, has_division = _scan(original)
        stats: dict[str, Any] = {"assertions": len(original), "preprocess": []}
        assertions = original
        if "product-bounds" in strat.preprocess:
            # Sound for unsat (it only adds implied facts), and a model of the result satisfies
            # the original — except where a real division by zero occurs: SMT-LIB leaves x/0
            # unspecified, which the step's quotient variables do not capture.
            if has_division:
                stats["preprocess_skipped"] = {"product-bounds": "the problem divides (/)"}
            else:
                assertions = product_bounds(original)
                stats["preprocess"].append("product-bounds")
        t0 = time.monotonic()
        check = prover._solve(assertions, strat, ctx, t0, deadline - t0, rlimit)
        entry: dict[str, Any] = {
            "result": check.status,
            "seconds": round(check.seconds, 6),
            "rlimit": check.rlimit_used,
        }
        stats["checks"] = [entry]
        stats["rlimit_count"] = check.rlimit_used or 0
        stats["z3_seconds"] = entry["seconds"]
        if check.status == "unsat":
            proved = ProofOutcome(Verdict.PROVED, reason="unsat", stats=stats)
            if not confirm:
                return proved
            return prover.confirm_proved(
                proved,
                assertions,
                proved_by="z3",
                start=start,
                timeout_s=timeout_s,
                rlimit=rlimit,
                strategy=strat,
            )
        if check.status == "sat":
            assert check.model is not None
            return _refutation(original, symbols, check.model, stats)
        verdict = prover._classify_unknown(check, deadline, rlimit)
        entry["reason"] = check.reason
        return prover._stopped([], -1, {}, verdict, check.reason, stats)


def _scan(assertions: list[z3.BoolRef]) -> tuple[dict[str, z3.FuncDeclRef], bool]:
    """The uninterpreted constants and functions of ``assertions`` (by name), and whether a
    real division occurs."""
    symbols: dict[str, z3.FuncDeclRef] = {}
    has_division = False
    seen: set[int] = set()
    stack: list[z3.ExprRef] = list(assertions)
    while stack:
        t = stack.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_quantifier(t):
            stack.append(t.body())
        elif z3.is_app(t):
            decl = t.decl()
            if decl.kind() == z3.Z3_OP_UNINTERPRETED:
                symbols[decl.name()] = decl
            has_division = has_division or decl.kind() == z3.Z3_OP_DIV
            stack.extend(t.children())
    return dict(sorted(symbols.items())), has_division


def _refutation(
    assertions: list[z3.BoolRef],
    symbols: dict[str, z3.FuncDeclRef],
    model: z3.ModelRef,
    stats: dict[str, Any],
) -> ProofOutcome:
    try:
        cex = {name: _value(decl, model) for name, decl in symbols.items()}
    except CounterexampleError as exc:
        return ProofOutcome(Verdict.UNKNOWN, reason=str(exc), stats=stats)
    undetermined = 0
    for i, assertion in enumerate(assertions):
        value = model.eval(assertion, model_completion=True)
        if z3.is_false(value):
            return ProofOutcome(
                Verdict.ERROR,
                reason=f"internal: model failed re-check (assertion {i + 1} is false under it)",
                counterexample=cex,
                stats=stats,
            )
        undetermined += not z3.is_true(value)
    if undetermined:
        return ProofOutcome(
            Verdict.UNKNOWN,
            reason=f"the model could not be re-checked: {undetermined} assertion(s) do not "
            "evaluate to true or false under it (quantifiers)",
            counterexample=cex,
            stats=stats,
        )
    return ProofOutcome(
        Verdict.REFUTED,
        reason="sat: the model satisfies every assertion (re-checked)",
        counterexample=cex,
        stats=stats,
    )


def _value(decl: z3.FuncDeclRef, model: z3.ModelRef) -> Any:
    if decl.arity() > 0:
        interp = model[decl] if any(d.eq(decl) for d in model.decls()) else None
        return str(interp) if interp is not None else "unconstrained"
    value = model.eval(decl(), model_completion=True)
    sort = decl.range().kind()
    if sort in (z3.Z3_INT_SORT, z3.Z3_REAL_SORT, z3.Z3_BOOL_SORT):
        return _value_json(value, decl.name())
    return str(value)
