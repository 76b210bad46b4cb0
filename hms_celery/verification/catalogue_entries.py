"""Reading a catalogue file: its JSON list of entries, and each entry's fields (aliases of
earlier repositories, variables in any form) as a :class:`~.claims.Claim` or the problem that
stops it (:class:`~.claims.BadEntry`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hms_celery.errors import CatalogueError
from hms_celery.verification.claims import BadEntry, Claim, ClaimProblem
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


# --------------------------------------------------------------------------- the file


def read_entries(path: Path) -> list[Any]:
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
            f"not a JSON {json_kind(data)}"
        )
    return data


def json_kind(value: Any) -> str:
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
        raise BadEntry(f"{given} are both given and differ; name the one meant {name!r}", name)
    return present[0], raw[present[0]]


def _text(raw: dict[str, Any], name: str) -> tuple[str, str]:
    key, value = _field(raw, name)
    if value is None:
        aliases = ", ".join(repr(a) for a in FIELD_ALIASES.get(name, ()))
        raise BadEntry(
            f"missing required field {name!r}" + (f" (or {aliases})" if aliases else ""), key
        )
    if not isinstance(value, str):
        raise BadEntry(f"{key!r} must be a string, not a JSON {json_kind(value)}", key)
    if not value.strip():
        raise BadEntry(f"{key!r} is empty", key)
    return key, value


def _string_tuple(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise BadEntry(f"{key!r} must be a list of strings, not a JSON {json_kind(value)}", key)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise BadEntry(f"must be a string, not a JSON {json_kind(v)}", f"{key}[{i}]")
    return tuple(value)


def _variables(value: Any) -> dict[str, str]:
    """``{"x": "ℝ"}``, or a list of declarations ``["x y : ℝ", "(n : ℕ)"]``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(v, str):
                raise BadEntry(
                    f"the type must be a string, not a JSON {json_kind(v)}", f"variables.{k}"
                )
        return dict(value)
    if isinstance(value, list):
        out: dict[str, str] = {}
        for i, decl in enumerate(value):
            m = _VAR_DECL.match(decl) if isinstance(decl, str) else None
            if not m:
                raise BadEntry(f"declaration {decl!r} is not 'name : type'", f"variables[{i}]")
            for name in m.group(1).split():
                out[name] = m.group(2)
        return out
    raise BadEntry(
        f"'variables' must be an object {{name: type}}, not a JSON {json_kind(value)}",
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
        raise BadEntry(f"unknown expected verdict {value!r} (one of {names})", "expected") from None


def entry_claim(raw: dict[str, Any], index: int, source: str) -> tuple[Claim, str, str]:
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


def entry_problem(
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
    except BadEntry:
        return None
    return value if isinstance(value, str) and value.strip() else None
