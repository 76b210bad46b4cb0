"""The ``hms`` command tree (Typer + Rich): every command and group, in the order ``--help``
lists them.  The commands live in one module per group; errors propagate to
:mod:`hms_celery.cli.main`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import metadata
from typing import Annotated

import typer

from hms_celery.cli.agents import agents_cli
from hms_celery.cli.approvals import approvals_cli
from hms_celery.cli.audit import audit_command
from hms_celery.cli.db import db_cli
from hms_celery.cli.ga import ga_cli, strategies_cli
from hms_celery.cli.health import health
from hms_celery.cli.metrics import metrics_cli
from hms_celery.cli.output import out
from hms_celery.cli.probe import ping, skills
from hms_celery.cli.proving import check, prove, prove_smt2, status, theorems
from hms_celery.cli.service import service_cli
from hms_celery.cli.up import demo, up
from hms_celery.policy.engine import check_policy

cli = typer.Typer(
    name="hms",
    help="HMS: prove, refute and check statements with self-healing Celery agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# `hms --help` lists the commands, then the groups, each in the order registered here.
COMMANDS: dict[str, Callable[..., None]] = {
    "audit": audit_command,
    "up": up,
    "demo": demo,
    "prove": prove,
    "prove-smt2": prove_smt2,
    "check": check,
    "status": status,
    "theorems": theorems,
    "ping": ping,
    "skills": skills,
    "health": health,
}
GROUPS: dict[str, typer.Typer] = {
    "db": db_cli,
    "ga": ga_cli,
    "strategies": strategies_cli,
    "metrics": metrics_cli,
    "service": service_cli,
    "approvals": approvals_cli,
    "agents": agents_cli,
}
for name, command in COMMANDS.items():
    cli.command(name)(command)
for name, group in GROUPS.items():
    cli.add_typer(group, name=name)


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
