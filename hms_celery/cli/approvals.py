"""``hms approvals``: the agent actions a policy rule parked, and a person's decision on them.

``hms approvals`` lists the pending ones (``--all``: every approval with its outcome);
``hms approvals approve ID`` lets the next supervisor sweep carry the action out;
``hms approvals deny ID`` drops it.  Both are audited with the person's name (``cli:<user>``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hms_celery.cli.options import JsonOpt
from hms_celery.cli.output import out, print_table
from hms_celery.policy import approvals
from hms_celery.policy.engine import check_policy

approvals_cli = typer.Typer(
    help="Agent actions waiting for a person: list, approve, deny.", invoke_without_command=True
)

IdArg = Annotated[int, typer.Argument(help="The approval's id (from `hms approvals`).")]


@approvals_cli.callback()
def approvals_list(
    ctx: typer.Context,
    every: Annotated[
        bool, typer.Option("--all", help="Every approval, decided or not, with its outcome.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the pending approvals (without a subcommand)."""
    check_policy()  # a broken rules file is reported here too, naming the file and the rule
    if ctx.invoked_subcommand is not None:
        return
    rows = approvals.listing(include_all=every)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        out.print("no pending approvals" if not every else "no approvals")
        return
    print_table(_table(rows))


@approvals_cli.command("approve")
def approvals_approve(approval_id: IdArg, as_json: JsonOpt = False) -> None:
    """Approve a pending action: the next supervisor sweep carries it out."""
    row = approvals.approve(approval_id)
    _done(row, as_json, f"approved {_what(row)}: the supervisor carries it out at its next sweep")


@approvals_cli.command("deny")
def approvals_deny(approval_id: IdArg, as_json: JsonOpt = False) -> None:
    """Deny a pending action: it is dropped."""
    row = approvals.deny(approval_id)
    _done(row, as_json, f"denied {_what(row)}: dropped")


def _done(row: dict[str, Any], as_json: bool, message: str) -> None:
    if as_json:
        out.print_json(json.dumps(row, default=str))
    else:
        out.print(Text(f"approval {row['id']}: {message}"))


def _what(row: dict[str, Any]) -> str:
    return f"{row['kind']} of {row['subject']}"


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="approvals")
    for name in ("id", "action", "subject", "status", "rule", "asked by", "asked", "expires"):
        table.add_column(name, overflow="fold")
    table.add_column("why / outcome", overflow="fold")
    for row in rows:
        note = row.get("result") or row.get("reason") or ""
        if row.get("decided_by"):
            note = f"{note} (decided by {row['decided_by']})".strip()
        table.add_row(
            str(row["id"]),
            row["kind"],
            Text(row["subject"]),
            row["status"],
            Text(row["rule"]),
            Text(row["actor"]),
            _short(row["created_at"]),
            _short(row["expires_at"]),
            Text(note),
        )
    return table


def _short(value: str | None) -> str:
    return value[:19].replace("T", " ") + " UTC" if value else "—"
