"""A raced task as ``query_task_status`` shows it: each leg, the winner, any retraction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


def race_view(
    race: dict[str, Any], attempts: Sequence[Mapping[str, Any]], stats: dict[str, Any] | None
) -> dict[str, Any]:
    """``status["race"]``: ``{"legs": [{leg, label, backend, strategy, queue, agent, outcome,
    seconds, prover_s, attempt, note, late}], "skipped", "winner", "decided", "retracted",
    "disagreement"}``.  A leg's ``outcome`` is its last attempt's (QUEUED before it starts,
    RUNNING while it runs); ``seconds`` is that attempt's wall time."""
    legs = []
    for leg in race.get("legs") or []:
        mine = [a for a in attempts if (a.get("leg") or {}).get("index") == leg["index"]]
        last = mine[-1] if mine else None
        details = (last or {}).get("leg") or {}
        outcome = (details.get("outcome") or {}) if last else {}
        legs.append(
            {
                "leg": leg["index"],
                "label": leg["label"],
                "backend": leg["backend"],
                "strategy": details.get("strategy") or _strategy_name(leg["label"]),
                "queue": leg["queue"],
                "agent": last["agent"] if last else None,
                "outcome": (last["outcome"] or "RUNNING") if last else "QUEUED",
                "seconds": _seconds(last["started_at"], last["ended_at"]) if last else None,
                "prover_s": outcome.get("elapsed_s"),
                "attempt": last["number"] if last else None,
                "note": last["error"] if last else None,
                "late": bool(details.get("late")),
            }
        )
    stats = stats or {}
    decided = stats.get("race") or {}
    retracted = stats.get("retracted")
    # A retracted result has no winner: the leg that won was contradicted (see "retracted").
    winner_leg = None if retracted else decided.get("leg")
    winner = next((x for x in legs if x["leg"] == winner_leg), None)
    return {
        "legs": legs,
        "skipped": race.get("skipped") or [],
        "winner": winner,
        "decided": decided.get("decided"),
        "retracted": retracted,
        "disagreement": stats.get("disagreement") if retracted else None,
    }


def _strategy_name(label: str) -> str:
    return label.partition("/")[2] or "default"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    a, b = datetime.fromisoformat(start), datetime.fromisoformat(end)  # the store's: aware
    return round((b - a).total_seconds(), 6)
