"""What an SMT-LIB problem's assertions hold (one pass over the term DAG), and a Z3 model's
values of its symbols as the counterexample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from .z3_model import value_json
from .z3_terms import CounterexampleError


@dataclass
class Scan:
    """What :func:`scan_assertions` finds in the assertions."""

    symbols: dict[str, z3.FuncDeclRef]  # uninterpreted constants and functions, by name
    has_division: bool  # a real division (/)
    has_quantifier: bool  # a ∀, ∃ or λ
    has_product: bool  # a product of two or more non-numeral factors

    @property
    def constants(self) -> list[z3.FuncDeclRef]:
        return [d for d in self.symbols.values() if d.arity() == 0]


def scan_assertions(assertions: list[z3.BoolRef]) -> Scan:
    """One pass over the term DAG of ``assertions`` (see :class:`Scan`).

    It walks Z3's C API directly: a Python ``ExprRef`` per node costs ~40 µs, seconds on a
    150 kB benchmark.  The raw pointers stay valid while ``assertions`` holds the roots."""
    if not assertions:
        return Scan({}, False, False, False)
    ctx = assertions[0].ctx
    ref = ctx.ref()
    symbols: dict[str, z3.FuncDeclRef] = {}
    division = quantifier = product = False
    seen: set[int] = set()
    stack = [a.as_ast() for a in assertions]
    while stack:
        t = stack.pop()
        tid = z3.Z3_get_ast_id(ref, t)
        if tid in seen:
            continue
        seen.add(tid)
        kind = z3.Z3_get_ast_kind(ref, t)
        if kind == z3.Z3_QUANTIFIER_AST:
            quantifier = True
            stack.append(z3.Z3_get_quantifier_body(ref, t))
        elif kind == z3.Z3_APP_AST:
            decl = z3.Z3_get_app_decl(ref, t)
            op = z3.Z3_get_decl_kind(ref, decl)
            n = z3.Z3_get_app_num_args(ref, t)
            kids = [z3.Z3_get_app_arg(ref, t, i) for i in range(n)]
            if op == z3.Z3_OP_UNINTERPRETED:
                symbol = z3.FuncDeclRef(decl, ctx)
                symbols[symbol.name()] = symbol
            elif op == z3.Z3_OP_DIV:
                division = True
            elif op == z3.Z3_OP_MUL and not product:
                factors = [k for k in kids if z3.Z3_get_ast_kind(ref, k) != z3.Z3_NUMERAL_AST]
                product = len(factors) >= 2
            stack.extend(kids)
    return Scan(dict(sorted(symbols.items())), division, quantifier, product)


def z3_counterexample(scan: Scan, model: z3.ModelRef) -> dict[str, Any] | CounterexampleError:
    """Every symbol's value in ``model`` (the error instead when one has no exact value)."""
    try:
        return {name: _value(decl, model) for name, decl in scan.symbols.items()}
    except CounterexampleError as exc:
        return exc


def _value(decl: z3.FuncDeclRef, model: z3.ModelRef) -> Any:
    if decl.arity() > 0:
        interp = model[decl] if any(d.eq(decl) for d in model.decls()) else None
        return str(interp) if interp is not None else "unconstrained"
    value = model.eval(decl(), model_completion=True)
    sort = decl.range().kind()
    if sort in (z3.Z3_INT_SORT, z3.Z3_REAL_SORT, z3.Z3_BOOL_SORT):
        return value_json(value, decl.name())
    return str(value)
