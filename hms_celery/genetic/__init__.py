"""Genetic search for prover strategies.

* :mod:`.genome` — a genome is a :class:`~hms_celery.verification.strategy.Strategy` in JSON
  form; random genomes, mutation, crossover and repair over a gene pool of sound Z3 tactics.
* :mod:`.fitness` — evaluations of a genome on claim instances, PAR-2 scoring and DEAP
  selection of the next generation.
* :mod:`.families` — Moneyball claim families parameterised by a vector size ``n``: the
  training and held-out instances strategies are evolved and judged on.
"""
