"""Evolved vs hand-picked vs Z3 default: GA runs on a real worker pool, judged on held-out data.

    .venv/bin/python bench/ga.py [--families war-abs,war-unit,drp-baseline,fs-bounds]
        [--population 8] [--generations 6] [--seed 1] [--rlimit 1000000] [--timeout 5]
        [--plot docs/ga-fitness.png] [--smt2-dir DIR] [--export-smt2 DIR]

For each family (scalable Moneyball claims, :mod:`hms_celery.genetic.families`): a GA run on
the training sizes, on the embedded stack (private Redis, SQLite, a prover agent with two
processes, the supervisor + ga agent) — the same pool ``hms up`` runs.  Then, in this
process, one at a time and at one wall-clock timeout: Z3's default solver, the best
hand-picked named strategy (chosen on the training split) and the evolved strategy on the
held-out sizes — solved count, PAR-2 (seconds; an unsolved instance costs 2 × timeout) and
total time.  ``--smt2-dir`` does the same on a directory of ``.smt2`` files (sorted; even
positions train, odd ones are held out); ``--export-smt2`` writes a family's instances as
SMT-LIB 2 files to try that path.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HAND_PICKED = ("smt", "nlsat", "qfnra", "linearise-smt", "linearise-restarts", "portfolio")
DEFAULT_FAMILIES = "war-abs,war-unit,drp-baseline,fs-bounds"


def held_out_table(
    strategies: dict[str, dict[str, Any]], heldout: list[dict[str, Any]], timeout: float
) -> list[dict[str, Any]]:
    """Each strategy on each held-out instance at ``timeout`` seconds, one at a time and
    interleaved (instance 1 with every strategy, then instance 2, …) so that machine noise
    hits every strategy alike.  ``wrong``: decided verdicts contradicting ``expected``."""
    from hms_celery.genetic.fitness import DECIDED, Evaluation, is_solved
    from hms_celery.verification.request import ProofRequest

    zero = {"solved": 0, "wrong": 0, "n": len(heldout), "par2": 0.0, "time": 0.0}
    rows = {label: {"strategy": label, **zero} for label in strategies}
    for inst in heldout:
        for label, genome in strategies.items():
            request = ProofRequest.build(
                **{**inst["request"], "theorem_id": inst["id"]}, strategy=genome
            )
            out = request.run(timeout=timeout, max_size=20, rlimit=None, confirm=False)
            ev = Evaluation(
                inst["id"], out.verdict.value, None, out.elapsed_s, inst.get("expected")
            )
            ok = is_solved(ev)
            row = rows[label]
            row["solved"] += ok
            row["wrong"] += ev.verdict in DECIDED and ev.expected not in (None, ev.verdict)
            row["par2"] += out.elapsed_s if ok else 2 * timeout
            row["time"] += out.elapsed_s
    return list(rows.values())


def hand_pick(train: list[dict[str, Any]], rlimit: int, timeout: float) -> str:
    """The named strategy with the best fitness on the training split (same scoring as GA)."""
    from hms_celery.genetic.engine import evaluate_inline
    from hms_celery.verification.strategy import NAMED_STRATEGIES

    scored = {
        name: evaluate_inline(
            NAMED_STRATEGIES[name].to_json(), train, rlimit=rlimit, timeout_s=timeout
        )[0]
        for name in HAND_PICKED
    }
    return max(scored, key=lambda name: scored[name].key())


def run_ga(family: str, train: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    from hms_celery import client

    t0 = time.monotonic()
    run_id = client.start_ga_run(
        family,
        instances=train,
        population=args.population,
        generations=args.generations,
        seed=args.seed,
        rlimit=args.rlimit,
        timeout=args.timeout,
        auto_promote=False,
    )

    def progress(run: dict[str, Any]) -> None:
        gens = [g for g in run["generation_records"] if g["best"] is not None]
        if gens:
            g = gens[-1]
            print(
                f"  {family}: generation {g['number']} best {g['best']:.3f} mean "
                f"{g['mean']:.3f} diversity {g['diversity']:.2f} ({g['evaluations']} new evals)",
                flush=True,
            )

    run = client.wait_for_ga_run(run_id, timeout=3600, on_progress=progress)
    run["wall_s"] = time.monotonic() - t0
    if run["status"] != "DONE":
        raise SystemExit(f"GA run {run_id} ended {run['status']}: {run['error']}")
    return run


def compare(
    family: str,
    train: list[dict[str, Any]],
    heldout: list[dict[str, Any]],
    args: argparse.Namespace,
    picked: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A GA run on ``train``, then Z3 default, the hand-picked strategy (``picked``, else
    :func:`hand_pick` on ``train``) and the evolved one on ``heldout``: prints the table."""
    from hms_celery.genetic.genome import Z3_DEFAULT_GENOME
    from hms_celery.verification.strategy import NAMED_STRATEGIES, Strategy

    run = run_ga(family, train, args)
    picked = picked or hand_pick(train, args.rlimit, args.timeout)
    evolved = run["best_genome"]
    rows = held_out_table(
        {
            "z3-default": Z3_DEFAULT_GENOME,
            f"hand-picked ({picked})": NAMED_STRATEGIES[picked].to_json(),
            "evolved": evolved,
        },
        heldout,
        args.timeout,
    )
    evaluations = sum(g["evaluations"] for g in run["generation_records"])
    print(
        f"\n### {family}: train n = {[i['n'] for i in train]}, held-out n = "
        f"{[i['n'] for i in heldout]}\n\nGA run {run['id'][:8]}: population {args.population}, "
        f"{args.generations} generations, seed {args.seed}, rlimit {args.rlimit:,} per "
        f"evaluation; {evaluations} evaluations, {run['wall_s']:.1f} s on the pool.  Evolved: "
        f"`{Strategy.from_json(evolved).describe()}`\n"
    )
    print(f"| held-out, timeout {args.timeout:g} s | solved | PAR-2 (s) | total time (s) |")
    print("|---|---|---|---|")
    base = rows[0]["par2"]
    for row in rows:
        change = (row["par2"] / base - 1) * 100 if base else 0.0
        cut = f" ({change:+.1f}% vs Z3 default)" if row is not rows[0] else ""
        print(
            f"| {row['strategy']} | {row['solved']}/{row['n']} | {row['par2']:.3f}{cut} | "
            f"{row['time']:.3f} |"
        )
    sys.stdout.flush()
    return run, rows


def smt2_instances(directory: Path, statuses: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The ``.smt2`` files of ``directory`` as GA instances, sorted by name (``n`` = position).
    The expected verdict comes from ``statuses`` (file name → ``sat``/``unsat``, e.g. an
    index file) or else from the file's ``(set-info :status …)``."""
    files = sorted(directory.glob("*.smt2"))
    if not files:
        raise SystemExit(f"no .smt2 files in {directory}")
    out = []
    for n, path in enumerate(files):
        text = path.read_text()
        status = (statuses or {}).get(path.name)
        expected = None
        if status == "unsat" or (status is None and "(set-info :status unsat)" in text):
            expected = "PROVED"
        elif status == "sat" or (status is None and "(set-info :status sat)" in text):
            expected = "REFUTED"
        out.append({"id": path.stem, "n": n, "request": {"smtlib": text}, "expected": expected})
    return out


def export_smt2(family: str, directory: Path) -> None:
    """Write ``family``'s training and held-out instances as SMT-LIB 2 benchmarks."""
    import z3

    from hms_celery.genetic import families
    from hms_celery.verification.request import ProofRequest
    from hms_celery.verification.z3_compile import compile_statement

    directory.mkdir(parents=True, exist_ok=True)
    train, heldout = families.split(family)
    for inst in train + heldout:
        statement = ProofRequest.build(**inst["request"]).parse()
        ctx = z3.Context()
        solver = z3.Solver(ctx=ctx)
        solver.add(*compile_statement(statement, {}, ctx).assertions)
        status = "unsat" if inst["expected"] == "PROVED" else "sat"
        body = solver.to_smt2().replace("(set-info :status unknown)\n", "")
        text = f"(set-info :status {status})\n" + body
        (directory / f"{inst['id']}.smt2").write_text(text)
    print(f"wrote {len(train) + len(heldout)} files to {directory}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=DEFAULT_FAMILIES)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rlimit", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--smt2-dir", type=Path, default=None)
    parser.add_argument("--export-smt2", type=Path, default=None)
    args = parser.parse_args()

    if args.export_smt2:
        export_smt2(args.families.split(",")[0], args.export_smt2)
        return

    from hms_celery.genetic import families

    with tempfile.TemporaryDirectory(prefix="hms-bench-ga-") as tmp:
        for name in list(os.environ):
            if name.startswith("HMS_"):
                del os.environ[name]
        os.environ["HMS_DATA_DIR"] = tmp
        os.environ["HMS_GA_TRIGGER_FAILURES"] = "0"
        from hms_celery.cli.stack import EmbeddedStack
        from hms_celery.settings import load_settings

        with EmbeddedStack(settings=load_settings(), concurrency=2):
            print(f"embedded stack up (data in {tmp}); Z3 {__import__('z3').get_version_string()}")
            first = None
            if args.smt2_dir:
                items = smt2_instances(args.smt2_dir)
                first, _ = compare("smt2", items[0::2], items[1::2], args)
            else:
                for family in args.families.split(","):
                    train, heldout = families.split(family)
                    run, _ = compare(family, train, heldout, args)
                    first = first or run
            if args.plot and first is not None:
                from hms_celery import client
                from hms_celery.genetic.plot import plot_run

                print(f"\nplot: {plot_run(client.query_ga_run(first['id']), args.plot)}")


if __name__ == "__main__":
    main()
