"""Family strategies: which strategy a theorem family's proof tasks use, and how a GA run's
winner becomes it (automatically, or after approval — ``HMS_GA_AUTO_PROMOTE``).

Every promotion passes the policy engine first.  With automatic promotion off the engine
parks it as an approval (rule ``HMS_GA_AUTO_PROMOTE=false``), so it waits in
``hms approvals`` as well as for ``hms strategies promote RUN``; whichever comes first
promotes, and the other is closed.
"""

from __future__ import annotations

from typing import Any

from hms_celery.errors import InputError
from hms_celery.genetic import engine
from hms_celery.policy import approvals, rules
from hms_celery.policy.engine import ActionRequest, Outcome, authorize, require
from hms_celery.settings import get_settings
from hms_celery.store import ga as ga_store
from hms_celery.store import strategies as strategies_store
from hms_celery.store.models import GARunStatus, PromotionState
from hms_celery.store.records import GARunRecord
from hms_celery.verification.strategy import DEFAULT_STRATEGY, strategy_from_any

# The proof path's cached read lives with the store (agents must not import the GA).
strategy_for_family = strategies_store.strategy_for_family


def current_strategy(family: str) -> dict[str, Any]:
    """What a proof task of ``family`` naming no strategy uses now (family strategy, else
    ``HMS_DEFAULT_STRATEGY``, else the built-in default)."""
    found = ga_store.family_strategy(family)
    if found is not None:
        return found
    return strategy_from_any(get_settings().default_strategy or DEFAULT_STRATEGY).to_json()


def settle(run: GARunRecord, *, actor: str) -> PromotionState:
    """Decide what happens to a finished run's winner; returns the run's new promotion state.

    ``promoted`` (it beat the family's current strategy on the training set and promotion is
    automatic), ``pending`` (it beat it; approval required), ``not-better``.
    """
    current = (run["baselines"] or {}).get("current") or {}
    if not engine.is_better(run["best_fitness"], current.get("fitness")):
        ga_store.set_promotion(
            run["id"],
            PromotionState.NOT_BETTER,
            actor=actor,
            family=run["family"],
            best=run["best_fitness"],
            current=current.get("fitness"),
        )
        return PromotionState.NOT_BETTER
    auto = bool(run["config"].get("auto_promote"))
    decision = authorize(_request(run, actor, auto=auto), payload={"run_id": run["id"]})
    if decision.outcome is Outcome.ALLOW:
        ga_store.promote(
            run["family"],
            _named(run),
            run_id=run["id"],
            fitness=run["best_fitness"],
            actor=actor,
        )
        return PromotionState.PROMOTED
    if decision.outcome is Outcome.DENY:
        ga_store.set_promotion(run["id"], PromotionState.DENIED, actor=actor, rule=decision.rule)
        return PromotionState.DENIED
    ga_store.set_promotion(
        run["id"],
        PromotionState.PENDING,
        actor=actor,
        family=run["family"],
        best=run["best_fitness"],
        approval_id=decision.approval_id,
    )
    return PromotionState.PENDING


def approve(run_id: str, *, actor: str) -> dict[str, Any]:
    """Promote a finished run's winner to its family's strategy (``hms strategies promote``).

    A person asking is the approval the run's pending promotion waited for: that approval is
    closed (SUPERSEDED) and the promotion still passes the policy (a ``require_approval``
    rule for ``strategy.promote`` makes it wait in ``hms approvals`` too: four eyes)."""
    run = _promotable(run_id)
    approvals.supersede(
        rules.STRATEGY_PROMOTE, run["family"], actor=actor, why=f"promoted by {actor} directly"
    )
    require(_request(run, actor, auto=None), payload={"run_id": run_id})
    return promote(run_id, actor=actor)


def promote(run_id: str, *, actor: str) -> dict[str, Any]:
    """Make a DONE run's winner its family's strategy (the policy already allowed it)."""
    run = _promotable(run_id)
    strategy = _named(run)
    ga_store.promote(
        run["family"], strategy, run_id=run_id, fitness=run["best_fitness"], actor=actor
    )
    return {"family": run["family"], "strategy": strategy, "run_id": run_id}


def _promotable(run_id: str) -> GARunRecord:
    run = ga_store.get_run(run_id)
    if run is None:
        raise InputError(f"unknown GA run {run_id!r}")
    if run["status"] != GARunStatus.DONE or run["best_genome"] is None:
        raise InputError(f"GA run {run_id} is {run['status']}: only a DONE run can be promoted")
    return run


def _request(run: GARunRecord, actor: str, *, auto: bool | None) -> ActionRequest:
    """The policy request of promoting ``run``'s winner (``auto``: None for a person's ask)."""
    details: dict[str, Any] = {"run_id": run["id"], "best": run["best_fitness"]}
    if auto is not None:
        details["auto"] = auto
    return ActionRequest(rules.STRATEGY_PROMOTE, run["family"], actor, details, also=(run["id"],))


def _named(run: GARunRecord) -> dict[str, Any]:
    """The winner, named after its run (``ga-<family>-<run prefix>``)."""
    return {**(run["best_genome"] or {}), "name": f"ga-{run['family']}-{run['id'][:8]}"}
