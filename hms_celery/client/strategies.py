"""Prover strategies: the named ones, those promoted per family, and promoting a run's winner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hms_celery.client.actor import ACTOR
from hms_celery.client.ga import UnknownRunError
from hms_celery.errors import InputError
from hms_celery.store import ga as ga_store
from hms_celery.store.models import PromotionState
from hms_celery.verification.strategy import NAMED_STRATEGIES


def list_strategies() -> dict[str, Any]:
    """The named strategies and the strategies promoted for theorem families."""
    return {
        "named": {name: s.to_json() for name, s in NAMED_STRATEGIES.items()},
        "families": ga_store.family_strategies(),
    }


def show_strategy(name: str) -> dict[str, Any]:
    """A strategy by name: a named strategy, a family (its promoted strategy) or a GA run
    (its best genome).  :class:`~hms_celery.errors.InputError` if none matches."""
    if name in NAMED_STRATEGIES:
        return {"kind": "named", "name": name, "strategy": NAMED_STRATEGIES[name].to_json()}
    for row in ga_store.family_strategies():
        if row["family"] == name:
            return {"kind": "family", "name": name, **row}
    run = ga_store.get_run(name)
    if run is not None and run["best_genome"] is not None:
        return {
            "kind": "run",
            "name": name,
            "family": run["family"],
            "strategy": run["best_genome"],
            "fitness": run["best_fitness"],
            "promotion": run["promotion"],
        }
    raise InputError(
        f"no strategy named {name!r} (a named strategy, a family with a promoted strategy, "
        f"or a GA run id); named: {sorted(NAMED_STRATEGIES)}"
    )


def promote_strategy(run_id: str, *, force: bool = False) -> dict[str, Any]:
    """Approve a finished run's winner: it becomes its family's strategy.

    A run whose winner was judged not better than the family's strategy (promotion
    ``not-better``) is refused with :class:`~hms_celery.errors.InputError` saying why, unless
    ``force``; either way the promotion goes through :func:`promotion.approve`."""
    run = ga_store.get_run(run_id)
    if run is None:
        raise UnknownRunError(f"unknown GA run {run_id!r}")
    if run["promotion"] == PromotionState.NOT_BETTER and not force:
        raise InputError(_not_better_reason(run))
    from hms_celery.genetic import promotion  # DEAP and numpy: not with every `hms` command

    return promotion.approve(run_id, actor=ACTOR)


def _not_better_reason(run: Mapping[str, Any]) -> str:
    """Why a run's winner was not promoted: its fitness beside the family's strategy's."""

    from hms_celery.genetic.fitness import Fitness  # DEAP and numpy: only when needed

    def shown(fitness: dict[str, Any] | None) -> str:
        if not fitness:
            return "not measured"
        f = Fitness.from_json(fitness)
        return f"{f.solved}/{f.n} solved, PAR-2 {f.par2:,.0f} rlimit units"

    current = ((run.get("baselines") or {}).get("current") or {}).get("fitness")
    return (
        f"GA run {run['id']}: its winner was judged not better than family "
        f"{run['family']!r}'s current strategy on the training set (winner: "
        f"{shown(run['best_fitness'])}; current: {shown(current)}; more solved wins, then "
        "lower PAR-2); promote it anyway with --force"
    )
