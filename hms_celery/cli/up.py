"""``hms up`` and ``hms demo``: run the embedded stack (and check a catalogue on it)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from hms_celery.cli.options import JsonOpt
from hms_celery.cli.output import err, out
from hms_celery.cli.proving import check_entries
from hms_celery.cli.stack import EmbeddedStack
from hms_celery.verification.catalogue import read_catalogue


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
        code = check_entries(entries, as_json)
    raise typer.Exit(code)
