"""Genome operators: always valid, sound, deterministic strategies; keys and diversity."""

from __future__ import annotations

import copy
import json
import random

import pytest

from hms_celery.genetic import genome as G
from hms_celery.verification.strategy import NAMED_STRATEGIES, SOUND_TACTICS, Strategy
from hms_celery.verification.z3_params import available_tactics, tactic_param_kinds

SEEDS = [G.Z3_DEFAULT_GENOME] + [
    NAMED_STRATEGIES[n].to_json() for n in ("linearise-smt", "linearise-restarts", "portfolio")
]


def _slices(data: dict) -> list[dict]:
    """Every schedule slice of a strategy, nested ones included."""
    out = []
    for sl in data.get("schedule") or ():
        out.append(sl)
        out.extend(_slices(sl["strategy"]))
    return out


def assert_good(genome: dict) -> None:
    """Valid, canonical JSON form, sound, no wall time, within the size limits."""
    strategy = Strategy.from_json(genome)
    assert strategy.to_json() == genome  # exactly the to_json shape
    assert json.loads(json.dumps(genome)) == genome
    assert Strategy.from_json(json.loads(json.dumps(genome))) == strategy
    assert set(strategy.tactic_names()) <= set(SOUND_TACTICS)
    assert strategy.sound_for_unsat
    assert all(sl["timeout_ms"] is None for sl in _slices(genome))
    assert len(genome["pipeline"]) <= G.MAX_PIPELINE
    assert len(genome["schedule"]) <= G.MAX_SLICES
    assert not genome["pipeline"] or genome["decider"] or genome["schedule"]


def _run(rng, steps: int = 40) -> list[dict]:
    """A stream of genomes from every operator, driven by ``rng`` only."""
    population = G.seed_population(6, rng, SEEDS)
    out = list(population)
    for _ in range(steps):
        i, j = rng.randrange(len(population)), rng.randrange(len(population))
        if rng.random() < 0.5:
            population[i] = G.mutate(population[i], rng)
            out.append(population[i])
        else:
            population[i], population[j] = G.crossover(population[i], population[j], rng)
            out += [population[i], population[j]]
        if rng.random() < 0.1:
            population[j] = G.random_genome(rng)
            out.append(population[j])
    return out


def test_gene_pool_holds_installed_sound_tactics_and_real_parameters():
    assert {"simplify", "solve-eqs", "propagate-values", "elim-uncnstr"} <= set(G.PIPELINE_TACTICS)
    assert set(G.DECIDERS) == {"smt", "qfnra-nlsat", "qfnra", "nlsat", None}
    assert set(G.SLICE_DECIDERS) == {"smt", "qfnra-nlsat", "nlsat"}
    for table in (G.PIPELINE_GENES, G.DECIDER_GENES):
        for tactic, genes in table.items():
            if tactic is None:
                continue
            assert tactic in available_tactics()
            assert tactic in SOUND_TACTICS
            kinds = tactic_param_kinds(tactic)
            for gene in genes:
                assert gene.name in kinds
                assert gene.default in gene.choices
    assert G.DECIDER_GENES["smt"][0].name == "random_seed"


def test_thousands_of_operations_from_many_seeds_give_good_genomes():
    count = 0
    for seed in range(60):
        for genome in _run(random.Random(seed), 60):
            assert_good(genome)
            count += 1
    assert count > 5000


def test_random_genomes_reach_the_whole_gene_pool():
    rng = random.Random(3)
    tactics: set[str] = set()
    slices, plain, preprocessed = 0, 0, 0
    for _ in range(400):
        genome = G.random_genome(rng)
        assert_good(genome)
        tactics |= set(Strategy.from_json(genome).tactic_names())
        slices += bool(genome["schedule"])
        plain += genome["decider"] is None and not genome["schedule"]
        preprocessed += bool(genome["preprocess"])
    assert set(G.PIPELINE_TACTICS) | {d for d in G.DECIDERS if d} <= tactics
    assert slices > 50 and plain > 10 and preprocessed > 100


def test_operators_never_modify_their_inputs():
    rng = random.Random(11)
    for _ in range(200):
        a, b = G.random_genome(rng), G.random_genome(rng)
        a0, b0 = copy.deepcopy(a), copy.deepcopy(b)
        child = G.mutate(a, rng)
        c1, c2 = G.crossover(a, b, rng)
        assert (a, b) == (a0, b0)
        assert child is not a and c1 is not a and c2 is not b
    seeds = copy.deepcopy(SEEDS)
    G.seed_population(8, rng, SEEDS)
    assert seeds == SEEDS


def test_mutation_almost_always_changes_the_strategy():
    rng = random.Random(5)
    changed = total = 0
    for _ in range(300):
        parent = G.random_genome(rng)
        child = G.mutate(parent, rng)
        total += 1
        changed += G.genome_key(child) != G.genome_key(parent)
    assert changed / total > 0.95


def test_mutation_of_the_plain_solver_changes_it():
    rng = random.Random(0)
    keys = {G.genome_key(G.mutate(G.Z3_DEFAULT_GENOME, rng)) for _ in range(30)}
    assert G.genome_key(G.Z3_DEFAULT_GENOME) not in keys
    assert len(keys) > 5


def test_crossover_of_equal_parents_gives_the_parent():
    rng = random.Random(2)
    for _ in range(50):
        a = G.random_genome(rng)
        c1, c2 = G.crossover(a, copy.deepcopy(a), rng)
        assert G.genome_key(c1) == G.genome_key(c2) == G.genome_key(a)


def test_crossover_exchanges_gene_groups():
    a = G.repair(NAMED_STRATEGIES["linearise-smt"].to_json())
    b = G.repair(NAMED_STRATEGIES["nlsat"].to_json())
    seen = set()
    rng = random.Random(9)
    for _ in range(40):
        c1, c2 = G.crossover(a, b, rng)
        seen.add((tuple(c1["preprocess"]), c1["decider"]["tactic"]))
        # genes are conserved between the two children
        assert sorted([c1["decider"]["tactic"], c2["decider"]["tactic"]]) == ["qfnra-nlsat", "smt"]
    assert len(seen) == 4


@pytest.mark.parametrize("rng_factory", [lambda s: random.Random(s), None])
def test_same_seed_same_genomes_different_seed_different(rng_factory):
    if rng_factory is None:  # the random module itself is a valid rng

        def run(seed):
            random.seed(seed)
            return _run(random, 30)
    else:

        def run(seed):
            return _run(rng_factory(seed), 30)

    first, again, other = run(42), run(42), run(43)
    assert first == again
    assert [G.genome_key(g) for g in first] != [G.genome_key(g) for g in other]


def test_genome_key_ignores_names_and_parameter_order():
    a = {
        "name": "one",
        "preprocess": ["product-bounds"],
        "pipeline": [{"tactic": "simplify", "params": {"som": True, "arith_lhs": True}}],
        "decider": {"tactic": "smt", "params": {"random_seed": 3, "arith.nl.grobner": False}},
        "schedule": [
            {
                "timeout_ms": None,
                "strategy": {
                    "name": "inner",
                    "decider": {"tactic": "nlsat", "params": {"seed": 2, "max_conflicts": 1000}},
                },
            }
        ],
        "params": {},
    }
    b = copy.deepcopy(a)
    b["name"] = "two"
    b["schedule"][0]["strategy"]["name"] = "custom"
    b["pipeline"][0]["params"] = {"arith_lhs": True, "som": True}
    b["decider"]["params"] = {"arith.nl.grobner": False, "random_seed": 3}
    assert G.genome_key(a) == G.genome_key(b)
    assert G.genome_key(a) == G.genome_key(G.repair(a, "three"))
    c = copy.deepcopy(a)
    c["decider"]["params"]["random_seed"] = 4
    assert G.genome_key(a) != G.genome_key(c)
    d = copy.deepcopy(a)
    d["pipeline"].append({"tactic": "propagate-values", "params": {}})
    assert G.genome_key(a) != G.genome_key(d)
    with pytest.raises(ValueError):
        G.genome_key({"decider": {"tactic": "no-such-tactic"}})


def test_diversity_is_minimal_for_identical_and_one_for_distinct_populations():
    same = [copy.deepcopy(G.Z3_DEFAULT_GENOME) for _ in range(5)]
    renamed = [{**g, "name": f"n{i}"} for i, g in enumerate(same)]
    assert G.diversity(same) == G.diversity(renamed) == pytest.approx(0.2)
    distinct = G.seed_population(5, random.Random(1), SEEDS)
    assert G.diversity(distinct) == 1.0
    assert G.diversity([]) == 0.0


def test_genome_size_counts_steps():
    assert G.genome_size(G.Z3_DEFAULT_GENOME) == 0
    assert G.genome_size(NAMED_STRATEGIES["linearise-smt"].to_json()) == 3
    assert G.genome_size(NAMED_STRATEGIES["portfolio"].to_json()) == 5


def test_repair_normalises():
    messy = {
        "name": "messy",
        "preprocess": ["product-bounds", "product-bounds"],
        "pipeline": [
            "nla2bv",
            {"tactic": "simplify", "params": {"som": False, "arith_lhs": True}},
            "solve-eqs",
            "propagate-values",
            "elim-uncnstr",
        ],
        "decider": {"tactic": "smt", "params": {"random_seed": 0, "arith.nl.grobner": False}},
        "schedule": [
            {"timeout_ms": 500, "strategy": {"decider": {"tactic": "qfnra-nlsat"}}},
            {"timeout_ms": 500, "strategy": {"decider": {"tactic": "sls-smt"}}},
            {"timeout_ms": None, "strategy": {"decider": {"tactic": "smt"}}},
            {"timeout_ms": None, "strategy": {"decider": {"tactic": "nlsat"}}},
        ],
        "params": {"random_seed": 1},
    }
    fixed = G.repair(messy, "tidy")
    assert fixed["name"] == "tidy"
    assert fixed["preprocess"] == ["product-bounds"]
    # the unsound step is gone, then the pipeline is cut to MAX_PIPELINE
    assert [s["tactic"] for s in fixed["pipeline"]] == ["simplify", "solve-eqs", "propagate-values"]
    assert fixed["pipeline"][0]["params"] == {"arith_lhs": True}  # som at its default: dropped
    assert fixed["decider"] == {"tactic": "smt", "params": {"arith.nl.grobner": False}}
    assert [sl["strategy"]["decider"] for sl in fixed["schedule"]] == [
        {"tactic": "qfnra-nlsat", "params": {"max_conflicts": 10_000}},
        {"tactic": "smt", "params": {"max_conflicts": 10_000}},
    ]
    assert fixed["params"] == {"random_seed": 1}
    assert_good(fixed)
    assert G.repair(messy)["name"] == "messy"
    orphan = G.repair({"pipeline": ["simplify"], "decider": None})
    assert orphan["pipeline"] == [] and G.genome_key(orphan) == G.genome_key(G.Z3_DEFAULT_GENOME)


def test_seeds_come_first_without_duplicates():
    rng = random.Random(4)
    population = G.seed_population(10, rng, [*SEEDS, SEEDS[0]])
    assert len(population) == 10
    assert [G.genome_key(g) for g in population[:4]] == [G.genome_key(G.repair(s)) for s in SEEDS]
    assert population[0]["name"] == "z3-default"
    assert len({G.genome_key(g) for g in population}) == 10
    for genome in population:
        assert_good(genome)
    assert len(G.seed_population(2, rng, SEEDS)) == 2


def test_invalid_parents_are_rejected():
    rng = random.Random(0)
    with pytest.raises(ValueError):
        G.mutate({"decider": {"tactic": "smt", "params": {"no_such_param": 1}}}, rng)
    with pytest.raises(ValueError):
        G.crossover(G.Z3_DEFAULT_GENOME, {"decider": {"tactic": "nope"}}, rng)
    with pytest.raises(ValueError):
        G.mutate(None, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        G.seed_population(3, rng, [{"preprocess": ["no-such-step"]}])
