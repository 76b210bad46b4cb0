"""Which legs a race runs: the solvers and strategies a claim is fanned out to."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: Z3 strategy of the second Z3 leg: nlsat decides nonlinear real arithmetic completely,
#: where the default strategy linearises products (fast on weighted sums, blind elsewhere).
SECOND_Z3_STRATEGY = "nlsat"


@dataclass(frozen=True)
class Leg:
    """One leg of a race: a backend, a strategy and the queue its agents consume.

    ``strategy`` is what the leg's request carries: a named strategy, a strategy's JSON, or
    None for the worker's default (``HMS_DEFAULT_STRATEGY``, else the built-in one)."""

    index: int
    backend: str
    strategy: str | dict[str, Any] | None
    label: str  # "z3/default", "z3/nlsat", "cvc5", "z3/promoted:war"
    queue: str
    celery_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Leg:
        return cls(**{k: data[k] for k in ("index", "backend", "strategy", "label", "queue")},
                   celery_id=str(data.get("celery_id") or ""))  # fmt: skip

    @property
    def strategy_name(self) -> str:
        """The strategy as people read it (a name, ``promoted:<family>``, or ``custom``)."""
        _, _, name = self.label.partition("/")
        return name or "default"


def leg_celery_id(task_id: str, index: int) -> str:
    """The Celery task id of leg ``index`` of the raced task ``task_id`` (stable: a requeued
    leg keeps it, so a revoke reaches every copy)."""
    return f"{task_id}.leg{index}"


def plan_legs(
    *,
    strategy: str | dict[str, Any] | None,
    smtlib: bool,
    proof_queues: Mapping[str, str],
    promoted: dict[str, Any] | None = None,
    family: str | None = None,
    live_queues: Collection[str] | None = None,
    smtlib_backends: Collection[str] = ("z3",),
) -> tuple[list[Leg], list[dict[str, str]]]:
    """The legs of a race and the legs left out (``[{"label", "why"}]``).

    ``strategy``: the request's own strategy (it replaces the default Z3 leg's); ``promoted``:
    the family's promoted strategy (JSON), a leg of its own unless it repeats another one;
    ``proof_queues``: backend → queue; ``live_queues``: the queues some live agent consumes
    (None: unknown, keep every leg) — a leg no agent would take is left out, unless that would
    leave none; ``smtlib_backends``: the backends that decide SMT-LIB problems."""
    first = "default" if strategy is None else strategy if isinstance(strategy, str) else "custom"
    wanted: list[tuple[str, str | dict[str, Any] | None, str]] = [("z3", strategy, f"z3/{first}")]
    if first != SECOND_Z3_STRATEGY:
        wanted.append(("z3", SECOND_Z3_STRATEGY, f"z3/{SECOND_Z3_STRATEGY}"))
    # cvc5 takes the Z3 leg's strategy for its HMS-level preprocessing (product bounds).
    wanted.append(("cvc5", strategy, "cvc5"))
    if promoted is not None and not _repeats(promoted, [strategy, SECOND_Z3_STRATEGY]):
        wanted.append(("z3", promoted, f"z3/promoted:{family or '?'}"))
    legs: list[Leg] = []
    skipped: list[dict[str, str]] = []
    for backend, strat, label in wanted:
        queue = proof_queues.get(backend)
        if queue is None:
            skipped.append({"label": label, "why": f"no {backend} skill is installed"})
        elif smtlib and backend not in smtlib_backends:
            skipped.append({"label": label, "why": f"{backend} does not read SMT-LIB problems"})
        else:
            legs.append(Leg(len(legs), backend, strat, label, queue))
    if live_queues is not None:
        live = [leg for leg in legs if leg.queue in live_queues]
        if live:  # with no live agent at all, the legs wait for one like any task
            skipped += [
                {"label": leg.label, "why": f"no live agent consumes {leg.queue}"}
                for leg in legs
                if leg.queue not in live_queues
            ]
            legs = [Leg(i, x.backend, x.strategy, x.label, x.queue) for i, x in enumerate(live)]
    return legs, skipped


def _repeats(promoted: dict[str, Any], others: list[str | dict[str, Any] | None]) -> bool:
    """Whether the promoted strategy is one the race already runs."""
    from hms_celery.verification.strategy import strategy_from_any

    def tactics(x: str | dict[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in strategy_from_any(x).to_json().items() if k != "name"}

    mine = tactics(promoted)
    for other in others:
        try:
            if tactics(other) == mine:
                return True
        except (ValueError, TypeError, KeyError):
            continue
    return False
