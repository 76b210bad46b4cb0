"""SQLAlchemy 2 typed models: the store is the source of truth for task status."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum, nonmember
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hms_celery.store.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every HMS table."""


class TaskStatus(StrEnum):
    """Values of :attr:`Task.status`."""

    PENDING = "PENDING"  # recorded and published, not started
    RUNNING = "RUNNING"  # an attempt is in flight
    DONE = "DONE"  # a result is committed
    FAILED = "FAILED"  # ended without a verdict (the error says why)
    REJECTED = "REJECTED"  # could not be published (broker unreachable)

    FINAL = nonmember(frozenset({DONE, FAILED, REJECTED}))


class Task(Base):
    """One submitted unit of work (a proof attempt request), keyed by its Celery task id."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="proof")
    queue: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.PENDING, index=True)
    theorem_id: Mapped[str | None] = mapped_column(String(200), index=True)
    family: Mapped[str | None] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the task's kwargs, for re-publishing
    verdict: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="task", order_by="Attempt.number", cascade="all, delete-orphan"
    )
    result: Mapped[ProofResult | None] = relationship(back_populates="task")


class Attempt(Base):
    """One execution of a task by one agent (a redelivery or requeue is a new attempt)."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_task_number", "task_id", "number", unique=True),
        # The supervisor counts open attempts per agent on every sweep (migration 0004).
        Index(
            "ix_attempts_open_agent",
            "agent",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(String(32))  # a verdict, DUPLICATE or ERROR
    error: Mapped[str | None] = mapped_column(Text)
    # A race leg (backend="race", hms_celery.agents.race): which leg, its backend and
    # strategy, and its own outcome (migration 0005); None for any other attempt.
    leg: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    task: Mapped[Task] = relationship(back_populates="attempts")


class ProofResult(Base):
    """The committed verdict of a proof task. One row per task: the first completion wins."""

    __tablename__ = "proof_results"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    attempt_number: Mapped[int] = mapped_column(Integer)
    agent: Mapped[str] = mapped_column(String(200))
    theorem_id: Mapped[str | None] = mapped_column(String(200), index=True)
    verdict: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    counterexample: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    bound: Mapped[int | None] = mapped_column(Integer)
    backend: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    elapsed_s: Mapped[float] = mapped_column(Float)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    task: Mapped[Task] = relationship(back_populates="result")


class AuditEvent(Base):
    """Append-only log of what happened and why (submissions, results, duplicates, errors)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(200), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Agent(Base):
    """One agent: a Celery worker node, registered by the worker itself when it starts."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the node name
    lineage: Mapped[str] = mapped_column(String(200), index=True)  # first agent of a respawn line
    host: Mapped[str] = mapped_column(String(200))
    host_id: Mapped[str | None] = mapped_column(String(200), index=True)  # owning agent host
    # Its stack (Settings.stack_id: broker server and database); supervisors judge their own.
    stack: Mapped[str | None] = mapped_column(String(200), index=True)
    pid: Mapped[int | None] = mapped_column(Integer)
    skills: Mapped[list[Any]] = mapped_column(JSON, default=list)
    queues: Mapped[list[Any]] = mapped_column(JSON, default=list)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AgentTransition(Base):
    """Every state change of an agent, with its reason."""

    __tablename__ = "agent_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(200), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class AgentHost(Base):
    """A process that starts, stops and respawns worker processes on one machine."""

    __tablename__ = "agent_hosts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(200))  # where it takes commands
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SupervisorState(Base):
    """Small JSON documents the supervisor keeps between sweeps (policy history, breakers)."""

    __tablename__ = "supervisor_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GARunStatus(StrEnum):
    """Values of :attr:`GARun.status`."""

    RUNNING = "RUNNING"  # generations are being evaluated
    DONE = "DONE"  # every generation scored; ``best_genome`` is the winner
    FAILED = "FAILED"  # stopped by an error (``error`` says which)
    CANCELLED = "CANCELLED"  # stopped by a user

    ACTIVE = nonmember(frozenset({RUNNING}))


class GenerationStatus(StrEnum):
    """Values of :attr:`GAGeneration.status`."""

    EVALUATING = "EVALUATING"  # its fitness evaluations are out
    SCORED = "SCORED"  # scored once; the next generation (or the run's end) follows


class PromotionState(StrEnum):
    """Values of :attr:`GARun.promotion`: what became of a finished run's winner."""

    NONE = "none"  # not decided yet (the run is not finished)
    PROMOTED = "promoted"  # the family's strategy now
    PENDING = "pending"  # better, waiting for an approval
    NOT_BETTER = "not-better"  # did not beat the family's current strategy
    DENIED = "denied"  # a policy rule, or an approver, refused the promotion
    EXPIRED = "expired"  # its approval expired undecided


class GARun(Base):
    """One genetic-algorithm run evolving prover strategies for one theorem family."""

    __tablename__ = "ga_runs"
    __table_args__ = (
        # Never two active runs for one family (the supervisor trigger relies on it).
        Index(
            "ux_ga_runs_active_family",
            "family",
            unique=True,
            sqlite_where=text("status = 'RUNNING'"),
            postgresql_where=text("status = 'RUNNING'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    trigger: Mapped[str] = mapped_column(String(32))  # client | cli | supervisor
    training: Mapped[list[Any]] = mapped_column(JSON)  # instances: {"id", "request", "expected"}
    population_size: Mapped[int] = mapped_column(Integer)
    generations: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    rlimit: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[float] = mapped_column(Float)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # operators, promotion
    current_generation: Mapped[int] = mapped_column(Integer, default=0)
    best_genome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    best_fitness: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    baselines: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name → fitness
    promotion: Mapped[str] = mapped_column(String(16), default=PromotionState.NONE.value)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GAGeneration(Base):
    """One generation of a run: its population, then (once scored) its fitness figures."""

    __tablename__ = "ga_generations"
    __table_args__ = (Index("ux_ga_generations_run_number", "run_id", "number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("ga_runs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # EVALUATING | SCORED
    population: Mapped[list[Any]] = mapped_column(JSON)  # genomes (strategy JSON)
    fitness: Mapped[list[Any] | None] = mapped_column(JSON)  # aligned with population
    best: Mapped[float | None] = mapped_column(Float)
    mean: Mapped[float | None] = mapped_column(Float)
    worst: Mapped[float | None] = mapped_column(Float)
    diversity: Mapped[float | None] = mapped_column(Float)
    evaluations: Mapped[int] = mapped_column(Integer, default=0)  # proof tasks fanned out
    wall_s: Mapped[float | None] = mapped_column(Float)  # summed evaluation wall time
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FamilyStrategy(Base):
    """The strategy proof tasks of one theorem family use when they name none."""

    __tablename__ = "family_strategies"

    family: Mapped[str] = mapped_column(String(100), primary_key=True)
    strategy: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[str | None] = mapped_column(String(64))
    fitness: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    promoted_by: Mapped[str] = mapped_column(String(200))
    promoted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApprovalStatus:
    """Values of :attr:`Approval.status`."""

    PENDING = "PENDING"  # waiting for `hms approvals approve|deny`
    APPROVED = "APPROVED"  # a person approved it; the supervisor sweep carries it out
    RUNNING = "RUNNING"  # claimed by a sweep, being carried out
    DONE = "DONE"  # carried out
    FAILED = "FAILED"  # approved, but carrying it out failed (``result`` says why)
    DENIED = "DENIED"  # a person denied it: dropped
    EXPIRED = "EXPIRED"  # nobody decided within HMS_APPROVAL_TTL: dropped
    SUPERSEDED = "SUPERSEDED"  # made moot by the same action done another way

    OPEN = frozenset({PENDING, APPROVED, RUNNING})


class Approval(Base):
    """An agent action a policy rule parked until a person approves or denies it."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # the policy action (respawn, spawn, …)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    actor: Mapped[str] = mapped_column(String(200))  # who asked for the action
    rule: Mapped[str] = mapped_column(String(100))  # the rule that asked for approval
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the request's details
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # how to carry it out
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[str | None] = mapped_column(Text)
