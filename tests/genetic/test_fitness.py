"""Fitness: solved count first, then PAR-2 in rlimit units; failures are never successes;
DEAP selection is deterministic and leaves the global random state alone."""

from __future__ import annotations

import json
import random

import pytest

from hms_celery.genetic import genome as G
from hms_celery.genetic.fitness import (
    Evaluation,
    Fitness,
    deap_fitness_class,
    is_solved,
    make_individual,
    score,
    select_next,
)
from hms_celery.verification.strategy import Strategy
from hms_celery.verification.verdict import ProofOutcome, Verdict

BUDGET = 1_000


def ev(verdict: str, used: int | None = 100, seconds: float = 0.1, expected: str | None = None):
    return Evaluation("i", verdict, used, seconds, expected)


@pytest.mark.parametrize(
    ("verdict", "expected", "solved"),
    [
        ("PROVED", "PROVED", True),
        ("REFUTED", "REFUTED", True),
        ("PROVED", None, True),
        ("BOUNDED", None, True),
        ("BOUNDED", "PROVED", False),
        ("REFUTED", "PROVED", False),
        ("PROVED", "REFUTED", False),
        ("UNKNOWN", None, False),
        ("TIMEOUT", None, False),
        ("ERROR", None, False),
        ("UNSUPPORTED", None, False),
        ("UNKNOWN", "PROVED", False),
    ],
)
def test_is_solved(verdict, expected, solved):
    assert is_solved(ev(verdict, expected=expected)) is solved


def test_failures_cost_twice_the_budget_and_successes_their_rlimit():
    evs = [
        ev("PROVED", 100, 0.5, "PROVED"),
        ev("PROVED", 5_000, 2.0, "PROVED"),  # over budget: capped
        ev("PROVED", None, 0.1, "PROVED"),  # no count reported: the whole budget
        ev("REFUTED", 10, 0.1, "PROVED"),  # wrong verdict
        ev("TIMEOUT", 300, 1.0),
        ev("ERROR", None, 0.0),
    ]
    f = score(evs, rlimit=BUDGET, timeout_s=1.0, size=2)
    assert (f.solved, f.n, f.size, f.rlimit) == (3, 6, 2, BUDGET)
    assert f.par2 == 100 + 1_000 + 1_000 + 3 * 2_000
    assert f.par2_s == pytest.approx(0.5 + 1.0 + 0.1 + 3 * 2.0)
    assert f.time_s == pytest.approx(3.7)


def test_solved_count_dominates_par2_then_size_breaks_ties():
    many_slow = score([ev("PROVED", 999)] * 3, rlimit=BUDGET, timeout_s=1, size=9)
    few_fast = score(
        [ev("PROVED", 1), ev("PROVED", 1), ev("UNKNOWN")], rlimit=BUDGET, timeout_s=1, size=0
    )
    assert many_slow.key() > few_fast.key()
    assert many_slow.par2 > few_fast.par2  # worse PAR-2, yet more solved wins
    cheap = score([ev("PROVED", 10)] * 3, rlimit=BUDGET, timeout_s=1, size=9)
    assert cheap.key() > many_slow.key()
    small = score([ev("PROVED", 10)] * 3, rlimit=BUDGET, timeout_s=1, size=1)
    assert small.key() > cheap.key()
    assert sorted([cheap, small, few_fast, many_slow], key=Fitness.key) == [
        few_fast,
        many_slow,
        cheap,
        small,
    ]


def test_scalar_ranges_from_minus_n_to_n():
    nothing = score([ev("UNKNOWN")] * 4, rlimit=BUDGET, timeout_s=1, size=0)
    assert nothing.scalar() == -4.0
    everything = score([ev("PROVED", 0)] * 4, rlimit=BUDGET, timeout_s=1, size=0)
    assert everything.scalar() == 4.0
    half = score([ev("PROVED", 500), ev("UNKNOWN")], rlimit=BUDGET, timeout_s=1, size=0)
    assert half.scalar() == pytest.approx(1 - (500 + 2000) / 2000)
    assert nothing.scalar() < half.scalar() < everything.scalar()


def test_fitness_and_evaluation_json_round_trip():
    f = score([ev("PROVED", 7), ev("TIMEOUT")], rlimit=BUDGET, timeout_s=2.5, size=3)
    assert Fitness.from_json(json.loads(json.dumps(f.to_json()))) == f
    e = ev("REFUTED", 12, 0.25, "REFUTED")
    assert Evaluation.from_json(json.loads(json.dumps(e.to_json()))) == e


def test_evaluation_from_outcome():
    outcome = ProofOutcome(Verdict.PROVED, elapsed_s=0.3, stats={"rlimit_count": 1234})
    e = Evaluation.from_outcome("war-abs-n3", outcome, "PROVED")
    assert e == Evaluation("war-abs-n3", "PROVED", 1234, 0.3, "PROVED")
    assert Evaluation.from_outcome("x", ProofOutcome(Verdict.ERROR)).rlimit_used is None


def test_bad_budget_is_rejected():
    with pytest.raises(ValueError):
        score([], rlimit=0, timeout_s=1, size=0)
    with pytest.raises(ValueError):
        score([], rlimit=10, timeout_s=0, size=0)


def test_deap_classes_are_created_once_and_order_like_key():
    cls = deap_fitness_class()
    assert deap_fitness_class() is cls
    assert cls.weights == (1.0, -1.0, -1.0)
    fits = [
        score([ev("PROVED", u) for u in used], rlimit=BUDGET, timeout_s=1, size=s)
        for used, s in [((1, 1), 3), ((999, 999), 0), ((5,), 0), ((5, 5), 1), ((5, 5), 2)]
    ]
    inds = [make_individual(G.Z3_DEFAULT_GENOME, f) for f in fits]
    assert isinstance(inds[0], dict) and inds[0] == G.Z3_DEFAULT_GENOME
    assert inds[0] is not G.Z3_DEFAULT_GENOME
    for a, fa in zip(inds, fits, strict=True):
        for b, fb in zip(inds, fits, strict=True):
            assert (a.fitness > b.fitness) == (fa.key() > fb.key())
    assert not make_individual(G.Z3_DEFAULT_GENOME).fitness.valid


def _population(seed: int, size: int = 8):
    rng = random.Random(seed)
    population = G.seed_population(size, rng, [G.Z3_DEFAULT_GENOME])
    fitnesses = [
        score(
            [ev("PROVED", rng.randrange(1, BUDGET)) if rng.random() < 0.6 else ev("UNKNOWN")] * 3,
            rlimit=BUDGET,
            timeout_s=1,
            size=G.genome_size(g),
        )
        for g in population
    ]
    return population, fitnesses


def test_select_next_is_deterministic_and_restores_the_global_random_state():
    population, fitnesses = _population(1)
    random.seed(1234)
    state = random.getstate()
    first = select_next(population, fitnesses, random.Random(7))
    assert random.getstate() == state
    again = select_next(population, fitnesses, random.Random(7))
    random.seed(99)  # the global state does not matter
    third = select_next(population, fitnesses, random.Random(7))
    other = select_next(population, fitnesses, random.Random(8))
    assert first == again == third
    assert first != other


def test_select_next_keeps_the_elite_and_returns_good_genomes():
    for seed in range(10):
        population, fitnesses = _population(seed)
        best = max(range(len(population)), key=lambda i: (fitnesses[i].key(), -i))
        nxt = select_next(population, fitnesses, random.Random(seed), elite=2)
        assert len(nxt) == len(population)
        assert nxt[0] == population[best]
        ranked = sorted(range(len(population)), key=lambda i: (fitnesses[i].key(), -i))
        assert nxt[1] == population[ranked[-2]]
        for genome in nxt:
            Strategy.from_json(genome)
            assert type(genome) is dict
            assert all(sl["timeout_ms"] is None for sl in genome["schedule"])


def test_tournament_selection_favours_fitter_genomes():
    best_copies = worst_copies = 0
    for seed in range(20):
        population, fitnesses = _population(seed, 6)
        order = sorted(range(6), key=lambda i: (fitnesses[i].key(), -i))
        worst_key, best_key = (
            G.genome_key(population[order[0]]),
            G.genome_key(population[order[-1]]),
        )
        nxt = select_next(population, fitnesses, random.Random(seed), elite=0, cxpb=0, mutpb=0)
        keys = [G.genome_key(g) for g in nxt]
        assert set(keys) <= {G.genome_key(g) for g in population}
        best_copies += keys.count(best_key)
        worst_copies += keys.count(worst_key)
    assert best_copies > 3 * max(worst_copies, 1)


def test_select_next_varies_the_population():
    population, fitnesses = _population(3)
    nxt = select_next(population, fitnesses, random.Random(3), cxpb=1.0, mutpb=1.0)
    before = {G.genome_key(g) for g in population}
    assert any(G.genome_key(g) not in before for g in nxt)


def test_select_next_rejects_mismatched_lengths():
    population, fitnesses = _population(0)
    with pytest.raises(ValueError):
        select_next(population, fitnesses[:-1], random.Random(0))
    assert select_next([], [], random.Random(0)) == []
