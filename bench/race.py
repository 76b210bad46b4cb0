"""The race on the scaled Moneyball families: race vs Z3 default vs cvc5 vs the best single
strategy, by solved count, PAR-2 and wrong answers at one timeout.

    .venv/bin/python bench/race.py [--families war-abs,war-unit,drp-baseline,fs-bounds]
        [--timeout 10] [--rlimit 5000000]

The held-out sizes of each family (:func:`hms_celery.genetic.families.split`), each a ground
claim with a known verdict.  The best single strategy is the named one with the best GA
fitness on the families' training sizes (``bench/ga.py``'s :func:`hand_pick`).  Z3 default,
cvc5 and the best single run in this process (``ProofRequest.run``, confirmation on, as a
worker runs them); the race runs through the client on an embedded stack (private Redis,
SQLite, a prover agent with two processes taking the legs), timed from submit to the
committed result.  Interleaved per instance so that machine noise hits every system alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ga  # bench/ga.py: hand_pick
from smtlib import Result  # bench/smtlib.py: one result record

Instance = dict[str, Any]


def in_process(timeout: float, **options: Any) -> Callable[[Instance], Result]:
    """One system: ``ProofRequest.run`` in this process with ``options``."""
    from hms_celery.verification.request import ProofRequest

    strategy = options.pop("strategy", None)

    def run(inst: Instance) -> Result:
        request = ProofRequest.build(**{**inst["request"], **options})
        t0 = time.monotonic()
        out = request.run(timeout=timeout, max_size=20, rlimit=None, strategy=strategy)
        return Result(out.verdict.value, time.monotonic() - t0)

    return run


def race(timeout: float) -> Callable[[Instance], Result]:
    """``backend="race"`` through the client on the running embedded stack."""
    from hms_celery import client

    def run(inst: Instance) -> Result:
        req = inst["request"]
        t0 = time.monotonic()
        task_id = client.submit_proof_task(
            inst["id"],
            req["statement"],
            req.get("assumptions", ()),
            variables=req.get("variables"),
            backend="race",
            timeout=timeout,
        )
        status = client.wait_for_result(task_id, timeout=3 * timeout + 30)
        return Result(status.get("verdict") or status["state"], time.monotonic() - t0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=ga.DEFAULT_FAMILIES)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--rlimit", type=int, default=5_000_000)
    args = parser.parse_args()

    from hms_celery.genetic import families

    train: list[Instance] = []
    heldout: list[Instance] = []
    for name in args.families.split(","):
        t, h = families.split(name)
        train += t
        heldout += h
    picked = ga.hand_pick(train, args.rlimit, args.timeout)
    timeout = args.timeout
    with tempfile.TemporaryDirectory(prefix="hms-bench-race-") as tmp:
        for name in list(os.environ):
            if name.startswith("HMS_"):
                del os.environ[name]
        os.environ["HMS_DATA_DIR"] = tmp
        from hms_celery.cli.stack import EmbeddedStack
        from hms_celery.settings import load_settings

        with EmbeddedStack(settings=load_settings(), concurrency=2):
            systems = {
                "Z3 default (z3-default)": in_process(timeout, strategy="z3-default"),
                "HMS default strategy": in_process(timeout),
                "cvc5": in_process(timeout, backend="cvc5"),
                f"best single ({picked})": in_process(timeout, strategy=picked),
                "race": race(timeout),
            }
            results: dict[str, list[tuple[Instance, Result]]] = {k: [] for k in systems}
            for inst in heldout:
                for label, system in systems.items():
                    results[label].append((inst, system(inst)))
    print(f"\n{len(heldout)} held-out instances of {args.families}; timeout {timeout:g} s\n")
    print(f"| system (timeout {timeout:g} s) | solved | PAR-2 (s) | wrong |")
    print("|---|---|---|---|")
    for label, rows in results.items():
        solved = sum(r.verdict == inst["expected"] for inst, r in rows)
        wrong = sum(
            r.verdict in ("PROVED", "REFUTED") and r.verdict != inst["expected"] for inst, r in rows
        )
        par2 = sum(r.seconds if r.verdict == inst["expected"] else 2 * timeout for inst, r in rows)
        print(f"| {label} | {solved}/{len(rows)} | {par2:.1f} | {wrong} |")


if __name__ == "__main__":
    main()
