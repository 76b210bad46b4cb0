"""Entry point of the ``hms`` console script: maps every HMS error to its exit code.

0 success · 1 a claim disagreed with its expected verdict · 2 bad input (a usage error
too: unknown command or option, missing argument, bad option value) · 3 infrastructure
unreachable (the message names the URL).  Imports are lazy so that a wrong setting, which
fails while the Celery app is configured, is reported like any other input error.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape

from hms_celery.cli.output import make_console

# Typer ≥ 0.20 bundles its own copy of Click (``typer._click``) and raises that copy's
# exceptions, which ``click.ClickException`` (the separately installed Click) never matches;
# older Typer raises the click package's.  Catch the classes of the Click that Typer uses.
try:
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - Typer before the bundled Click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]  # same API, older home

#: What a group raises when called bare (Click ≥ 8.2); it would print the whole help on
#: stdout — a usage error prints the short usage on stderr instead.
_NO_ARGS = getattr(click_exceptions, "NoArgsIsHelpError", None)

EXIT_OK, EXIT_DISAGREED, EXIT_INPUT, EXIT_INFRA = 0, 1, 2, 3
EXIT_ABORTED, EXIT_INTERRUPTED = 1, 130


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and exit with its code."""
    sys.exit(main(argv))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting."""
    err = make_console(stderr=True)
    from hms_celery.errors import HMSError, InfrastructureError, StatementError

    args = list(sys.argv[1:] if argv is None else argv)
    command = None
    try:
        from hms_celery.cli.commands import cli

        command = _short_usage_when_bare(typer.main.get_command(cli))
        result = command.main(args=args, prog_name="hms", standalone_mode=False)
        return int(result or 0)
    except typer.Exit as exc:  # raised outside Click's own handling (e.g. while importing)
        return exc.exit_code
    except click_exceptions.ClickException as exc:
        # Usage errors (a bare `hms` / `hms ga` too) print Click's short usage message on
        # stderr; every kind is bad input, a file Click could not open (FileError) included.
        if _NO_ARGS is not None and isinstance(exc, _NO_ARGS):  # bare `hms`, `hms ga`
            exc = click_exceptions.UsageError("Missing command.", exc.ctx)
        if isinstance(exc, click_exceptions.UsageError) and exc.ctx is None and command:
            exc.ctx = _usage_context(command, args)  # the parser raises some without one
            exc.cmd = exc.ctx.command
        exc.show()
        if isinstance(exc, click_exceptions.UsageError | click_exceptions.FileError):
            return EXIT_INPUT
        return exc.exit_code or EXIT_INPUT
    except typer.Abort:
        err.print("aborted", style="red", highlight=False)
        return EXIT_ABORTED
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]")
        return EXIT_INTERRUPTED
    except StatementError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        if exc.source and exc.line:
            lines = exc.source.splitlines()
            if 0 < exc.line <= len(lines):
                err.print(f"  {lines[exc.line - 1]}", markup=False, highlight=False)
                err.print("  " + " " * max(exc.column - 1, 0) + "^", markup=False)
        return exc.exit_code
    except InfrastructureError as exc:
        where = f" ({exc.url})" if exc.url and exc.url not in str(exc) else ""
        err.print(f"[red]{exc.label}:[/red] {escape(str(exc) + where)}", highlight=False)
        return exc.exit_code
    except TimeoutError as exc:  # waited for the agents longer than the budget
        err.print(f"[red]timed out:[/red] {escape(str(exc))}", highlight=False)
        return EXIT_INFRA
    except HMSError as exc:  # user text in a message is never Rich markup
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return exc.exit_code


def _short_usage_when_bare(command: Any) -> Any:
    """Make every group called bare (`hms`, `hms ga`) a usage error ("Missing command.")
    instead of printing its whole help on stdout; returns ``command``."""
    if getattr(command, "commands", None) is not None:
        command.no_args_is_help = False
        for sub in command.commands.values():
            _short_usage_when_bare(sub)
    return command


def _usage_context(command: Any, args: list[str]) -> Any:
    """The context of the (sub)command ``args`` name, for a usage message: Click's option
    parser raises some usage errors (an option without its value) before it has one."""
    ctx = command.context_class(command, info_name="hms")
    for token in args:
        get_command = getattr(ctx.command, "get_command", None)
        if get_command is None:  # a command, not a group: the usage is its own
            break
        sub = get_command(ctx, token)
        if sub is not None:
            ctx = sub.context_class(sub, info_name=token, parent=ctx)
    return ctx


if __name__ == "__main__":
    run()
