"""cvc5 as a second solver: the Z3 terms HMS compiles, translated to cvc5 (:mod:`.cvc5_translate`)
and decided in-process.

:class:`Cvc5Backend` is a :class:`~.solvers.SolverBackend`: one fresh ``cvc5.Solver`` per check
(logic ``ALL``, ``produce-models``, nonlinear arithmetic by incremental linearisation
``nl-ext=full``), bounded by ``tlimit-per`` (milliseconds; the answer is
``unknown``/``"timeout"`` when it runs out) and, if given, the deterministic ``rlimit-per``
(cvc5's own resource units, not Z3's).  cvc5 runs in this process and thread: it cannot be
interrupted from outside, its own time limit is the bound.

**Solver reuse.** Making a cvc5 solver and tearing it down costs ~2 ms, ten times the check
of a typical confirmation.  So each thread keeps one solver per configuration and checks in a
fresh assertion level (``push``; ``pop`` after an ``unsat``), for at most
:data:`REUSE_CHECKS` checks.  Every cvc5 solver is incremental by default, so this is the mode
each check ran in anyway.  A solver that answered ``sat`` is handed over with the answer (its
model must stay readable) and one that answered ``unknown`` or raised is dropped: only a
solver whose last check ended cleanly in ``unsat`` is used again.

Cylindrical algebraic coverings (``nl-cov``, which logic ``ALL`` leaves unused) are
deliberately *not* enabled, although 1.4.2 accepts the option: with them cvc5 ignores
``tlimit-per`` — measured: ``x³ + y³ = z³`` over ℤ, and a random cubic system over ℝ (also
under logic ``QF_NRA``), ran past 20 s under a 300 ms limit, while without them every check
stopped at ~300 ms (``test_the_time_limit_is_respected``).  The price: cvc5 answers
``unknown`` where only an irrational model exists (``x² = 2``) — never a wrong answer, and
HMS's proofs (``unsat``) and rational counterexamples do not need coverings.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

import z3

from .cvc5_model import Cvc5Values
from .cvc5_translate import IMPORT_ERROR, Translator, cvc5
from .solvers import SolverAnswer
from .z3_terms import Unsupported

__all__ = ["Cvc5Backend", "cvc5_version"]

#: Options of every cvc5 solver HMS makes (those the installed cvc5 does not know are skipped).
SOLVER_OPTIONS: dict[str, str] = {
    "nl-ext": "full",  # incremental linearisation of nonlinear arithmetic (the default)
    # never "nl-cov": it makes cvc5 ignore tlimit-per (see the module docstring)
    # Static learning does not poll the time limit: on pysmt's QF_LIA prp-20-46 (an ite
    # DAG) cvc5 1.4.2 spent 40 s in it under a 2 s tlimit-per; without it, 2.0 s.  It only
    # adds lemmas, so leaving it out changes no answer (same answers on ../shared/smtlib).
    "static-learning": "false",
}


@cache  # read once per process: importlib.metadata scans site-packages on every call
def cvc5_version() -> str:
    """The installed cvc5's version (``"1.4.2"``), or ``"unavailable"``."""
    if cvc5 is None:
        return "unavailable"
    try:
        return metadata.version("cvc5")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source build
        return cvc5.Solver(cvc5.TermManager()).getVersion().decode(errors="replace")


_REASONS = {
    "TIMEOUT": "timeout",
    "RESOURCEOUT": "resource limit exhausted",
    "MEMOUT": "memory limit exhausted",
    "INTERRUPTED": "interrupted",
    "INCOMPLETE": "incomplete (cvc5 cannot decide this fragment)",
}


#: A reused solver is made anew after this many checks (its term manager keeps what the
#: checks made; a bound keeps that small).
REUSE_CHECKS = 200


@dataclass
class _Reusable:
    tm: Any
    solver: Any
    checks: int = 0


class _Solvers(threading.local):
    """This thread's idle solvers, by configuration (a check takes one out while it runs, so
    a nested check gets a solver of its own)."""

    def __init__(self) -> None:
        self.idle: dict[tuple[Any, ...], _Reusable] = {}


_SOLVERS = _Solvers()


class Cvc5Backend:
    """cvc5 on the Z3 terms HMS compiles (a :class:`~.solvers.SolverBackend`)."""

    name = "cvc5"

    def __init__(self, *, produce_models: bool = True, options: dict[str, str] | None = None):
        self.produce_models = produce_models
        self.options = {**SOLVER_OPTIONS, **(options or {})}
        self.version = cvc5_version()

    def _solver(self, timeout_ms: int, rlimit: int | None) -> tuple[Any, Any]:
        tm = cvc5.TermManager()
        solver = cvc5.Solver(tm)
        known = set(solver.getOptionNames())
        settings = {
            "produce-models": "true" if self.produce_models else "false",
            "tlimit-per": str(timeout_ms),
            **self.options,
        }
        if rlimit:
            settings["rlimit-per"] = str(int(rlimit))
        for name, value in settings.items():
            if name in known:
                solver.setOption(name, value)
        solver.setLogic("ALL")
        return tm, solver

    def check(
        self, assertions: list[z3.BoolRef], *, timeout_s: float, rlimit: int | None = None
    ) -> SolverAnswer:
        if cvc5 is None:
            raise Unsupported(IMPORT_ERROR or "cvc5 is not installed")
        t0 = time.monotonic()
        if timeout_s <= 0:
            return SolverAnswer("unknown", "timeout", seconds=0.0)
        # rlimit-per cannot be changed once a solver is initialised: it is part of the key.
        key = (self.produce_models, tuple(sorted(self.options.items())), rlimit)
        entry = _SOLVERS.idle.pop(key, None)
        if entry is None or entry.checks >= REUSE_CHECKS:
            entry = _Reusable(*self._solver(max(1, int(timeout_s * 1000)), rlimit))
        tm, solver = entry.tm, entry.solver
        translator = Translator(tm)
        try:
            terms = [translator.assertion(a) for a in assertions]
        except RuntimeError as exc:  # cvc5 refused a term: a gap in the translation
            _SOLVERS.idle[key] = entry  # nothing was asserted
            raise Unsupported(f"cvc5 translation: {exc}") from None
        remaining_ms = int((timeout_s - (time.monotonic() - t0)) * 1000)
        if remaining_ms <= 0:
            _SOLVERS.idle[key] = entry  # nothing was asserted
            return SolverAnswer("unknown", "timeout", seconds=time.monotonic() - t0)
        try:
            solver.setOption("tlimit-per", str(remaining_ms))
            solver.push()
            for term in terms:
                solver.assertFormula(term)
            result = solver.checkSat()
        except RuntimeError as exc:  # the solver is dropped with its state
            return SolverAnswer("unknown", f"cvc5 error: {exc}", seconds=time.monotonic() - t0)
        seconds = time.monotonic() - t0
        if result.isUnsat():
            solver.pop()
            entry.checks += 1
            _SOLVERS.idle[key] = entry
            return SolverAnswer("unsat", seconds=seconds)
        if result.isSat():  # the answer keeps the solver: its model is read later
            values = Cvc5Values(solver, translator) if self.produce_models else None
            return SolverAnswer("sat", seconds=seconds, values=values, model=solver)
        why = result.getUnknownExplanation()
        reason = _REASONS.get(why.name, str(why.name).lower().replace("_", " "))
        if why.name == "UNKNOWN_REASON" and seconds >= timeout_s - 0.05:
            reason = "timeout"
        return SolverAnswer("unknown", reason, seconds=seconds)
