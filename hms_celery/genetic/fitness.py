"""Scoring strategies on claim instances, and DEAP selection of the next generation.

A genome is evaluated on every training instance under a deterministic ``rlimit`` budget.
Its :class:`Fitness` is, in order of importance: the number of instances *solved* (decided with
the expected verdict), then PAR-2 in rlimit units (the rlimit used on a solved instance, twice
the budget on an unsolved one, summed), then the genome's size (smaller wins).  Wall seconds
are recorded (``par2_s``, ``time_s``) but never ordered on: they are not reproducible.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from deap import base, creator, tools

from hms_celery.genetic.genome import Genome, Rng, crossover, mutate
from hms_celery.verification.verdict import ProofOutcome, Verdict

#: Verdicts that decide an instance (BOUNDED: every size up to the bound was decided).
DECIDED: frozenset[str] = frozenset({Verdict.PROVED, Verdict.REFUTED, Verdict.BOUNDED})

#: DEAP fitness weights: maximise solved, minimise PAR-2, minimise size.
WEIGHTS: tuple[float, float, float] = (1.0, -1.0, -1.0)
_FITNESS_CLASS = "HMSStrategyFitness"
_INDIVIDUAL_CLASS = "HMSStrategyIndividual"


@dataclass(frozen=True)
class Evaluation:
    """One strategy run on one instance: its verdict, rlimit used and wall seconds."""

    instance_id: str
    verdict: str
    rlimit_used: int | None
    seconds: float
    expected: str | None = None

    @classmethod
    def from_outcome(
        cls, instance_id: str, outcome: ProofOutcome, expected: str | None = None
    ) -> Evaluation:
        """The evaluation a prover outcome records (``stats["rlimit_count"]``, ``elapsed_s``)."""
        used = outcome.stats.get("rlimit_count")
        return cls(
            instance_id=instance_id,
            verdict=str(outcome.verdict.value),
            rlimit_used=int(used) if used is not None else None,
            seconds=float(outcome.elapsed_s),
            expected=expected,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**data)


def is_solved(ev: Evaluation) -> bool:
    """Decided, and with the expected verdict when one is known.  UNKNOWN, TIMEOUT, ERROR and
    UNSUPPORTED are failures, and so is a verdict contradicting ``expected``."""
    return ev.verdict in DECIDED and (ev.expected is None or ev.verdict == ev.expected)


@dataclass(frozen=True)
class Fitness:
    """The score of one genome on ``n`` instances (see the module docstring).

    ``par2`` is in rlimit units and ``rlimit`` is the per-instance budget it was computed with;
    ``par2_s`` is the same in wall seconds (penalty 2 × the timeout); ``time_s`` the total wall
    time; ``size`` the genome size (:func:`~hms_celery.genetic.genome.genome_size`).
    """

    solved: int
    par2: float
    par2_s: float
    time_s: float
    size: int
    n: int
    rlimit: int = 0

    def key(self) -> tuple[int, float, int]:
        """The ordering key, bigger is better: ``(solved, -par2, -size)``."""
        return (self.solved, -self.par2, -self.size)

    def scalar(self) -> float:
        """One number for plots and best / mean / worst: ``solved − par2 / (2·rlimit)``.

        ``par2 / (2·rlimit)`` is the PAR-2 in "penalties" (each in [0, 1] per instance), so the
        scalar lies in [−n, n]: ``−n`` when nothing is solved, close to ``n`` when every
        instance is solved with little of its budget.  (Without a budget: ``solved``.)"""
        if self.rlimit <= 0:
            return float(self.solved)
        return self.solved - self.par2 / (2.0 * self.rlimit)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fitness:
        return cls(
            solved=int(data["solved"]),
            par2=float(data["par2"]),
            par2_s=float(data["par2_s"]),
            time_s=float(data["time_s"]),
            size=int(data["size"]),
            n=int(data["n"]),
            rlimit=int(data.get("rlimit", 0)),
        )


def score(
    evaluations: Iterable[Evaluation], *, rlimit: int, timeout_s: float, size: int
) -> Fitness:
    """The fitness of a genome of ``size`` from its evaluations under a per-instance budget of
    ``rlimit`` units and ``timeout_s`` seconds.  A solved instance costs its rlimit used,
    capped at the budget (the whole budget if Z3 reported none); an unsolved one 2 × budget."""
    if rlimit <= 0 or timeout_s <= 0:
        raise ValueError(f"the budget must be positive: rlimit={rlimit}, timeout_s={timeout_s}")
    solved, par2, par2_s, time_s, n = 0, 0.0, 0.0, 0.0, 0
    for ev in evaluations:
        n += 1
        seconds = max(float(ev.seconds), 0.0)
        time_s += seconds
        if is_solved(ev):
            solved += 1
            used = rlimit if ev.rlimit_used is None else ev.rlimit_used
            par2 += min(max(used, 0), rlimit)
            par2_s += min(seconds, timeout_s)
        else:
            par2 += 2.0 * rlimit
            par2_s += 2.0 * timeout_s
    return Fitness(
        solved=solved,
        par2=par2,
        par2_s=round(par2_s, 6),
        time_s=round(time_s, 6),
        size=size,
        n=n,
        rlimit=rlimit,
    )


# --------------------------------------------------------------------------- DEAP


def deap_fitness_class() -> type[base.Fitness]:
    """The DEAP fitness class (weights :data:`WEIGHTS`), created in ``deap.creator`` once."""
    if not hasattr(creator, _FITNESS_CLASS):
        creator.create(_FITNESS_CLASS, base.Fitness, weights=WEIGHTS)
    return getattr(creator, _FITNESS_CLASS)


def _individual_class() -> type[dict[str, Any]]:
    fitness_class = deap_fitness_class()
    if not hasattr(creator, _INDIVIDUAL_CLASS):
        creator.create(_INDIVIDUAL_CLASS, dict, fitness=fitness_class)
    return getattr(creator, _INDIVIDUAL_CLASS)


def make_individual(genome: Genome, fitness: Fitness | None = None) -> dict[str, Any]:
    """A DEAP individual: a copy of ``genome`` (a dict subclass) with ``.fitness``, whose
    values are ``(solved, par2, size)`` when ``fitness`` is given (invalid otherwise)."""
    # Any: DEAP's creator adds ``.fitness`` at run time, which no static type can name.
    individual: Any = _individual_class()(copy.deepcopy(genome))
    if fitness is not None:
        individual.fitness.values = (fitness.solved, fitness.par2, fitness.size)
    return individual


def _ranking(fitnesses: Sequence[Fitness]) -> list[int]:
    """Indexes best first; equal keys keep population order (deterministic)."""
    return sorted(range(len(fitnesses)), key=lambda i: (tuple(-x for x in fitnesses[i].key()), i))


def select_next(
    population: Sequence[Genome],
    fitnesses: Sequence[Fitness],
    rng: Rng,
    *,
    elite: int = 1,
    tournament: int = 3,
    cxpb: float = 0.6,
    mutpb: float = 0.4,
) -> list[Genome]:
    """The next generation, as large as ``population`` (new plain dicts).

    The ``elite`` best genomes (by :meth:`Fitness.key`) are kept unchanged; the rest are picked
    by DEAP's ``tools.selTournament`` (tournaments of ``tournament``), then consecutive pairs
    are crossed with probability ``cxpb`` and each child is mutated with probability ``mutpb``.
    DEAP draws from the global :mod:`random` module: it is seeded from ``rng`` for the call and
    its state restored afterwards, so the result is a function of ``rng``'s state alone (the
    swap is not thread-safe: do not select concurrently in one process).
    """
    if len(population) != len(fitnesses):
        raise ValueError(f"{len(population)} genomes but {len(fitnesses)} fitnesses")
    size = len(population)
    if size == 0:
        return []
    ranking = _ranking(fitnesses)
    keep = max(0, min(elite, size))
    nxt: list[Genome] = [copy.deepcopy(dict(population[i])) for i in ranking[:keep]]
    individuals = [make_individual(g, f) for g, f in zip(population, fitnesses, strict=True)]
    seed = int(rng.random() * 2**53)
    saved = random.getstate()
    try:
        random.seed(seed)
        chosen = tools.selTournament(individuals, size - keep, tournsize=max(1, tournament))
    finally:
        random.setstate(saved)
    offspring: list[Genome] = [copy.deepcopy(dict(ind)) for ind in chosen]
    for i in range(0, len(offspring) - 1, 2):
        if rng.random() < cxpb:
            offspring[i], offspring[i + 1] = crossover(offspring[i], offspring[i + 1], rng)
    for i, child in enumerate(offspring):
        if rng.random() < mutpb:
            offspring[i] = mutate(child, rng)
    return nxt + offspring
