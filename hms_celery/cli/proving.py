"""``hms prove``, ``prove-smt2``, ``check``, ``status`` and ``theorems``: submit and show proofs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hms_celery import client
from hms_celery.cli.options import JsonOpt, RaceOpt
from hms_celery.cli.output import err, out, print_table
from hms_celery.cli.render import (
    agreement,
    confirmation_mark,
    first_line,
    format_cex,
    print_attempts,
    print_status,
    print_timings,
    problem_note,
    proof_note,
    race_mark,
)
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.runtime.skills import PROOF_QUEUES
from hms_celery.settings import get_settings
from hms_celery.store.records import TaskStatusView
from hms_celery.verification.catalogue import Claim, ClaimProblem, find_claim, read_catalogue
from hms_celery.verification.verdict import Verdict

#: A catalogue theorem id (``war-bounds-original``): words joined by ``-``.  No proposition
#: looks like this (``x-1`` is a number, not a claim), so `hms prove ID` proves that claim.
THEOREM_ID = re.compile(r"[A-Za-z_][\w.']*(?:-[\w.']+)+")


def prove(
    statement: Annotated[
        str, typer.Argument(help="A Lean 4 proposition, or the theorem id of a catalogue claim.")
    ],
    assume: Annotated[
        list[str] | None, typer.Option("--assume", "-a", help="An assumption (repeatable).")
    ] = None,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A variable NAME:TYPE (repeatable).")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Prover timeout, seconds.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Strategy name or JSON.")] = None,
    backend: Annotated[str, typer.Option(help="Prover backend: z3 or cvc5.")] = "z3",
    expect: Annotated[str | None, typer.Option(help="Exit 1 unless this verdict.")] = None,
    race: RaceOpt = False,
    catalogue: Annotated[
        Path | None, typer.Option(help="Catalogue of theorem ids (default: Moneyball).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit STATEMENT, wait for the verdict and print it (with any counterexample).

    STATEMENT may be a catalogue theorem id (e.g. war-bounds-original): its claim is proved."""
    variables = _parse_vars(var or [])
    expected = _verdict_option(expect)
    backend = "race" if race else backend
    if THEOREM_ID.fullmatch(statement.strip()) and not assume and not var:
        claim = find_claim(statement.strip(), catalogue)
        task_id = client.submit_claim(claim, backend=backend, strategy=strategy, timeout=timeout)
    else:
        task_id = client.submit_proof_task(
            "",
            statement,
            assume or [],
            backend=backend,
            strategy=strategy,
            timeout=timeout,
            variables=variables,
        )
    status = _wait(task_id, timeout, backend)
    if as_json:
        out.print_json(data=status)
    else:
        print_status(status)
    if status["verdict"] == Verdict.ERROR.value:
        raise typer.Exit(2)
    if expected is not None and status["verdict"] != expected.value:
        raise typer.Exit(1)


def prove_smt2(
    file: Annotated[Path, typer.Argument(help="An SMT-LIB 2 problem (.smt2).")],
    timeout: Annotated[float | None, typer.Option(help="Prover timeout, seconds.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Strategy name or JSON.")] = None,
    race: RaceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Decide the SMT-LIB problem FILE: PROVED if its assertions are unsatisfiable, REFUTED
    (with the model) if they are satisfiable."""
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
    backend = "race" if race else "z3"
    task_id = client.submit_smtlib_task(
        file.stem, text, strategy=strategy, timeout=timeout, backend=backend
    )
    status = _wait(task_id, timeout, backend)
    if as_json:
        out.print_json(data=status)
    else:
        print_status(status)
    if status["verdict"] == Verdict.ERROR.value:
        raise typer.Exit(2)


def check(
    catalogue: Annotated[Path | None, typer.Argument(help="Catalogue file.")] = None,
    race: RaceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Submit every claim of CATALOGUE; exit 1 if any verdict differs from its expected one.

    A claim that cannot be checked (malformed, unparsable, outside the fragment) is a row of
    its own (ERROR / UNSUPPORTED, with file, field and line:column); the others are checked.
    Exit 2 only when the file itself cannot be read."""
    entries = read_catalogue(catalogue).rows
    raise typer.Exit(check_entries(entries, as_json, race=race))


def status(task_id: str, as_json: JsonOpt = False) -> None:
    """Show what the store knows about TASK_ID: state, verdict, counterexample, every
    attempt (number, agent, start, end, outcome) and the timings (queued, started,
    finished, elapsed)."""
    record = client.query_task_status(task_id)
    if as_json:
        out.print_json(data=record)
        return
    out.print(f"state: {record['state']}", highlight=False)
    print_status(record)
    print_timings(record)
    print_attempts(record["attempts"])


def theorems(
    catalogue: Annotated[Path | None, typer.Argument(help="Catalogue file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the claims of a catalogue (default: Moneyball); an entry that cannot be checked
    is listed with its ERROR/UNSUPPORTED reason."""
    rows = read_catalogue(catalogue).rows
    if as_json:
        out.print_json(data=[_claim_json(r) if isinstance(r, Claim) else r.to_json() for r in rows])
        return
    table = Table("id", "expected", "statement", title=f"{len(rows)} claims")
    for row in rows:
        if isinstance(row, Claim):
            expected = row.expected.value if row.expected else "—"
            table.add_row(Text(row.theorem_id), expected, Text(row.formal_expression))
        else:
            table.add_row(Text(row.label), row.expected or "—", problem_note(row))
    print_table(table)


def check_entries(
    entries: Sequence[Claim | ClaimProblem], as_json: bool, *, race: bool = False
) -> int:
    """Submit the checkable claims, show progress, print one row per entry (in file order; an
    entry that cannot be checked is its ERROR/UNSUPPORTED row); return 0, or 1 if any row
    disagrees with its expected verdict.  The entries were validated when the catalogue was
    read, so nothing is enqueued for a statement that does not parse."""
    claims = [e for e in entries if isinstance(e, Claim)]
    options = {"backend": "race"} if race else {}
    task_ids: dict[str, Claim] = dict(
        zip(client.submit_claims(claims, **options), claims, strict=True)
    )
    settings = get_settings()
    budget = settings.hard_time_limit * max(1, len(claims)) + 60
    with Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    ) as progress:
        bar = progress.add_task("claims", total=len(claims))
        try:
            results = client.wait_for_results(
                task_ids, timeout=budget, on_done=lambda _s: progress.advance(bar)
            )
        except TimeoutError as exc:
            queues = _queue_of(options.get("backend", "z3"))
            raise InfrastructureError(
                f"{exc}: is an agent consuming queue {queues}? (`hms up`, or "
                f"`celery -A hms_celery worker -Q {queues}`)",
                url=settings.effective_broker_url,
            ) from None
    submitted = {id(c): task_id for task_id, c in task_ids.items()}
    rows: list[tuple[Any, Any, str | None, bool]] = []
    disagreed = 0
    for entry in entries:
        if isinstance(entry, ClaimProblem):  # never submitted: its row says why
            disagreed += not entry.agrees
            rows.append((entry, None, entry.expected, entry.agrees))
            continue
        status = results[submitted[id(entry)]]
        expected = entry.expected.value if entry.expected else None
        ok = expected is None or status["verdict"] == expected
        disagreed += not ok
        rows.append((entry, status, expected, ok))
    if as_json:
        out.print_json(
            data=[
                {
                    "theorem_id": c.theorem_id,
                    "verdict": s["verdict"],
                    "expected": e,
                    "agrees": ok,
                    "bound": s["bound"],
                    "counterexample": s["counterexample"],
                    "reason": s["reason"],
                    "confirmed_by": s.get("confirmed_by"),
                    "proof": s.get("proof"),
                    **({"race": s["race"]} if s.get("race") else {}),
                    "prover_s": s["timings"]["prover_s"],
                    "task_id": s["task_id"],
                    "file": c.source,
                    "index": c.index,
                }
                if s is not None
                else c.to_json()
                for c, s, e, ok in rows
            ]
        )
    else:
        table = Table(
            "id", "statement", "verdict", "expected", "agrees", "time", "counterexample / note"
        )
        for claim, status, expected, ok in rows:
            agrees = agreement(expected, ok)
            if status is None:
                style = "yellow" if ok else "bold red"
                table.add_row(
                    Text(claim.label),
                    first_line(claim.statement),
                    Text(claim.verdict.value, style=style),
                    expected or "—",
                    agrees,
                    "—",
                    problem_note(claim, statement=False),
                )
                continue
            verdict = status["verdict"] or status["state"]
            if status["bound"] is not None and verdict == "BOUNDED":
                verdict = f"BOUNDED ≤{status['bound']}"
            verdict += confirmation_mark(status) + race_mark(status)
            prover_s = status["timings"]["prover_s"]
            table.add_row(
                Text(claim.theorem_id),
                first_line(claim.formal_expression),
                Text(verdict, style="green" if ok else "bold red"),
                expected or "—",
                agrees,
                f"{prover_s:.3f}s" if prover_s is not None else "—",
                Text(
                    format_cex(status["counterexample"])
                    or ("" if ok else status["reason"] or "")
                    or proof_note(status.get("proof"))
                ),
            )
        print_table(table)
        total = len(rows)
        summary = f"{total - disagreed}/{total} claims agree with their expected verdict"
        out.print(f"[{'green' if not disagreed else 'bold red'}]{summary}[/]")
    return 1 if disagreed else 0


def _queue_of(backend: str) -> str:
    """The queue(s) an agent must consume for ``backend``'s tasks (for messages)."""
    if backend == "race":
        return " and ".join(sorted(set(PROOF_QUEUES.values())))
    return PROOF_QUEUES.get(backend, "prove.z3")


def _wait(task_id: str, timeout: float | None, backend: str = "z3") -> TaskStatusView:
    settings = get_settings()
    budget = (timeout or settings.prover_timeout) + 2 * settings.time_limit_margin + 30
    queue = _queue_of(backend)
    if backend == "race":  # its legs may queue behind each other on one agent
        budget *= 3
    try:
        return client.wait_for_result(task_id, timeout=budget)
    except TimeoutError:
        state = client.query_task_status(task_id)["state"]
        raise InfrastructureError(
            f"task {task_id} still {state} after {budget:.0f}s: is an agent consuming "
            f"queue {queue}? (`hms up`, or `celery -A hms_celery worker -Q {queue}`)",
            url=settings.effective_broker_url,
        ) from None


def _parse_vars(items: list[str]) -> dict[str, str] | None:
    variables: dict[str, str] = {}
    for item in items:
        name, sep, ty = item.partition(":")
        if not sep or not name.strip() or not ty.strip():
            raise InputError(f"--var {item!r}: expected NAME:TYPE, e.g. x:ℝ or w:'Fin n → ℝ'")
        variables[name.strip()] = ty.strip()
    return variables or None


def _verdict_option(value: str | None) -> Verdict | None:
    if value is None:
        return None
    try:
        return Verdict(value.upper())
    except ValueError:
        names = ", ".join(v.value for v in Verdict)
        raise InputError(f"--expect {value!r}: not a verdict ({names})") from None


def _claim_json(claim: Claim) -> dict[str, Any]:
    return {
        "theorem_id": claim.theorem_id,
        "natural_language": claim.natural_language,
        "formal_expression": claim.formal_expression,
        "assumptions": list(claim.assumptions),
        "variables": claim.variables,
        "expected": claim.expected.value if claim.expected else None,
    }
