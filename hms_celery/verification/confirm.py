"""Confirmation of a PROVED verdict by the other solver (cvc5 for Z3, Z3 for cvc5).

The other solver checks exactly the assertions found unsatisfiable (after preprocessing).
Its ``sat`` is an ERROR ``"solvers disagree: …"``, never PROVED; its ``unknown`` leaves the
proof standing, recorded as unconfirmed.  Used by the prover, quantifier elimination and
SMT-LIB problems (and the closed obligations of a model re-check).
"""

from __future__ import annotations

import time
from typing import Any

import z3

from . import ast as A
from . import exact
from .backends import get_backend, other_solver
from .cvc5_backend import cvc5_version
from .solvers import SolverAnswer, SolverBackend
from .strategy import Strategy
from .verdict import ProofOutcome, Verdict
from .z3_model import read_counterexample
from .z3_terms import Compiled, Unsupported

#: The confirmation of a PROVED verdict gets the time left of the attempt's budget, but at
#: least this many seconds (and never more than the whole budget ``timeout_s``): an attempt
#: takes at most ``timeout_s + CONFIRM_MIN_S``.
CONFIRM_MIN_S = 1.0


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
    proved_version = z3.get_version_string() if proved_by == "z3" else cvc5_version()
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
