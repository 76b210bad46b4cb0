"""The skill registry: every queue and route of HMS derives from it.

A skill is a kind of work an agent (a Celery worker node) can do; an agent consumes the
queue of each of its skills.  ``celery -A hms_celery worker -Q prove.z3`` makes a Z3 prover.
"""

from __future__ import annotations

from dataclasses import dataclass

from kombu import Queue


@dataclass(frozen=True)
class Skill:
    """A kind of work: its id, the queue it is consumed from and the tasks routed there."""

    id: str
    queue: str
    description: str
    task_names: tuple[str, ...]


PROVE_Z3 = Skill(
    id="prove.z3",
    queue="prove.z3",
    description="Prove or refute statements with the Z3 SMT solver",
    task_names=("hms.prove",),
)

SKILLS: dict[str, Skill] = {skill.id: skill for skill in (PROVE_Z3,)}

PROOF_QUEUES: dict[str, str] = {"z3": PROVE_Z3.queue}
"""Prover backend → the queue of the skill that runs it."""


def get_skill(skill_id: str) -> Skill:
    try:
        return SKILLS[skill_id]
    except KeyError:
        raise KeyError(f"unknown skill {skill_id!r}; known: {', '.join(sorted(SKILLS))}") from None


def task_queues() -> list[Queue]:
    """One durable queue per skill."""
    return [Queue(skill.queue, routing_key=skill.queue) for skill in SKILLS.values()]


def task_routes() -> dict[str, dict[str, str]]:
    """Route every task of a skill to that skill's queue."""
    return {
        name: {"queue": skill.queue, "routing_key": skill.queue}
        for skill in SKILLS.values()
        for name in skill.task_names
    }
