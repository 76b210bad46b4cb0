"""Loads the ``def``s of ``lean_workspace/**/*.lean`` into typed :class:`Definition` objects.

The Lean files are real Lean 4 + Mathlib source.  Everything that is not a ``def`` (or
``abbrev``) is skipped: ``import``, ``open``, ``namespace``/``section``/``end``, theorems with
their proofs, comments.  A top-level command starts at column 0 and extends over the following
indented lines (Lean's usual layout); a ``/-- doc -/`` comment right before a ``def`` becomes its
:attr:`Definition.doc`.  Definition bodies are parsed with the statement grammar and elaborated
in dependency order, so a ``def`` may use any other (non-recursively).

Results are cached per workspace path and invalidated when a ``.lean`` file changes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hms_celery.errors import CatalogueError, StatementError
from hms_celery.verification.ast import Definition
from hms_celery.verification.elaborate import elaborate_definition
from hms_celery.verification.parser import parse_definition
from hms_celery.verification.surface import SDef, surface_names

_MODIFIERS = re.compile(
    r"^((?:@\[[^\]]*\]\s*)*(?:(?:noncomputable|private|protected|nonrec)\s+)*)(\w+)"
)
_DEF_KEYWORDS = ("def", "abbrev")
_SKIP_DIRS = {".lake", "lake-packages", "build"}


def default_workspace() -> Path:
    """The configured Lean project (``HMS_LEAN_WORKSPACE``, default: this repo's)."""
    from hms_celery.settings import get_settings

    return get_settings().lean_workspace


@dataclass(frozen=True)
class _Item:
    """One ``def`` of a Lean file, parsed but not yet elaborated."""

    path: Path
    sdef: SDef
    doc: str
    text: str


def lean_files(workspace: Path) -> list[Path]:
    """The ``.lean`` sources of ``workspace`` (not the lakefile, not build directories)."""
    return sorted(
        p for p in workspace.rglob("*.lean")
        if p.name != "lakefile.lean" and not _SKIP_DIRS & set(p.relative_to(workspace).parts)
    )  # fmt: skip


def _error(exc: StatementError, path: Path) -> StatementError:
    """Re-raise an error of a ``.lean`` file with the file name in front."""
    err = StatementError(
        f"{path}: {exc.message}", line=exc.line, column=exc.column, expected=exc.expected,
        source=str(path),
    )  # fmt: skip
    err.args = (f"{path}:{exc.line}:{exc.column}: {exc.message}",)
    return err


def split_defs(text: str, path: Path) -> list[_Item]:
    """The ``def`` commands of a Lean file, each parsed, with its docstring."""
    lines = text.split("\n")
    items: list[_Item] = []
    doc = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("--"):
            i += 1
            continue
        if line.startswith("/-"):  # a docstring or a block comment, possibly over several lines
            j = i
            while "-/" not in lines[j][2 if j == i else 0 :] and j + 1 < len(lines):
                j += 1
            block = "\n".join(lines[i : j + 1])
            doc = _doc_text(block) if block.startswith("/--") else ""
            i = j + 1
            continue
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j][0].isspace()):
            j += 1
        m = _MODIFIERS.match(line)
        if m and m.group(2) in _DEF_KEYWORDS:
            chunk = "\n" * i + " " * len(m.group(1)) + "\n".join(lines[i:j])[len(m.group(1)) :]
            try:
                sdef = parse_definition(chunk)
            except StatementError as exc:
                raise _error(exc, path) from None
            items.append(_Item(path, sdef, doc, chunk))
        doc = ""
        i = j
    return items


def _doc_text(block: str) -> str:
    body = block[3:]
    if body.rstrip().endswith("-/"):
        body = body.rstrip()[:-2]
    return " ".join(body.split())


def _elaborate(items: list[_Item]) -> dict[str, Definition]:
    """Elaborate definitions in dependency order."""
    pending = {it.sdef.name: it for it in items}
    if len(pending) != len(items):
        seen: set[str] = set()
        for it in items:
            if it.sdef.name in seen:
                raise StatementError(
                    f"{it.path}: '{it.sdef.name}' is defined twice", line=it.sdef.pos.line,
                    column=it.sdef.pos.column, source=str(it.path),
                )  # fmt: skip
            seen.add(it.sdef.name)
    done: dict[str, Definition] = {}
    while pending:
        progress = False
        for name, it in list(pending.items()):
            refs = {n.rsplit(".", 1)[-1] for n in surface_names(it.sdef.body)}
            refs -= {p.name for p in it.sdef.params}
            if (refs & set(pending)) - {name}:
                continue
            if name in refs:
                raise StatementError(
                    f"{it.path}: recursive definitions are not supported ({name})",
                    line=it.sdef.pos.line, column=it.sdef.pos.column, source=str(it.path),
                )  # fmt: skip
            try:
                done[name] = elaborate_definition(it.sdef, done, doc=it.doc, source=it.text)
            except StatementError as exc:
                raise _error(exc, it.path) from None
            del pending[name]
            progress = True
        if not progress:
            names = ", ".join(sorted(pending))
            it = next(iter(pending.values()))
            raise StatementError(
                f"{it.path}: definitions depend on each other in a cycle ({names})",
                line=it.sdef.pos.line, column=it.sdef.pos.column, source=str(it.path),
            )  # fmt: skip
    order = [it.sdef.name for it in items]
    return {n: done[n] for n in order}


@lru_cache(maxsize=16)
def _load(workspace: str, signature: tuple[tuple[str, int, int], ...]) -> dict[str, Definition]:
    root = Path(workspace)
    items: list[_Item] = []
    for rel, _, _ in signature:
        path = root / rel
        items.extend(split_defs(path.read_text(encoding="utf-8"), path.relative_to(root)))
    return _elaborate(items)


def load_definitions(workspace: Path | str | None = None) -> dict[str, Definition]:
    """All ``def``s of ``workspace`` (default: :func:`default_workspace`) by name.

    Raises ``CatalogueError`` if the workspace does not exist and ``StatementError`` (naming the
    file) if a definition does not parse or type-check.
    """
    root = Path(workspace) if workspace is not None else default_workspace()
    return dict(_load(*_read_signature(root)))


_SIGNATURE_TTL_S = 1.0
_signatures: dict[Path, tuple[float, tuple[str, tuple[tuple[str, int, int], ...]]]] = {}


def workspace_signature(
    workspace: Path | str | None = None,
) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """The workspace's resolved path and the (file, mtime, size) of its ``.lean`` files:
    equal signatures mean equal definitions (the key of every cache built on them).
    Re-read at most once a second, so a hot path does not stat the files on every call."""
    root = Path(workspace) if workspace is not None else default_workspace()
    cached = _signatures.get(root)
    now = time.monotonic()
    if cached is not None and now - cached[0] < _SIGNATURE_TTL_S:
        return cached[1]
    result = _read_signature(root)
    _signatures[root] = (now, result)
    return result


def _read_signature(root: Path) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    if not root.is_dir():
        raise CatalogueError(f"Lean workspace not found: {root}")
    files = lean_files(root)
    signature = tuple(
        (str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size) for p in files
    )
    return str(root.resolve()), signature


def definitions_for(
    root: str, signature: tuple[tuple[str, int, int], ...]
) -> dict[str, Definition]:
    """The definitions of a workspace signature (shared, do not mutate)."""
    return _load(root, signature)
