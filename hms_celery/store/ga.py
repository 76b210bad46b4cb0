"""Store operations of the genetic strategy search (a facade of their subject modules).

Runs live in :mod:`~hms_celery.store.ga_runs`, generations in
:mod:`~hms_celery.store.ga_generations` (scored once: see there), a run's step tasks in
:mod:`~hms_celery.store.ga_steps`, failing proofs by family in :mod:`~hms_celery.store.failures`
and promoted family strategies in :mod:`~hms_celery.store.strategies`; this module keeps their
names importable as ``from hms_celery.store import ga as ga_store``.
"""

from __future__ import annotations

from hms_celery.store.failures import (
    ago,
    count_failures,
    failing_families,
    failing_requests,
)
from hms_celery.store.ga_generations import (
    EVALUATING,
    SCORED,
    ensure_generation,
    generations,
    get_generation,
    mark_published,
    record_scores,
)
from hms_celery.store.ga_runs import (
    ActiveRunError,
    active_run,
    cancel_run,
    create_run,
    fail_run,
    get_run,
    latest_run_start,
    list_runs,
    running_runs,
    set_promotion,
    touch_run,
)
from hms_celery.store.ga_steps import (
    FITNESS_KIND,
    GENERATION_KIND,
    SCORE_KIND,
    evaluation_results,
    record_tasks,
    run_activity,
    run_label,
    seconds_since,
    supersede_steps,
)
from hms_celery.store.strategies import (
    family_strategies,
    family_strategy,
    promote,
)

__all__ = [
    "EVALUATING",
    "FITNESS_KIND",
    "GENERATION_KIND",
    "SCORED",
    "SCORE_KIND",
    "ActiveRunError",
    "active_run",
    "ago",
    "cancel_run",
    "count_failures",
    "create_run",
    "ensure_generation",
    "evaluation_results",
    "fail_run",
    "failing_families",
    "failing_requests",
    "family_strategies",
    "family_strategy",
    "generations",
    "get_generation",
    "get_run",
    "latest_run_start",
    "list_runs",
    "mark_published",
    "promote",
    "record_scores",
    "record_tasks",
    "run_activity",
    "run_label",
    "running_runs",
    "seconds_since",
    "set_promotion",
    "supersede_steps",
    "touch_run",
]
