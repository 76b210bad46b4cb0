"""``hms agents``: list, spawn and stop agents."""

from __future__ import annotations

from typing import Annotated

import typer

from hms_celery import client
from hms_celery.cli.options import JsonOpt
from hms_celery.cli.output import out, print_table
from hms_celery.cli.render import agents_table

agents_cli = typer.Typer(help="Agents: list, spawn, stop.", invoke_without_command=True)


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
    print_table(agents_table(agents))


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
