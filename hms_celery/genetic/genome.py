"""The genome of the strategy search and its DEAP-compatible operators.

A genome is a :class:`~hms_celery.verification.strategy.Strategy` in its JSON form: exactly the
dict :meth:`Strategy.to_json` returns.  Genomes are built from a curated gene pool of *sound*
Z3 tactics (only the allow-list ``SOUND_TACTICS``):

* ``preprocess``: the HMS ``"product-bounds"`` step, on or off;
* ``pipeline``: 0 … :data:`MAX_PIPELINE` tactics of :data:`PIPELINE_GENES`, some with parameters;
* ``decider``: one of :data:`DECIDERS` (``None`` is Z3's plain ``Solver()``) with its parameters;
* ``schedule``: 0 … :data:`MAX_SLICES` fallback slices, each a decider of :data:`SLICE_DECIDERS`
  bounded by ``max_conflicts`` (:data:`SLICE_CONFLICTS`) and a seed.  Slices never have a
  wall-time ``timeout_ms``: an evaluation under an ``rlimit`` budget is then deterministic.

Every operator takes ``rng``, anything with the :class:`random.Random` API, draws from it
only, and is deterministic given its state.  Operators never modify their inputs: they
return new dicts, always valid strategies (``Strategy.from_json`` accepts them); an input that
is not a valid strategy raises :class:`ValueError`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hms_celery.verification.strategy import PREPROCESS_STEPS, SOUND_TACTICS, Strategy
from hms_celery.verification.z3_params import ParamValue, available_tactics, tactic_param_kinds

Genome = dict[str, Any]

MAX_PIPELINE = 3
MAX_SLICES = 2
#: ``max_conflicts`` a slice may get (also given to a repaired slice that has none).
SLICE_CONFLICTS: tuple[int, ...] = (1_000, 10_000, 100_000)
_DEFAULT_SLICE_CONFLICTS = 10_000
#: Name of evolved genomes (operators' default) and of random ones.
EVOLVED = "evolved"
RANDOM = "random"
#: Tries of an operator before it falls back to a copy of its parent.
_ATTEMPTS = 12


class Rng(Protocol):
    """The part of the :class:`random.Random` API the operators use."""

    def random(self) -> float: ...
    def randrange(self, start: int, stop: int | None = ..., step: int = ...) -> int: ...
    def choice(self, seq: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class ParamGene:
    """A tactic parameter the search may set: one of ``choices``; ``default`` is Z3's own
    value (a parameter at its default is dropped from the genome, so it has one spelling)."""

    name: str
    choices: tuple[ParamValue, ...]
    default: ParamValue


_SEEDS = tuple(range(8))

# --------------------------------------------------------------------------- the gene pool
# Each table is filtered below against the installed Z3 (tactic and parameter names).

#: Pipeline tactics (sound rewrites; checked on the claim families, refutations included,
#: that their model converters give counterexamples the exact re-check accepts).
_PIPELINE: dict[str, tuple[ParamGene, ...]] = {
    "simplify": (
        ParamGene("som", (True, False), False),
        ParamGene("arith_lhs", (True, False), False),
    ),
    "propagate-values": (),
    "solve-eqs": (),
    "elim-uncnstr": (),
    "purify-arith": (),
    "propagate-ineqs": (),
    "ctx-simplify": (),
    "elim-term-ite": (),
}

#: Deciders; ``None`` is Z3's plain ``Solver()`` (then there is no pipeline either).
#: ``qfnra`` is Z3's QF_NRA strategy, whose own inner slices are wall-time ``TryFor``s of
#: 5 s and more: they never fire while evaluations stay shorter than 5 s (keep them so).
_DECIDERS: dict[str | None, tuple[ParamGene, ...]] = {
    "smt": (
        ParamGene("random_seed", _SEEDS, 0),
        ParamGene("arith.nl.grobner", (True, False), True),
    ),
    "qfnra-nlsat": (ParamGene("seed", _SEEDS, 0), ParamGene("factor", (True, False), True)),
    "qfnra": (ParamGene("random_seed", _SEEDS, 0),),
    "nlsat": (ParamGene("seed", _SEEDS, 0), ParamGene("factor", (True, False), True)),
    None: (),
}

#: Slice deciders and the name of their seed parameter.
_SLICE_SEED: dict[str, str] = {"smt": "random_seed", "qfnra-nlsat": "seed", "nlsat": "seed"}


def _validated(table: dict[Any, tuple[ParamGene, ...]]) -> dict[Any, tuple[ParamGene, ...]]:
    """``table`` restricted to sound tactics and parameters the installed Z3 has."""
    out: dict[Any, tuple[ParamGene, ...]] = {}
    for tactic, genes in table.items():
        if tactic is None:
            out[tactic] = genes
            continue
        if tactic not in SOUND_TACTICS or tactic not in available_tactics():
            continue
        kinds = tactic_param_kinds(tactic)
        out[tactic] = tuple(g for g in genes if g.name in kinds)
    return out


PIPELINE_GENES: dict[str, tuple[ParamGene, ...]] = _validated(_PIPELINE)
DECIDER_GENES: dict[str | None, tuple[ParamGene, ...]] = _validated(_DECIDERS)
PIPELINE_TACTICS: tuple[str, ...] = tuple(PIPELINE_GENES)
DECIDERS: tuple[str | None, ...] = tuple(DECIDER_GENES)
SLICE_DECIDERS: tuple[str, ...] = tuple(
    t
    for t in _SLICE_SEED
    if t in DECIDER_GENES and {"max_conflicts", _SLICE_SEED[t]} <= set(tactic_param_kinds(t))
)
PREPROCESS_GENES: tuple[str, ...] = ("product-bounds",)

#: Z3's plain solver as a genome (the baseline every search is seeded with).  Never modify it.
Z3_DEFAULT_GENOME: Genome = Strategy(name="z3-default").to_json()

# --------------------------------------------------------------------------- small builders


def _step(tactic: str, params: dict[str, ParamValue] | None = None) -> dict[str, Any]:
    return {"tactic": tactic, "params": dict(sorted((params or {}).items()))}


def _random_params(genes: Iterable[ParamGene], rng: Rng) -> dict[str, ParamValue]:
    """Each gene set to a random choice with probability ½ (left at its default otherwise)."""
    return {g.name: rng.choice(g.choices) for g in genes if rng.random() < 0.5}


def _random_step(rng: Rng) -> dict[str, Any]:
    tactic = rng.choice(PIPELINE_TACTICS)
    return _step(tactic, _random_params(PIPELINE_GENES[tactic], rng))


def _random_decider(rng: Rng, choices: Sequence[str | None] = DECIDERS) -> dict[str, Any] | None:
    tactic = rng.choice(choices)
    if tactic is None:
        return None
    return _step(tactic, _random_params(DECIDER_GENES[tactic], rng))


def _slice(tactic: str, conflicts: int, seed: int) -> dict[str, Any]:
    params: dict[str, ParamValue] = {"max_conflicts": conflicts, _SLICE_SEED[tactic]: seed}
    sub = Strategy(name="custom").to_json()
    sub["decider"] = _step(tactic, params)
    return {"timeout_ms": None, "strategy": sub}


def _random_slice(rng: Rng) -> dict[str, Any]:
    return _slice(rng.choice(SLICE_DECIDERS), rng.choice(SLICE_CONFLICTS), rng.choice(_SEEDS))


def _slice_genes(sl: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(decider, max_conflicts, seed)`` of a slice in the gene pool's form, else None."""
    decider = (sl.get("strategy") or {}).get("decider") or {}
    tactic = decider.get("tactic")
    if tactic not in SLICE_DECIDERS:
        return None
    params = decider.get("params") or {}
    return (
        tactic,
        params.get("max_conflicts", _DEFAULT_SLICE_CONFLICTS),
        params.get(_SLICE_SEED[tactic], 0),
    )


# --------------------------------------------------------------------------- repair and keys


def _repair_step(step: Any) -> dict[str, Any] | None:
    """A step with canonical params (gene params at their default dropped); None if unsound."""
    if isinstance(step, str):
        step = {"tactic": step}
    if not isinstance(step, dict):
        return None
    tactic = step.get("tactic")
    if tactic not in SOUND_TACTICS:
        return None
    params = dict(step.get("params") or {})
    genes = PIPELINE_GENES.get(tactic) or DECIDER_GENES.get(tactic) or ()
    for gene in genes:
        if gene.name in params and params[gene.name] == gene.default:
            del params[gene.name]
    return _step(tactic, params)


def _repair_strategy(data: Any, *, in_slice: bool) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    wanted = () if in_slice else (data.get("preprocess") or ())
    preprocess = [p for p in PREPROCESS_STEPS if p in wanted]
    pipeline = [s for s in map(_repair_step, data.get("pipeline") or ()) if s][:MAX_PIPELINE]
    decider = _repair_step(data["decider"]) if data.get("decider") is not None else None
    schedule = [s for s in map(_repair_slice, data.get("schedule") or ()) if s][:MAX_SLICES]
    if not (decider or schedule):
        pipeline = []
    params = {} if in_slice else dict(sorted((data.get("params") or {}).items()))
    return {
        "name": data.get("name", "custom") if isinstance(data.get("name"), str) else "custom",
        "preprocess": preprocess,
        "pipeline": pipeline,
        "decider": decider,
        "schedule": schedule,
        "params": params,
    }


def _repair_slice(sl: Any) -> dict[str, Any] | None:
    """A slice without wall time: its decider gets ``max_conflicts`` if it has none; None if
    nothing (sound) is left to run."""
    if not isinstance(sl, dict):
        return None
    sub = _repair_strategy(sl.get("strategy"), in_slice=True)
    sub["name"] = "custom"
    decider = sub["decider"]
    if decider is not None:
        kinds = tactic_param_kinds(decider["tactic"])
        if "max_conflicts" in kinds and "max_conflicts" not in decider["params"]:
            decider["params"] = dict(
                sorted({**decider["params"], "max_conflicts": _DEFAULT_SLICE_CONFLICTS}.items())
            )
    elif not sub["schedule"]:
        return None
    return {"timeout_ms": None, "strategy": sub}


def repair(genome: Genome, name: str | None = None) -> Genome:
    """A normalised copy of ``genome``.

    Params in canonical (sorted) order, gene params at Z3's default dropped; tactics off the
    allow-list ``SOUND_TACTICS`` (unknown ones included) removed; at most :data:`MAX_PIPELINE`
    steps and :data:`MAX_SLICES` slices; slices bounded by ``max_conflicts`` instead of wall
    time; a pipeline without decider or schedule dropped; the name set to ``name`` (kept when
    None).  The result may still be invalid if the input names an unknown parameter
    (``Strategy.from_json`` says which).
    """
    out = _repair_strategy(genome, in_slice=False)
    if name is not None:
        out["name"] = name
    return out


def _strip_names(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k != "name"}
    out["schedule"] = [
        {**sl, "strategy": _strip_names(sl["strategy"])} for sl in data.get("schedule") or ()
    ]
    return out


def genome_key(genome: Genome) -> str:
    """Canonical JSON of the strategy, names ignored: equal strategies give equal keys
    (parameter order does not matter).  Raises ValueError for an invalid strategy."""
    canonical = Strategy.from_json(genome).to_json()
    return json.dumps(_strip_names(canonical), sort_keys=True, separators=(",", ":"))


def is_valid(genome: Any) -> bool:
    """Whether ``Strategy.from_json`` accepts ``genome``."""
    try:
        Strategy.from_json(genome)
    except (ValueError, TypeError, KeyError):
        return False
    return True


def genome_size(genome: Genome) -> int:
    """Number of steps: preprocess steps + pipeline tactics + decider + every slice's steps
    (``Solver()`` is 0).  Smaller wins ties."""
    size = len(genome.get("preprocess") or ()) + len(genome.get("pipeline") or ())
    size += genome.get("decider") is not None
    return size + sum(genome_size(sl["strategy"]) for sl in genome.get("schedule") or ())


def diversity(population: Sequence[Genome]) -> float:
    """Distinct strategies (by :func:`genome_key`) / population size: 1.0 when all differ,
    ``1 / len`` when all are the same, 0.0 for an empty population."""
    if not population:
        return 0.0
    return len({genome_key(g) for g in population}) / len(population)


def _checked(genome: Genome) -> Genome:
    """The repaired copy of a valid strategy (ValueError naming the bad item otherwise)."""
    Strategy.from_json(genome)
    out = repair(genome)
    Strategy.from_json(out)
    return out


# --------------------------------------------------------------------------- random genomes


def random_genome(rng: Rng, name: str = RANDOM) -> Genome:
    """A random genome from the gene pool."""
    genome = {
        "name": name,
        "preprocess": list(PREPROCESS_GENES) if rng.random() < 0.5 else [],
        "pipeline": [_random_step(rng) for _ in range(rng.randrange(MAX_PIPELINE + 1))],
        "decider": _random_decider(rng),
        "schedule": [_random_slice(rng) for _ in range(rng.choice((0, 0, 1, 2)))],
        "params": {},
    }
    return repair(genome, name)


def seed_population(size: int, rng: Rng, seeds: Iterable[Genome] = ()) -> list[Genome]:
    """``size`` genomes: the (repaired) ``seeds`` first, then random ones; duplicates (same
    :func:`genome_key`) are skipped while a bounded number of draws can avoid them."""
    population: list[Genome] = []
    keys: set[str] = set()
    for seed in seeds:
        genome = _checked(seed)
        key = genome_key(genome)
        if key not in keys and len(population) < size:
            population.append(genome)
            keys.add(key)
    retries = 20 * max(size, 1)
    while len(population) < size:
        genome = random_genome(rng)
        key = genome_key(genome)
        if key in keys and retries > 0:
            retries -= 1
            continue
        population.append(genome)
        keys.add(key)
    return population


# --------------------------------------------------------------------------- mutation


def _m_toggle_preprocess(g: Genome, rng: Rng) -> None:
    g["preprocess"] = [] if g["preprocess"] else list(PREPROCESS_GENES)


def _m_insert_step(g: Genome, rng: Rng) -> None:
    g["pipeline"].insert(rng.randrange(len(g["pipeline"]) + 1), _random_step(rng))


def _m_delete_step(g: Genome, rng: Rng) -> None:
    del g["pipeline"][rng.randrange(len(g["pipeline"]))]


def _m_replace_step(g: Genome, rng: Rng) -> None:
    g["pipeline"][rng.randrange(len(g["pipeline"]))] = _random_step(rng)


def _m_swap_steps(g: Genome, rng: Rng) -> None:
    pipeline = g["pipeline"]
    i = rng.randrange(len(pipeline) - 1)
    pipeline[i], pipeline[i + 1] = pipeline[i + 1], pipeline[i]


def _alter_params(step: dict[str, Any], genes: tuple[ParamGene, ...], rng: Rng) -> None:
    """Set one gene parameter of ``step`` to another value (its default included)."""
    gene = rng.choice(genes)
    current = step["params"].get(gene.name, gene.default)
    step["params"][gene.name] = rng.choice([v for v in gene.choices if v != current])


def _m_alter_step_params(g: Genome, rng: Rng) -> None:
    steps = [s for s in g["pipeline"] if PIPELINE_GENES.get(s["tactic"])]
    step = rng.choice(steps)
    _alter_params(step, PIPELINE_GENES[step["tactic"]], rng)


def _m_change_decider(g: Genome, rng: Rng) -> None:
    current = g["decider"]["tactic"] if g["decider"] else None
    g["decider"] = _random_decider(rng, [d for d in DECIDERS if d != current])


def _m_alter_decider_params(g: Genome, rng: Rng) -> None:
    _alter_params(g["decider"], DECIDER_GENES[g["decider"]["tactic"]], rng)


def _m_add_slice(g: Genome, rng: Rng) -> None:
    g["schedule"].insert(rng.randrange(len(g["schedule"]) + 1), _random_slice(rng))


def _m_remove_slice(g: Genome, rng: Rng) -> None:
    del g["schedule"][rng.randrange(len(g["schedule"]))]


def _m_alter_slice(g: Genome, rng: Rng) -> None:
    i = rng.randrange(len(g["schedule"]))
    genes = _slice_genes(g["schedule"][i]) or _slice_genes(_random_slice(rng))
    assert genes is not None
    tactic, conflicts, seed = genes
    what = rng.randrange(3)
    if what == 0:
        tactic = rng.choice([t for t in SLICE_DECIDERS if t != tactic] or [tactic])
    elif what == 1:
        conflicts = rng.choice([c for c in SLICE_CONFLICTS if c != conflicts])
    else:
        seed = rng.choice([s for s in _SEEDS if s != seed])
    g["schedule"][i] = _slice(tactic, conflicts, seed)


def _has_step_genes(g: Genome) -> bool:
    return any(PIPELINE_GENES.get(s["tactic"]) for s in g["pipeline"])


def _has_decider_genes(g: Genome) -> bool:
    return bool(g["decider"] and DECIDER_GENES.get(g["decider"]["tactic"]))


#: ``(name, operator, applicable)``: an operator edits a repaired copy in place.
MUTATIONS: tuple[tuple[str, Callable[[Genome, Rng], None], Callable[[Genome], Any]], ...] = (
    ("toggle-preprocess", _m_toggle_preprocess, lambda g: True),
    (
        "insert-step",
        _m_insert_step,
        lambda g: len(g["pipeline"]) < MAX_PIPELINE and (g["decider"] or g["schedule"]),
    ),
    ("delete-step", _m_delete_step, lambda g: bool(g["pipeline"])),
    ("replace-step", _m_replace_step, lambda g: bool(g["pipeline"])),
    ("swap-steps", _m_swap_steps, lambda g: len(g["pipeline"]) >= 2),
    ("alter-step-params", _m_alter_step_params, _has_step_genes),
    ("change-decider", _m_change_decider, lambda g: True),
    ("alter-decider-params", _m_alter_decider_params, _has_decider_genes),
    ("add-slice", _m_add_slice, lambda g: len(g["schedule"]) < MAX_SLICES),
    ("remove-slice", _m_remove_slice, lambda g: bool(g["schedule"])),
    ("alter-slice", _m_alter_slice, lambda g: bool(g["schedule"])),
)


def mutate(genome: Genome, rng: Rng, name: str = EVOLVED) -> Genome:
    """One random point mutation of ``genome`` (a new dict named ``name``).

    An operator is drawn among the applicable :data:`MUTATIONS`; a result that is invalid or
    equal to the parent is redrawn a few times, then a copy of the (repaired) parent is
    returned under its own name.  Raises ValueError if ``genome`` is not a valid strategy.
    """
    parent = _checked(genome)
    parent_key = genome_key(parent)
    for _ in range(_ATTEMPTS):
        child = copy.deepcopy(parent)
        ops = [op for _, op, applicable in MUTATIONS if applicable(child)]
        rng.choice(ops)(child, rng)
        child = repair(child, name)
        if is_valid(child) and genome_key(child) != parent_key:
            return child
    return parent


# --------------------------------------------------------------------------- crossover

#: The gene groups :func:`crossover` exchanges.
GENE_GROUPS: tuple[str, ...] = ("preprocess", "pipeline", "decider", "schedule")


def crossover(a: Genome, b: Genome, rng: Rng, name: str = EVOLVED) -> tuple[Genome, Genome]:
    """Uniform crossover over :data:`GENE_GROUPS`: each group is swapped between the two
    children with probability ½.  A child that would be invalid is replaced by a copy of its
    parent.  Returns new dicts named ``name``; raises ValueError for an invalid parent."""
    pa, pb = _checked(a), _checked(b)
    ca, cb = copy.deepcopy(pa), copy.deepcopy(pb)
    for group in GENE_GROUPS:
        if rng.random() < 0.5:
            ca[group], cb[group] = cb[group], ca[group]
    ca, cb = repair(ca, name), repair(cb, name)
    return (ca if is_valid(ca) else pa, cb if is_valid(cb) else pb)
