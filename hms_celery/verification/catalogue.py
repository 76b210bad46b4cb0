"""The claims catalogue: JSON files of claims (theorem id, statement, assumptions, variables…).

Claims are data, not Lean theorems, so false claims can be catalogued and checked.  A file is
either a JSON list of claims or an object ``{"claims": [...]}`` / ``{"theorems": [...]}``.  Files
of earlier HMS repositories load unchanged: only ``theorem_id`` and ``formal_expression`` are
required; ``variables``, ``assumptions``, ``natural_language``, ``expected``, ``tags`` and
``family`` are optional, and unknown fields (``context``, ``proof_outline``…) are kept in
:attr:`Claim.extra`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hms_celery.errors import CatalogueError, UnknownTheoremError
from hms_celery.verification.ast import Definition, Statement
from hms_celery.verification.verdict import Verdict

KNOWN_FIELDS = (
    "theorem_id", "natural_language", "formal_expression", "assumptions", "variables",
    "expected", "tags", "family",
)  # fmt: skip
REQUIRED_FIELDS = ("theorem_id", "formal_expression")
_VAR_DECL = re.compile(r"^\s*\(?\s*([^:()]+?)\s*:\s*(.+?)\s*\)?\s*$")


@dataclass(frozen=True)
class Claim:
    """One catalogue entry.  ``expected`` is the verdict the claim should get (``None``: not
    recorded); ``family`` defaults to the id's prefix before the first ``-``."""

    theorem_id: str
    natural_language: str
    formal_expression: str
    assumptions: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict, hash=False)
    expected: Verdict | None = None
    tags: tuple[str, ...] = ()
    family: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def statement(self, definitions: Mapping[str, Definition] | None = None) -> Statement:
        """Parse and elaborate this claim (raises ``StatementError``)."""
        from hms_celery.verification.parser import parse_statement

        return parse_statement(
            self.formal_expression, self.assumptions, self.variables, definitions
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


def default_catalogue_path() -> Path:
    """The configured catalogue (``HMS_CATALOGUE``, default: the Moneyball claims)."""
    from hms_celery.settings import get_settings

    return get_settings().catalogue_path


def _fail(path: Path, message: str, claim: str | None = None) -> CatalogueError:
    where = f"{path}: claim {claim!r}: " if claim else f"{path}: "
    return CatalogueError(where + message)


def _string_tuple(value: Any, name: str, path: Path, cid: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"'{name}' must be a list of strings", cid)
    return tuple(value)


def _variables(value: Any, path: Path, cid: str) -> dict[str, str]:
    """``{"x": "ℝ"}``, or a list of declarations ``["x y : ℝ", "(n : ℕ)"]``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise _fail(path, "'variables' must map names to type strings", cid)
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        out: dict[str, str] = {}
        for decl in value:
            m = _VAR_DECL.match(decl)
            if not m:
                raise _fail(path, f"variable declaration {decl!r} is not 'name : type'", cid)
            for name in m.group(1).split():
                out[name] = m.group(2)
        return out
    raise _fail(path, "'variables' must be an object {name: type}", cid)


def _claim(raw: Any, index: int, path: Path) -> Claim:
    if not isinstance(raw, dict):
        raise _fail(path, f"entry {index} is not a JSON object")
    cid = raw.get("theorem_id")
    label = cid if isinstance(cid, str) else f"#{index}"
    for name in REQUIRED_FIELDS:
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise _fail(path, f"missing or empty required field '{name}'", label)
    assert isinstance(cid, str)
    expected = raw.get("expected")
    verdict = None
    if expected is not None:
        try:
            verdict = Verdict(str(expected).upper())
        except ValueError:
            names = ", ".join(v.value for v in Verdict)
            raise _fail(
                path, f"unknown expected verdict {expected!r} (one of {names})", cid
            ) from None
    family = raw.get("family") or cid.split("-", 1)[0]
    return Claim(
        theorem_id=cid,
        natural_language=str(raw.get("natural_language") or ""),
        formal_expression=raw["formal_expression"],
        assumptions=_string_tuple(raw.get("assumptions"), "assumptions", path, cid),
        variables=_variables(raw.get("variables"), path, cid),
        expected=verdict,
        tags=_string_tuple(raw.get("tags"), "tags", path, cid),
        family=str(family),
        extra={k: v for k, v in raw.items() if k not in KNOWN_FIELDS},
    )


def _load_file(path: Path) -> list[Claim]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(path, f"cannot read the catalogue: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid JSON: {exc}") from None
    if isinstance(data, dict):
        key = next((k for k in ("claims", "theorems") if k in data), None)
        if key is None or not isinstance(data[key], list):
            raise _fail(path, "expected a list of claims or an object with a 'claims' list")
        data = data[key]
    if not isinstance(data, list):
        raise _fail(path, "expected a list of claims")
    return [_claim(raw, i, path) for i, raw in enumerate(data, 1)]


def load_catalogue(path: str | Path | None = None) -> list[Claim]:
    """The claims of ``path`` (a JSON file, or a directory of them; default: the Moneyball
    catalogue).  Raises ``CatalogueError`` naming the file (and claim) on any problem."""
    root = Path(path) if path is not None else default_catalogue_path()
    if root.is_dir():
        files = sorted(root.glob("*.json"))
    elif root.exists():
        files = [root]
    else:
        raise CatalogueError(f"{root}: catalogue not found")
    claims: list[Claim] = []
    seen: dict[str, Path] = {}
    for f in files:
        for c in _load_file(f):
            if c.theorem_id in seen:
                raise _fail(
                    f, f"duplicate theorem id (first in {seen[c.theorem_id]})", c.theorem_id
                )
            seen[c.theorem_id] = f
            claims.append(c)
    return claims


def find_claim(theorem_id: str, path: str | Path | None = None) -> Claim:
    """The claim with this id; ``UnknownTheoremError`` (with close matches) if there is none."""
    claims = load_catalogue(path)
    for c in claims:
        if c.theorem_id == theorem_id:
            return c
    ids = [c.theorem_id for c in claims]
    close = difflib.get_close_matches(theorem_id, ids, n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    where = path if path is not None else default_catalogue_path()
    raise UnknownTheoremError(f"unknown theorem id {theorem_id!r} in {where}{hint}")
