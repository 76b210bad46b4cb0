"""Options several ``hms`` commands share (``--json``, ``--race``)."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RaceOpt = Annotated[
    bool,
    typer.Option(
        "--race",
        help="Race Z3 strategies and cvc5 on their agents; the first decisive verdict wins.",
    ),
]
