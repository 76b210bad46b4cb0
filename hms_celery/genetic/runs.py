"""Starting GA runs and keeping them moving: the client, the CLI and the supervisor use this.

:func:`start_run` resolves a family's training set, stores the run and enqueues generation 0.
:func:`resume_stalled` (every supervisor sweep) re-enqueues the step a run needs when its
normal path broke — a chord whose member was requeued after its agent died never fires its
body, so the supervisor scores such a generation itself.  :func:`check_triggers` starts a
run for a family whose proofs keep ending UNKNOWN/TIMEOUT.

Starting a run and resuming one are agent actions: each passes the policy engine first
(:func:`hms_celery.policy.engine.authorize`).  A triggered start that needs approval waits in
``hms approvals`` (the trigger does not fire again meanwhile); one the policy denied is not
tried again within ``HMS_GA_TRIGGER_WINDOW``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from hms_celery.errors import InputError
from hms_celery.genetic import engine, families, promotion
from hms_celery.genetic.genome import Z3_DEFAULT_GENOME
from hms_celery.policy import rules
from hms_celery.policy.approvals import open_for
from hms_celery.policy.engine import (
    ActionRequest,
    ApprovalPending,
    PolicyDenied,
    authorize,
    recently_denied,
    require,
)
from hms_celery.settings import get_settings
from hms_celery.store import ga as ga_store
from hms_celery.store.models import TaskStatus
from hms_celery.store.repository import audit
from hms_celery.verification.request import ProofRequest

log = logging.getLogger(__name__)

#: Request fields kept in a training instance (the GA sets strategy, timeout and rlimit).
_REQUEST_FIELDS = ("statement", "smtlib", "assumptions", "variables", "backend", "max_size")


def training_set(family: str) -> list[dict[str, Any]]:
    """The training instances of ``family``: a generated family's training split, else the
    catalogue claims of that family.  :class:`InputError` names the known families."""
    if family in families.FAMILIES:
        return families.split(family)[0]
    from hms_celery.verification.catalogue import load_catalogue

    claims = [c for c in load_catalogue() if c.family == family]
    if not claims:
        known = sorted(set(families.FAMILIES) | {c.family for c in load_catalogue()})
        raise InputError(f"unknown theorem family {family!r}; known: {', '.join(known)}")
    return [
        {
            "id": c.theorem_id,
            "request": {
                "statement": c.formal_expression,
                "assumptions": list(c.assumptions),
                "variables": dict(c.variables or {}),
            },
            "expected": c.expected if c.expected in ("PROVED", "REFUTED", "BOUNDED") else None,
        }
        for c in claims
    ]


def _clean(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate instances (each request must parse) and keep only the problem fields."""
    cleaned, seen = [], set()
    for i, item in enumerate(instances):
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            raise InputError(f"training instance {i}: expected {{'id', 'request', 'expected'}}")
        ident = str(item.get("id") or f"instance-{i}")
        if ident in seen:
            raise InputError(f"training instance id {ident!r} appears twice")
        seen.add(ident)
        request = {k: v for k, v in item["request"].items() if k in _REQUEST_FIELDS and v}
        built = ProofRequest.build(theorem_id=ident, **request)
        if not built.smtlib:
            built.parse()  # a malformed statement fails here, naming line and column
        cleaned.append({"id": ident, "request": request, "expected": item.get("expected")})
    if not cleaned:
        raise InputError("a GA run needs at least one training instance")
    return cleaned


def start_run(
    family: str,
    *,
    instances: list[dict[str, Any]] | None = None,
    population: int | None = None,
    generations: int | None = None,
    seed: int = 0,
    rlimit: int | None = None,
    timeout: float | None = None,
    auto_promote: bool | None = None,
    trigger: str = "client",
    actor: str = "client",
    run_id: str | None = None,
    authorized: bool = False,
) -> str:
    """Store a new run for ``family`` and enqueue its generation 0; returns the run id.

    The policy decides first (unless ``authorized``: an approved start, with the ``run_id``
    its decision named): :class:`~hms_celery.policy.engine.PolicyDenied`, or
    :class:`~hms_celery.policy.engine.ApprovalPending` with the approval's id."""
    settings = get_settings()
    if not isinstance(family, str) or not family.strip() or len(family) > 100:
        raise InputError(f"invalid family name {family!r}")
    training = _clean(instances if instances is not None else training_set(family))
    population = settings.ga_population if population is None else int(population)
    generations = settings.ga_generations if generations is None else int(generations)
    if not 2 <= population <= 200:
        raise InputError(f"population must be in 2..200, got {population}")
    if not 1 <= generations <= 500:
        raise InputError(f"generations must be in 1..500, got {generations}")
    if not 0 <= int(seed) < 2**31:
        raise InputError(f"seed must be in 0..2^31-1, got {seed}")
    rlimit = settings.ga_rlimit if rlimit is None else int(rlimit)
    timeout = settings.ga_timeout if timeout is None else float(timeout)
    if rlimit <= 0 or not 0 < timeout <= 600:
        raise InputError(f"rlimit must be > 0 and timeout in (0, 600]: {rlimit}, {timeout}")
    run_id = run_id or str(uuid.uuid4())
    if not authorized:
        backends = sorted({str(t["request"].get("backend") or "z3") for t in training})
        require(
            ActionRequest(
                rules.GA_RUN_START,
                family,
                actor,
                {
                    "trigger": trigger,
                    "population": population,
                    "generations": generations,
                    "backends": backends,
                    "training": [t["id"] for t in training],
                },
                also=(run_id,),
            ),
            payload={
                "run_id": run_id,
                "kwargs": {
                    "family": family,
                    "instances": training,
                    "population": population,
                    "generations": generations,
                    "seed": int(seed),
                    "rlimit": rlimit,
                    "timeout": timeout,
                    "auto_promote": auto_promote,
                    "trigger": trigger,
                    "actor": actor,
                },
            },
        )
    baselines = {"z3-default": Z3_DEFAULT_GENOME, "current": promotion.current_strategy(family)}
    ga_store.create_run(
        {
            "id": run_id,
            "family": family,
            "trigger": trigger,
            "training": training,
            "population_size": population,
            "generations": generations,
            "seed": int(seed),
            "rlimit": rlimit,
            "timeout": timeout,
            "config": {
                "operators": dict(engine.DEFAULT_OPERATORS),
                "auto_promote": settings.ga_auto_promote if auto_promote is None else auto_promote,
                "baselines": baselines,
            },
        },
        actor=actor,
    )
    from hms_celery.genetic.tasks import publish_generation

    try:
        publish_generation(run_id, 0)
    except Exception as exc:  # the broker refused it: the run cannot start
        ga_store.fail_run(run_id, f"could not enqueue generation 0: {exc}", actor=actor)
        raise
    return run_id


# ----------------------------------------------------------------------------- supervision
def resume_stalled() -> list[dict[str, Any]]:
    """Re-enqueue the step each running run needs when nothing has moved it for
    ``HMS_GA_STALL_AFTER`` seconds; returns what was done."""
    from hms_celery.genetic.tasks import publish_generation, publish_score

    settings = get_settings()
    actions = []
    for run in ga_store.running_runs():
        activity = ga_store.run_activity(run["id"])
        idle = ga_store.seconds_since(activity["last"])
        if idle is None or idle < settings.ga_stall_after:
            continue
        open_ = activity["open"]
        running = sum(n for (kind, status), n in open_.items() if status == TaskStatus.RUNNING)
        if running:
            continue  # something is working on it (a long evaluation)
        number = run["current_generation"]
        gen = ga_store.get_generation(run["id"], number)
        if gen is None or gen["published_at"] is None:
            if open_.get((ga_store.GENERATION_KIND, TaskStatus.PENDING)):
                continue  # queued, waiting for a ga agent
            kind, publish = "generation", publish_generation
        elif gen["status"] == ga_store.EVALUATING:
            if open_.get((ga_store.FITNESS_KIND, TaskStatus.PENDING)):
                continue  # evaluations queued, waiting for provers
            kind, publish = "score", publish_score
        else:
            continue
        decision = authorize(
            ActionRequest(
                rules.GA_RUN_RESUME,
                run["id"],
                "supervisor",
                {"family": run["family"], "generation": number, "step": kind},
            )
        )
        if not decision.allowed:
            continue  # asked again next sweep: a resume is cheap and idempotent
        task_id = publish(run["id"], number, task_id=str(uuid.uuid4()))
        _audit("ga.run.resumed", run["id"], generation=number, step=kind, task_id=task_id)
        actions.append({"kind": "GA_RESUME", "run": run["id"], "step": kind})
    return actions


def check_triggers() -> list[dict[str, Any]]:
    """Start a GA run for each family with ``HMS_GA_TRIGGER_FAILURES`` UNKNOWN/TIMEOUT
    verdicts within ``HMS_GA_TRIGGER_WINDOW`` (counting only verdicts newer than the
    family's last run); returns the runs started."""
    settings = get_settings()
    k = settings.ga_trigger_failures
    if k <= 0:
        return []
    since = ga_store.ago(settings.ga_trigger_window)
    started = []
    for family, _count in ga_store.failing_families(since, k).items():
        if family.startswith("ga:") or ga_store.active_run(family) is not None:
            continue
        if open_for(rules.GA_RUN_START, family) is not None:
            continue  # a start is waiting for a person
        if recently_denied(rules.GA_RUN_START, family, settings.ga_trigger_window):
            continue
        last = ga_store.latest_run_start(family)
        window_start = max(since, last) if last is not None else since
        failures = ga_store.count_failures(family, window_start)
        if failures < k:
            continue
        training = ga_store.failing_requests(family, window_start)
        try:
            run_id = start_run(family, instances=training, trigger="supervisor", actor="supervisor")
        except ApprovalPending as exc:
            log.info("GA trigger for %s: %s", family, exc)
            started.append(
                {"kind": "GA_TRIGGER_PARKED", "family": family, "approval": exc.approval_id}
            )
            continue
        except PolicyDenied as exc:
            log.warning("GA trigger for %s: %s", family, exc)
            continue
        except InputError as exc:  # e.g. another run started meanwhile
            log.info("GA trigger for %s skipped: %s", family, exc)
            continue
        _audit(
            "ga.triggered",
            family,
            run_id=run_id,
            failures=failures,
            window_s=settings.ga_trigger_window,
            training=[t["id"] for t in training],
        )
        started.append({"kind": "GA_TRIGGER", "family": family, "run": run_id})
    return started


def _audit(action: str, subject: str, **details: Any) -> None:
    from hms_celery.store.db import connection_scope

    with connection_scope() as conn:
        audit(conn, "supervisor", action, subject, **details)
