"""Typed errors shared by every layer; each maps to one CLI exit code."""

from __future__ import annotations


class HMSError(Exception):
    """Base class of HMS errors. ``exit_code`` is what the ``hms`` CLI exits with."""

    exit_code = 1


class InputError(HMSError):
    """The user's input is wrong (statement, theorem id, setting, file). Exit code 2."""

    exit_code = 2


class StatementError(InputError):
    """A statement does not parse or does not type-check.

    ``line`` and ``column`` are 1-based positions in the statement text; ``expected`` lists
    what the parser would have accepted there (empty for type errors).
    """

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        column: int = 0,
        expected: tuple[str, ...] = (),
        source: str = "",
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.expected = tuple(expected)
        self.source = source
        where = f"{line}:{column}: " if line else ""
        super().__init__(f"{where}{message}")

    def to_json(self) -> dict[str, object]:
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "expected": list(self.expected),
        }


class UnknownTheoremError(InputError):
    """A theorem id is not in the catalogue."""


class CatalogueError(InputError):
    """A catalogue file is missing or malformed."""


class SettingsError(InputError):
    """A setting has a wrong value; the message names the ``HMS_`` variable."""


class InfrastructureError(HMSError):
    """The broker or the database cannot be reached. Exit code 3; ``url`` is what failed."""

    exit_code = 3
    #: How the CLI introduces the message.
    label = "unreachable"

    def __init__(self, message: str, *, url: str = "") -> None:
        self.url = url
        super().__init__(message)


class StoreNotMigratedError(InfrastructureError):
    """The store answers but has no HMS schema (never migrated). Exit code 3."""

    label = "store not ready"


class TaskFailedError(HMSError):
    """A task ended without a verdict (the worker reported an error)."""
