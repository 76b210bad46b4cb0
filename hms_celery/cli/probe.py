"""``hms ping`` and ``hms skills``: what the stack answers, and what its agents can do."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from hms_celery import client
from hms_celery.cli.options import JsonOpt
from hms_celery.cli.output import err, out, print_table
from hms_celery.runtime.skills import skill_info, skill_load_errors


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


def skills(as_json: JsonOpt = False) -> None:
    """List the skills (entry points ``hms_celery.skills``), their queues and tasks."""
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
