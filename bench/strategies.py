"""Time prover strategies: the weighted-sum bound ``war-abs-bound`` at fixed n, and the whole
Moneyball catalogue at several ``max_size`` values.

    .venv/bin/python bench/strategies.py [--timeout 20] [--ns 1,3,5,10,30] [--sizes 12,20,30]

Prints two tables (strategy × n → seconds/verdict; strategy × max_size → catalogue seconds and
how many claims got their expected verdict).  Every cell is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hms_celery.verification import ast as A
from hms_celery.verification.prover import prove
from hms_celery.verification.strategy import NAMED_STRATEGIES

R = A.REAL


def war_abs_bound(n: int) -> A.Statement:
    """WAR constraints ⇒ |Σ wᵢ·aᵢ·dᵢ| ≤ 100·Σ wᵢ·dᵢ over ``Fin n`` (n a literal)."""
    fin = A.FinT(A.Lit(Fraction(n), A.NAT))
    vec = A.Arrow(fin, R)
    i = A.Var("i", fin)

    def at(name: str) -> A.Expr:
        return A.App(A.Var(name, vec), i, R)

    def lit(x: int) -> A.Expr:
        return A.Lit(Fraction(x), R)

    def forall(body: A.Expr) -> A.Expr:
        return A.Quant("forall", "i", fin, body)

    def both(a: A.Expr, b: A.Expr) -> A.Expr:
        return A.Logic("∧", a, b)

    wad = A.Sum("i", fin, A.BinOp("*", A.BinOp("*", at("w"), at("a"), R), at("d"), R), R)
    wd = A.Sum("i", fin, A.BinOp("*", at("w"), at("d"), R), R)
    hyps = (
        forall(both(A.Compare("<", lit(0), at("w")), A.Compare("≤", at("w"), lit(1)))),
        A.Compare("=", A.Sum("i", fin, at("w"), R), lit(1)),
        forall(both(A.Compare("≤", lit(-100), at("a")), A.Compare("≤", at("a"), lit(100)))),
        forall(A.Compare("≤", lit(0), at("d"))),
    )
    goal = A.Compare("≤", A.Builtin("abs", (wad,), R), A.BinOp("*", lit(100), wd, R))
    params = tuple(A.Param(v, vec) for v in "wad")
    return A.Statement(params, hyps, goal, source=f"war-abs-bound n={n}")


def bench_war(strategies: list[str], ns: list[int], timeout: float) -> None:
    print(f"\n## war-abs-bound (n fixed), seconds / verdict, timeout {timeout:g} s per cell\n")
    print("| strategy | " + " | ".join(f"n={n}" for n in ns) + " |")
    print("|---|" + "---|" * len(ns))
    for name in strategies:
        cells = []
        for n in ns:
            out = prove(war_abs_bound(n), strategy=name, timeout_s=timeout, confirm=False)
            cells.append(f"{out.elapsed_s:.3f} {out.verdict.value}")
        print(f"| {name} ({NAMED_STRATEGIES[name].describe()}) | " + " | ".join(cells) + " |")
        sys.stdout.flush()


def bench_catalogue(strategies: list[str], sizes: list[int], timeout: float) -> None:
    from hms_celery.verification import load_catalogue, load_definitions

    definitions = load_definitions()
    claims = [(c, c.statement(definitions)) for c in load_catalogue()]
    print(
        f"\n## whole catalogue ({len(claims)} claims), total seconds / claims with the expected "
        f"verdict / slowest claim; timeout {timeout:g} s per claim\n"
    )
    print("| strategy | " + " | ".join(f"max_size={m}" for m in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in strategies:
        cells = []
        for m in sizes:
            t0 = time.monotonic()
            ok, slowest = 0, ("", 0.0)
            for claim, st in claims:
                out = prove(st, strategy=name, timeout_s=timeout, max_size=m, confirm=False)
                ok += out.verdict == claim.expected
                if out.elapsed_s > slowest[1]:
                    slowest = (claim.theorem_id, out.elapsed_s)
            total = time.monotonic() - t0
            cells.append(f"{total:.2f} s, {ok}/{len(claims)}, {slowest[0]} {slowest[1]:.2f} s")
        print(f"| {name} | " + " | ".join(cells) + " |")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--ns", default="1,3,5,10,30")
    parser.add_argument("--sizes", default="12,20,30")
    parser.add_argument(
        "--strategies", default=",".join(sorted(set(NAMED_STRATEGIES) - {"default"}))
    )
    parser.add_argument("--skip-catalogue", action="store_true")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    bench_war(strategies, [int(x) for x in args.ns.split(",")], args.timeout)
    if not args.skip_catalogue:
        bench_catalogue(strategies, [int(x) for x in args.sizes.split(",")], args.timeout)


if __name__ == "__main__":
    main()
