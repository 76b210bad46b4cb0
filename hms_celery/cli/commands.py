"""The ``hms`` commands (Typer + Rich). Errors propagate to :mod:`hms_celery.cli.main`."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hms_celery import client
from hms_celery.cli.approvals import approvals_cli
from hms_celery.cli.audit import audit_command
from hms_celery.cli.ga import ga_cli, strategies_cli
from hms_celery.cli.metrics import metrics_cli
from hms_celery.cli.output import err, fold, out, print_table
from hms_celery.cli.service import service_cli
from hms_celery.cli.stack import EmbeddedStack
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.policy.engine import check_policy
from hms_celery.settings import get_settings
from hms_celery.store.records import AttemptView, TaskStatusView
from hms_celery.verification.catalogue import Claim, ClaimProblem, find_claim, read_catalogue
from hms_celery.verification.verdict import Verdict

cli = typer.Typer(
    name="hms",
    help="HMS: prove, refute and check statements with self-healing Celery agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="The SQL store: migrations.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(ga_cli, name="ga")
cli.add_typer(strategies_cli, name="strategies")
cli.add_typer(metrics_cli, name="metrics")
cli.add_typer(service_cli, name="service")
cli.add_typer(approvals_cli, name="approvals")
cli.command("audit")(audit_command)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RaceOpt = Annotated[
    bool,
    typer.Option(
        "--race",
        help="Race Z3 strategies and cvc5 on their agents; the first decisive verdict wins.",
    ),
]
#: A catalogue theorem id (``war-bounds-original``): words joined by ``-``.  No proposition
#: looks like this (``x-1`` is a number, not a claim), so `hms prove ID` proves that claim.
THEOREM_ID = re.compile(r"[A-Za-z_][\w.']*(?:-[\w.']+)+")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"hms {metadata.version('hms-celery')}", highlight=False)
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """HMS: prove, refute and check statements with self-healing Celery agents."""
    check_policy()  # the policy rules file is validated at start-up (issue 10, part 6)


# ----------------------------------------------------------------------------- stack
@cli.command()
def up(
    flower: Annotated[bool, typer.Option("--flower", help="Also run Flower.")] = False,
    flower_port: Annotated[int, typer.Option(help="Flower's port.")] = 5555,
    concurrency: Annotated[int | None, typer.Option("-c", help="Worker processes.")] = None,
) -> None:
    """Run the embedded stack in the foreground (broker, store, prover agent, beat)."""
    stack = EmbeddedStack(flower=flower, flower_port=flower_port, concurrency=concurrency)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    urls = stack.start()
    try:
        for part, url in urls.items():
            out.print(f"[bold]{part:>9}[/bold]  {url}", highlight=False)
        if stack.flower_login:  # made for this run: HMS_FLOWER_PASSWORD was unset
            user, password = stack.flower_login
            out.print(f"{'':>9}  Flower login: {user} / {password}", highlight=False)
        out.print(f"[bold]{'logs':>9}[/bold]  {stack.settings.data_dir / 'logs'}", highlight=False)
        out.print("HMS is up. Ctrl-C stops it.")
        while not stopping:
            for child in stack.dead_children():
                err.print(f"[red]{child.name} exited ({child.process.returncode})[/red]; "
                          f"see {child.log_path}")  # fmt: skip
                stopping = True
            time.sleep(0.2)
    finally:
        out.print("stopping…")
        stack.stop()
        out.print("stopped.")


@cli.command()
def demo(
    catalogue: Annotated[Path | None, typer.Argument(help="Catalogue file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: bring up the stack, check the Moneyball catalogue, print it, stop."""
    entries = read_catalogue(catalogue).rows
    err.print("starting the stack…")
    with EmbeddedStack(beat=False) as stack:
        for part, url in stack.urls.items():
            err.print(f"  {part:>8}  {url}", highlight=False)
        code = _check(entries, as_json)
    raise typer.Exit(code)


# ----------------------------------------------------------------------------- proving
@cli.command()
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
        _print_status(status)
    if status["verdict"] == Verdict.ERROR.value:
        raise typer.Exit(2)
    if expected is not None and status["verdict"] != expected.value:
        raise typer.Exit(1)


@cli.command("prove-smt2")
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
        _print_status(status)
    if status["verdict"] == Verdict.ERROR.value:
        raise typer.Exit(2)


@cli.command()
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
    raise typer.Exit(_check(entries, as_json, race=race))


@cli.command()
def status(task_id: str, as_json: JsonOpt = False) -> None:
    """Show what the store knows about TASK_ID: state, verdict, counterexample, every
    attempt (number, agent, start, end, outcome) and the timings (queued, started,
    finished, elapsed)."""
    record = client.query_task_status(task_id)
    if as_json:
        out.print_json(data=record)
        return
    out.print(f"state: {record['state']}", highlight=False)
    _print_status(record)
    _print_timings(record)
    _print_attempts(record["attempts"])


@cli.command()
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
            table.add_row(Text(row.label), row.expected or "—", _problem_note(row))
    print_table(table)


@cli.command()
def ping(
    timeout: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds to wait for the agents' replies.")
    ] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Check the broker, the store and the agents; exit 3 if something is unreachable or no
    agent answers (nothing would run a task)."""
    report = client.ping_supervisor(timeout=timeout)
    problems = list(report["errors"])
    if not report["agents"] and not problems:
        problems.append(
            f"no agent answered within {timeout:g}s on {report['broker']}: start one with "
            "`hms up` or `celery -A hms_celery worker -Q prove.z3`"
        )
    if as_json:
        out.print_json(data={**report, "ok": not problems, "errors": problems})
    else:
        out.print(f"broker   {report['broker']}", highlight=False)
        out.print(f"database {report['database']}", highlight=False)
        out.print(f"agents   {', '.join(report['agents']) or 'none'}", highlight=False)
        for problem in problems:
            err.print(Text(problem, style="red"))
    if problems:
        raise typer.Exit(3)


@cli.command()
def skills(as_json: JsonOpt = False) -> None:
    """List the skills (entry points ``hms_celery.skills``), their queues and tasks."""
    from hms_celery.agents.skills import skill_info, skill_load_errors

    rows = skill_info()
    if as_json:
        out.print_json(data=rows)
    else:
        table = Table(title=f"{len(rows)} skills (--json: their entry points)")
        for column in ("id", "queue", "tasks"):
            table.add_column(column, no_wrap=True)
        table.add_column("description")
        for row in rows:
            queue = f"{row['queue']} (broadcast)" if row["broadcast"] else row["queue"]
            tasks = "\n".join([row["task_name"], *row["task_names"]])
            table.add_row(row["id"], queue, tasks, row["description"])
        print_table(table)
    for problem in skill_load_errors():
        err.print(f"[red]skipped[/red] {problem.entry_point}: {problem.error}", highlight=False)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the store to the newest schema (Alembic)."""
    from hms_celery.store.db import safe_url
    from hms_celery.store.migrate import upgrade

    url = get_settings().effective_database_url
    try:
        at = upgrade(url, revision)
    except Exception as exc:  # alembic wraps driver errors; name the database
        raise InfrastructureError(f"migration failed: {exc}", url=safe_url(url)) from exc
    out.print(f"{safe_url(url)} at revision {at}", highlight=False)


@db_cli.command("current")
def db_current() -> None:
    """Show the store's schema revision."""
    from hms_celery.store.db import safe_url
    from hms_celery.store.migrate import current_revision, head_revision

    url = get_settings().effective_database_url
    out.print(f"{safe_url(url)}: {current_revision(url)} (head {head_revision()})")


# ----------------------------------------------------------------------------- helpers
def _check(entries: Sequence[Claim | ClaimProblem], as_json: bool, *, race: bool = False) -> int:
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
            agrees = _agreement(expected, ok)
            if status is None:
                style = "yellow" if ok else "bold red"
                table.add_row(
                    Text(claim.label),
                    _first_line(claim.statement),
                    Text(claim.verdict.value, style=style),
                    expected or "—",
                    agrees,
                    "—",
                    _problem_note(claim, statement=False),
                )
                continue
            verdict = status["verdict"] or status["state"]
            if status["bound"] is not None and verdict == "BOUNDED":
                verdict = f"BOUNDED ≤{status['bound']}"
            verdict += _confirmation_mark(status) + _race_mark(status)
            prover_s = status["timings"]["prover_s"]
            table.add_row(
                Text(claim.theorem_id),
                _first_line(claim.formal_expression),
                Text(verdict, style="green" if ok else "bold red"),
                expected or "—",
                agrees,
                f"{prover_s:.3f}s" if prover_s is not None else "—",
                Text(
                    _format_cex(status["counterexample"])
                    or ("" if ok else status["reason"] or "")
                    or _proof_note(status.get("proof"))
                ),
            )
        print_table(table)
        total = len(rows)
        summary = f"{total - disagreed}/{total} claims agree with their expected verdict"
        out.print(f"[{'green' if not disagreed else 'bold red'}]{summary}[/]")
    return 1 if disagreed else 0


def _proof_note(proof: dict[str, Any] | None) -> str:
    """The table's short name of how a verdict was reached (``proof.method``), or ""."""
    if not proof:
        return ""
    method = str(proof.get("method", ""))
    if method == "sum-abstraction":
        n, points = proof.get("for_all"), proof.get("points")
        return f"proof: sum abstraction for every {n} ({points} points)"
    if method == "induction":
        return f"proof: induction on {proof.get('on')} (invariant {proof.get('invariant')})"
    if method == "witness" and isinstance(proof.get("witness"), dict):
        terms = ", ".join(f"{k} = {v}" for k, v in proof["witness"].items())
        return f"proof: witness {terms}"
    return f"proof: {method}"


def _problem_note(problem: ClaimProblem, *, statement: bool = True) -> Text:
    """The note of an entry that was not checked: where and why, and (``statement``) its
    statement's first line (plain text: a reason or statement with ``[…]`` is not Rich
    markup)."""
    where = f"{problem.position}: " if problem.position else ""
    lines = [f"{where}{problem.reason}", f"in {problem.source}, entry #{problem.index}"]
    if statement and problem.statement.strip():
        lines.append(f"statement: {_first_line(problem.statement)}")
    return Text("\n".join(lines))


def _first_line(text: str) -> Text:
    """The first line of a statement, `` …`` when it has more (plain text, never markup)."""
    lines = text.strip().splitlines()
    if not lines:
        return Text("—")
    return Text(lines[0] + (" …" if len(lines) > 1 else ""))


def _agreement(expected: str | None, ok: bool) -> Text:
    """The row's agreement in words, so a disagreement shows without colour too."""
    if ok:
        return Text("yes" if expected else "—", style="green")  # ✓ marks a confirmation
    return Text("✗ DISAGREES", style="bold red")


def _queue_of(backend: str) -> str:
    """The queue(s) an agent must consume for ``backend``'s tasks (for messages)."""
    from hms_celery.agents.skills import PROOF_QUEUES

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


def _confirmation_mark(status: dict[str, Any]) -> str:
    """`` ✓cvc5`` after a confirmed PROVED, `` (cvc5: unconfirmed (timeout))`` otherwise."""
    confirmed = status.get("confirmed_by")
    if status.get("verdict") != Verdict.PROVED.value or not confirmed:
        return ""
    if confirmed.get("status") == "confirmed":
        return f" ✓{confirmed['solver']}"
    return f" ({confirmed['solver']}: {confirmed.get('status')})"


def _confirmation_line(confirmed: dict[str, Any]) -> str:
    solver = f"{confirmed['solver']} {confirmed.get('version') or ''}".strip()
    seconds = confirmed.get("seconds")
    took = f" in {seconds:.3f}s" if isinstance(seconds, int | float) else ""
    if confirmed.get("status") == "confirmed":
        return f"confirmed by {solver}{took}"
    return f"{confirmed.get('status')} by {solver}{took}"


def _print_status(status: TaskStatusView) -> None:
    verdict = status["verdict"] or status["state"]
    color = {"PROVED": "green", "REFUTED": "red", "BOUNDED": "yellow"}.get(verdict, "magenta")
    line = f"[bold {color}]{verdict}[/]"
    if status["bound"] is not None:
        line += f" (checked every size ≤ {status['bound']})"
    out.print(line)
    if status["reason"]:
        out.print(status["reason"], highlight=False)
    if confirmed_by := status["confirmed_by"]:
        out.print(_confirmation_line(confirmed_by), highlight=False)
    if proof := status["proof"]:
        for text in _proof_lines(proof):
            out.print(text, highlight=False)
    if status["counterexample"]:
        out.print("counterexample:")
        for name, value in status["counterexample"].items():
            out.print(f"  {name} = {_format_value(value)}", highlight=False)
    if status.get("error"):
        err.print(f"[red]{status['error']}[/red]", highlight=False)
    if status.get("race"):
        _print_race(status["race"])
    prover_s = status["timings"]["prover_s"]
    where = f" on {status['agent']}" if status["agent"] else ""
    timing = f"{prover_s:.3f}s in the prover" if prover_s is not None else status["state"]
    out.print(f"[dim]task {status['task_id']}{where}, {timing}[/dim]", highlight=False)


def _print_timings(status: TaskStatusView) -> None:
    """When the task was queued, first started and finished, and how long each part took."""
    timings = status["timings"]
    attempts = status["attempts"]
    queued = timings.get("created_at")
    started = timings.get("started_at") or (attempts[0]["started_at"] if attempts else None)
    finished = timings.get("finished_at")
    parts = [f"queued {_at(queued)}", f"started {_at(started)}", f"finished {_at(finished)}"]
    waited = _between(queued, started)
    ran = _between(started, finished)
    elapsed = timings.get("total_s")
    if elapsed is None:
        elapsed = _between(queued, finished)
    spans = [
        f"elapsed {elapsed:.3f}s" if elapsed is not None else "elapsed —",
        f"in the queue {waited:.3f}s" if waited is not None else None,
        f"running {ran:.3f}s" if ran is not None else None,
    ]
    out.print("timings: " + ", ".join(parts), highlight=False)
    out.print("         " + ", ".join(p for p in spans if p), highlight=False)


def _print_attempts(attempts: Sequence[AttemptView]) -> None:
    """One row per attempt: number, agent, start, end, duration, outcome (and error)."""
    if not attempts:
        out.print("attempts: none yet (queued, not started)", highlight=False)
        return
    table = Table("#", "agent", "started", "ended", "took", "outcome", title="attempts")
    for a in attempts:
        took = _between(a["started_at"], a["ended_at"])
        outcome = a["outcome"] or ("running" if a["ended_at"] is None else "—")
        if leg := a["leg"]:
            outcome += f" (race leg {leg.get('leg')}: {leg.get('backend')})"
        if a.get("error"):
            outcome += f": {a['error']}"
        table.add_row(
            str(a["number"]),
            Text(a["agent"] or "—"),
            _at(a["started_at"]),
            _at(a["ended_at"]),
            f"{took:.3f}s" if took is not None else "—",
            Text(outcome),
        )
    print_table(table)


def _parse_at(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value)  # the store's times are aware (UTCDateTime)


def _at(value: str | None) -> str:
    """An ISO time from the store as ``YYYY-MM-DD HH:MM:SS.mmm UTC`` (``—`` if none)."""
    at = _parse_at(value)
    if at is None:
        return "—"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _between(start: str | None, end: str | None) -> float | None:
    a, b = _parse_at(start), _parse_at(end)
    return None if a is None or b is None else (b - a).total_seconds()


def _race_mark(status: dict[str, Any]) -> str:
    """`` (won by z3/nlsat)`` after a raced verdict, `` (retracted)`` after a retraction."""
    race = status.get("race")
    if not race:
        return ""
    if race.get("retracted"):
        return f" (retracted {race['retracted'].get('verdict')})"
    winner = race.get("winner")
    return f" (won by {winner['label']})" if winner else ""


def _print_race(race: dict[str, Any]) -> None:
    """The winner of a raced task and every leg (backend, strategy, agent, outcome, time)."""
    winner = race.get("winner")
    if race.get("retracted"):
        old = race["retracted"]
        err.print(
            f"[bold red]retracted[/]: {old.get('verdict')} (from {old.get('agent')}) was "
            "contradicted by a leg that finished after the race was decided",
            highlight=False,
        )
    elif winner:
        seconds = winner["seconds"]
        took = f" in {seconds:.3f}s" if seconds is not None else ""
        out.print(
            f"won by {winner['label']} (backend {winner['backend']}, strategy "
            f"{winner['strategy']}) on {winner['agent']}{took}",
            highlight=False,
        )
    table = Table("leg", "backend", "strategy", "agent", "outcome", "time", title="race")
    for leg in race["legs"]:
        seconds = leg["seconds"]
        outcome = leg["outcome"] + (" (late)" if leg["late"] else "")
        table.add_row(
            str(leg["leg"]),
            leg["backend"],
            leg["strategy"],
            leg["agent"] or "—",
            outcome,
            f"{seconds:.3f}s" if seconds is not None else "—",
        )
    for skipped in race.get("skipped") or []:
        table.add_row("—", skipped["label"], "", "", f"skipped: {skipped['why']}", "")
    print_table(table)


def _proof_lines(proof: dict[str, Any]) -> list[str]:
    """How the verdict was reached (``proof.method`` and the detail to re-check it)."""
    lines = [f"proof: {proof.get('method', '?')}"]
    for key, value in proof.items():
        if key == "method" or value in (None, [], {}, ""):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "; ".join(value)
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False, default=str)
        lines.append(f"  {key}: {value}")
    return lines


def _format_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        entries = ", ".join(f"{x} ↦ {y}" for x, y in value.get("entries", []))
        return "{" + (entries + ", " if entries else "") + f"else ↦ {value.get('else')}" + "}"
    return str(value)


def _format_cex(cex: dict[str, Any] | None) -> str:
    if not cex:
        return ""
    return ", ".join(f"{k}={_format_value(v)}" for k, v in cex.items())


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())


# ----------------------------------------------------------------------------- agents
agents_cli = typer.Typer(help="Agents: list, spawn, stop.", invoke_without_command=True)
cli.add_typer(agents_cli, name="agents")


@agents_cli.callback()
def agents_list(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Include FAILED/TERMINATED.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the agents (without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    agents = client.list_agents(include_ended=every)
    if as_json:
        out.print_json(data=agents)
        return
    print_table(_agents_table(agents))


@agents_cli.command("spawn")
def agents_spawn(
    skill: Annotated[list[str], typer.Option("--skill", "-s", help="A skill (repeatable).")],
    concurrency: Annotated[int | None, typer.Option("-c", help="Pool processes.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until it is READY.")] = True,
) -> None:
    """Ask the agent host to start a new agent with these skills."""
    config = {"concurrency": concurrency} if concurrency else {}
    agent_id = client.spawn_agent(skill, config)
    out.print(agent_id, highlight=False)
    if wait:
        agent = client.wait_for_agent(agent_id, timeout=90)
        out.print(f"{agent['state']} (pid {agent['pid']})", highlight=False)


@agents_cli.command("stop")
def agents_stop(agent_id: str) -> None:
    """Stop an agent gracefully (it ends TERMINATED)."""
    client.stop_agent(agent_id)
    out.print(f"stopping {agent_id}", highlight=False)


@cli.command()
def health(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(help="Refresh interval, seconds.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Agents, states, last heartbeats, breakers and recent recoveries."""
    from rich.console import Group
    from rich.live import Live

    def snapshot() -> dict[str, Any]:
        from hms_celery.store import repository

        events = [
            e
            for e in repository.audit_events(limit=200)
            if e["action"].startswith(("recovery.", "agent.", "task.requeued"))
        ]
        return {"agents": client.list_agents(), "recoveries": events[-15:]}

    def render(data: dict[str, Any]) -> Group:
        table = Table("at", "action", "subject", "details", title="recent recoveries")
        for e in data["recoveries"]:
            details = ", ".join(f"{k}={v}" for k, v in (e["details"] or {}).items())
            table.add_row(e["at"][11:19], e["action"], Text(e["subject"] or ""), Text(details))
        return Group(fold(_agents_table(data["agents"])), fold(table))

    if as_json:
        out.print_json(data=snapshot())
        return
    if not watch:
        out.print(render(snapshot()))
        return
    with Live(render(snapshot()), console=out, refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            live.update(render(snapshot()))


def _agents_table(agents: list[dict[str, Any]]) -> Table:
    now = datetime.now(UTC)
    table = Table("agent", "state", "skills", "pid", "heartbeat", "reason", title="agents")
    colors = {"READY": "green", "BUSY": "cyan", "DEGRADED": "yellow", "FAILED": "red"}
    for a in agents:
        beat = a["last_heartbeat_at"]
        age = "—"
        if beat:
            seen = datetime.fromisoformat(beat)
            age = f"{(now - seen).total_seconds():.1f}s ago"
        color = colors.get(a["state"], "dim")
        table.add_row(
            a["id"],
            f"[{color}]{a['state']}[/]",
            ",".join(a["skills"]),
            str(a["pid"] or "—"),
            age,
            Text(a["state_reason"] or ""),
        )
    return table
