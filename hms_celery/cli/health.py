"""``hms health``: agents, their states and heartbeats, recent recoveries (live: --watch)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hms_celery import client
from hms_celery.cli.options import JsonOpt
from hms_celery.cli.output import fold, out
from hms_celery.cli.render import agents_table


def health(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(help="Refresh interval, seconds.")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Agents, states, last heartbeats, breakers and recent recoveries."""

    def snapshot() -> dict[str, Any]:
        events = [
            e
            for e in client.audit_log(limit=200)
            if e["action"].startswith(("recovery.", "agent.", "task.requeued"))
        ]
        return {"agents": client.list_agents(), "recoveries": events[-15:]}

    def render(data: dict[str, Any]) -> Group:
        table = Table("at", "action", "subject", "details", title="recent recoveries")
        for e in data["recoveries"]:
            details = ", ".join(f"{k}={v}" for k, v in (e["details"] or {}).items())
            table.add_row(e["at"][11:19], e["action"], Text(e["subject"] or ""), Text(details))
        return Group(fold(agents_table(data["agents"])), fold(table))

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
