"""The rows of a claims catalogue: a :class:`Claim` to check, a :class:`ClaimProblem` that
cannot be checked (its own row), and the :class:`Catalogue` of both in file order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hms_celery.verification.ast import Definition, Statement
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.request import order_variables
from hms_celery.verification.verdict import Verdict


class BadEntry(Exception):
    """A problem of one entry (becomes its :class:`ClaimProblem` row)."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Claim:
    """One catalogue entry.  ``expected`` is the verdict the claim should get (``None``: not
    recorded); ``family`` defaults to the id's prefix before the first ``-``; ``source`` and
    ``index`` say where it was read (file, 1-based position in its list)."""

    theorem_id: str
    natural_language: str
    formal_expression: str
    assumptions: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict, hash=False)
    expected: Verdict | None = None
    tags: tuple[str, ...] = ()
    family: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    source: str = field(default="", compare=False)
    index: int = field(default=0, compare=False)

    def statement(self, definitions: Mapping[str, Definition] | None = None) -> Statement:
        """Parse and elaborate this claim (raises ``StatementError``); ``variables`` may be
        listed in any order."""
        return parse_statement(
            self.formal_expression,
            self.assumptions,
            order_variables(self.variables),
            definitions,
        )

    def to_json(self) -> dict[str, Any]:
        """The claim as a catalogue JSON object (unknown fields included)."""
        data: dict[str, Any] = {
            "theorem_id": self.theorem_id,
            "natural_language": self.natural_language,
            "formal_expression": self.formal_expression,
            "assumptions": list(self.assumptions),
            "variables": dict(self.variables),
            "expected": self.expected.value if self.expected else None,
            "tags": list(self.tags),
            "family": self.family,
        }
        data.update(self.extra)
        return data


@dataclass(frozen=True)
class ClaimProblem:
    """A catalogue entry that cannot be checked: its own row, never submitted.

    ``label`` is the theorem id, or ``#<index>`` when the entry has none; ``field`` is where
    the problem is (``formal_expression``, ``assumptions[2]`` — 0-based as in JSON —,
    ``variables.w``…; empty for the entry as a whole) and ``line``/``column`` the 1-based
    position inside that field's text (0: none).  ``expected`` is the entry's ``expected``
    text, upper-cased, when it has one."""

    label: str
    index: int
    source: str
    verdict: Verdict
    reason: str
    field: str = ""
    line: int = 0
    column: int = 0
    statement: str = ""
    expected: str | None = None
    theorem_id: str | None = None
    duplicate: bool = False

    @property
    def position(self) -> str:
        """``field line:column`` (the parts that are known)."""
        where = f"{self.line}:{self.column}" if self.line else ""
        return " ".join(p for p in (self.field, where) if p)

    @property
    def agrees(self) -> bool:
        """No ``expected``, or ``expected`` is this row's verdict."""
        return self.expected is None or self.expected == self.verdict.value

    def describe(self) -> str:
        """One line: file, entry, position and reason."""
        entry = f"claim {self.label!r}" if self.theorem_id else f"entry {self.label}"
        where = f"{self.position}: " if self.position else ""
        return f"{self.source}: {entry}: {where}{self.reason}"

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (the keys of a checked row of ``hms check --json``, and where)."""
        where = f"{self.position}: " if self.position else ""
        return {
            "theorem_id": self.label,
            "verdict": self.verdict.value,
            "expected": self.expected,
            "agrees": self.agrees,
            "bound": None,
            "counterexample": None,
            "reason": where + self.reason,
            "confirmed_by": None,
            "prover_s": None,
            "task_id": None,
            "file": self.source,
            "index": self.index,
            "field": self.field,
            "line": self.line,
            "column": self.column,
            "statement": self.statement,
            "duplicate": self.duplicate,
        }


CatalogueRow = Claim | ClaimProblem


@dataclass(frozen=True)
class Catalogue:
    """Every entry of a catalogue, in file order: claims to check and problem rows."""

    rows: tuple[CatalogueRow, ...]

    @property
    def claims(self) -> list[Claim]:
        """The entries that can be checked."""
        return [r for r in self.rows if isinstance(r, Claim)]

    @property
    def problems(self) -> list[ClaimProblem]:
        """The entries that cannot (ERROR / UNSUPPORTED rows)."""
        return [r for r in self.rows if isinstance(r, ClaimProblem)]
