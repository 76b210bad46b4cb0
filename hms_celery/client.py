"""Python client API: submit proof tasks, follow them, check catalogues.

The names of the earlier HMS module are kept: :func:`ping_supervisor`,
:func:`submit_proof_task`, :func:`query_task_status`.  Invalid input raises a typed error
(:class:`~hms_celery.errors.InputError` and subclasses) before anything is enqueued; an
unreachable broker or database raises :class:`~hms_celery.errors.InfrastructureError`
with the URL that failed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from hms_celery.agents.skills import PROOF_QUEUES
from hms_celery.app import PUBLISH_ERRORS, app, publish_error
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.policy import rules
from hms_celery.policy.engine import ActionRequest, require
from hms_celery.settings import get_settings
from hms_celery.store import repository
from hms_celery.store.db import check_database, safe_url, session_scope
from hms_celery.store.models import TaskStatus
from hms_celery.verification.catalogue import Claim, find_claim, load_catalogue, read_catalogue
from hms_celery.verification.request import ProofRequest

__all__ = [
    "Claim",
    "UnknownAgentError",
    "UnknownRunError",
    "UnknownTaskError",
    "audit_log",
    "cancel_ga_run",
    "list_agents",
    "list_ga_runs",
    "list_strategies",
    "load_catalogue",
    "ping_supervisor",
    "promote_strategy",
    "query_agent_status",
    "query_ga_run",
    "query_task_status",
    "read_catalogue",
    "run_skill",
    "show_strategy",
    "spawn_agent",
    "start_ga_run",
    "stop_agent",
    "submit_claim",
    "submit_proof_task",
    "submit_smtlib_task",
    "wait_for_agent",
    "wait_for_ga_run",
    "wait_for_result",
    "wait_for_results",
    "wait_skill_result",
]

ACTOR = "client"


class UnknownTaskError(InputError):
    """No task with this id is in the store."""


def ping_supervisor(timeout: float = 1.0) -> dict[str, Any]:
    """Check the stack: broker, store and the agents (workers) that answer a ping.

    Returns ``{"ok", "broker", "database", "agents", "errors"}``; raises only
    :class:`~hms_celery.settings.NoStackError` when there is no broker to ask at all.
    """
    settings = get_settings()
    report: dict[str, Any] = {
        "broker": safe_url(settings.effective_broker_url),
        "database": safe_url(settings.effective_database_url),
        "agents": {},
        "errors": [],
    }
    for attempt in range(2):  # a pooled connection may be stale after a broker restart
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=settings.connect_timeout)
            replies = app.control.ping(timeout=timeout) or []
            report["agents"] = {name: reply for item in replies for name, reply in item.items()}
            break
        except Exception as exc:  # kombu, redis-py and socket errors alike: report, never raise
            if attempt == 1:
                report["errors"].append(f"broker unreachable at {report['broker']}: {exc}")
            else:
                from hms_celery.app import reset_connections

                reset_connections()
    try:
        check_database()
    except InfrastructureError as exc:
        report["errors"].append(str(exc))
    report["ok"] = not report["errors"]
    return report


def submit_proof_task(
    theorem_id: str,
    lean_expr: str | bytes | None = None,
    axioms: Sequence[str] = (),
    *,
    backend: str = "z3",
    strategy: dict[str, Any] | str | None = None,
    timeout: float | None = None,
    variables: dict[str, str] | None = None,
    max_size: int | None = None,
    rlimit: int | None = None,
) -> str:
    """Submit a proof task; returns its task id.

    With ``lean_expr`` None, ``theorem_id`` is looked up in the catalogue (its statement,
    assumptions and variables are used, ``axioms`` are added to its assumptions).  Otherwise
    ``lean_expr`` is proved under the assumptions ``axioms`` and ``theorem_id`` labels it.
    The statement is parsed here first: a malformed one raises
    :class:`~hms_celery.errors.StatementError` (with line and column) and nothing is enqueued.
    ``backend="race"`` races Z3 strategies and cvc5 on their agents: the first decisive verdict
    wins (:mod:`hms_celery.agents.race`; the status's ``race`` shows every leg).
    """
    if lean_expr is None:
        claim = find_claim(theorem_id)
        request = ProofRequest.build(
            theorem_id=claim.theorem_id,
            statement=claim.formal_expression,
            assumptions=(*claim.assumptions, *axioms),
            variables=claim.variables or None,
            backend=backend,
            strategy=strategy,
            timeout=timeout,
            max_size=max_size,
            rlimit=rlimit,
        )
        family = claim.family
    else:
        if isinstance(lean_expr, bytes):
            try:
                lean_expr = lean_expr.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"statement is not UTF-8 text: {exc}") from None
        request = ProofRequest.build(
            theorem_id=theorem_id or None,
            statement=lean_expr,
            assumptions=tuple(axioms),
            variables=variables,
            backend=backend,
            strategy=strategy,
            timeout=timeout,
            max_size=max_size,
            rlimit=rlimit,
        )
        family = (theorem_id or "adhoc").split("-", 1)[0]
    return _submit(request, family)


def submit_smtlib_task(
    name: str,
    smtlib: str | bytes,
    *,
    strategy: dict[str, Any] | str | None = None,
    timeout: float | None = None,
    rlimit: int | None = None,
    backend: str = "z3",
) -> str:
    """Submit an SMT-LIB 2 problem, read as the claim that its assertions are unsatisfiable
    (PROVED on ``unsat``, REFUTED with the model on ``sat``); returns the task id.

    ``name`` labels it (its theorem id).  The text is parsed here first: text Z3 cannot parse
    raises :class:`~hms_celery.errors.InputError` with Z3's message and nothing is enqueued.
    ``backend="race"`` races the strategies (and solvers) that read SMT-LIB.
    """
    from hms_celery.verification.smtlib import parse_smtlib

    if isinstance(smtlib, bytes):
        try:
            smtlib = smtlib.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"SMT-LIB problem is not UTF-8 text: {exc}") from None
    request = ProofRequest.build(
        theorem_id=name or None,
        smtlib=smtlib,
        strategy=strategy,
        timeout=timeout,
        rlimit=rlimit,
        backend=backend,
    )
    parse_smtlib(smtlib)
    return _submit(request, (name or "smtlib").split("-", 1)[0])


def submit_claim(claim: Claim, **options: Any) -> str:
    """Submit one catalogue claim (from any catalogue file); returns the task id."""
    request = ProofRequest.build(
        theorem_id=claim.theorem_id,
        statement=claim.formal_expression,
        assumptions=claim.assumptions,
        variables=claim.variables or None,
        **options,
    )
    return _submit(request, claim.family)


def _submit(request: ProofRequest, family: str | None) -> str:
    if not request.smtlib:  # an SMT-LIB problem is parsed by its submitter
        request.parse()  # StatementError before anything is enqueued
    request.validate_strategy()
    # No HMS_BROKER_URL and no recorded stack: NoStackError (exit 3) before anything is stored.
    get_settings().effective_broker_url  # noqa: B018
    if request.backend == "race":  # one task, its legs on several queues
        from hms_celery.agents.race.tasks import submit_race

        return submit_race(request, family, actor=ACTOR)
    queue = PROOF_QUEUES.get(request.backend)
    if queue is None:
        raise InputError(
            f"backend {request.backend!r} has no agents yet; available: {sorted(PROOF_QUEUES)}"
        )
    settings = get_settings()
    _check_breaker(request.backend)
    task_id = str(uuid.uuid4())
    # A statement's payload keeps its old shape, which workers of earlier versions accept.
    payload = request.model_dump(mode="json", exclude=None if request.smtlib else {"smtlib"})
    repository.record_submission(
        task_id,
        queue=queue,
        payload=payload,
        theorem_id=request.theorem_id,
        family=family,
        actor=ACTOR,
    )
    timeout = request.timeout or settings.prover_timeout
    try:
        app.send_task(
            "hms.prove",
            kwargs=payload,
            task_id=task_id,
            queue=queue,
            # hms.prove's route names prove.z3's routing key: another backend's queue
            # (prove.cvc5) needs its own, or the broker delivers the task to prove.z3.
            routing_key=queue,
            ignore_result=True,  # the store holds the result; skip the result backend
            soft_time_limit=timeout + settings.time_limit_margin,
            time_limit=timeout + 2 * settings.time_limit_margin,
        )
    except PUBLISH_ERRORS as exc:
        why = publish_error(exc)
        url = safe_url(settings.effective_broker_url)
        repository.mark_rejected(task_id, f"broker unreachable: {why}", ACTOR)
        raise InfrastructureError(f"broker unreachable at {url}: {why}", url=url) from exc
    return task_id


def _check_breaker(backend: str) -> None:
    """Refuse work for a prover backend whose circuit breaker is open."""
    from hms_celery.healing import breakers, stack_claim
    from hms_celery.healing.heartbeats import redis_client

    try:
        client = redis_client()
        stack_claim.check(client)  # StackConflictError: this broker serves another store
        is_open = breakers.is_open(client, breakers.backend_key(backend))
    except stack_claim.StackConflictError:
        check_database()  # a store that cannot be reached is the first problem (exit 3)
        raise
    except Exception:  # no Redis to ask: the publish below reports an unreachable broker
        return
    if is_open:
        raise InfrastructureError(
            f"prover backend {backend!r} is failing: its circuit breaker is open "
            f"(retry after {get_settings().breaker_cooldown:.0f}s, or see `hms health`)",
            url=safe_url(get_settings().effective_broker_url),
        )


def query_task_status(task_id: str) -> dict[str, Any]:
    """The store's record of a task: state, verdict, counterexample, timings, agent, attempts."""
    status = repository.task_status(task_id)
    if status is None:
        raise UnknownTaskError(f"unknown task id {task_id!r}")
    return status


def wait_for_result(task_id: str, timeout: float | None = None) -> dict[str, Any]:
    """Block until the task is DONE, FAILED or REJECTED; returns :func:`query_task_status`.

    Raises :class:`TimeoutError` if ``timeout`` seconds pass first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while True:
        status = query_task_status(task_id)
        if status["state"] in TaskStatus.FINAL:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"task {task_id} still {status['state']} after {timeout}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def wait_for_results(
    task_ids: Iterable[str],
    timeout: float | None = None,
    on_done: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, dict[str, Any]]:
    """Wait for several tasks; ``on_done(status)`` is called as each one finishes.

    One query per poll finds the unfinished tasks; finished ones are loaded in a batch.
    """
    pending = list(dict.fromkeys(task_ids))
    missing = set(pending) - set(repository.task_statuses(pending))
    if missing:
        raise UnknownTaskError(f"unknown task id(s): {sorted(missing)}")
    results: dict[str, dict[str, Any]] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.005
    while pending:
        still = repository.unfinished(pending)
        finished = [task_id for task_id in pending if task_id not in still]
        for task_id, status in repository.task_statuses(finished).items():
            results[task_id] = status
            if on_done is not None:
                on_done(status)
        pending = [task_id for task_id in pending if task_id in still]
        if pending:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{len(pending)} task(s) unfinished after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
    return results


def run_skill(skill_id: str, payload: dict[str, Any]) -> str:
    """Publish the generic task of skill ``skill_id`` with the JSON object ``payload``.

    Returns the task id; :func:`wait_skill_result` gives its result (skill tasks store their
    result in Celery's result backend, not in the store).  An unknown skill or a payload
    that is not a JSON object raises :class:`~hms_celery.errors.InputError`.
    """
    import json

    from hms_celery.agents.skills import get_skill

    try:
        skill = get_skill(skill_id)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    if not isinstance(payload, dict):
        raise InputError(f"skill payload must be a JSON object, not {type(payload).__name__}")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InputError(f"skill payload is not JSON: {exc}") from None
    queues = app.amqp.queues
    try:
        queue = queues[skill.queue]
    except KeyError:  # a skill loaded after the app was configured (reload_skills)
        queue = queues.add(skill.make_queue())
    options = {**skill.route(), "queue": queue}
    task_id = str(uuid.uuid4())
    try:
        app.send_task(skill.task_name, kwargs={"payload": payload}, task_id=task_id, **options)
    except PUBLISH_ERRORS as exc:
        why = publish_error(exc)
        url = safe_url(get_settings().effective_broker_url)
        raise InfrastructureError(f"broker unreachable at {url}: {why}", url=url) from exc
    return task_id


def wait_skill_result(task_id: str, timeout: float | None = None) -> dict[str, Any]:
    """Block until the skill task ``task_id`` finished; returns its JSON result.

    Raises :class:`TimeoutError` if ``timeout`` seconds pass first; a task that raised
    re-raises its exception here.
    """
    from celery.exceptions import TimeoutError as CeleryTimeoutError

    result = app.AsyncResult(task_id)
    try:
        return result.get(timeout=timeout, interval=0.05, propagate=True)
    except CeleryTimeoutError:
        pass
    # Stop waiting now (the backend holds the pending result), not at interpreter exit.
    result.backend.remove_pending_result(result)
    del result
    raise TimeoutError(f"skill task {task_id} unfinished after {timeout}s")


# ----------------------------------------------------------------------------- agents
class UnknownAgentError(InputError):
    """No agent with this id is registered."""


def spawn_agent(
    skills: list[str], config: dict[str, Any] | None = None, *, host_id: str | None = None
) -> str:
    """Ask an agent host to start a new agent with ``skills``; returns the new agent's id.

    ``config`` may set ``concurrency`` and ``env`` (``HMS_*`` overrides for that agent).  The
    agent registers itself as INITIALIZING at once and READY when its worker is up
    (:func:`wait_for_agent`).  No live agent host → :class:`InfrastructureError`.
    """
    from hms_celery.agents import registry
    from hms_celery.agents.host import new_agent_id, send_host_command
    from hms_celery.agents.skills import SKILLS

    unknown = [s for s in skills if s not in SKILLS]
    if not skills or unknown:
        raise InputError(f"unknown skill(s) {unknown or skills}; known: {sorted(SKILLS)}")
    hosts = registry.live_hosts()
    if host_id is not None:
        hosts = [h for h in hosts if h["id"] == host_id]
    if not hosts:
        raise InfrastructureError(
            "no agent host is running (start one with `hms up`)",
            url=get_settings().effective_broker_url,
        )
    agent_id = new_agent_id(skills)
    command = {"op": "spawn", "skills": list(skills), "config": config or {}, "agent_id": agent_id}
    concurrency = int((config or {}).get("concurrency") or get_settings().worker_concurrency)
    policy_request = ActionRequest(  # PolicyDenied / ApprovalPending (an InputError) if not allowed
        rules.SPAWN,
        agent_id,
        ACTOR,
        {"skills": sorted(skills), "concurrency": concurrency, "host": hosts[0]["id"]},
    )
    require(policy_request, payload={"host": hosts[0]["id"], **command})
    send_host_command(hosts[0]["id"], {**command, "authorized": True})
    return agent_id


def stop_agent(agent_id: str) -> None:
    """Stop an agent gracefully (its host, else Celery's remote-control shutdown)."""
    from hms_celery.agents import registry
    from hms_celery.agents.host import send_host_command

    agent = registry.get_agent(agent_id)
    if agent is None:
        raise UnknownAgentError(f"unknown agent {agent_id!r}")
    live = {h["id"] for h in registry.live_hosts()}
    host = agent["host_id"] if agent["host_id"] in live else None
    require(  # PolicyDenied / ApprovalPending (an InputError) if not allowed
        ActionRequest(rules.STOP, agent_id, ACTOR, {"host": host, "forced": False}),
        payload={"host": host, "agent_id": agent_id, "forced": False},
    )
    if host is not None:
        send_host_command(host, {"op": "stop", "agent_id": agent_id, "authorized": True})
    else:
        app.control.shutdown(destination=[agent_id])
        with session_scope() as session:
            repository.audit(session, ACTOR, "agent.stopped", agent_id, via="remote control")


def list_agents(include_ended: bool = True) -> list[dict[str, Any]]:
    """Every registered agent (state, skills, host, last heartbeat, last report)."""
    from hms_celery.agents import registry

    return registry.list_agents(include_ended=include_ended)


def query_agent_status(agent_id: str) -> dict[str, Any]:
    """One agent: its registry row, state history and the audit events about it."""
    from hms_celery.agents import registry

    agent = registry.get_agent(agent_id)
    if agent is None:
        raise UnknownAgentError(f"unknown agent {agent_id!r}")
    return {
        **agent,
        "transitions": registry.transitions(agent_id),
        "events": repository.audit_events(subject=agent_id),
    }


def wait_for_agent(
    agent_id: str, states: Iterable[str] = ("READY", "BUSY"), timeout: float = 60.0
) -> dict[str, Any]:
    """Block until the agent is in one of ``states``; :class:`TimeoutError` otherwise."""
    from hms_celery.agents import registry

    wanted = set(states)
    deadline = time.monotonic() + timeout
    while True:
        agent = registry.get_agent(agent_id)
        if agent is not None and agent["state"] in wanted:
            return agent
        if time.monotonic() >= deadline:
            state = agent["state"] if agent else "unregistered"
            raise TimeoutError(f"agent {agent_id} is {state}, not {sorted(wanted)}")
        time.sleep(0.1)


# ----------------------------------------------------------------------------- GA runs
class UnknownRunError(InputError):
    """No GA run with this id is in the store."""


def start_ga_run(
    family: str,
    *,
    population: int | None = None,
    generations: int | None = None,
    seed: int = 0,
    rlimit: int | None = None,
    timeout: float | None = None,
    instances: list[dict[str, Any]] | None = None,
    auto_promote: bool | None = None,
) -> str:
    """Start a GA run evolving a Z3 strategy for ``family``; returns the run id.

    The training set is ``instances`` (``[{"id", "request": {statement, assumptions,
    variables} | {smtlib}, "expected"}]``) or, by default, the family's: a generated
    Moneyball family (:mod:`hms_celery.genetic.families`) or the catalogue's claims of that
    family.  Defaults for the other options come from the ``HMS_GA_*`` settings.  A family
    with a running run raises :class:`~hms_celery.store.ga.ActiveRunError`.
    """
    from hms_celery.genetic import runs

    try:
        return runs.start_run(
            family,
            instances=instances,
            population=population,
            generations=generations,
            seed=seed,
            rlimit=rlimit,
            timeout=timeout,
            auto_promote=auto_promote,
            trigger="client",
            actor=ACTOR,
        )
    except PUBLISH_ERRORS as exc:
        why = publish_error(exc)
        url = safe_url(get_settings().effective_broker_url)
        raise InfrastructureError(f"broker unreachable at {url}: {why}", url=url) from exc


def query_ga_run(run_id: str) -> dict[str, Any]:
    """A run: its settings, state, progress, best genome and fitness, baselines and every
    generation's figures (best/mean/worst fitness, diversity, the best genome of each)."""
    from hms_celery.genetic.engine import best_of
    from hms_celery.genetic.fitness import Fitness
    from hms_celery.genetic.genome import genome_key
    from hms_celery.store import ga as ga_store

    run = ga_store.get_run(run_id)
    if run is None:
        raise UnknownRunError(f"unknown GA run {run_id!r}")
    gens = ga_store.generations(run_id)
    scored = [g for g in gens if g["status"] == ga_store.SCORED]
    for gen in gens:
        if gen["fitness"]:
            fitness = [Fitness.from_json(f) for f in gen["fitness"]]
            genome, best = best_of(gen["population"], fitness)
            gen["best_genome"], gen["best_fitness"] = genome, best.to_json()
        gen["distinct"] = len({genome_key(g) for g in gen["population"]})
    run["generation_records"] = gens
    run["progress"] = {
        "scored": len(scored),
        "generations": run["generations"],
        "evaluating": next((g["number"] for g in gens if g["status"] != ga_store.SCORED), None),
    }
    return run


def wait_for_ga_run(
    run_id: str,
    timeout: float | None = None,
    on_progress: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Block until the run is DONE, FAILED or CANCELLED; returns :func:`query_ga_run`.

    ``on_progress(run)`` is called whenever another generation has been scored.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = -1
    while True:
        run = query_ga_run(run_id)
        if run["progress"]["scored"] != seen:
            seen = run["progress"]["scored"]
            if on_progress is not None:
                on_progress(run)
        if run["status"] != "RUNNING":
            return run
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"GA run {run_id} still RUNNING after {timeout}s "
                f"({seen}/{run['generations']} generations scored)"
            )
        time.sleep(0.25)


def list_ga_runs(family: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """GA runs, newest first."""
    from hms_celery.store import ga as ga_store

    return ga_store.list_runs(family, limit)


def cancel_ga_run(run_id: str) -> bool:
    """Stop a running GA run (its queued steps are then skipped); False if not running."""
    from hms_celery.store import ga as ga_store

    if ga_store.get_run(run_id) is None:
        raise UnknownRunError(f"unknown GA run {run_id!r}")
    return ga_store.cancel_run(run_id, actor=ACTOR)


def list_strategies() -> dict[str, Any]:
    """The named strategies and the strategies promoted for theorem families."""
    from hms_celery.store import ga as ga_store
    from hms_celery.verification.strategy import NAMED_STRATEGIES

    return {
        "named": {name: s.to_json() for name, s in NAMED_STRATEGIES.items()},
        "families": ga_store.family_strategies(),
    }


def show_strategy(name: str) -> dict[str, Any]:
    """A strategy by name: a named strategy, a family (its promoted strategy) or a GA run
    (its best genome).  :class:`~hms_celery.errors.InputError` if none matches."""
    from hms_celery.store import ga as ga_store
    from hms_celery.verification.strategy import NAMED_STRATEGIES

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
    from hms_celery.genetic import promotion
    from hms_celery.store import ga as ga_store

    run = ga_store.get_run(run_id)
    if run is None:
        raise UnknownRunError(f"unknown GA run {run_id!r}")
    if run["promotion"] == "not-better" and not force:
        raise InputError(_not_better_reason(run))
    return promotion.approve(run_id, actor=ACTOR)


def _not_better_reason(run: dict[str, Any]) -> str:
    """Why a run's winner was not promoted: its fitness beside the family's strategy's."""
    from hms_celery.genetic.fitness import Fitness

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


# ----------------------------------------------------------------------------- audit log
def audit_log(
    *,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
) -> list[dict[str, Any]]:
    """The newest ``limit`` audit events matching every filter, oldest first: about
    ``subject``; with action ``action`` or a sub-action of it (``task`` matches
    ``task.submitted``; ``recovery.`` or ``recovery*`` is a prefix); at or after ``since``,
    before ``until`` (naive datetimes are UTC).  Each event: ``id``, ``at``, ``actor``,
    ``action``, ``subject``, ``details``."""
    return repository.audit_events(
        subject=subject, limit=limit, action=action, since=since, until=until
    )
