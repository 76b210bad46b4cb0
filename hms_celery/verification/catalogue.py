"""The claims catalogue: JSON files of claims (theorem id, statement, assumptions, variables…),
read claim by claim.

Claims are data, not Lean theorems, so false claims can be catalogued and checked.  A file is
either a JSON list of claims or an object holding the list under ``"theorems"`` (or
``"claims"``).  Files of earlier HMS repositories load unchanged: only ``theorem_id`` and
``formal_expression`` are required; ``variables`` (in any order: they are put in dependency
order), ``assumptions``, ``natural_language``, ``expected``, ``tags`` and ``family`` are
optional, the aliases of :data:`FIELD_ALIASES` are read when unambiguous, and unknown fields
(``context``, ``proof_outline``…) are kept in :attr:`Claim.extra`.

:func:`read_catalogue` gives one row per entry: a :class:`Claim` that parses and elaborates,
or a :class:`ClaimProblem` — verdict ERROR (malformed entry, syntax or type error) or
UNSUPPORTED (a type or construct outside HMS's fragment) with the file, the field, the
line:column inside it and the reason.  Only a file that cannot be read as such a list raises
:class:`~hms_celery.errors.CatalogueError`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hms_celery.errors import CatalogueError, InputError, StatementError, UnknownTheoremError
from hms_celery.verification.ast import Definition, Statement
from hms_celery.verification.request import ProofRequest, order_variables
from hms_celery.verification.verdict import Verdict

#: Field names of earlier theorem repositories, after the canonical one.  The canonical name
#: wins when present; otherwise an alias is read only when the aliases present agree.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "theorem_id": ("id", "name"),
    "formal_expression": ("statement", "lean"),
    "assumptions": ("hypotheses",),
}
KNOWN_FIELDS = (
    "theorem_id", "natural_language", "formal_expression", "assumptions", "variables",
    "expected", "tags", "family",
)  # fmt: skip
LIST_KEYS = ("theorems", "claims")
_VAR_DECL = re.compile(r"^\s*\(?\s*([^:()]+?)\s*:\s*(.+?)\s*\)?\s*$")
# The elaborator prefixes errors in an assumption or a variable's type with the part.
_PART = re.compile(r"^(?:assumption (\d+)|type of variable («[^»]*»|\S+?)): ")
# Phrases of the elaborator for constructs Lean accepts but HMS's fragment does not.
_UNSUPPORTED_PHRASES = ("not supported", "unsupported", "does not support", "HMS does not")
_UNSUPPORTED_SUMS = "only `Finset.range n` and `Finset.univ` can be summed over"


class _Bad(Exception):
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
        from hms_celery.verification.frontend import parse_statement

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


def default_catalogue_path() -> Path:
    """The configured catalogue (``HMS_CATALOGUE``, default: the Moneyball claims)."""
    from hms_celery.settings import get_settings

    return get_settings().catalogue_path


# --------------------------------------------------------------------------- the file


def _entries(path: Path) -> list[Any]:
    """The raw entries of one file; ``CatalogueError`` (with JSON's line:column) if the file
    is not JSON or holds no list of claims."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise CatalogueError(f"{path}: not valid JSON: nested too deeply") from None
    if isinstance(data, dict):
        keys = [k for k in LIST_KEYS if k in data]
        if len(keys) > 1:
            raise CatalogueError(f"{path}: both 'theorems' and 'claims' given; keep one list")
        if not keys or not isinstance(data[keys[0]], list):
            found = ", ".join(repr(k) for k in list(data)[:5]) or "none"
            raise CatalogueError(
                f"{path}: expected a list of claims or an object with a 'theorems' list "
                f"(the object's keys: {found})"
            )
        return data[keys[0]]
    if not isinstance(data, list):
        raise CatalogueError(
            f"{path}: expected a list of claims or an object with a 'theorems' list, "
            f"not a JSON {_json_kind(data)}"
        )
    return data


def _json_kind(value: Any) -> str:
    kinds = {str: "string", bool: "boolean", int: "number", float: "number", list: "list"}
    return "null" if value is None else kinds.get(type(value), "object")


# --------------------------------------------------------------------------- one entry


def _field(raw: dict[str, Any], name: str) -> tuple[str, Any]:
    """The key used for field ``name`` and its value (``(name, None)`` when absent)."""
    if name in raw:
        return name, raw[name]
    present = [a for a in FIELD_ALIASES.get(name, ()) if a in raw]
    if not present:
        return name, None
    if any(raw[a] != raw[present[0]] for a in present[1:]):
        given = " and ".join(f"{a!r}" for a in present)
        raise _Bad(f"{given} are both given and differ; name the one meant {name!r}", name)
    return present[0], raw[present[0]]


def _text(raw: dict[str, Any], name: str) -> tuple[str, str]:
    key, value = _field(raw, name)
    if value is None:
        aliases = ", ".join(repr(a) for a in FIELD_ALIASES.get(name, ()))
        raise _Bad(
            f"missing required field {name!r}" + (f" (or {aliases})" if aliases else ""), key
        )
    if not isinstance(value, str):
        raise _Bad(f"{key!r} must be a string, not a JSON {_json_kind(value)}", key)
    if not value.strip():
        raise _Bad(f"{key!r} is empty", key)
    return key, value


def _string_tuple(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise _Bad(f"{key!r} must be a list of strings, not a JSON {_json_kind(value)}", key)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise _Bad(f"must be a string, not a JSON {_json_kind(v)}", f"{key}[{i}]")
    return tuple(value)


def _variables(value: Any) -> dict[str, str]:
    """``{"x": "ℝ"}``, or a list of declarations ``["x y : ℝ", "(n : ℕ)"]``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(v, str):
                raise _Bad(
                    f"the type must be a string, not a JSON {_json_kind(v)}", f"variables.{k}"
                )
        return dict(value)
    if isinstance(value, list):
        out: dict[str, str] = {}
        for i, decl in enumerate(value):
            m = _VAR_DECL.match(decl) if isinstance(decl, str) else None
            if not m:
                raise _Bad(f"declaration {decl!r} is not 'name : type'", f"variables[{i}]")
            for name in m.group(1).split():
                out[name] = m.group(2)
        return out
    raise _Bad(
        f"'variables' must be an object {{name: type}}, not a JSON {_json_kind(value)}",
        "variables",
    )


def _expected(raw: dict[str, Any]) -> Verdict | None:
    value = raw.get("expected")
    if value is None:
        return None
    try:
        return Verdict(str(value).upper())
    except ValueError:
        names = ", ".join(v.value for v in Verdict)
        raise _Bad(f"unknown expected verdict {value!r} (one of {names})", "expected") from None


def _claim(raw: dict[str, Any], index: int, source: str) -> tuple[Claim, str, str]:
    """The claim of an entry, and the keys its statement and assumptions were read from."""
    id_key, cid = _text(raw, "theorem_id")
    expr_key, expr = _text(raw, "formal_expression")
    asm_key, assumptions = _field(raw, "assumptions")
    used = {id_key, expr_key, asm_key}  # an alias read is no unknown field
    family = raw.get("family") or cid.split("-", 1)[0]
    claim = Claim(
        theorem_id=cid,
        natural_language=str(raw.get("natural_language") or ""),
        formal_expression=expr,
        assumptions=_string_tuple(assumptions, asm_key),
        variables=_variables(raw.get("variables")),
        expected=_expected(raw),
        tags=_string_tuple(raw.get("tags"), "tags"),
        family=str(family),
        extra={k: v for k, v in raw.items() if k not in KNOWN_FIELDS and k not in used},
        source=source,
        index=index,
    )
    return claim, expr_key, asm_key


def _problem(
    raw: Any, index: int, source: str, verdict: Verdict, reason: str, **where: Any
) -> ClaimProblem:
    """The problem row of entry ``raw``: labelled by its id when it has a readable one."""
    cid, statement, expected = (
        _readable(raw, "theorem_id"),
        _readable(raw, "formal_expression"),
        None,
    )
    if isinstance(raw, dict) and raw.get("expected") is not None:
        expected = str(raw["expected"]).upper()
    return ClaimProblem(
        label=cid or f"#{index}",
        index=index,
        source=source,
        verdict=verdict,
        reason=reason,
        statement=statement or "",
        expected=expected,
        theorem_id=cid,
        **where,
    )


def _readable(raw: Any, name: str) -> str | None:
    """Field ``name`` of ``raw`` if it is a non-empty string (else None, never raises)."""
    try:
        value = _field(raw, name)[1] if isinstance(raw, dict) else None
    except _Bad:
        return None
    return value if isinstance(value, str) and value.strip() else None


def classify(exc: StatementError) -> Verdict:
    """UNSUPPORTED for a statement outside HMS's fragment — a type name HMS does not have
    (``ℂ``, ``Set ℝ``, ``List ℕ``, ``Matrix …``: the parser meets an identifier where it
    expects a type) or a construct the elaborator refuses as unsupported — else ERROR."""
    message = _PART.sub("", exc.message, count=1)
    if message.startswith("unexpected identifier") and "'Fin'" in exc.expected:
        return Verdict.UNSUPPORTED
    if message.startswith(_UNSUPPORTED_SUMS) or any(p in message for p in _UNSUPPORTED_PHRASES):
        return Verdict.UNSUPPORTED
    return Verdict.ERROR


def _statement_problem(
    raw: dict[str, Any], claim: Claim, exc: StatementError, expr_key: str, asm_key: str
) -> ClaimProblem:
    """The row of a claim whose statement, assumption or variable type does not elaborate."""
    message = exc.message
    m = _PART.match(message)
    if m and m.group(1):
        where = f"{asm_key}[{int(m.group(1)) - 1}]"  # the elaborator counts from 1
    elif m:
        where = f"variables.{m.group(2)}"
    elif message.startswith("variable name "):
        where = "variables"
    else:
        where = expr_key
    reason = message[m.end() :] if m else message
    line, column = (exc.line, exc.column) if where != "variables" else (0, 0)
    verdict = classify(exc)
    if verdict is Verdict.UNSUPPORTED and reason.startswith("unexpected identifier"):
        reason += " — not a type HMS has (ℝ ℚ ℤ ℕ, Fin n, and functions between them)"
    return _problem(
        raw, claim.index, claim.source, verdict, reason, field=where, line=line, column=column
    )


def _row(
    raw: Any, index: int, source: str, definitions: Mapping[str, Definition] | None
) -> CatalogueRow:
    """One entry → a checkable claim (it elaborates) or its problem row.  Never raises for the
    entry's content: input is hostile, and one bad entry must not stop the others."""
    if not isinstance(raw, dict):
        return _problem(raw, index, source, Verdict.ERROR,
                        f"entry is not a JSON object but a {_json_kind(raw)}")  # fmt: skip
    try:
        claim, expr_key, asm_key = _claim(raw, index, source)
    except _Bad as bad:
        return _problem(raw, index, source, Verdict.ERROR, bad.reason, field=bad.field)
    try:  # the request's own limits (id and statement lengths) hold for a catalogue claim too
        ProofRequest.build(
            theorem_id=claim.theorem_id,
            statement=claim.formal_expression,
            assumptions=claim.assumptions,
            variables=claim.variables or None,
        )
    except InputError as exc:
        reason = str(exc).removeprefix("invalid proof request: ")
        return _problem(raw, index, source, Verdict.ERROR, reason)
    try:
        claim.statement(definitions)
    except StatementError as exc:
        return _statement_problem(raw, claim, exc, expr_key, asm_key)
    except Exception as exc:  # a bug must not take the other claims down; say what happened
        reason = f"internal error reading the statement: {type(exc).__name__}: {exc}"
        return _problem(raw, index, source, Verdict.ERROR, reason, field=expr_key)
    return claim


def _mark_duplicates(rows: list[CatalogueRow]) -> list[CatalogueRow]:
    """Every entry whose theorem id another entry also has becomes an ERROR row naming the
    others: the id no longer names one claim, and HMS does not guess which one is meant."""
    where: dict[str, list[CatalogueRow]] = {}
    for r in rows:
        cid = r.theorem_id
        if cid is not None:
            where.setdefault(cid, []).append(r)
    out: list[CatalogueRow] = []
    for r in rows:
        same = where.get(r.theorem_id or "", [])
        if len(same) < 2:
            out.append(r)
            continue
        others = ", ".join(f"#{o.index} in {o.source}" for o in same if o is not r)
        reason = f"duplicate theorem id (also {others})"
        if isinstance(r, ClaimProblem):
            reason = f"{reason}; {r.position + ': ' if r.position else ''}{r.reason}"
            out.append(replace(r, reason=reason, duplicate=True, field="", line=0, column=0))
        else:
            out.append(
                ClaimProblem(
                    label=r.theorem_id,
                    index=r.index,
                    source=r.source,
                    verdict=Verdict.ERROR,
                    reason=reason,
                    field="theorem_id",
                    statement=r.formal_expression,
                    expected=r.expected.value if r.expected else None,
                    theorem_id=r.theorem_id,
                    duplicate=True,
                )
            )
    return out


def _files(root: Path) -> list[Path]:
    if root.is_dir():
        return sorted(root.glob("*.json"))
    if root.exists():
        return [root]
    raise CatalogueError(f"{root}: catalogue not found")


def read_catalogue(
    path: str | Path | None = None, *, definitions: Mapping[str, Definition] | None = None
) -> Catalogue:
    """Every entry of ``path`` (a JSON file, or a directory of them; default: the Moneyball
    catalogue), in order, each a :class:`Claim` that elaborates (against ``definitions``;
    default: the Lean workspace's) or a :class:`ClaimProblem` row.

    Raises ``CatalogueError`` only when a file itself is unreadable (missing, not JSON —
    with JSON's line:column —, or no list of claims) or the workspace's definitions are."""
    root = Path(path) if path is not None else default_catalogue_path()
    files = _files(root)
    if definitions is None:
        from hms_celery.verification.definitions import load_definitions

        # Loaded first, outside the per-claim errors: a broken workspace is no claim's fault.
        # (The claims then use parse_statement's cache of the default workspace.)
        load_definitions()
    rows: list[CatalogueRow] = []
    for f in files:
        rows.extend(_row(raw, i, str(f), definitions) for i, raw in enumerate(_entries(f), 1))
    return Catalogue(tuple(_mark_duplicates(rows)))


def load_catalogue(path: str | Path | None = None, *, strict: bool = False) -> list[Claim]:
    """The claims of ``path`` that can be checked (see :func:`read_catalogue`, which also
    gives the others as rows).  ``strict``: raise ``CatalogueError`` listing every entry that
    cannot be checked instead of leaving it out."""
    catalogue = read_catalogue(path)
    if strict and catalogue.problems:
        raise CatalogueError("\n".join(p.describe() for p in catalogue.problems))
    return catalogue.claims


def find_claim(theorem_id: str, path: str | Path | None = None) -> Claim:
    """The claim with this id; ``UnknownTheoremError`` (with close matches) if there is none,
    ``CatalogueError`` (with its reason) if its entry cannot be checked."""
    catalogue = read_catalogue(path)
    for row in catalogue.rows:
        if row.theorem_id == theorem_id:
            if isinstance(row, ClaimProblem):
                raise CatalogueError(row.describe())
            return row
    ids = [r.theorem_id for r in catalogue.rows if r.theorem_id]
    close = difflib.get_close_matches(theorem_id, ids, n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    where = path if path is not None else default_catalogue_path()
    raise UnknownTheoremError(f"unknown theorem id {theorem_id!r} in {where}{hint}")
