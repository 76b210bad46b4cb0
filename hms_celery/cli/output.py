"""Where the ``hms`` commands print, and how tables look on a terminal and elsewhere.

On a terminal, Rich fits a table to its width, and a cell too long for its column is
folded onto the next line (never cut with ``…``).  Elsewhere — a pipe, a file, a test —
there is no width to fit: the consoles are as wide as any line, so ids, counterexamples,
statements and reasons appear whole, one row per line.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table

#: The width of a console that is not a terminal: wider than any line HMS prints.
UNLIMITED_WIDTH = 1_000_000


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): the terminal's width on a terminal, else unlimited."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        tty = False
    return Console(stderr=stderr, width=None if tty else UNLIMITED_WIDTH)


out = make_console()
err = make_console(stderr=True)


def fold(table: Table) -> Table:
    """Make every column of ``table`` fold a too-long cell instead of cutting it."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` whole (see the module docstring) on ``console`` (default: stdout)."""
    (console or out).print(fold(table))
