"""The ``prove.cvc5`` skill: decide Lean-fragment statements with the cvc5 SMT solver."""

from __future__ import annotations

from typing import Any, ClassVar

from hms_celery.agents.builtin.prove_z3 import ProveZ3Skill


class ProveCvc5Skill(ProveZ3Skill):
    """Prove or refute a statement with cvc5 (Z3 confirms its proofs).

    Its agents consume queue ``prove.cvc5`` and run the shared task ``hms.prove``
    (:mod:`hms_celery.agents.prover`, generic over backends): the client publishes a
    ``backend="cvc5"`` request there (:data:`~hms_celery.runtime.skills.PROOF_QUEUES`).  The
    task name stays routed to ``prove.z3`` (a task belongs to one skill), so the queue is
    always named explicitly when publishing.  ``hms.skill.prove.cvc5`` runs :meth:`execute`.
    """

    id = "prove.cvc5"
    name = "cvc5 prover"
    description = "Prove or refute statements with the cvc5 SMT solver (Z3 confirms proofs)"
    queue = "prove.cvc5"
    task_names: ClassVar[tuple[str, ...]] = ()
    proof_backend = "cvc5"

    def can_handle(self, payload: dict[str, Any]) -> bool:
        """A proof request for the cvc5 backend."""
        return payload.get("backend") == "cvc5"
