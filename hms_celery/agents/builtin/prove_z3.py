"""The ``prove.z3`` skill: decide Lean-fragment statements with the Z3 SMT solver."""

from __future__ import annotations

from typing import Any, ClassVar

from hms_celery.runtime.skills import Skill


class ProveZ3Skill(Skill):
    """Prove or refute a statement with Z3.

    Its main task is ``hms.prove`` (:mod:`hms_celery.agents.prover`), which records attempts
    and results in the store; the generic ``hms.skill.prove.z3`` runs :meth:`execute` and
    returns the outcome through the result backend only.
    """

    id = "prove.z3"
    name = "Z3 prover"
    description = "Prove or refute statements with the Z3 SMT solver"
    queue = "prove.z3"
    task_names: ClassVar[tuple[str, ...]] = ("hms.prove", "hms.prove_batch")
    proof_backend = "z3"

    def can_handle(self, payload: dict[str, Any]) -> bool:
        """A proof request for the Z3 backend (the default backend)."""
        return payload.get("backend", "z3") == "z3"

    def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Run the proof request ``payload`` now; returns ``ProofOutcome.to_json()``.

        Invalid fields give an ERROR outcome naming them, never an exception.
        """
        from hms_celery.errors import InputError
        from hms_celery.settings import get_settings
        from hms_celery.verification.request import ProofRequest
        from hms_celery.verification.sandbox import run_request
        from hms_celery.verification.verdict import ProofOutcome, Verdict

        settings = get_settings()
        try:
            request = ProofRequest.build(**payload)
        except InputError as exc:
            return ProofOutcome(Verdict.ERROR, reason=str(exc)).to_json()
        outcome = run_request(  # in the prover child process (HMS_PROVER_SANDBOX)
            request,
            timeout=settings.prover_timeout,
            max_size=settings.bounded_max_size,
            rlimit=settings.prover_rlimit,
            strategy=settings.default_strategy,
        )
        return outcome.to_json()
