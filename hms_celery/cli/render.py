"""How the ``hms`` commands show tasks, verdicts, proofs, races, claims and agents (Rich)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from hms_celery.cli.output import err, out, print_table
from hms_celery.store.records import AttemptView, TaskStatusView
from hms_celery.verification.catalogue import ClaimProblem
from hms_celery.verification.verdict import Verdict


def confirmation_mark(status: dict[str, Any]) -> str:
    """`` ✓cvc5`` after a confirmed PROVED, `` (cvc5: unconfirmed (timeout))`` otherwise."""
    confirmed = status.get("confirmed_by")
    if status.get("verdict") != Verdict.PROVED.value or not confirmed:
        return ""
    if confirmed.get("status") == "confirmed":
        return f" ✓{confirmed['solver']}"
    return f" ({confirmed['solver']}: {confirmed.get('status')})"


def confirmation_line(confirmed: dict[str, Any]) -> str:
    """The line under a PROVED verdict: which solver confirmed it (or did not), how fast."""
    solver = f"{confirmed['solver']} {confirmed.get('version') or ''}".strip()
    seconds = confirmed.get("seconds")
    took = f" in {seconds:.3f}s" if isinstance(seconds, int | float) else ""
    if confirmed.get("status") == "confirmed":
        return f"confirmed by {solver}{took}"
    return f"{confirmed.get('status')} by {solver}{took}"


def print_status(status: TaskStatusView) -> None:
    """A task's verdict, reason, confirmation, proof, counterexample, race and timing."""
    verdict = status["verdict"] or status["state"]
    color = {"PROVED": "green", "REFUTED": "red", "BOUNDED": "yellow"}.get(verdict, "magenta")
    line = f"[bold {color}]{verdict}[/]"
    if status["bound"] is not None:
        line += f" (checked every size ≤ {status['bound']})"
    out.print(line)
    if status["reason"]:
        out.print(status["reason"], highlight=False)
    if confirmed_by := status["confirmed_by"]:
        out.print(confirmation_line(confirmed_by), highlight=False)
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


def print_timings(status: TaskStatusView) -> None:
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


def print_attempts(attempts: Sequence[AttemptView]) -> None:
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


def race_mark(status: dict[str, Any]) -> str:
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


def format_cex(cex: dict[str, Any] | None) -> str:
    """A counterexample on one line: ``x=1, w=[2, 3]`` ("" if none)."""
    if not cex:
        return ""
    return ", ".join(f"{k}={_format_value(v)}" for k, v in cex.items())


def proof_note(proof: dict[str, Any] | None) -> str:
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


def problem_note(problem: ClaimProblem, *, statement: bool = True) -> Text:
    """The note of an entry that was not checked: where and why, and (``statement``) its
    statement's first line (plain text: a reason or statement with ``[…]`` is not Rich
    markup)."""
    where = f"{problem.position}: " if problem.position else ""
    lines = [f"{where}{problem.reason}", f"in {problem.source}, entry #{problem.index}"]
    if statement and problem.statement.strip():
        lines.append(f"statement: {first_line(problem.statement)}")
    return Text("\n".join(lines))


def first_line(text: str) -> Text:
    """The first line of a statement, `` …`` when it has more (plain text, never markup)."""
    lines = text.strip().splitlines()
    if not lines:
        return Text("—")
    return Text(lines[0] + (" …" if len(lines) > 1 else ""))


def agreement(expected: str | None, ok: bool) -> Text:
    """The row's agreement in words, so a disagreement shows without colour too."""
    if ok:
        return Text("yes" if expected else "—", style="green")  # ✓ marks a confirmation
    return Text("✗ DISAGREES", style="bold red")


def agents_table(agents: list[dict[str, Any]]) -> Table:
    """One row per agent: id, state, skills, pid, heartbeat age, state reason."""
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
