"""HMS on public SMT-LIB 2 problems: Z3 run directly vs HMS's strategies, cvc5, the race and a
GA-evolved strategy, by solved count, PAR-2 and wrong answers at one timeout.

    .venv/bin/python bench/smtlib.py [--dir ../shared/smtlib] [--timeout 10] [--no-ga]
        [--no-race] [--population 8] [--generations 6] [--seed 1] [--rlimit 5000000]
        [--no-confirm] [--json results.json]

The problems are read from ``../shared/smtlib`` (relative to the repository; never copied into
it): its ``INDEX.json`` names each file's logic and status.  Without the folder the benchmark
is skipped with a message.

Systems, each at ``--timeout`` seconds per problem, interleaved (problem 1 with every system,
then problem 2, …) so that machine noise hits all alike:

* **Z3 directly** — the baseline: a plain ``z3.Solver()`` on the raw text (``from_string``),
  ``unsat``/``sat`` taken at face value (no re-check, no confirmation);
* **HMS default**, **HMS z3-default**, **HMS cvc5** — :func:`~hms_celery.verification.smtlib.
  decide_smtlib` in this process (its model re-check, proof obligations and — unless
  ``--no-confirm`` — the other solver's confirmation included in the time: it may use what
  is left of the timeout); **HMS default, unconfirmed** — the same without confirmation;
* **HMS best named** — the named strategy with the best GA fitness on the training half
  (``bench/ga.py``'s :func:`hand_pick`);
* **HMS race** — ``backend="race"`` through the client on an embedded stack (private Redis,
  SQLite, a prover agent with two processes), when this build accepts it.

Then the held-out half: a GA run on the training half (even positions in sorted file order) on
the same embedded stack, and Z3 default vs the hand-picked vs the evolved strategy on the
other half only (``bench/ga.py``'s :func:`compare`), next to the systems above on that half.

A problem is *solved* when the verdict is PROVED on an ``unsat`` file or REFUTED on a ``sat``
one; PAR-2 sums the seconds of solved problems and 2 × timeout for every other; a *wrong*
answer is a verdict contradicting the file's status (PROVED on ``sat``, REFUTED on ``unsat``),
and must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ga  # bench/ga.py: hand_pick, compare, smt2_instances

#: ``../shared/smtlib`` relative to the repository.
SMTLIB_DIR = Path(__file__).resolve().parents[2] / "shared" / "smtlib"

EXPECTED = {"unsat": "PROVED", "sat": "REFUTED"}


@dataclass(frozen=True)
class Problem:
    """One benchmark file and what INDEX.json says about it."""

    file: str
    logic: str
    status: str  # "sat" | "unsat"
    text: str
    position: int  # in sorted file order: even positions train, odd ones are held out


@dataclass(frozen=True)
class Result:
    """One system's answer on one problem."""

    verdict: str
    seconds: float
    note: str = ""


def load_problems(directory: Path) -> list[Problem] | None:
    """The problems of ``directory`` in sorted file order, or None if it is absent."""
    index_file = directory / "INDEX.json"
    if not index_file.is_file():
        return None
    index = {entry["file"]: entry for entry in json.loads(index_file.read_text())}
    return [
        Problem(
            name,
            index[name].get("logic") or "unlabelled",
            index[name]["status"],
            (directory / name).read_text(),
            n,
        )
        for n, name in enumerate(sorted(index))
    ]


def is_solved(problem: Problem, result: Result) -> bool:
    return result.verdict == EXPECTED[problem.status]


def is_wrong(problem: Problem, result: Result) -> bool:
    """A verdict contradicting the file's status."""
    return result.verdict in EXPECTED.values() and not is_solved(problem, result)


# --------------------------------------------------------------------------- systems


def z3_directly(problem: Problem, timeout: float) -> Result:
    """Z3's plain solver on the raw text, in a fresh context."""
    import z3

    t0 = time.monotonic()
    ctx = z3.Context()
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", int(timeout * 1000))
    try:
        solver.from_string(problem.text)
        answer = solver.check()
    except z3.Z3Exception as exc:
        return Result("ERROR", time.monotonic() - t0, str(exc)[:100])
    verdict = {"unsat": "PROVED", "sat": "REFUTED"}.get(str(answer), "UNKNOWN")
    return Result(verdict, time.monotonic() - t0)


def hms(timeout: float, confirm: bool, **options: Any) -> Callable[[Problem], Result]:
    """HMS's ``decide_smtlib`` in this process with ``options`` (backend, strategy)."""
    from hms_celery.verification.smtlib import decide_smtlib

    def run(problem: Problem) -> Result:
        t0 = time.monotonic()
        out = decide_smtlib(problem.text, timeout_s=timeout, confirm=confirm, **options)
        return Result(out.verdict.value, time.monotonic() - t0, out.reason[:100])

    return run


def race_available() -> bool:
    """Whether this build accepts ``backend="race"`` for an SMT-LIB problem."""
    from hms_celery.errors import InputError
    from hms_celery.verification.request import ProofRequest

    try:
        ProofRequest.build(smtlib="(check-sat)", backend="race")
    except InputError:
        return False
    return True


def race(timeout: float) -> Callable[[Problem], Result]:
    """``backend="race"`` through the client (the embedded stack must be up); the time is
    the client's: from submitting to the committed result."""
    from hms_celery import client

    def run(problem: Problem) -> Result:
        t0 = time.monotonic()
        try:
            task_id = client.submit_smtlib_task(
                Path(problem.file).stem, problem.text, backend="race", timeout=timeout
            )
            status = client.wait_for_result(task_id, timeout=3 * timeout + 30)
        except Exception as exc:  # a failing leg or stack is this system's failure
            return Result("ERROR", time.monotonic() - t0, f"{type(exc).__name__}: {exc}"[:100])
        return Result(status.get("verdict") or status["state"], time.monotonic() - t0)

    return run


def run_all(
    problems: list[Problem], systems: dict[str, Callable[[Problem], Result]]
) -> dict[str, list[Result]]:
    """Every system on every problem, interleaved: problem 1 with all systems, then 2, …"""
    results: dict[str, list[Result]] = {label: [] for label in systems}
    for k, problem in enumerate(problems, 1):
        cells = []
        for label, system in systems.items():
            result = system(problem)
            results[label].append(result)
            mark = "✗" if is_wrong(problem, result) else ""
            cells.append(f"{label}={result.verdict}{mark} {result.seconds:.2f}s")
        print(f"  [{k}/{len(problems)}] {problem.file[:60]}: " + "; ".join(cells), flush=True)
    return results


# --------------------------------------------------------------------------- tables


def summary(problems: list[Problem], results: list[Result], timeout: float) -> dict[str, Any]:
    solved = [is_solved(p, r) for p, r in zip(problems, results, strict=True)]
    return {
        "solved": sum(solved),
        "n": len(problems),
        "par2": sum(
            r.seconds if ok else 2 * timeout for r, ok in zip(results, solved, strict=True)
        ),
        "wrong": sum(is_wrong(p, r) for p, r in zip(problems, results, strict=True)),
    }


def print_table(
    title: str, problems: list[Problem], results: dict[str, list[Result]], timeout: float
) -> None:
    print(f"\n{title}\n")
    print(f"| system (timeout {timeout:g} s) | solved | PAR-2 (s) | wrong |")
    print("|---|---|---|---|")
    for label, rs in results.items():
        s = summary(problems, rs, timeout)
        print(f"| {label} | {s['solved']}/{s['n']} | {s['par2']:.1f} | {s['wrong']} |")


def print_logics(problems: list[Problem], results: dict[str, list[Result]]) -> None:
    logics = sorted({p.logic for p in problems})
    counts = {lg: sum(p.logic == lg for p in problems) for lg in logics}
    print("\nSolved per logic:\n")
    print("| system | " + " | ".join(f"{lg} ({counts[lg]})" for lg in logics) + " |")
    print("|---|" + "---|" * len(logics))
    for label, rs in results.items():
        cells = [
            sum(is_solved(p, r) for p, r in zip(problems, rs, strict=True) if p.logic == lg)
            for lg in logics
        ]
        print(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")


def print_unsolved(problems: list[Problem], results: dict[str, list[Result]]) -> None:
    print("\nNot solved (verdict, reason):\n")
    for label, rs in results.items():
        missed = [(p, r) for p, r in zip(problems, rs, strict=True) if not is_solved(p, r)]
        names = "; ".join(f"{p.file[-40:]} {r.verdict} {r.note[:60]}" for p, r in missed)
        print(f"- {label}: {names or 'none'}")


def header(timeout: float, confirm: bool, directory: Path) -> None:
    import z3

    from hms_celery.verification.cvc5_backend import cvc5_version

    cpu = platform.processor() or platform.machine()
    print(
        f"SMT-LIB benchmark {date.today()}: {directory}; {os.cpu_count()} cores ({cpu}); "
        f"Python {platform.python_version()}; Z3 {z3.get_version_string()}; cvc5 "
        f"{cvc5_version()}; timeout {timeout:g} s per problem; HMS confirmation "
        f"{'on' if confirm else 'off'}",
        flush=True,
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=SMTLIB_DIR)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--no-ga", action="store_true", help="skip the GA run and held-out table")
    parser.add_argument("--no-race", action="store_true", help="skip the race column")
    parser.add_argument("--no-confirm", action="store_true", help="HMS without confirmation")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rlimit", type=int, default=5_000_000, help="GA budget per evaluation")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    args = parser.parse_args()

    problems = load_problems(args.dir)
    if problems is None:
        print(f"skipped: no SMT-LIB problems at {args.dir} (INDEX.json not found)")
        return
    problems = problems[: args.limit] if args.limit else problems
    confirm = not args.no_confirm
    header(args.timeout, confirm, args.dir)

    with tempfile.TemporaryDirectory(prefix="hms-bench-smtlib-") as tmp:
        for name in list(os.environ):
            if name.startswith("HMS_"):
                del os.environ[name]
        os.environ["HMS_DATA_DIR"] = tmp
        os.environ["HMS_GA_TRIGGER_FAILURES"] = "0"
        with_race = not args.no_race and race_available()
        if not args.no_race and not with_race:
            print("race: not available in this build")
        with ExitStack() as stack:
            if with_race or not args.no_ga:  # both need agents: the pool `hms up` runs
                from hms_celery.cli.stack import EmbeddedStack
                from hms_celery.settings import load_settings

                stack.enter_context(EmbeddedStack(settings=load_settings(), concurrency=2))
                print(f"embedded stack up (data in {tmp})", flush=True)
            bench(problems, args, confirm, with_race)


def bench(
    problems: list[Problem], args: argparse.Namespace, confirm: bool, with_race: bool
) -> None:
    statuses = {p.file: p.status for p in problems}
    instances = [i for i in ga.smt2_instances(args.dir, statuses) if f"{i['id']}.smt2" in statuses]
    train, heldout = instances[0::2], instances[1::2]
    t0 = time.monotonic()
    picked = ga.hand_pick(train, args.rlimit, args.timeout)
    print(f"best named strategy on the training half: {picked} ({time.monotonic() - t0:.0f} s)")

    timeout = args.timeout
    systems: dict[str, Callable[[Problem], Result]] = {
        "Z3 directly": lambda p: z3_directly(p, timeout),
        "HMS default": hms(timeout, confirm),
        "HMS default, unconfirmed": hms(timeout, False),
        "HMS z3-default": hms(timeout, confirm, strategy="z3-default"),
        "HMS cvc5": hms(timeout, confirm, backend="cvc5"),
        f"HMS best named ({picked})": hms(timeout, confirm, strategy=picked),
    }
    if with_race:
        systems["HMS race"] = race(timeout)
    results = run_all(problems, systems)
    print_table(f"### All {len(problems)} problems", problems, results, timeout)
    print_logics(problems, results)
    print_unsolved(problems, results)

    held = [p for p in problems if p.position % 2 == 1]
    held_results = {
        label: [r for p, r in zip(problems, rs, strict=True) if p.position % 2 == 1]
        for label, rs in results.items()
    }
    print_table(f"### Held-out half ({len(held)} problems)", held, held_results, timeout)
    ga_rows: list[dict[str, Any]] = []
    if not args.no_ga:
        _, ga_rows = ga.compare("smtlib", train, heldout, args, picked=picked)
        print(f"\n### GA on the held-out half ({len(heldout)} problems; confirmation off)\n")
        print(f"| strategy (timeout {timeout:g} s) | solved | PAR-2 (s) | wrong |")
        print("|---|---|---|---|")
        for row in ga_rows:
            print(
                f"| {row['strategy']} | {row['solved']}/{row['n']} | {row['par2']:.1f} | "
                f"{row['wrong']} |"
            )
    if args.json:
        data = {
            "timeout": timeout,
            "confirm": confirm,
            "picked": picked,
            "problems": [{k: v for k, v in asdict(p).items() if k != "text"} for p in problems],
            "results": {label: [asdict(r) for r in rs] for label, rs in results.items()},
            "ga": ga_rows,
        }
        args.json.write_text(json.dumps(data, indent=1))
        print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
