"""Read a model back: a statement's counterexample, in the ``ProofOutcome`` JSON format.

Values are exact (``"p/q"``, ``"n"``, booleans); an irrational value or one without an exact
form raises :class:`~.z3_terms.CounterexampleError`, never an approximation.
"""

from __future__ import annotations

from typing import Any

import z3

from . import ast as A
from .bignum import fraction_to_str
from .z3_terms import Compiled, CounterexampleError, VarEncoding, exact_value


def value_json(v: z3.ExprRef, what: str) -> Any:
    """A Z3 value as counterexample JSON: ``true``/``false`` or exact ``"p/q"``; raises
    :class:`~.z3_terms.CounterexampleError` for an irrational or non-numeral value."""
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_int_value(v) or z3.is_rational_value(v):
        return fraction_to_str(exact_value(v))
    if z3.is_algebraic_value(v):
        approx = v.approx(12).as_decimal(12).rstrip("?")
        raise CounterexampleError(f"counterexample is irrational ({what} ≈ {approx})")
    raise CounterexampleError(f"{what} has no exact value in the model: {v}")


class Z3ModelValues:
    """A Z3 model's values in the counterexample JSON format (``solvers.ModelValues``)."""

    def __init__(self, model: z3.ModelRef) -> None:
        self.model = model

    def scalar(self, term: z3.ExprRef, what: str) -> Any:
        return value_json(self.model.eval(term, model_completion=True), what)

    def function(self, enc: VarEncoding, what: str) -> dict[str, Any]:
        return _read_function(enc, self.model, what)


def read_counterexample(compiled: Compiled, model: Any) -> dict[str, Any]:
    """Every statement variable's value in ``model``, in the ``ProofOutcome`` JSON format.

    ``model`` is a Z3 model or any solver's model values (``scalar(term, what)`` and
    ``function(enc, what)``: :class:`~.solvers.ModelValues`, e.g. cvc5's).
    Raises :class:`CounterexampleError` (e.g. an irrational value)."""
    values = Z3ModelValues(model) if isinstance(model, z3.ModelRef) else model
    out: dict[str, Any] = {}
    for name, enc in compiled.variables.items():
        if enc.kind == "size":
            out[name] = str(enc.size)
        elif enc.kind in ("scalar", "fin", "prop"):
            out[name] = values.scalar(enc.term, name)
        elif enc.kind == "vector":
            out[name] = _read_nested(enc.term, values, name)
        elif enc.kind == "function":
            out[name] = values.function(enc, name)
    return out


def _read_nested(items: Any, values: Any, name: str) -> Any:
    if isinstance(items, list):
        return [_read_nested(x, values, f"{name}[{i}]") for i, x in enumerate(items)]
    return values.scalar(items, name)


def _read_function(enc: VarEncoding, model: z3.ModelRef, name: str) -> dict[str, Any]:
    fdecl: z3.FuncDeclRef = enc.term
    interp = model.get_interp(fdecl) if any(d.eq(fdecl) for d in model.decls()) else None
    cod = enc.cod
    default_value: Any = False if isinstance(cod, A.PropT) else "0"
    if interp is None:
        return {"entries": [], "else": default_value}
    if not isinstance(interp, z3.FuncInterp):
        raise CounterexampleError(f"{name}'s interpretation is not a finite table: {interp}")
    entries = []
    for i in range(interp.num_entries()):
        entry = interp.entry(i)
        args = [value_json(entry.arg_value(j), name) for j in range(entry.num_args())]
        entries.append([*args, value_json(entry.value(), f"{name}(…)")])
    else_value = interp.else_value()
    if else_value is None:
        return {"entries": entries, "else": default_value}
    return {"entries": entries, "else": value_json(else_value, f"{name}'s default value")}
