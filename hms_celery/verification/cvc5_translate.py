""":class:`Translator` maps a list of Z3 terms to cvc5 terms of one ``cvc5.TermManager``:

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

The cvc5 import is guarded here once: without cvc5, :data:`IMPORT_ERROR` says why and every
cvc5 answer is UNSUPPORTED.
"""

from __future__ import annotations

from typing import Any

import z3

from .z3_terms import Unsupported

try:  # cvc5 is a dependency, but a broken install must make cvc5 answers UNSUPPORTED only
    import cvc5
    from cvc5 import Kind

    IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - exercised only without cvc5
    cvc5 = None
    Kind = None
    IMPORT_ERROR = f"cvc5 is not installed ({exc})"


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


_SORTS = {z3.Z3_INT_SORT, z3.Z3_REAL_SORT, z3.Z3_BOOL_SORT}
_KINDS: dict[str, Any] = {name: getattr(Kind, name) for name in _DIRECT.values()} if Kind else {}

# Z3's C API on raw AST pointers (the translation's walk: see Translator._translate).
_ast_id = z3.Z3_get_ast_id
_ast_kind = z3.Z3_get_ast_kind
_num_args = z3.Z3_get_app_num_args
_app_arg = z3.Z3_get_app_arg
_expr = z3.z3._to_expr_ref  # a raw AST as the Z3 Python object (for messages)


class Translator:
    """Z3 terms → cvc5 terms of ``tm`` (see the module docstring); one instance per problem."""

    def __init__(self, tm: Any) -> None:
        if cvc5 is None:
            raise Unsupported(IMPORT_ERROR or "cvc5 is not installed")
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
        results.  Terms in :attr:`_top` are closed, so they are valid in every scope.

        The walk reads the DAG through Z3's C API on raw AST pointers (one call per fact it
        needs): Z3's Python wrappers make several calls and an object per node, which cost
        ~30× more.  The nodes below ``root`` stay alive while ``root`` does, and ``root`` is
        pinned for the translator's life."""
        top = self._top
        ctx = root.ctx
        ref = ctx.ref()
        self._pinned.append(root)

        def known(tid: int) -> Any:
            found = memo.get(tid)
            return top.get(tid) if found is None else found

        # (ast, id, children and their ids once expanded)
        stack: list[tuple[Any, int, list[Any] | None, list[int] | None]] = [
            (root.as_ast(), _ast_id(ref, root.as_ast()), None, None)
        ]
        while stack:
            a, tid, kids, kid_ids = stack.pop()
            if known(tid) is not None:
                continue
            kind = _ast_kind(ref, a)
            if kind == z3.Z3_QUANTIFIER_AST:
                memo[tid] = self._quantifier(z3.QuantifierRef(a, ctx), bound)
                continue
            if kind == z3.Z3_VAR_AST:
                memo[tid] = self._bound_var(z3.Z3_get_index_value(ref, a), a, ctx, bound)
                continue
            if kind != z3.Z3_APP_AST and kind != z3.Z3_NUMERAL_AST:  # numerals are apps
                raise Unsupported(f"cvc5 translation: the Z3 term {_expr(a, ctx)}")
            if kids is None:
                kids = [_app_arg(ref, a, i) for i in range(_num_args(ref, a))]
                kid_ids = [_ast_id(ref, k) for k in kids]
                stack.append((a, tid, kids, kid_ids))
                stack.extend(
                    (k, i, None, None)
                    for k, i in zip(kids, kid_ids, strict=True)
                    if known(i) is None
                )
                continue
            assert kid_ids is not None
            memo[tid] = self._app(a, ctx, [known(i) for i in kid_ids])
        return known(_ast_id(ref, root.as_ast()))

    def _bound_var(self, index: int, a: Any, ctx: z3.Context, bound: tuple[Any, ...]) -> Any:
        if index >= len(bound):
            raise Unsupported(f"cvc5 translation: a free de Bruijn variable {_expr(a, ctx)}")
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

    def _numeral(self, a: Any, ref: Any, sort_kind: int) -> Any:
        text = z3.Z3_get_numeral_string(ref, a)  # exact decimal text: no Python int
        if sort_kind == z3.Z3_INT_SORT:
            return self.tm.mkInteger(text)
        return self.tm.mkReal(text)

    def _to_real(self, x: Any) -> Any:
        return self.tm.mkTerm(Kind.TO_REAL, x) if x.getSort().isInteger() else x

    def _app(self, a: Any, ctx: z3.Context, args: list[Any]) -> Any:
        ref = ctx.ref()
        decl_ast = z3.Z3_get_app_decl(ref, a)
        op = z3.Z3_get_decl_kind(ref, decl_ast)
        tm = self.tm
        if op == z3.Z3_OP_TRUE:
            return tm.mkTrue()
        if op == z3.Z3_OP_FALSE:
            return tm.mkFalse()
        sort_ast = z3.Z3_get_sort(ref, a)
        sort_kind = z3.Z3_get_sort_kind(ref, sort_ast)
        if op == z3.Z3_OP_ANUM:
            return self._numeral(a, ref, sort_kind)
        if op == z3.Z3_OP_UNINTERPRETED:
            decl = z3.FuncDeclRef(decl_ast, ctx)
            symbol = self._symbol(decl)
            if not args:
                return symbol
            doms = [decl.domain(i) for i in range(decl.arity())]
            args = [
                self._to_real(x) if d.kind() == z3.Z3_REAL_SORT else x
                for x, d in zip(args, doms, strict=True)
            ]
            return tm.mkTerm(Kind.APPLY_UF, symbol, *args)
        name = _DIRECT.get(op)
        if name is None:
            decl_name = z3.FuncDeclRef(decl_ast, ctx).name()
            raise Unsupported(f"cvc5 translation: the Z3 operator {decl_name!r} (kind {op})")
        if sort_kind not in _SORTS:  # only Int, Real and Bool results
            self.sort(z3.SortRef(sort_ast, ctx))  # raises, naming the sort
        # Z3 inserts to_real where it mixes sorts; coerce anyway where Z3 is lenient.
        real_result = sort_kind == z3.Z3_REAL_SORT
        if (op in _ARITH and real_result) or (
            op in _RELATIONS and any(x.getSort().isReal() for x in args)
        ):
            args = [self._to_real(x) for x in args]
        elif op == z3.Z3_OP_ITE and real_result:
            args = [args[0], self._to_real(args[1]), self._to_real(args[2])]
        if op in (z3.Z3_OP_AND, z3.Z3_OP_OR) and len(args) < 2:
            if not args:
                return tm.mkTrue() if op == z3.Z3_OP_AND else tm.mkFalse()
            return args[0]
        if op in (z3.Z3_OP_ADD, z3.Z3_OP_MUL) and len(args) == 1:
            return args[0]
        if op == z3.Z3_OP_DISTINCT and len(args) < 2:
            return tm.mkTrue()
        return tm.mkTerm(_KINDS[name], *args)
