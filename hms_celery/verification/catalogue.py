"""The claims catalogue: JSON files of claims (theorem id, statement, assumptions, variables…),
read claim by claim.

Claims are data, not Lean theorems, so false claims can be catalogued and checked.  A file is
either a JSON list of claims or an object holding the list under ``"theorems"`` (or
``"claims"``).  Files of earlier HMS repositories load unchanged: only ``theorem_id`` and
``formal_expression`` are required; ``variables`` (in any order: they are put in dependency
order), ``assumptions``, ``natural_language``, ``expected``, ``tags`` and ``family`` are
optional, the aliases of :data:`~.catalogue_entries.FIELD_ALIASES` are read when unambiguous,
and unknown fields (``context``, ``proof_outline``…) are kept in :attr:`Claim.extra`.

:func:`read_catalogue` gives one row per entry: a :class:`Claim` that parses and elaborates,
or a :class:`ClaimProblem` — verdict ERROR (malformed entry, syntax or type error) or
UNSUPPORTED (a type or construct outside HMS's fragment) with the file, the field, the
line:column inside it and the reason.  Only a file that cannot be read as such a list raises
:class:`~hms_celery.errors.CatalogueError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from hms_celery.errors import CatalogueError, InputError, StatementError, UnknownTheoremError
from hms_celery.verification.ast import Definition
from hms_celery.verification.catalogue_entries import (
    entry_claim,
    entry_problem,
    json_kind,
    read_entries,
)
from hms_celery.verification.claims import BadEntry, Catalogue, CatalogueRow, Claim, ClaimProblem
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.verdict import Verdict

_PART = re.compile(r"^(?:assumption (\d+)|type of variable («[^»]*»|\S+?)): ")
# Phrases of the elaborator for constructs Lean accepts but HMS's fragment does not.
_UNSUPPORTED_PHRASES = ("not supported", "unsupported", "does not support", "HMS does not")
_UNSUPPORTED_SUMS = "only `Finset.range n` and `Finset.univ` can be summed over"


def default_catalogue_path() -> Path:
    """The configured catalogue (``HMS_CATALOGUE``, default: the Moneyball claims)."""
    from hms_celery.settings import get_settings

    return get_settings().catalogue_path


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
    return entry_problem(
        raw, claim.index, claim.source, verdict, reason, field=where, line=line, column=column
    )


def _row(
    raw: Any, index: int, source: str, definitions: Mapping[str, Definition] | None
) -> CatalogueRow:
    """One entry → a checkable claim (it elaborates) or its problem row.  Never raises for the
    entry's content: input is hostile, and one bad entry must not stop the others."""
    if not isinstance(raw, dict):
        return entry_problem(raw, index, source, Verdict.ERROR,
                        f"entry is not a JSON object but a {json_kind(raw)}")  # fmt: skip
    try:
        claim, expr_key, asm_key = entry_claim(raw, index, source)
    except BadEntry as bad:
        return entry_problem(raw, index, source, Verdict.ERROR, bad.reason, field=bad.field)
    try:  # the request's own limits (id and statement lengths) hold for a catalogue claim too
        ProofRequest.build(
            theorem_id=claim.theorem_id,
            statement=claim.formal_expression,
            assumptions=claim.assumptions,
            variables=claim.variables or None,
        )
    except InputError as exc:
        reason = str(exc).removeprefix("invalid proof request: ")
        return entry_problem(raw, index, source, Verdict.ERROR, reason)
    try:
        claim.statement(definitions)
    except StatementError as exc:
        return _statement_problem(raw, claim, exc, expr_key, asm_key)
    except Exception as exc:  # a bug must not take the other claims down; say what happened
        reason = f"internal error reading the statement: {type(exc).__name__}: {exc}"
        return entry_problem(raw, index, source, Verdict.ERROR, reason, field=expr_key)
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
        rows.extend(_row(raw, i, str(f), definitions) for i, raw in enumerate(read_entries(f), 1))
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
