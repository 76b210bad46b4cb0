"""Entry point of the ``hms`` console script: maps every HMS error to its exit code.

0 success · 1 a claim disagreed with its expected verdict · 2 bad input · 3 infrastructure
unreachable (the message names the URL).  Imports are lazy so that a wrong setting, which
fails while the Celery app is configured, is reported like any other input error.
"""

from __future__ import annotations

import sys

import click
from rich.console import Console

EXIT_OK, EXIT_DISAGREED, EXIT_INPUT, EXIT_INFRA = 0, 1, 2, 3


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and exit with its code."""
    sys.exit(main(argv))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting."""
    err = Console(stderr=True)
    from hms_celery.errors import HMSError, InfrastructureError, StatementError

    try:
        import typer

        from hms_celery.cli.commands import cli

        command = typer.main.get_command(cli)
        result = command.main(args=argv, prog_name="hms", standalone_mode=False)
        return int(result or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_INPUT if isinstance(exc, click.UsageError) else exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        err.print("[red]interrupted[/red]")
        return 130
    except StatementError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        if exc.source and exc.line:
            lines = exc.source.splitlines()
            if 0 < exc.line <= len(lines):
                err.print(f"  {lines[exc.line - 1]}", markup=False, highlight=False)
                err.print("  " + " " * max(exc.column - 1, 0) + "^", markup=False)
        return exc.exit_code
    except InfrastructureError as exc:
        where = f" ({exc.url})" if exc.url and exc.url not in str(exc) else ""
        err.print(f"[red]unreachable:[/red] {exc}{where}", highlight=False)
        return exc.exit_code
    except HMSError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return exc.exit_code


if __name__ == "__main__":
    run()
