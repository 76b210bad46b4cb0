"""What the installed Z3 offers a strategy: its tactics, their parameters and the solver's,
and the checks a strategy's parameter values must pass (kinds; nothing that writes output).

Read once per process from a scratch Z3 context, under a lock (workers run threads)."""

from __future__ import annotations

import re
import threading
from typing import Any

import z3

ParamValue = bool | int | float | str

_lock = threading.Lock()
_scratch: z3.Context | None = None
_tactic_names: frozenset[str] | None = None
_param_kinds: dict[str, dict[str, int]] = {}


def _ctx() -> z3.Context:
    global _scratch
    if _scratch is None:
        _scratch = z3.Context()
    return _scratch


def available_tactics() -> frozenset[str]:
    """Names of the tactics the installed Z3 provides."""
    global _tactic_names
    with _lock:
        if _tactic_names is None:
            _tactic_names = frozenset(z3.tactics(_ctx()))
        return _tactic_names


def _descr_kinds(descrs: z3.ParamDescrsRef) -> dict[str, int]:
    return {descrs.get_name(i): descrs.get_kind(descrs.get_name(i)) for i in range(descrs.size())}


def tactic_param_kinds(tactic: str) -> dict[str, int]:
    """``{param name: Z3_PK_* kind}`` of a tactic."""
    if tactic not in available_tactics():
        raise ValueError(f"unknown tactic {tactic!r}")
    with _lock:
        if tactic not in _param_kinds:
            _param_kinds[tactic] = _descr_kinds(z3.Tactic(tactic, ctx=_ctx()).param_descrs())
        return _param_kinds[tactic]


def _solver_param_kinds() -> dict[str, int]:
    with _lock:
        if "<solver>" not in _param_kinds:
            _param_kinds["<solver>"] = _descr_kinds(z3.Solver(ctx=_ctx()).param_descrs())
        return _param_kinds["<solver>"]


def check_value(where: str, name: str, kind: int, value: Any) -> None:
    """Raise :class:`ValueError` unless ``value`` fits the Z3 parameter kind ``kind``."""
    if kind == z3.Z3_PK_STRING:  # free text can name a file: no string parameter is taken
        raise ValueError(f"{where}: string parameter {name!r} is not accepted in a strategy")
    ok = {
        z3.Z3_PK_BOOL: isinstance(value, bool),
        z3.Z3_PK_UINT: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        z3.Z3_PK_DOUBLE: isinstance(value, int | float) and not isinstance(value, bool),
        z3.Z3_PK_SYMBOL: isinstance(value, str),
        z3.Z3_PK_STRING: isinstance(value, str),
    }.get(kind, False)
    if not ok:
        kinds = {
            z3.Z3_PK_BOOL: "a bool",
            z3.Z3_PK_UINT: "an unsigned int",
            z3.Z3_PK_DOUBLE: "a number",
            z3.Z3_PK_SYMBOL: "a symbol (string)",
            z3.Z3_PK_STRING: "a string",
        }
        expected = kinds.get(kind, "a supported value")
        raise ValueError(f"{where}: parameter {name!r} must be {expected}, got {value!r}")


def freeze_params(where: str, params: Any) -> tuple[tuple[str, ParamValue], ...]:
    """``params`` (an object) as a sorted tuple of pairs; output-writing names refused."""
    if params is None:
        return ()
    if isinstance(params, tuple):
        params = dict(params)
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be an object, got {type(params).__name__}")
    for key in params:
        if not isinstance(key, str):
            raise ValueError(f"{where}: parameter name {key!r} is not a string")
        if _OUTPUT_PARAM.search(key):
            raise ValueError(
                f"{where}: parameter {key!r} is refused: it writes files or output on the worker "
                "(strategies are data; logging, dumping and tracing are not allowed)"
            )
    return tuple(sorted(params.items()))


#: Z3 parameters that open files or print on the worker (``smtlib2_log``, ``proof.log``,
#: ``axioms2files``, ``arith.dump_lemmas``, ``lemmas2console``, ``mbqi.trace``, ``qi.profile``,
#: ``cancel_backup_file``, …): a strategy comes from a user, so none of them is accepted.
_OUTPUT_PARAM = re.compile(
    r"log(?!ic)|file|dump|trace|profile|console|backup|display|print|verbose|output|stats",
    re.IGNORECASE,
)


def check_solver_param(name: str, value: Any) -> None:
    """Raise :class:`ValueError` unless a strategy may set the solver parameter ``name``."""
    if not isinstance(name, str):
        raise ValueError(f"solver parameter name {name!r} is not a string")
    if name == "timeout":
        raise ValueError("solver parameter 'timeout' is set by the prover from timeout_s")
    module, _, rest = name.partition(".")
    if rest and module in {"smt", "nlsat", "sat"}:
        kinds = tactic_param_kinds(module)
        if rest not in kinds:
            raise ValueError(f"unknown solver parameter {name!r}")
        check_value("solver params", name, kinds[rest], value)
        return
    kinds = _solver_param_kinds()
    if name not in kinds:
        raise ValueError(f"unknown solver parameter {name!r}")
    check_value("solver params", name, kinds[name], value)
