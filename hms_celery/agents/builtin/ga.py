"""The ``ga`` skill: genetic strategy search (queue ``ga``; tasks ``hms.ga.*``)."""

from __future__ import annotations

from typing import Any, ClassVar

from hms_celery.runtime.skills import Skill


class GASkill(Skill):
    """Evolve prover strategies: GA generations and their scoring run on this queue.

    The generic ``hms.skill.ga`` task scores one strategy in-process:
    ``{"strategy": <JSON or name>, "family": F}`` or ``{"strategy", "instances": [...]}``,
    with optional ``rlimit`` and ``timeout``; it returns the fitness and every verdict.
    """

    id = "ga"
    name = "Strategy evolution"
    description = "Evolve Z3 strategies with a genetic algorithm (generations, scoring)"
    queue = "ga"
    task_names: ClassVar[tuple[str, ...]] = ("hms.ga.generation", "hms.ga.score")

    def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Score ``payload["strategy"]`` on a family's training set or on given instances."""
        from hms_celery.errors import InputError
        from hms_celery.genetic import engine, runs
        from hms_celery.settings import get_settings
        from hms_celery.verification.strategy import strategy_from_any

        settings = get_settings()
        try:
            strategy = strategy_from_any(payload.get("strategy")).to_json()
            instances = payload.get("instances")
            if instances is None:
                instances = runs.training_set(str(payload.get("family") or ""))
            fitness, evaluations = engine.evaluate_inline(
                strategy,
                instances,
                rlimit=int(payload.get("rlimit") or settings.ga_rlimit),
                timeout_s=float(payload.get("timeout") or settings.ga_timeout),
            )
        except (InputError, ValueError, TypeError) as exc:
            return {"error": str(exc)}
        return {
            "strategy": strategy,
            "fitness": fitness.to_json(),
            "evaluations": [ev.__dict__ for ev in evaluations],
        }
