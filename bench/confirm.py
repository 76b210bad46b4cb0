"""What confirming every PROVED verdict by cvc5 costs: the Moneyball catalogue in-process, with
confirmation on and off, and with ``backend="cvc5"``.

    .venv/bin/python bench/confirm.py [--rounds 5] [--timeout 30] [--max-size 20]

Each round checks the whole catalogue once per mode, the modes in a rotating order, so that
machine noise (another process, a frequency change) hits every mode alike.  Prints one table:
total seconds per mode (median and range over the rounds), the seconds spent confirming, how
many claims got their expected verdict, and how many PROVED verdicts were confirmed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hms_celery.verification import load_catalogue, load_definitions
from hms_celery.verification.cvc5_backend import cvc5_version
from hms_celery.verification.prover import prove

MODES: dict[str, dict[str, object]] = {
    "z3, confirmation off": {"backend": "z3", "confirm": False},
    "z3, confirmed by cvc5 (default)": {"backend": "z3", "confirm": True},
    "cvc5, confirmed by z3": {"backend": "cvc5", "confirm": True},
}


def run(claims: list, mode: dict[str, object], timeout: float, max_size: int) -> dict:
    t0 = time.monotonic()
    ok = proved = confirmed = 0
    confirming = 0.0
    for claim, statement in claims:
        out = prove(statement, timeout_s=timeout, max_size=max_size, **mode)  # type: ignore[arg-type]
        ok += out.verdict == claim.expected
        proved += out.verdict.value == "PROVED"
        if out.confirmed_by:
            confirming += out.confirmed_by["seconds"]
            confirmed += out.confirmed_by["status"] == "confirmed"
    return {
        "total": time.monotonic() - t0,
        "confirming": confirming,
        "ok": ok,
        "proved": proved,
        "confirmed": confirmed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--max-size", type=int, default=20)
    args = parser.parse_args()
    definitions = load_definitions()
    claims = [(c, c.statement(definitions)) for c in load_catalogue()]
    names = list(MODES)
    for name in names:  # warm-up: imports, Z3 context, cvc5 library
        run(claims[:3], MODES[name], args.timeout, args.max_size)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            results[name].append(run(claims, MODES[name], args.timeout, args.max_size))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(
        f"\n## Moneyball catalogue ({len(claims)} claims) in-process, max_size {args.max_size}, "
        f"{args.rounds} interleaved rounds; cvc5 {cvc5_version()}\n"
    )
    print("| mode | total s, median (min–max) | confirming s, median | expected verdicts |"
          " PROVED confirmed |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for name in names:
        rows = results[name]
        totals = [x["total"] for x in rows]
        last = rows[-1]
        print(
            f"| {name} | {statistics.median(totals):.2f} ({min(totals):.2f}–{max(totals):.2f}) "
            f"| {statistics.median(x['confirming'] for x in rows):.3f} "
            f"| {last['ok']}/{len(claims)} | {last['confirmed']}/{last['proved']} |"
        )


if __name__ == "__main__":
    main()
