"""Prover strategies as data: the genome the genetic algorithm evolves.

A :class:`Strategy` says how the Z3 backend decides one ground problem:

* ``preprocess`` — HMS-level, sound rewrites applied to the Z3 assertions before any tactic
  (see :data:`PREPROCESS_STEPS`; ``"product-bounds"`` names every nonlinear monomial by a fresh
  variable and adds the sign and factor-bound lemmas implied by the hypotheses' bounds, which
  linearises weighted sums such as ``Σ wᵢ·aᵢ·dᵢ``);
* ``pipeline`` — an ordered list of Z3 tactics with parameters (``simplify``, ``solve-eqs`` …);
* ``decider`` — the deciding tactic (``smt``, ``qfnra-nlsat``, ``nlsat`` …);
* ``schedule`` — an optional time-sliced fallback: sub-strategies each with a slice, compiled
  to ``OrElse(TryFor(s₁, t₁), TryFor(s₂, t₂), …, decider)`` as Z3's own QF_NRA strategy does
  (a slice may instead be bounded by its decider's ``max_conflicts``: deterministic);
* ``params`` — solver parameters (``rlimit``, ``random_seed``, ``smt.…`` options).

A strategy with no pipeline, no decider and no schedule is Z3's plain ``Solver()``.

Strategies are frozen and hashable, round-trip through JSON (:meth:`Strategy.to_json`,
:meth:`Strategy.from_json`), and are validated against the tactics and parameters of the
installed Z3: an unknown tactic or a badly typed parameter raises :class:`ValueError` naming it.

The unsat gate is an allow-list: a strategy may only name tactics of :data:`SOUND_TACTICS`,
whose ``unsat`` is a proof.  Any other tactic — an under-approximation such as ``nla2bv`` or
``add-bounds``, local search, or simply one nobody has vetted — is rejected with a
:class:`ValueError` naming it, never silently trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import z3

from hms_celery.errors import SettingsError

from .z3_params import (
    ParamValue,
    available_tactics,
    check_solver_param,
    check_value,
    freeze_params,
    tactic_param_kinds,
)

#: HMS preprocessing steps (run on the Z3 terms before the tactics); see ``product_bounds``.
PREPROCESS_STEPS: dict[str, str] = {
    "product-bounds": "name nonlinear monomials by fresh variables and add the sign and "
    "factor-bound lemmas implied by the hypotheses (sound: only implied facts are added)",
}

#: The tactics a strategy may use: each preserves unsatisfiability — it rewrites the goal into
#: an equivalent or equisatisfiable one, or one implied by it (an over-approximation), so an
#: ``unsat`` of its result is an ``unsat`` of the input — or it is a complete decider.  Z3's
#: logic strategies (``qflia``, ``qflra``, ``qfnra``) are Z3's own defaults for those logics:
#: their inner under-approximations (``add-bounds`` in ``qflia``'s model finder) mark the goal
#: imprecise, and Z3 then reports no ``unsat`` for it (``fail-if-undecided``).  Not here, and so
#: rejected: ``nla2bv``, ``add-bounds`` (under-approximations), ``sls-smt``/``qfbv-sls``/
#: ``bv-slice``, ``qfnia`` (built on ``nla2bv``), and every tactic nobody has vetted.
SOUND_TACTICS: dict[str, str] = {
    # rewrites (equivalence-preserving)
    "simplify": "equivalence-preserving rewriting",
    "propagate-values": "substitutes values implied by the goal",
    "ctx-simplify": "contextual simplification (equivalence-preserving)",
    "ctx-solver-simplify": "solver-checked contextual simplification (equivalence-preserving)",
    "elim-term-ite": "names term if-then-else by fresh constants with their definitions",
    "blast-term-ite": "hoists term if-then-else (equivalence-preserving)",
    "cofactor-term-ite": "case-splits on term if-then-else (equivalence-preserving)",
    "propagate-ineqs": "propagates bounds, drops subsumed inequalities (equivalence-preserving)",
    "nnf": "negation normal form (equisatisfiable)",
    "tseitin-cnf": "Tseitin CNF (equisatisfiable)",
    "elim-and": "rewrites and as not-or (equivalence-preserving)",
    "der": "destructive equality resolution (equivalence-preserving)",
    "distribute-forall": "distributes forall over conjunctions (equivalence-preserving)",
    "skip": "does nothing",
    # rewrites (equisatisfiable: a model of the result gives a model of the input)
    "solve-eqs": "eliminates variables by solving equations (equisatisfiable)",
    "elim-uncnstr": "eliminates unconstrained terms (equisatisfiable)",
    "purify-arith": "names division, mod, to_int… by constrained constants (equisatisfiable)",
    "normalize-bounds": "shifts bounded variables to lower bound 0 (equisatisfiable)",
    "lia2card": "0-1 integers as cardinality constraints (equisatisfiable)",
    "split-clause": "splits a clause into subgoals (unsat only if every subgoal is)",
    "qe": "quantifier elimination (equivalence-preserving)",
    "qe-light": "light quantifier elimination (equivalence-preserving)",
    # deciders (complete for their fragment, or giving up with unknown)
    "smt": "Z3's SMT core",
    "sat": "Z3's SAT core (propositional goals)",
    "nlsat": "nonlinear real arithmetic decision procedure",
    "qfnra-nlsat": "purify-arith and friends, then nlsat",
    # nlqsat is nlsat lifted to quantifier alternation (QSAT, Bjørner & Janota 2015): it says
    # unsat only after refuting every strategy of the ∃ player, never on an approximation, and
    # answers unknown ("not NRA") outside quantified real arithmetic. Used by quantifiers/.
    "nlqsat": "decision procedure for quantified nonlinear real arithmetic (nlsat-based QSAT)",
    "qfnra": "Z3's QF_NRA strategy (nlsat and smt portfolios)",
    "qflra": "Z3's QF_LRA strategy",
    "qflia": "Z3's QF_LIA strategy (imprecise goals are never reported unsat)",
    "qfuf": "Z3's QF_UF strategy",
}

MAX_SCHEDULE_DEPTH = 3

# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class TacticStep:
    """One Z3 tactic with parameters (``z3.With(Tactic(name), **params)``)."""

    tactic: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tactic, str) or self.tactic not in available_tactics():
            raise ValueError(f"unknown tactic {self.tactic!r} (see z3.tactics())")
        if self.tactic not in SOUND_TACTICS:
            raise ValueError(
                f"tactic {self.tactic!r} is not on the allow-list of tactics whose unsat is a "
                "proof (strategy.SOUND_TACTICS); it may under-approximate the goal"
            )
        object.__setattr__(self, "params", freeze_params(f"tactic {self.tactic!r}", self.params))
        kinds = tactic_param_kinds(self.tactic)
        for name, value in self.params:
            if name not in kinds:
                raise ValueError(f"tactic {self.tactic!r} has no parameter {name!r}")
            check_value(f"tactic {self.tactic!r}", name, kinds[name], value)

    def build(self, ctx: z3.Context) -> z3.Tactic:
        tactic = z3.Tactic(self.tactic, ctx=ctx)
        return z3.With(tactic, **dict(self.params)) if self.params else tactic

    def to_json(self) -> dict[str, Any]:
        return {"tactic": self.tactic, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Any) -> TacticStep:
        if isinstance(data, str):
            return cls(data)
        if not isinstance(data, dict) or "tactic" not in data:
            raise ValueError(f"a tactic step must be a name or {{'tactic': ...}}, got {data!r}")
        extra = set(data) - {"tactic", "params"}
        if extra:
            raise ValueError(f"tactic step {data['tactic']!r}: unknown keys {sorted(extra)}")
        return cls(data["tactic"], data.get("params") or ())


@dataclass(frozen=True)
class Slice:
    """A sub-strategy tried first in a fallback schedule, then abandoned for the next one.

    ``timeout_ms`` bounds it by wall time (``TryFor``, as Z3's own QF_NRA strategy does).
    ``None`` leaves the bound to the sub-strategy's own deterministic limits (its decider's
    ``max_conflicts``): a slice then gives up after the same work on every machine, which
    is what the genetic algorithm needs to score strategies reproducibly.
    """

    strategy: Strategy
    timeout_ms: int | None = None

    def __post_init__(self) -> None:
        if self.timeout_ms is not None and (
            not isinstance(self.timeout_ms, int)
            or isinstance(self.timeout_ms, bool)
            or self.timeout_ms <= 0
        ):
            raise ValueError(
                f"schedule slice timeout_ms must be a positive int or null: {self.timeout_ms!r}"
            )
        if self.strategy.preprocess or self.strategy.params:
            raise ValueError("a schedule slice may not have its own preprocess steps or params")
        if not self.strategy.has_tactic:
            raise ValueError("a schedule slice needs a decider or a schedule")

    def to_json(self) -> dict[str, Any]:
        return {"timeout_ms": self.timeout_ms, "strategy": self.strategy.to_json()}

    @classmethod
    def from_json(cls, data: Any, depth: int = 0) -> Slice:
        if (
            not isinstance(data, dict)
            or "strategy" not in data
            or not set(data)
            <= {
                "timeout_ms",
                "strategy",
            }
        ):
            raise ValueError(
                f"a schedule slice is {{'timeout_ms': int | null, 'strategy': {{...}}}}: {data!r}"
            )
        return cls(Strategy.from_json(data["strategy"], _depth=depth + 1), data.get("timeout_ms"))


@dataclass(frozen=True)
class Strategy:
    """A complete prover strategy (see the module docstring)."""

    name: str = "custom"
    preprocess: tuple[str, ...] = ()
    pipeline: tuple[TacticStep, ...] = ()
    decider: TacticStep | None = None
    schedule: tuple[Slice, ...] = ()
    params: tuple[tuple[str, ParamValue], ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "preprocess", tuple(self.preprocess))
        object.__setattr__(self, "pipeline", tuple(self.pipeline))
        object.__setattr__(self, "schedule", tuple(self.schedule))
        object.__setattr__(self, "params", freeze_params("strategy params", self.params))
        for step in self.preprocess:
            if step not in PREPROCESS_STEPS:
                raise ValueError(
                    f"unknown preprocess step {step!r}; known: {sorted(PREPROCESS_STEPS)}"
                )
        if self.pipeline and not (self.decider or self.schedule):
            raise ValueError("a tactic pipeline needs a decider or a schedule")
        for name, value in self.params:
            check_solver_param(name, value)

    # ------------------------------------------------------------------ properties

    @property
    def has_tactic(self) -> bool:
        """False for Z3's plain ``Solver()`` (no tactic at all)."""
        return bool(self.pipeline or self.decider or self.schedule)

    def tactic_names(self) -> list[str]:
        """Every tactic name used, schedules included."""
        names = [s.tactic for s in self.pipeline]
        if self.decider:
            names.append(self.decider.tactic)
        for sl in self.schedule:
            names.extend(sl.strategy.tactic_names())
        return names

    @property
    def sound_for_unsat(self) -> bool:
        """True if every tactic is on the allow-list :data:`SOUND_TACTICS` (then ``unsat`` is a
        proof); always, for a validated strategy: the prover checks it again all the same."""
        return set(self.tactic_names()) <= set(SOUND_TACTICS)

    # ------------------------------------------------------------------ building

    def tactic(self, ctx: z3.Context) -> z3.Tactic | None:
        """The compiled Z3 tactic, or None for the plain solver."""
        if not self.has_tactic:
            return None
        options: list[z3.Tactic] = []
        for sl in self.schedule:
            sub = sl.strategy.tactic(ctx)
            assert sub is not None
            # A slice that gives up without failing must still hand over to the next one.
            sub = z3.Then(sub, z3.Tactic("fail-if-undecided", ctx=ctx), ctx=ctx)
            options.append(sub if sl.timeout_ms is None else z3.TryFor(sub, sl.timeout_ms, ctx=ctx))
        if self.decider:
            options.append(self.decider.build(ctx))
        core = options[0] if len(options) == 1 else z3.OrElse(*options, ctx=ctx)
        steps = [s.build(ctx) for s in self.pipeline]
        return z3.Then(*steps, core, ctx=ctx) if steps else core

    def build(self, ctx: z3.Context) -> z3.Solver:
        """A fresh solver in ``ctx`` implementing this strategy (params applied)."""
        # Built anew each time, not cached per context: the solvers made from one Z3 tactic
        # share its state (tried: with a cached tactic a later cvc5-backed quantifier check
        # ran out of time in the verification suite, while it passes with fresh tactics).
        tactic = self.tactic(ctx)
        solver = z3.Solver(ctx=ctx) if tactic is None else tactic.solver()
        for name, value in self.params:
            solver.set(name, value)
        return solver

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "preprocess": list(self.preprocess),
            "pipeline": [s.to_json() for s in self.pipeline],
            "decider": self.decider.to_json() if self.decider else None,
            "schedule": [s.to_json() for s in self.schedule],
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, data: Any, *, _depth: int = 0) -> Strategy:
        """Validate and build a strategy from its JSON form (ValueError names the bad item)."""
        if not isinstance(data, dict):
            raise ValueError(f"a strategy must be a JSON object, got {type(data).__name__}")
        if _depth > MAX_SCHEDULE_DEPTH:
            raise ValueError(f"schedules nested deeper than {MAX_SCHEDULE_DEPTH}")
        known = {"name", "preprocess", "pipeline", "decider", "schedule", "params"}
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown strategy keys {sorted(extra)}; known: {sorted(known)}")
        name = data.get("name", "custom")
        if not isinstance(name, str):
            raise ValueError(f"strategy name must be a string: {name!r}")
        for key in ("preprocess", "pipeline", "schedule"):
            if not isinstance(data.get(key) or [], list | tuple):
                raise ValueError(f"strategy {key!r} must be a list")
        decider = data.get("decider")
        return cls(
            name=name,
            preprocess=tuple(data.get("preprocess") or ()),
            pipeline=tuple(TacticStep.from_json(s) for s in data.get("pipeline") or ()),
            decider=TacticStep.from_json(decider) if decider is not None else None,
            schedule=tuple(Slice.from_json(s, _depth) for s in data.get("schedule") or ()),
            params=data.get("params") or (),
        )

    def describe(self) -> str:
        """A one-line human description (for logs and tables)."""
        parts = [f"hms:{p}" for p in self.preprocess]
        parts += [s.tactic for s in self.pipeline]
        if self.schedule:
            parts.append(
                "OrElse("
                + ", ".join(f"{sl.strategy.describe()}{_budget(sl)}" for sl in self.schedule)
                + (f", {self.decider.tactic}" if self.decider else "")
                + ")"
            )
        elif self.decider:
            parts.append(self.decider.tactic)
        return " > ".join(parts) or "Solver()"


def _budget(sl: Slice) -> str:
    if sl.timeout_ms is not None:
        return f"@{sl.timeout_ms}ms"
    conflicts = (
        dict(sl.strategy.decider.params).get("max_conflicts") if sl.strategy.decider else None
    )
    return f"@{conflicts}cf" if conflicts is not None else ""


# --------------------------------------------------------------------------- named strategies


def _step(name: str, **params: ParamValue) -> TacticStep:
    return TacticStep(name, tuple(params.items()))


Z3_DEFAULT = Strategy(name="z3-default")
SMT = Strategy(name="smt", decider=_step("smt"))
NLSAT = Strategy(name="nlsat", decider=_step("qfnra-nlsat"))
QFNRA = Strategy(name="qfnra", decider=_step("qfnra"))
LINEARISE_SMT = Strategy(
    name="linearise-smt",
    preprocess=("product-bounds",),
    pipeline=(_step("simplify"),),
    decider=_step("smt"),
)
PORTFOLIO = Strategy(
    name="portfolio",
    preprocess=("product-bounds",),
    pipeline=(_step("simplify"),),
    schedule=(Slice(SMT, 2000), Slice(NLSAT, 2000)),
    decider=_step("smt"),
)

#: ``smt`` alone sometimes wanders for seconds on an instance it otherwise decides in
#: milliseconds (e.g. ``fs-bounds`` at some n); short restarts with other seeds avoid that.
LINEARISE_RESTARTS = Strategy(
    name="linearise-restarts",
    preprocess=("product-bounds",),
    pipeline=(_step("simplify"),),
    schedule=(
        Slice(SMT, 500),
        Slice(Strategy(decider=_step("smt", random_seed=1)), 500),
        Slice(Strategy(decider=_step("smt", random_seed=2)), 1000),
    ),
    decider=_step("smt", random_seed=3),
)

#: The strategy ``prove`` uses when none is given (chosen by measurement: bench/strategies.py).
DEFAULT_STRATEGY = LINEARISE_RESTARTS

NAMED_STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (Z3_DEFAULT, SMT, NLSAT, QFNRA, LINEARISE_SMT, LINEARISE_RESTARTS, PORTFOLIO)
}
NAMED_STRATEGIES["default"] = DEFAULT_STRATEGY


def strategy_from_any(x: Strategy | dict[str, Any] | str | None) -> Strategy:
    """A strategy from an instance, its JSON dict, a name in :data:`NAMED_STRATEGIES` or JSON
    text; None gives :data:`DEFAULT_STRATEGY`."""
    if x is None:
        return DEFAULT_STRATEGY
    if isinstance(x, Strategy):
        return x
    if isinstance(x, dict):
        return Strategy.from_json(x)
    if isinstance(x, str):
        if x in NAMED_STRATEGIES:
            return NAMED_STRATEGIES[x]
        text = x.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"strategy JSON does not parse: {exc}") from exc
            return Strategy.from_json(data)
        raise ValueError(f"unknown strategy {x!r}; named strategies: {sorted(NAMED_STRATEGIES)}")
    raise ValueError(f"a strategy is a Strategy, dict, name or JSON text, not {type(x).__name__}")


def check_default_strategy(value: str | None) -> None:
    """Refuse an ``HMS_DEFAULT_STRATEGY`` that is neither a strategy's name nor valid strategy
    JSON (:class:`SettingsError` naming it): an unknown name must stop the stack at start-up,
    not turn every verdict into ERROR."""
    if value is None:
        return
    try:
        strategy_from_any(value)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # ValueError: says what
        raise SettingsError(
            f"invalid setting: HMS_DEFAULT_STRATEGY={value!r}: not a valid strategy: {exc}"
        ) from None
