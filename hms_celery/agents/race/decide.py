"""The race's decisions, as pure functions of the legs' outcomes in arrival order.

:func:`on_arrival` says what one finished leg does to the race (the store applies it under a
lock on the task row, so arrivals are serialised); :func:`decide` folds a whole sequence of
arrivals, which is how the rules are tested.  The rules:

1. Before anything is committed, the first **decisive** leg wins: PROVED, REFUTED, or ERROR
   ``solvers disagree`` (a leg whose two solvers contradicted each other).  Its outcome is
   committed and the other legs are cancelled.
2. When every leg has finished (or was cancelled) and none was decisive, the most informative
   outcome is committed: BOUNDED (the highest bound) > UNKNOWN > TIMEOUT > UNSUPPORTED >
   ERROR; among equals, the first to arrive.
3. A leg arriving after the commit changes nothing — unless it **contradicts** the committed
   verdict: REFUTED or a disagreement against PROVED, PROVED against REFUTED.  Then the
   result is retracted to ERROR ``solvers disagree: …`` naming both legs, and audited.  A
   late disagreement that contradicts nothing is audited too (it is a solver bug either way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hms_celery.verification.verdict import ProofOutcome, Verdict

DISAGREE_PREFIX = "solvers disagree"
#: Non-decisive verdicts, most informative first.
INFORMATIVE = (
    Verdict.BOUNDED,
    Verdict.UNKNOWN,
    Verdict.TIMEOUT,
    Verdict.UNSUPPORTED,
    Verdict.ERROR,
)


class Kind(StrEnum):
    """What a leg's outcome means for the race."""

    PROVED = "PROVED"
    REFUTED = "REFUTED"
    DISAGREE = "DISAGREE"  # ERROR "solvers disagree": the leg's own solvers contradicted
    OTHER = "OTHER"  # not decisive


def kind_of(outcome: ProofOutcome) -> Kind:
    """The :class:`Kind` of ``outcome``."""
    if outcome.verdict is Verdict.PROVED:
        return Kind.PROVED
    if outcome.verdict is Verdict.REFUTED:
        return Kind.REFUTED
    if outcome.verdict is Verdict.ERROR and outcome.reason.startswith(DISAGREE_PREFIX):
        return Kind.DISAGREE
    return Kind.OTHER


#: (committed kind, late kind) pairs that cannot both be right.
CONTRADICTIONS = frozenset(
    {
        (Kind.PROVED, Kind.REFUTED),
        (Kind.PROVED, Kind.DISAGREE),
        (Kind.REFUTED, Kind.PROVED),
    }
)


@dataclass(frozen=True)
class Arrival:
    """A leg that finished: ``outcome`` None when it was cancelled (or never ran)."""

    leg: int
    label: str
    agent: str | None
    outcome: ProofOutcome | None


@dataclass(frozen=True)
class Committed:
    """The race's committed result: the leg it came from (None: a retraction) and outcome."""

    leg: int | None
    label: str
    outcome: ProofOutcome


class Action(StrEnum):
    """What the store does with an arrival."""

    WAIT = "WAIT"  # record the leg's outcome; the race goes on
    COMMIT = "COMMIT"  # commit ``Step.outcome``; cancel the other legs if ``Step.cancel``
    RETRACT = "RETRACT"  # replace the committed result by ``Step.outcome`` (ERROR), audited
    LATE = "LATE"  # the race is decided: record the leg's outcome, change nothing


@dataclass(frozen=True)
class Step:
    """The decision about one arrival."""

    action: Action
    outcome: ProofOutcome | None = None  # COMMIT, RETRACT: the result to store
    leg: int | None = None  # COMMIT: whose outcome it is
    cancel: bool = False  # COMMIT: a decisive win, the other legs are revoked
    audit: dict[str, Any] | None = None  # details of a ``proof.solvers_disagree`` event


def on_arrival(legs: int, arrivals: Sequence[Arrival], committed: Committed | None) -> Step:
    """The decision about ``arrivals[-1]``, given the ``legs`` planned, every arrival so far
    (in order, the new one last) and the result committed before it (None: none yet)."""
    new = arrivals[-1]
    new_kind = kind_of(new.outcome) if new.outcome is not None else Kind.OTHER
    if committed is None:
        if new_kind is not Kind.OTHER:
            assert new.outcome is not None
            why = "first decisive leg"
            return Step(Action.COMMIT, _annotated(new, why), leg=new.leg, cancel=True)
        if len({a.leg for a in arrivals}) < legs:
            return Step(Action.WAIT)
        best = _most_informative(arrivals)
        if best is None:  # every leg cancelled without a word: cannot happen before a commit
            outcome = ProofOutcome(
                Verdict.ERROR, reason="internal: no leg of the race gave an outcome", backend="race"
            )
            return Step(Action.COMMIT, outcome, leg=None)
        why = "every leg finished, none decisive: the most informative outcome"
        return Step(Action.COMMIT, _annotated(best, why), leg=best.leg)
    if new.outcome is None:
        return Step(Action.LATE)
    old_kind = kind_of(committed.outcome)
    if (old_kind, new_kind) in CONTRADICTIONS:
        outcome = contradiction(committed, new)
        return Step(Action.RETRACT, outcome, audit=_audit(outcome, committed, new, retracted=True))
    if new_kind is Kind.DISAGREE:
        outcome = new.outcome
        return Step(Action.LATE, audit=_audit(outcome, committed, new, retracted=False))
    return Step(Action.LATE)


def contradiction(committed: Committed, late: Arrival) -> ProofOutcome:
    """The ERROR that replaces a committed verdict a late leg contradicts."""
    assert late.outcome is not None
    first = _describe(committed.leg, committed.label, committed.outcome)
    second = _describe(late.leg, late.label, late.outcome)
    legs = [
        _leg_json(committed.leg, committed.label, None, committed.outcome),
        _leg_json(late.leg, late.label, late.agent, late.outcome),
    ]
    return ProofOutcome(
        Verdict.ERROR,
        reason=f"{DISAGREE_PREFIX}: {first}, but {second}",
        counterexample=None,
        backend="race",
        stats={
            "disagreement": {"legs": legs, "retracted": committed.outcome.verdict.value},
            "race": {"leg": None, "label": "race", "decided": "a late leg contradicted"},
        },
    )


@dataclass(frozen=True)
class RaceLog:
    """:func:`decide`'s account: the result after the arrivals (None: still open), each
    step, and the audit events written."""

    result: ProofOutcome | None
    steps: list[Step]
    audits: list[dict[str, Any]]
    cancelled_after: int | None  # the arrival index whose commit cancelled the others


def decide(legs: int, arrivals: Sequence[Arrival]) -> RaceLog:
    """Fold :func:`on_arrival` over ``arrivals`` (in arrival order)."""
    committed: Committed | None = None
    steps: list[Step] = []
    audits: list[dict[str, Any]] = []
    cancelled_after = None
    for i in range(len(arrivals)):
        step = on_arrival(legs, arrivals[: i + 1], committed)
        steps.append(step)
        if step.audit is not None:
            audits.append(step.audit)
        if step.action is Action.COMMIT:
            assert step.outcome is not None
            label = arrivals[i].label if step.leg is not None else "race"
            committed = Committed(step.leg, label, step.outcome)
            if step.cancel:
                cancelled_after = i
            if kind_of(step.outcome) is Kind.DISAGREE:  # insert_result audits it
                audits.append({"reason": step.outcome.reason, "retracted": None})
        elif step.action is Action.RETRACT:
            assert step.outcome is not None
            committed = Committed(None, "race", step.outcome)
    return RaceLog(committed.outcome if committed else None, steps, audits, cancelled_after)


# ----------------------------------------------------------------------------- helpers
def _annotated(arrival: Arrival, why: str) -> ProofOutcome:
    """The leg's outcome with the race's note in its stats (``stats.race``)."""
    assert arrival.outcome is not None
    race = {"leg": arrival.leg, "label": arrival.label, "decided": why}
    return dataclasses.replace(arrival.outcome, stats={**arrival.outcome.stats, "race": race})


def _most_informative(arrivals: Sequence[Arrival]) -> Arrival | None:
    rank = {v: len(INFORMATIVE) - i for i, v in enumerate(INFORMATIVE)}
    best: tuple[tuple[int, int, int], Arrival] | None = None
    for order, arrival in enumerate(arrivals):
        if arrival.outcome is None:
            continue
        o = arrival.outcome
        key = (rank.get(o.verdict, 0), o.bound or 0, -order)
        if best is None or key > best[0]:
            best = (key, arrival)
    return best[1] if best else None


def _describe(leg: int | None, label: str, outcome: ProofOutcome) -> str:
    head = f"leg {leg} ({label})" if leg is not None else label
    if outcome.verdict is Verdict.REFUTED:
        cex = ", ".join(f"{k} = {_short(v)}" for k, v in (outcome.counterexample or {}).items())
        return f"{head} REFUTED it with {cex or 'a counterexample'}"
    if outcome.verdict is Verdict.PROVED:
        confirmed = outcome.confirmed_by or {}
        by = (
            f" (confirmed by {confirmed['solver']})"
            if confirmed.get("status") == "confirmed"
            else ""
        )
        return f"{head} PROVED it{by}"
    return f"{head} answered {outcome.verdict.value}: {outcome.reason}"


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _leg_json(leg: int | None, label: str, agent: str | None, o: ProofOutcome) -> dict[str, Any]:
    return {
        "leg": leg,
        "label": label,
        "agent": agent,
        "verdict": o.verdict.value,
        "reason": o.reason,
        "counterexample": o.counterexample,
        "confirmed_by": o.confirmed_by,
    }


def _audit(
    outcome: ProofOutcome, committed: Committed, late: Arrival, *, retracted: bool
) -> dict[str, Any]:
    assert late.outcome is not None
    return {
        "reason": outcome.reason,
        "late": True,
        "retracted": committed.outcome.verdict.value if retracted else None,
        "committed": _leg_json(committed.leg, committed.label, None, committed.outcome),
        "leg": _leg_json(late.leg, late.label, late.agent, late.outcome),
        "disagreement": late.outcome.stats.get("disagreement"),
    }
