"""Family strategies: which strategy a theorem family's proof tasks use, and how a GA run's
winner becomes it (automatically, or after approval — ``HMS_GA_AUTO_PROMOTE``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from hms_celery.errors import InputError
from hms_celery.genetic import engine
from hms_celery.settings import get_settings
from hms_celery.store import ga as store
from hms_celery.store.models import GARunStatus
from hms_celery.verification.strategy import DEFAULT_STRATEGY, strategy_from_any

#: Seconds a worker keeps a family's strategy before asking the store again.
CACHE_TTL_S = 2.0

_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
_lock = threading.Lock()


def strategy_for_family(family: str | None) -> dict[str, Any] | None:
    """The promoted strategy of ``family`` (JSON), or None: cached for :data:`CACHE_TTL_S`
    so the proof path asks the store at most once per family every few seconds."""
    if not family:
        return None
    now = time.monotonic()
    with _lock:
        hit = _cache.get(family)
        if hit is not None and now - hit[0] < CACHE_TTL_S:
            return hit[1]
    found = store.family_strategy(family)
    with _lock:
        _cache[family] = (now, found)
    return found


def current_strategy(family: str) -> dict[str, Any]:
    """What a proof task of ``family`` naming no strategy uses now (family strategy, else
    ``HMS_DEFAULT_STRATEGY``, else the built-in default)."""
    found = store.family_strategy(family)
    if found is not None:
        return found
    return strategy_from_any(get_settings().default_strategy or DEFAULT_STRATEGY).to_json()


def settle(run: dict[str, Any], *, actor: str) -> str:
    """Decide what happens to a finished run's winner; returns the run's new promotion state.

    ``promoted`` (it beat the family's current strategy on the training set and promotion is
    automatic), ``pending`` (it beat it; approval required), ``not-better``.
    """
    current = (run["baselines"] or {}).get("current") or {}
    if not engine.is_better(run["best_fitness"], current.get("fitness")):
        store.set_promotion(
            run["id"],
            "not-better",
            actor=actor,
            family=run["family"],
            best=run["best_fitness"],
            current=current.get("fitness"),
        )
        return "not-better"
    if run["config"].get("auto_promote"):
        store.promote(
            run["family"],
            _named(run),
            run_id=run["id"],
            fitness=run["best_fitness"],
            actor=actor,
        )
        return "promoted"
    store.set_promotion(
        run["id"], "pending", actor=actor, family=run["family"], best=run["best_fitness"]
    )
    return "pending"


def approve(run_id: str, *, actor: str) -> dict[str, Any]:
    """Promote a finished run's winner to its family's strategy (the approval path)."""
    run = store.get_run(run_id)
    if run is None:
        raise InputError(f"unknown GA run {run_id!r}")
    if run["status"] != GARunStatus.DONE or run["best_genome"] is None:
        raise InputError(f"GA run {run_id} is {run['status']}: only a DONE run can be promoted")
    strategy = _named(run)
    store.promote(run["family"], strategy, run_id=run_id, fitness=run["best_fitness"], actor=actor)
    return {"family": run["family"], "strategy": strategy, "run_id": run_id}


def _named(run: dict[str, Any]) -> dict[str, Any]:
    """The winner, named after its run (``ga-<family>-<run prefix>``)."""
    return {**run["best_genome"], "name": f"ga-{run['family']}-{run['id'][:8]}"}
