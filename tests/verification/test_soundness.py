"""Cross-check: the product-bounds preprocessing never flips a verdict.

Random nonlinear claims over bounded reals are decided with the default strategy (which
rewrites products) and with plain Z3 strategies (which do not).  A PROVED on one side and a
REFUTED on the other would mean an unsound lemma; every REFUTED is re-evaluated here with
exact rationals, independently of the prover's own re-check.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.prover import prove
from hms_celery.verification.verdict import Verdict

VARS = ("x", "y", "z")


def _term(rng: random.Random) -> str:
    factors = rng.sample(VARS, rng.randint(1, 3))
    coeff = rng.choice(["1", "2", "-1", "0.5", "-3"])
    return f"{coeff} * " + " * ".join(factors)


def _claim(rng: random.Random) -> tuple[str, list[str], dict[str, Fraction]]:
    bounds = {}
    hyps = []
    for v in VARS:
        lo = rng.randint(-3, 2)
        hi = lo + rng.randint(0, 4)
        bounds[v] = (lo, hi)
        hyps.append(f"{lo} ≤ {v} ∧ {v} ≤ {hi}")
    lhs = " + ".join(_term(rng) for _ in range(rng.randint(1, 3)))
    op = rng.choice(["≤", "<", "≥"])
    rhs = str(rng.randint(-20, 20))
    return f"{lhs} {op} {rhs}", hyps, bounds


def _holds(goal: str, cex: dict[str, str]) -> bool:
    env = {v: Fraction(cex[v]) for v in VARS}
    expr = goal.replace("≤", "<=").replace("≥", ">=")
    expr = expr.replace("0.5", "Fraction(1, 2)")
    return eval(expr, {"Fraction": Fraction}, env)


@pytest.mark.parametrize("seed", range(40))
def test_product_bounds_agrees_with_plain_z3(seed: int) -> None:
    rng = random.Random(seed)
    goal, hyps, bounds = _claim(rng)
    statement = parse_statement(goal, hyps, {v: "ℝ" for v in VARS})
    ours = prove(statement, timeout_s=10)
    plain = prove(statement, strategy="smt", timeout_s=10)
    decided = {ours.verdict, plain.verdict} & {Verdict.PROVED, Verdict.REFUTED}
    assert len(decided) <= 1, (goal, hyps, ours, plain)
    for outcome in (ours, plain):
        if outcome.verdict is Verdict.REFUTED:
            cex = outcome.counterexample
            for v in VARS:
                lo, hi = bounds[v]
                assert lo <= Fraction(cex[v]) <= hi
            assert not _holds(goal, cex), (goal, cex)
    assert ours.verdict in (Verdict.PROVED, Verdict.REFUTED), (goal, ours.reason)
