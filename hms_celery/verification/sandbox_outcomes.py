"""The outcomes :mod:`.sandbox` makes of what happened to an attempt in the prover child:
its answer (with the sandbox's own figures), an overrun, a death, a bad reply."""

from __future__ import annotations

import time
from typing import Any

from .verdict import ProofOutcome, Verdict


def attempt_limit(payload: dict[str, Any], options: dict[str, Any]) -> float:
    """An attempt's time limit: its ``budget_s``, else the request's own ``timeout``, else
    the ``timeout`` option (30 s when none is given)."""
    return float(
        options.get("budget_s") or payload.get("timeout") or options.get("timeout") or 30.0
    )


def internal(payload: dict[str, Any], what: str) -> ProofOutcome:
    """ERROR ``internal: what`` (the prover process failed, not the statement)."""
    return ProofOutcome(Verdict.ERROR, reason=f"internal: {what}", backend=_backend(payload))


def overrun(payload: dict[str, Any], limit: float, margin: float, start: float) -> ProofOutcome:
    """TIMEOUT: the child was killed ``margin`` seconds after the attempt's ``limit``."""
    return ProofOutcome(
        Verdict.TIMEOUT,
        reason=f"the attempt overran its time limit of {limit:g} s and was stopped "
        f"(its prover process was killed {margin:g} s after the limit)",
        backend=_backend(payload),
        elapsed_s=round(time.monotonic() - start, 6),
        stats={"sandbox": _stats(start, limit, margin, True)},
    )


def answered(
    reply: dict[str, Any], payload: dict[str, Any], limit: float, margin: float, start: float
) -> ProofOutcome:
    """The outcome the child sent (with the sandbox's figures), or ERROR for a bad reply."""
    try:
        outcome = ProofOutcome.from_json(reply["outcome"])
        outcome.stats["sandbox"] = _stats(start, limit, margin, False)
        return outcome
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return internal(payload, f"the prover process sent a bad reply: {exc}: {str(reply)[:200]}")


def _backend(payload: dict[str, Any]) -> str:
    return str(payload.get("backend") or "z3")


def _stats(start: float, limit: float, margin: float, killed: bool) -> dict[str, Any]:
    return {
        "wall_s": round(time.monotonic() - start, 6),
        "limit_s": limit,
        "margin_s": margin,
        "killed": killed,
    }
