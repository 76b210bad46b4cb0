"""cvc5 as a second solver: the Z3 terms HMS compiles, translated to cvc5 and decided in-process.

:class:`Translator` maps a list of Z3 terms to cvc5 terms of one ``cvc5.TermManager``:

* sorts ``Int``, ``Real``, ``Bool`` (any other sort is :class:`Unsupported`);
* numerals of any size, through their decimal text (``"p/q"``) — never through a Python
  ``int`` or ``float``, so Python's 4300-digit int↔str limit is never met;
* ``+ - * /``, ``div``, ``mod``, ``abs``, unary minus, ``to_real``, ``to_int``, ``is_int``,
  ``< ≤ > ≥``, ``=``, ``distinct``, ``and or not => xor ite`` — with their SMT-LIB meaning,
  which is Z3's too (real ``/`` and ``div``/``mod`` by zero are unspecified in both solvers:
  HMS's compiler guards every symbolic division with ``If(b == 0, 0, a/b)``, so nothing is
  "fixed" here: the translation is faithful);
* uninterpreted constants and functions, mapped by Z3 declaration *identity* (two declarations
  with one name — ``Int('x')`` and ``Real('x')`` — stay two symbols);
* ``∀``/``∃`` (Z3's de Bruijn variables become cvc5 bound variables; patterns are hints and
  are dropped);
* the term DAG is shared: every Z3 node is translated once (memoised by ``get_id()``), with an
  explicit stack, so neither a large DAG nor a deep term exhausts time or the Python stack.

Anything else (a bit-vector, an array, ``rem``, ``^``, a lambda …) raises :class:`Unsupported`
naming it: cvc5 then gives no answer at all, never a wrong one.

:class:`Cvc5Backend` is a :class:`~.solvers.SolverBackend`: one fresh ``cvc5.Solver`` per check
(logic ``ALL``, ``produce-models``, nonlinear arithmetic by incremental linearisation
``nl-ext=full``), bounded by ``tlimit-per`` (milliseconds; the answer is
``unknown``/``"timeout"`` when it runs out) and, if given, the deterministic ``rlimit-per``
(cvc5's own resource units, not Z3's).  cvc5 runs in this process and thread: it cannot be
interrupted from outside, its own time limit is the bound.

Cylindrical algebraic coverings (``nl-cov``, which logic ``ALL`` leaves unused) are
deliberately *not* enabled, although 1.4.2 accepts the option: with them cvc5 ignores
``tlimit-per`` — measured: ``x³ + y³ = z³`` over ℤ, and a random cubic system over ℝ (also
under logic ``QF_NRA``), ran past 20 s under a 300 ms limit, while without them every check
stopped at ~300 ms (``test_the_time_limit_is_respected``).  The price: cvc5 answers
``unknown`` where only an irrational model exists (``x² = 2``) — never a wrong answer, and
HMS's proofs (``unsat``) and rational counterexamples do not need coverings.
"""

from __future__ import annotations

import re
import time
from functools import cache
from importlib import metadata
from typing import Any

import z3

from . import ast as A
from .solvers import SolverAnswer
from .z3_backend import CounterexampleError, Unsupported, VarEncoding

try:  # cvc5 is a dependency, but a broken install must make cvc5 answers UNSUPPORTED only
    import cvc5
    from cvc5 import Kind

    _IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - exercised only without cvc5
    cvc5 = None
    Kind = None
    _IMPORT_ERROR = f"cvc5 is not installed ({exc})"

__all__ = ["Cvc5Backend", "Cvc5Values", "Translator", "cvc5_version"]

#: Options of every cvc5 solver HMS makes (those the installed cvc5 does not know are skipped).
SOLVER_OPTIONS: dict[str, str] = {
    "nl-ext": "full",  # incremental linearisation of nonlinear arithmetic (the default)
    # never "nl-cov": it makes cvc5 ignore tlimit-per (see the module docstring)
    # Static learning does not poll the time limit: on pysmt's QF_LIA prp-20-46 (an ite
    # DAG) cvc5 1.4.2 spent 40 s in it under a 2 s tlimit-per; without it, 2.0 s.  It only
    # adds lemmas, so leaving it out changes no answer (same answers on ../shared/smtlib).
    "static-learning": "false",
}


@cache  # read once per process: importlib.metadata scans site-packages on every call
def cvc5_version() -> str:
    """The installed cvc5's version (``"1.4.2"``), or ``"unavailable"``."""
    if cvc5 is None:
        return "unavailable"
    try:
        return metadata.version("cvc5")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source build
        return cvc5.Solver(cvc5.TermManager()).getVersion().decode(errors="replace")


def _z3_numeral_text(t: z3.ExprRef) -> str:
    """``"p"`` or ``"p/q"`` (Z3's exact decimal text; no Python int conversion)."""
    return z3.Z3_get_numeral_string(t.ctx_ref(), t.as_ast())


# The Z3 operators with a direct cvc5 counterpart (arguments in the same order).
_DIRECT: dict[int, str] = {
    z3.Z3_OP_AND: "AND",
    z3.Z3_OP_OR: "OR",
    z3.Z3_OP_NOT: "NOT",
    z3.Z3_OP_IMPLIES: "IMPLIES",
    z3.Z3_OP_XOR: "XOR",
    z3.Z3_OP_ITE: "ITE",
    z3.Z3_OP_EQ: "EQUAL",
    z3.Z3_OP_IFF: "EQUAL",
    z3.Z3_OP_DISTINCT: "DISTINCT",
    z3.Z3_OP_LE: "LEQ",
    z3.Z3_OP_LT: "LT",
    z3.Z3_OP_GE: "GEQ",
    z3.Z3_OP_GT: "GT",
    z3.Z3_OP_ADD: "ADD",
    z3.Z3_OP_SUB: "SUB",
    z3.Z3_OP_MUL: "MULT",
    z3.Z3_OP_UMINUS: "NEG",
    z3.Z3_OP_DIV: "DIVISION",
    z3.Z3_OP_IDIV: "INTS_DIVISION",
    z3.Z3_OP_MOD: "INTS_MODULUS",
    z3.Z3_OP_ABS: "ABS",
    z3.Z3_OP_TO_REAL: "TO_REAL",
    z3.Z3_OP_TO_INT: "TO_INTEGER",
    z3.Z3_OP_IS_INT: "IS_INTEGER",
}
_ARITH = {z3.Z3_OP_ADD, z3.Z3_OP_SUB, z3.Z3_OP_MUL, z3.Z3_OP_UMINUS, z3.Z3_OP_DIV, z3.Z3_OP_ABS}
_RELATIONS = {
    z3.Z3_OP_EQ,
    z3.Z3_OP_DISTINCT,
    z3.Z3_OP_LE,
    z3.Z3_OP_LT,
    z3.Z3_OP_GE,
    z3.Z3_OP_GT,
}


class Translator:
    """Z3 terms → cvc5 terms of ``tm`` (see the module docstring); one instance per problem."""

    def __init__(self, tm: Any) -> None:
        if cvc5 is None:
            raise Unsupported(_IMPORT_ERROR or "cvc5 is not installed")
        self.tm = tm
        self.symbols: dict[int, Any] = {}  # Z3 declaration id -> cvc5 constant (or function)
        self._top: dict[int, Any] = {}  # closed terms (no bound variable) by Z3 ast id
        self._sorts: dict[int, Any] = {}
        # Z3 reuses the id of a freed ast: every Z3 object whose id is a key above is kept
        # alive here for as long as the translator lives.
        self._pinned: list[Any] = []

    # ------------------------------------------------------------------ public

    def assertion(self, t: z3.ExprRef) -> Any:
        """The cvc5 form of the closed Z3 formula ``t``."""
        if not z3.is_bool(t):
            raise Unsupported(f"an assertion of sort {t.sort()} (not Bool)")
        return self._translate(t, (), self._top)

    def term(self, t: z3.ExprRef) -> Any:
        """The cvc5 form of the closed Z3 term ``t`` (a constant new to this problem gets a
        new cvc5 constant)."""
        return self._translate(t, (), self._top)

    def function(self, decl: z3.FuncDeclRef) -> Any | None:
        """The cvc5 function of the Z3 declaration ``decl``, None if no assertion used it."""
        return self.symbols.get(decl.get_id())

    # ------------------------------------------------------------------ sorts and symbols

    def sort(self, s: z3.SortRef) -> Any:
        key = s.get_id()
        found = self._sorts.get(key)
        if found is None:
            kind = s.kind()
            if kind == z3.Z3_INT_SORT:
                found = self.tm.getIntegerSort()
            elif kind == z3.Z3_REAL_SORT:
                found = self.tm.getRealSort()
            elif kind == z3.Z3_BOOL_SORT:
                found = self.tm.getBooleanSort()
            else:
                raise Unsupported(f"cvc5 translation: the sort {s} (only Int, Real, Bool)")
            self._sorts[key] = found
            self._pinned.append(s)
        return found

    def _symbol(self, decl: z3.FuncDeclRef) -> Any:
        key = decl.get_id()
        found = self.symbols.get(key)
        if found is None:
            rng = self.sort(decl.range())
            if decl.arity() == 0:
                found = self.tm.mkConst(rng, decl.name())
            else:
                doms = [self.sort(decl.domain(i)) for i in range(decl.arity())]
                found = self.tm.mkConst(self.tm.mkFunctionSort(doms, rng), decl.name())
            self.symbols[key] = found
            self._pinned.append(decl)
        return found

    # ------------------------------------------------------------------ terms

    def _translate(self, root: z3.ExprRef, bound: tuple[Any, ...], memo: dict[int, Any]) -> Any:
        """Post-order over the DAG below ``root`` with an explicit stack; ``bound`` holds the
        cvc5 variables of the enclosing binders (innermost last), ``memo`` this scope's
        results.  Terms in :attr:`_top` are closed, so they are valid in every scope."""
        top = self._top

        def known(tid: int) -> Any:
            found = memo.get(tid)
            return top.get(tid) if found is None else found

        stack: list[tuple[z3.ExprRef, list[z3.ExprRef] | None]] = [(root, None)]
        pin = self._pinned.append
        while stack:
            t, kids = stack.pop()
            tid = t.get_id()
            if known(tid) is not None:
                continue
            pin(t)
            if z3.is_quantifier(t):
                memo[tid] = self._quantifier(t, bound)
                continue
            if z3.is_var(t):
                memo[tid] = self._bound_var(t, bound)
                continue
            if not z3.is_app(t):
                raise Unsupported(f"cvc5 translation: the Z3 term {t}")
            if kids is None:
                kids = t.children()
                stack.append((t, kids))
                stack.extend((k, None) for k in kids if known(k.get_id()) is None)
                continue
            memo[tid] = self._app(t, [known(k.get_id()) for k in kids])
        return known(root.get_id())

    def _bound_var(self, t: z3.ExprRef, bound: tuple[Any, ...]) -> Any:
        index = z3.get_var_index(t)
        if index >= len(bound):
            raise Unsupported(f"cvc5 translation: a free de Bruijn variable {t}")
        return bound[len(bound) - 1 - index]

    def _quantifier(self, q: z3.QuantifierRef, bound: tuple[Any, ...]) -> Any:
        if q.is_lambda():
            raise Unsupported("cvc5 translation: a lambda term")
        variables = [
            self.tm.mkVar(self.sort(q.var_sort(i)), q.var_name(i)) for i in range(q.num_vars())
        ]
        # The body's de Bruijn index 0 is the *last* variable of this binder.
        body = self._translate(q.body(), (*bound, *variables), {})
        kind = Kind.FORALL if q.is_forall() else Kind.EXISTS
        return self.tm.mkTerm(kind, self.tm.mkTerm(Kind.VARIABLE_LIST, *variables), body)

    def _numeral(self, t: z3.ExprRef) -> Any:
        text = _z3_numeral_text(t)
        if t.sort().kind() == z3.Z3_INT_SORT:
            return self.tm.mkInteger(text)
        return self.tm.mkReal(text)

    def _to_real(self, x: Any) -> Any:
        return self.tm.mkTerm(Kind.TO_REAL, x) if x.getSort().isInteger() else x

    def _app(self, t: z3.ExprRef, args: list[Any]) -> Any:
        decl = t.decl()
        op = decl.kind()
        tm = self.tm
        if op == z3.Z3_OP_TRUE:
            return tm.mkTrue()
        if op == z3.Z3_OP_FALSE:
            return tm.mkFalse()
        if op == z3.Z3_OP_ANUM:
            return self._numeral(t)
        if op == z3.Z3_OP_UNINTERPRETED:
            symbol = self._symbol(decl)
            if not args:
                return symbol
            doms = [decl.domain(i) for i in range(decl.arity())]
            args = [
                self._to_real(a) if d.kind() == z3.Z3_REAL_SORT else a
                for a, d in zip(args, doms, strict=True)
            ]
            return tm.mkTerm(Kind.APPLY_UF, symbol, *args)
        name = _DIRECT.get(op)
        if name is None:
            raise Unsupported(f"cvc5 translation: the Z3 operator {decl.name()!r} (kind {op})")
        self.sort(t.sort())  # only Int, Real and Bool results
        # Z3 inserts to_real where it mixes sorts; coerce anyway where Z3 is lenient.
        real_result = t.sort().kind() == z3.Z3_REAL_SORT
        if (op in _ARITH and real_result) or (
            op in _RELATIONS and any(a.getSort().isReal() for a in args)
        ):
            args = [self._to_real(a) for a in args]
        elif op == z3.Z3_OP_ITE and t.sort().kind() == z3.Z3_REAL_SORT:
            args = [args[0], self._to_real(args[1]), self._to_real(args[2])]
        if op in (z3.Z3_OP_AND, z3.Z3_OP_OR) and len(args) < 2:
            if not args:
                return tm.mkTrue() if op == z3.Z3_OP_AND else tm.mkFalse()
            return args[0]
        if op in (z3.Z3_OP_ADD, z3.Z3_OP_MUL) and len(args) == 1:
            return args[0]
        if op == z3.Z3_OP_DISTINCT and len(args) < 2:
            return tm.mkTrue()
        return tm.mkTerm(getattr(Kind, name), *args)


# --------------------------------------------------------------------------- model values

_INT = re.compile(r"(\d+)(?:\.0+)?")
_NEG = re.compile(r"\(- (.+)\)")
_DIV = re.compile(r"\(/ (\(- \d+(?:\.0+)?\)|\d+(?:\.0+)?) (\d+(?:\.0+)?)\)")


def _rational_text(text: str) -> str | None:
    """cvc5's printed rational (``5``, ``5.0``, ``(- 5)``, ``(/ (- 1) 3)``) as ``"p"`` or
    ``"p/q"``, the counterexample format (cvc5 prints values normalised); None otherwise."""
    m = _INT.fullmatch(text)
    if m:
        return m.group(1)
    m = _NEG.fullmatch(text)
    if m:
        inner = _rational_text(m.group(1))
        if inner is None or inner.startswith("-"):
            return None
        return inner if inner == "0" else f"-{inner}"
    m = _DIV.fullmatch(text)
    if m:
        num, den = _rational_text(m.group(1)), _rational_text(m.group(2))
        if num is None or den is None or den in ("0", "1"):
            return None
        return f"{num}/{den}"
    return None


def _value_json(v: Any, what: str) -> Any:
    """A cvc5 value as counterexample JSON (strings, never through a Python int)."""
    kind = v.getKind()
    if kind == Kind.CONST_BOOLEAN:
        return bool(v.getBooleanValue())
    if kind in (Kind.CONST_INTEGER, Kind.CONST_RATIONAL):
        text = _rational_text(str(v))
        if text is None:
            raise CounterexampleError(f"{what}: cannot read cvc5's value {str(v)[:80]}")
        return text
    if v.isRealAlgebraicNumber():
        raise CounterexampleError(f"counterexample is irrational ({what} = {str(v)[:80]})")
    raise CounterexampleError(f"{what} has no exact value in cvc5's model: {str(v)[:80]}")


class Cvc5Values:
    """The values of a cvc5 model (a :class:`~.solvers.ModelValues`).  Holds the solver alive."""

    def __init__(self, solver: Any, translator: Translator) -> None:
        self.solver = solver
        self.translator = translator

    def scalar(self, term: z3.ExprRef, what: str) -> Any:
        return _value_json(self.solver.getValue(self.translator.term(term)), what)

    def function(self, enc: VarEncoding, what: str) -> dict[str, Any]:
        default: Any = False if isinstance(enc.cod, A.PropT) else "0"
        fn = self.translator.function(enc.term)
        if fn is None:  # the assertions never use it: any function will do
            return {"entries": [], "else": default}
        return _table(self.solver.getValue(fn), what)

    def table(self, decl: z3.FuncDeclRef, what: str) -> dict[str, Any]:
        """The table of the uninterpreted Z3 function ``decl`` (an SMT-LIB problem's)."""
        fn = self.translator.function(decl)
        if fn is None:  # the assertions never use it: any function will do
            default: Any = False if decl.range().kind() == z3.Z3_BOOL_SORT else "0"
            return {"entries": [], "else": default}
        return _table(self.solver.getValue(fn), what)


def _table(value: Any, what: str) -> dict[str, Any]:
    """A cvc5 function value ``(lambda (x…) (ite (= x c) v (ite …) e))`` as a table."""
    if value.getKind() != Kind.LAMBDA:
        raise CounterexampleError(f"{what}'s value is not a lambda: {str(value)[:80]}")
    variables = list(value[0])
    body = value[1]
    entries: list[list[Any]] = []
    seen: set[tuple[Any, ...]] = set()
    while body.getKind() == Kind.ITE:
        point = _point(body[0], variables, what)
        if point is None:
            raise CounterexampleError(f"{what}'s value is not a finite table: {str(value)[:80]}")
        key = tuple(point)
        if key not in seen:  # the first matching branch is the value
            seen.add(key)
            entries.append([*point, _value_json(body[1], f"{what}(…)")])
        body = body[2]
    if body.getSort().isBoolean() and body.getKind() != Kind.CONST_BOOLEAN:
        # A predicate's value is often a formula: a point, a disjunction of points, or the
        # negation of one of those (``(lambda (x y) (and (= x 3) (= y 1.0)))``).
        negated = body.getKind() == Kind.NOT
        inner = body[0] if negated else body
        disjuncts = list(inner) if inner.getKind() == Kind.OR else [inner]
        for d in disjuncts:
            point = _point(d, variables, what)
            if point is None:
                raise CounterexampleError(
                    f"{what}'s value is not a finite table: {str(value)[:80]}"
                )
            if tuple(point) not in seen:
                seen.add(tuple(point))
                entries.append([*point, not negated])
        return {"entries": entries, "else": negated}
    return {"entries": entries, "else": _value_json(body, f"{what}'s default value")}


def _point(cond: Any, variables: list[Any], what: str) -> list[Any] | None:
    """The argument values of a condition ``x₁ = c₁ ∧ …`` (every variable once), else None."""
    parts = list(cond) if cond.getKind() == Kind.AND else [cond]
    found: dict[int, Any] = {}
    for part in parts:
        if part.getKind() != Kind.EQUAL or part.getNumChildren() != 2:
            return None
        a, b = part[0], part[1]
        var, val = (a, b) if a.getKind() == Kind.VARIABLE else (b, a)
        if var.getKind() != Kind.VARIABLE or val.getKind() == Kind.VARIABLE:
            return None
        index = next((i for i, v in enumerate(variables) if v == var), None)
        if index is None or index in found:
            return None
        found[index] = _value_json(val, f"{what}'s argument")
    if len(found) != len(variables):
        return None
    return [found[i] for i in range(len(variables))]


# --------------------------------------------------------------------------- the backend

_REASONS = {
    "TIMEOUT": "timeout",
    "RESOURCEOUT": "resource limit exhausted",
    "MEMOUT": "memory limit exhausted",
    "INTERRUPTED": "interrupted",
    "INCOMPLETE": "incomplete (cvc5 cannot decide this fragment)",
}


class Cvc5Backend:
    """cvc5 on the Z3 terms HMS compiles (a :class:`~.solvers.SolverBackend`)."""

    name = "cvc5"

    def __init__(self, *, produce_models: bool = True, options: dict[str, str] | None = None):
        self.produce_models = produce_models
        self.options = {**SOLVER_OPTIONS, **(options or {})}
        self.version = cvc5_version()

    def _solver(self, timeout_ms: int, rlimit: int | None) -> tuple[Any, Any]:
        tm = cvc5.TermManager()
        solver = cvc5.Solver(tm)
        known = set(solver.getOptionNames())
        settings = {
            "produce-models": "true" if self.produce_models else "false",
            "tlimit-per": str(timeout_ms),
            **self.options,
        }
        if rlimit:
            settings["rlimit-per"] = str(int(rlimit))
        for name, value in settings.items():
            if name in known:
                solver.setOption(name, value)
        solver.setLogic("ALL")
        return tm, solver

    def check(
        self, assertions: list[z3.BoolRef], *, timeout_s: float, rlimit: int | None = None
    ) -> SolverAnswer:
        if cvc5 is None:
            raise Unsupported(_IMPORT_ERROR or "cvc5 is not installed")
        t0 = time.monotonic()
        if timeout_s <= 0:
            return SolverAnswer("unknown", "timeout", seconds=0.0)
        tm, solver = self._solver(max(1, int(timeout_s * 1000)), rlimit)
        translator = Translator(tm)
        try:
            terms = [translator.assertion(a) for a in assertions]
        except RuntimeError as exc:  # cvc5 refused a term: a gap in the translation
            raise Unsupported(f"cvc5 translation: {exc}") from None
        remaining_ms = int((timeout_s - (time.monotonic() - t0)) * 1000)
        if remaining_ms <= 0:
            return SolverAnswer("unknown", "timeout", seconds=time.monotonic() - t0)
        solver.setOption("tlimit-per", str(remaining_ms))
        try:
            for term in terms:
                solver.assertFormula(term)
            result = solver.checkSat()
        except RuntimeError as exc:
            return SolverAnswer("unknown", f"cvc5 error: {exc}", seconds=time.monotonic() - t0)
        seconds = time.monotonic() - t0
        if result.isUnsat():
            return SolverAnswer("unsat", seconds=seconds)
        if result.isSat():
            values = Cvc5Values(solver, translator) if self.produce_models else None
            return SolverAnswer("sat", seconds=seconds, values=values, model=solver)
        why = result.getUnknownExplanation()
        reason = _REASONS.get(why.name, str(why.name).lower().replace("_", " "))
        if why.name == "UNKNOWN_REASON" and seconds >= timeout_s - 0.05:
            reason = "timeout"
        return SolverAnswer("unknown", reason, seconds=seconds)
