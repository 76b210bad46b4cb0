"""Surface tree → typed core AST (:mod:`hms_celery.verification.ast`).

The elaborator follows Lean 4 / Mathlib:

* **Numeric trees** (``+ - * / %``, unary ``-``, the base of ``^``, and both sides of a
  comparison) are elaborated like Lean's ``binop%``/``binrel%``: the types of the leaves are
  inferred first, their maximum in ℕ ⊂ ℤ ⊂ ℚ ⊂ ℝ (starting from the expected type) becomes the
  type of the whole tree, and :class:`Cast` is inserted on smaller leaves.  Literals are
  polymorphic and take the tree's type (ℕ by default); a decimal literal needs ℚ or ℝ.
  ``Fin n`` leaves are cast to ℕ first.
* **Binder types** that are not written (``∀ x, …``, ``∑ i, …``) are inferred from the uses of
  the variable (``w i`` with ``w : Fin n → ℝ`` makes ``i : Fin n``) by a first elaboration pass
  with a metavariable; as in Lean, a variable only constrained by a numeric literal is ℕ.
* **Definitions** are called with all their parameters: implicit ones (``{n : ℕ}``) are inferred
  by unifying the argument types with the parameter types.

Every error is a :class:`~hms_celery.errors.StatementError` with the position of the culprit.

Kept whole on purpose (~1,000 lines): :class:`Elaborator` is one mutually recursive algorithm
(inference, numeric trees, binders, calls share its scope and metavariables); its type-level
helpers are :mod:`.elab_types`, its message renderings :mod:`.elab_messages`, and statement
assembly is the front end's (:mod:`.frontend`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hms_celery.errors import StatementError
from hms_celery.verification.ast import (
    INT,
    NAT,
    PROP,
    App,
    Arrow,
    BinOp,
    BoolLit,
    Builtin,
    Call,
    Cast,
    Compare,
    Definition,
    Expr,
    FinT,
    Ite,
    Lambda,
    Let,
    Lit,
    Logic,
    Neg,
    Not,
    Num,
    Param,
    Pos,
    Pow,
    PropT,
    Quant,
    Range,
    Scalar,
    Sum,
    Type,
    Var,
)
from hms_celery.verification.ast_walk import nodes
from hms_celery.verification.elab_messages import show_atom, show_expr, show_surface, show_type
from hms_celery.verification.elab_types import (
    above,
    codomain,
    depends,
    first_known,
    has_nezero,
    mentions_any,
    numeric_type,
    subst_type,
    type_names,
    unify,
)
from hms_celery.verification.surface import (
    SAbs,
    SApp,
    SAscribe,
    SBin,
    SBinder,
    SBool,
    SCmp,
    SCoe,
    SDef,
    SExpr,
    SIte,
    SLambda,
    SLet,
    SLogic,
    SName,
    SNeg,
    SNot,
    SNum,
    SPow,
    SQuant,
    SSum,
    SType,
    TFin,
    TProp,
    TScalar,
    surface_names,
)

BUILTINS = {"abs": 1, "min": 2, "max": 2, "Not": 1, "Finset.sum": 2, "Fin.val": 1}
RANGE_NAMES = ("Finset.range", "range")
UNIV_NAMES = ("Finset.univ", "univ")
_FIN_FIELDS = ("val",)  # `i.val`: the ℕ value of `i : Fin n`
_ARITH_NODES = (SBin, SNeg, SPow, SNum)
_PROP_NODES = (SCmp, SNot, SLogic, SQuant, SBool)


@dataclass(eq=False)
class MetaVar:
    """The unknown type of a binder written without one; filled in by the first pass."""

    name: str
    ty: Type | None = None
    seen_poly: bool = False  # used in a numeric tree whose type was still unknown
    seen_literal: bool = False  # … which had a numeric literal (Lean then defaults to ℕ)
    seen_neg: bool = False  # … which had a negation (Lean's `Neg ℤ` default instance: ℤ)
    seen_decimal: bool = False  # … which had a decimal literal (`OfScientific Float`: Float)


Binding = Type | MetaVar
Scope = dict[str, Binding]


@dataclass
class _Call:
    """A resolved call of a definition: its arguments in parameter order and its type."""

    args: tuple[Expr, ...]
    ty: Type


@dataclass
class Elaborator:
    """Elaborates surface nodes against ``definitions``; ``source`` is the text (for errors)."""

    definitions: Mapping[str, Definition]
    source: str = ""
    used: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ helpers

    def error(self, where: Pos | Any, message: str) -> StatementError:
        pos = where if isinstance(where, Pos) else getattr(where, "pos", Pos())
        return StatementError(message, line=pos.line, column=pos.column, source=self.source)

    def lookup_def(self, name: str) -> Definition | None:
        if name in self.definitions:
            return self.definitions[name]
        if "." in name:
            short = name.rsplit(".", 1)[1]
            if short in self.definitions:
                return self.definitions[short]
        return None

    def unknown(self, node: SName, scope: Scope) -> StatementError:
        known = list(scope) + list(self.definitions) + list(BUILTINS)
        close = difflib.get_close_matches(node.name, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return self.error(node, f"unknown identifier '{node.name}'{hint}")

    def resolve(self, node: SName, scope: Scope) -> Binding | Definition | str:
        """What a name denotes: a local (type or metavariable), a definition, or a builtin."""
        if node.name in scope:
            return scope[node.name]
        field = self.fin_field(node, scope)
        if field is not None:
            return NAT
        d = self.lookup_def(node.name)
        if d is not None:
            return d
        if node.name in BUILTINS:
            return node.name
        raise self.unknown(node, scope)

    def fin_field(self, node: SName, scope: Scope) -> Var | None:
        """``i.val`` for a local ``i : Fin n``: the variable ``i`` (its value is a ℕ)."""
        head, _, field = node.name.rpartition(".")
        if field in _FIN_FIELDS and head in scope:
            bound = scope[head]
            t = bound.ty if isinstance(bound, MetaVar) else bound
            if isinstance(t, FinT):
                return Var(head, t)
            raise self.error(node, f"'{node.name}': {head} is not a Fin value")
        return None

    # ------------------------------------------------------------------ types

    def elab_type(self, t: SType, scope: Scope, *, allow_prop: bool = False) -> Type:
        if isinstance(t, TScalar):
            return Scalar(t.num)
        if isinstance(t, TProp):
            if not allow_prop:
                raise self.error(t, "variables of type Prop are not supported")
            return PROP
        if isinstance(t, TFin):
            return FinT(self.elab(t.size, scope, NAT))
        return Arrow(
            self.elab_type(t.dom, scope), self.elab_type(t.cod, scope, allow_prop=allow_prop)
        )

    # ------------------------------------------------------------------ inference (pure)

    def infer(self, s: SExpr, scope: Scope) -> Type | None:
        """The type of ``s`` without elaborating it; ``None`` for a polymorphic number."""
        if isinstance(s, SNum):
            return None
        if isinstance(s, _PROP_NODES):
            return PROP
        if isinstance(s, SCoe):
            return None  # `↑e` takes the type its context expects
        if isinstance(s, (SBin, SNeg, SPow)):
            leaves: list[SExpr] = []
            _collect_leaves(s, leaves)
            typed = [(leaf, t) for leaf in leaves if (t := self.infer(leaf, scope)) is not None]
            return self.tree_type(None, typed)
        if isinstance(s, SName):
            r = self.resolve(s, scope)
            if isinstance(r, MetaVar):
                return r.ty
            if isinstance(r, Definition):
                return self.call(r, [], s, scope, build=False).ty
            if isinstance(r, str):
                raise self.error(s, f"'{s.name}' needs {BUILTINS[r]} argument(s)")
            return r
        if isinstance(s, SAbs):
            return self.infer(s.arg, scope)
        if isinstance(s, SIte):
            # `ite c t e : α`: α is fixed by the first branch whose type is known (Lean
            # elaborates the arguments in order; a numeral waits for the other branch)
            return first_known(self.infer(b, scope) for b in (s.then, s.orelse))
        if isinstance(s, SAscribe):
            return self.elab_type(s.ty, scope, allow_prop=True)
        if isinstance(s, SSum):
            inner: Scope = {**scope, s.binder.name: MetaVar(s.binder.name)}
            if s.over is not None:
                inner[s.binder.name] = NAT
            elif s.binder.ty is not None:
                inner[s.binder.name] = self.elab_type(s.binder.ty, scope)
            return self.infer(s.body, inner)
        if isinstance(s, SLet):
            if s.ty is not None:
                vt: Type | None = self.elab_type(s.ty, scope)
            else:
                vt = self.infer(s.value, scope)
            # an untyped numeral value stays open (a metavariable) until its uses fix it
            binding: Binding = vt if vt is not None else MetaVar(s.name)
            return self.infer(s.body, {**scope, s.name: binding})
        if isinstance(s, SLambda):
            if s.binder.ty is None:
                raise self.error(s, "cannot infer the type of this function; annotate its binder")
            dom = self.elab_type(s.binder.ty, scope)
            cod = self.infer(s.body, {**scope, s.binder.name: dom})
            return Arrow(dom, cod if cod is not None else NAT)
        if isinstance(s, SApp):
            return self.infer_app(s, scope)
        raise self.error(s, f"unsupported expression {type(s).__name__}")  # pragma: no cover

    def infer_app(self, s: SApp, scope: Scope) -> Type | None:
        head = s.fn
        if isinstance(head, SName):
            r = self.resolve(head, scope)
            if isinstance(r, str):
                self.check_arity(r, s)
                if r == "Not":
                    return PROP
                if r == "Finset.sum":
                    lam = s.args[1]
                    if isinstance(lam, SLambda):
                        inner = {**scope, lam.binder.name: MetaVar(lam.binder.name)}
                        return self.infer(lam.body, inner)
                    return codomain(self.infer(lam, scope), 1)
                if r == "Fin.val":
                    return NAT
                # min/max/abs: α is fixed by the first argument whose type is known
                return first_known(self.infer(a, scope) for a in s.args)
            if isinstance(r, Definition):
                t = self.call(r, list(s.args), s, scope, build=False).ty
                n_explicit = sum(not p.implicit for p in r.params)
                return self.peel_arrows(t, SApp(s.fn, s.args[n_explicit:], s.pos))
            if isinstance(r, MetaVar) and r.ty is None:
                raise self.cannot_apply(head)
        if isinstance(head, SLambda) and head.binder.ty is None and s.args:
            dom = self.infer(s.args[0], scope)
            dom = dom or NAT
            cod = self.infer(head.body, {**scope, head.binder.name: dom})
            return self.peel_arrows(Arrow(dom, cod or NAT), s)
        ft = self.infer(head, scope)
        return self.peel_arrows(ft, s)

    def peel_arrows(self, ft: Type | None, s: SApp) -> Type:
        for arg in s.args:
            if not isinstance(ft, Arrow):
                raise self.error(
                    arg, f"too many arguments: {show_surface(s.fn)} is not a function here"
                )
            ft = ft.cod
        assert ft is not None
        return ft

    def cannot_apply(self, head: SName) -> StatementError:
        return self.error(
            head,
            f"cannot infer the type of {head.name} (it is applied to arguments); "
            f"give it a type such as ({head.name} : ℝ → ℝ)",
        )

    def check_arity(self, builtin: str, s: SApp) -> None:
        want = BUILTINS[builtin]
        if len(s.args) != want:
            raise self.error(
                s, f"'{builtin}' expects {want} argument(s), but is given {len(s.args)}"
            )

    # ------------------------------------------------------------------ elaboration

    def elab(self, s: SExpr, scope: Scope, expected: Type | None = None) -> Expr:
        """Elaborate ``s``; with ``expected`` the result has exactly that type.

        As Lean's ``elabTermEnsuringType``: the expected type is known *before* ``s`` is
        elaborated and flows into it (a numeric tree starts its maximum type from it; ``min``,
        ``max``, ``|·|``, ``if``, ``∑``, ``let`` pass it to their parts), and only then, if the
        result's type is still smaller, a coercion ``↑`` is inserted."""
        if isinstance(s, _PROP_NODES):
            e = self.elab_prop(s, scope)
            self.expect(s, e, expected)
            return e
        numeric = isinstance(expected, (Scalar, FinT))
        if expected is not None and not numeric:
            if isinstance(s, _ARITH_NODES):
                raise self.error(
                    s, f"type mismatch: a number is used where {show_type(expected)} is expected"
                )
            return self.elab_general(s, scope, expected)
        if isinstance(s, _ARITH_NODES):
            return self.elab_tree([s], scope, expected)[0]
        if isinstance(s, SCoe):
            return self.elab_coe(s, scope, expected)
        if expected is None:
            t = self.infer(s, scope)
            if t is not None and not isinstance(t, (Scalar, FinT)):
                return self.elab_general(s, scope, None)
            # a lone numeric leaf: elaborated as a one-leaf tree (defaulting, metavariables)
            return self.elab_tree([s], scope, None)[0]
        if isinstance(s, SName) and isinstance(m := scope.get(s.name), MetaVar) and m.ty is None:
            m.ty = expected
            return _var(s.name, expected)
        return self.elab_general(s, scope, expected)

    def expect(self, s: Any, e: Expr, expected: Type | None) -> None:
        if expected is not None and e.ty != expected:
            raise self.mismatch(s, e.ty, expected)

    def mismatch(self, s: Any, got: Type, expected: Type) -> StatementError:
        return self.error(
            s,
            f"type mismatch: {show_surface(s)} has type {show_type(got)} "
            f"but {show_type(expected)} is expected",
        )

    def coerce(self, s: Any, e: Expr, target: Type | None) -> Expr:
        """``e`` at type ``target``, with Lean's coercion ``↑`` where its type is smaller
        (ℕ → ℤ → ℚ → ℝ; ``Fin n`` → ℕ by ``Fin.val``, then on up)."""
        if target is None or e.ty == target:
            return e
        if isinstance(target, Scalar):
            if isinstance(e.ty, FinT):
                e = Cast(e, NAT)
                return e if target == NAT else Cast(e, target)
            if isinstance(e.ty, Scalar) and e.ty.num.rank < target.num.rank:
                return Cast(e, target)
        if isinstance(target, FinT) and isinstance(e.ty, Scalar) and e.ty.num is Num.NAT:
            raise self.error(
                s, f"type mismatch: {show_surface(s)} has type ℕ but {show_type(target)} is "
                "expected; HMS does not cast ℕ into Fin (Lean would reduce it modulo the size)",
            )  # fmt: skip
        raise self.mismatch(s, e.ty, target)

    def elab_coe(self, s: SCoe, scope: Scope, expected: Type | None) -> Expr:
        """``↑e``: ``e`` elaborated on its own, then coerced to the type the context expects."""
        if expected is None:
            raise self.untyped_coe(s)
        return self.coerce(s, self.elab(s.arg, scope, None), expected)

    def untyped_coe(self, s: SCoe) -> StatementError:
        return self.error(
            s,
            f"cannot tell what type ↑{show_atom(s.arg)} coerces to; "
            f"write (↑{show_atom(s.arg)} : ℝ)",
        )

    # ----- numeric trees (Lean's binop% / binrel%)

    def tree_type(
        self, expected: Type | None, typed: Sequence[tuple[SExpr, Type]]
    ) -> Scalar | FinT | None:
        """The type of a ``binop%`` tree: the maximum, in order, of the expected type and the
        leaf types (``Lean.Elab.Extra``'s ``analyze``: it starts from the expected type, and a
        leaf that the current maximum coerces to becomes the maximum)."""
        top: Scalar | FinT | None = expected if isinstance(expected, (Scalar, FinT)) else None
        for leaf, t in typed:
            if not isinstance(t, (Scalar, FinT)):
                if isinstance(t, PropT):
                    raise self.error(
                        leaf, f"a proposition ({show_surface(leaf)}) is used as a number"
                    )
                raise self.error(
                    leaf, f"{show_surface(leaf)} has type {show_type(t)}, but a number is expected"
                )
            if top is None or t == top:
                top = t if top is None else top
            elif isinstance(top, Scalar) and isinstance(t, Scalar):
                top = t if t.num.rank > top.num.rank else top
            elif isinstance(top, FinT) and isinstance(t, Scalar):
                if t.num in (Num.NAT, Num.INT) and has_nezero(top.size):
                    raise self.error(
                        leaf, f"{show_surface(leaf)} : {show_type(t)} is mixed with "
                        f"{show_type(top)} values: Lean would cast it into {show_type(top)} "
                        "(modulo the size); HMS does not — write (i : ℕ) or ↑i for the Fin values",
                    )  # fmt: skip
                top = t  # Fin n ↑ ℕ ↑ …: the Fin leaves are coerced up
            elif isinstance(top, FinT) and isinstance(t, FinT):
                raise self.error(
                    leaf,
                    f"{show_surface(leaf)} has type {show_type(t)} "
                    f"but {show_type(top)} is expected",
                )
            # else: top is a Scalar and t a Fin: the Fin leaf is coerced up to top
        return top

    def elab_tree(self, roots: Sequence[SExpr], scope: Scope, expected: Type | None) -> list[Expr]:
        """Elaborate one or two (a comparison) arithmetic trees at their common maximal type.

        Leaves are elaborated *without* the expected type (``binop%``); numerals, ``↑e`` and
        other leaves whose type is not yet known take the tree's type afterwards."""
        leaves: list[SExpr] = []
        for r in roots:
            _collect_leaves(r, leaves)
        types: dict[int, Type | None] = {}
        typed: list[tuple[SExpr, Type]] = []
        for leaf in leaves:
            t = self.infer(leaf, scope)
            types[id(leaf)] = t
            if t is not None:
                typed.append((leaf, t))
        top = self.tree_type(expected, typed)
        if top is None:
            neg, decimal = False, False
            for r in roots:
                n, d = self.group_marks(r, scope)
                neg, decimal = neg or n, decimal or d
            metas = [m for r in roots for m in self.unassigned_metas(r, scope)]
            if metas:  # first pass of a binder-type inference: decide later
                has_literal = any(isinstance(leaf, SNum) for leaf in leaves)
                for m in metas:
                    m.seen_poly = True
                    m.seen_literal |= has_literal
                    m.seen_neg |= neg
                    m.seen_decimal |= decimal
                return [Lit(Fraction(0), NAT) for _ in roots]
            coe = next((leaf for leaf in leaves if isinstance(leaf, SCoe)), None)
            if coe is not None:
                raise self.untyped_coe(coe)
            top = self.default_type(roots, neg=neg, decimal=decimal)
        if isinstance(expected, (Scalar, FinT)) and top != expected:
            bad, got = next(
                ((leaf, t) for leaf, t in typed if t != expected and above(t, expected)),
                (roots[0], top),
            )
            raise self.mismatch(bad, got, expected)
        return [self.build(r, scope, top, types) for r in roots]

    def group_marks(self, s: SExpr, scope: Scope) -> tuple[bool, bool]:
        """Does the untyped group of ``s`` (the parts that share its still-unknown type) hold a
        negation, a decimal literal?  These pick Lean's default instance."""
        if isinstance(s, SNum):
            return False, s.decimal
        if isinstance(s, SNeg):
            return True, self.group_marks(s.arg, scope)[1]
        parts: list[SExpr] = []
        if isinstance(s, SBin):
            parts = [s.left, s.right]
        elif isinstance(s, SPow):
            parts = [s.base]
        elif isinstance(s, SIte):
            parts = [s.then, s.orelse]
        elif isinstance(s, SAbs):
            parts = [s.arg]
        elif isinstance(s, SApp) and isinstance(s.fn, SName) and s.fn.name in ("min", "max", "abs"):
            parts = list(s.args)
        elif isinstance(s, SLet):
            parts = [s.body]  # the value is its own group; through the name it is typed
        elif isinstance(s, SSum):
            parts = [s.body]
        neg = decimal = False
        for part in parts:
            if self.infer_quiet(part, scope) is None:
                n, d = self.group_marks(part, scope)
                neg, decimal = neg or n, decimal or d
        return neg, decimal

    def infer_quiet(self, s: SExpr, scope: Scope) -> Type | None:
        try:
            return self.infer(s, scope)
        except StatementError:
            return None

    def first_decimal(self, roots: Sequence[SExpr]) -> SNum:
        """The first decimal literal of ``roots`` in source order."""
        for root in roots:
            for s in nodes(root):
                if isinstance(s, SNum) and s.decimal:
                    return s
        raise AssertionError("no decimal literal")  # pragma: no cover

    def build(
        self, s: SExpr, scope: Scope, ty: Scalar | FinT, types: dict[int, Type | None]
    ) -> Expr:
        if isinstance(s, SBin):
            if s.op == "%" and isinstance(ty, Scalar) and ty.num in (Num.RAT, Num.REAL):
                raise self.error(s, f"'%' is only defined on ℕ and ℤ, not on {show_type(ty)}")
            left = self.build(s.left, scope, ty, types)
            return BinOp(s.op, left, self.build(s.right, scope, ty, types), ty)
        if isinstance(s, SNeg):
            if ty == NAT:
                raise self.error(
                    s, f"ℕ has no negation: {show_surface(s)} is a natural number; "
                    "cast it, e.g. -(x : ℤ)",
                )  # fmt: skip
            return Neg(self.build(s.arg, scope, ty, types), ty)
        if isinstance(s, SPow):
            if isinstance(ty, FinT):
                raise self.error(s, f"'^' on {show_type(ty)} is not supported; use (i : ℕ)")
            return Pow(
                self.build(s.base, scope, ty, types), self.exponent(s.exp, scope), ty, pos=s.pos
            )
        return self.leaf(s, scope, ty, types.get(id(s), self.infer(s, scope)))

    def exponent(self, s: SExpr, scope: Scope) -> Expr:
        t = numeric_type(self.infer(s, scope))
        if t is not None and t.num is not Num.NAT:
            raise self.error(
                s, f"the exponent of '^' must be a natural number (ℕ), not {show_type(t)}"
            )
        if isinstance(s, SNum) and s.decimal:
            raise self.error(s, "the exponent of '^' must be a natural number (ℕ)")
        return self.elab(s, scope, NAT)

    def leaf(self, s: SExpr, scope: Scope, ty: Scalar | FinT, natural: Type | None) -> Expr:
        """A leaf of a numeric tree at the tree's type ``ty``, coerced up from its own type."""
        if isinstance(s, SNum):
            if isinstance(ty, FinT):
                return self.fin_numeral(s, ty)
            if s.decimal and ty.num in (Num.NAT, Num.INT):
                raise self.error(
                    s,
                    f"decimal literal {s.text} cannot have type {show_type(ty)}; "
                    "give the expression a "
                    f"field type, e.g. ({s.text} : ℝ)",
                )  # fmt: skip
            return Lit(s.value, ty)
        if isinstance(s, SCoe):
            return self.elab_coe(s, scope, ty)
        if isinstance(s, SName) and isinstance(m := scope.get(s.name), MetaVar) and m.ty is None:
            m.ty = ty
            return _var(s.name, ty)
        if natural is None:
            return self.elab_general(s, scope, ty)
        return self.coerce(s, self.elab_general(s, scope, natural), ty)

    def fin_numeral(self, s: SNum, ty: FinT) -> Expr:
        """A numeral of type ``Fin n``: ``OfNat (Fin n) k`` needs ``NeZero n`` (Lean's
        ``Fin.instOfNat``) and denotes ``k % n`` (``(5 : Fin 3) = 2``)."""
        if s.decimal:
            raise self.error(s, f"decimal literal {s.text} cannot have type {show_type(ty)}")
        if isinstance(ty.size, Lit) and ty.size.value == 0:
            raise self.error(s, f"Fin 0 has no elements, so {s.text} cannot have type Fin 0")
        if not has_nezero(ty.size):
            raise self.error(
                s, f"the numeral {s.text} of type {show_type(ty)} needs an instance NeZero "
                f"({show_expr(ty.size)}), which Lean cannot find for a variable size; "
                "write the index as a Fin variable or use a size such as n + 1",
            )  # fmt: skip
        return Lit(s.value, ty)

    def unassigned_metas(self, s: Any, scope: Scope) -> list[MetaVar]:
        """Metavariables of ``scope`` still unknown and mentioned in ``s`` (approximately)."""
        out: list[MetaVar] = []
        for name in surface_names(s):
            m = scope.get(name)
            if isinstance(m, MetaVar) and m.ty is None and m not in out:
                out.append(m)
        return out

    # ----- propositions

    def elab_prop(self, s: SExpr, scope: Scope) -> Expr:
        if isinstance(s, SBool):
            return BoolLit(s.value)
        if isinstance(s, SNot):
            return Not(self.elab(s.arg, scope, PROP))
        if isinstance(s, SLogic):
            return Logic(s.op, self.elab(s.left, scope, PROP), self.elab(s.right, scope, PROP))
        if isinstance(s, SCmp):
            left, right = self.elab_tree([s.left, s.right], scope, None)
            return Compare(s.op, left, right)
        if isinstance(s, SQuant):
            return self.binder(
                s.binder, scope, lambda sc: self.elab(s.body, sc, PROP),
                lambda name, dom, body: Quant(s.kind, name, dom, body),
            )  # fmt: skip
        raise self.error(s, "a proposition is expected")  # pragma: no cover

    def binder(
        self,
        b: SBinder,
        scope: Scope,
        body: Callable[[Scope], Expr],
        make: Callable[[str, Type, Expr], Expr],
        default: Type | None = None,
    ) -> Expr:
        """Elaborate a binder's body; an unwritten binder type is inferred by a first pass."""
        if b.ty is not None:
            dom = self.elab_type(b.ty, scope)
        elif default is not None:
            dom = default
        else:
            dom = self.infer_binder(b, scope, body)
        return make(b.name, dom, body({**scope, b.name: dom}))

    def infer_binder(self, b: SBinder, scope: Scope, body: Callable[[Scope], Expr]) -> Type:
        meta = MetaVar(b.name)
        body({**scope, b.name: meta})
        if meta.ty is not None:
            return meta.ty
        if meta.seen_decimal:
            raise self.error(
                b, f"{b.name} would be a Float (a decimal literal without a type is a Float in "
                f"Lean); HMS has no Float: write ∀ ({b.name} : ℝ), …",
            )  # fmt: skip
        if meta.seen_poly and (meta.seen_literal or meta.seen_neg):
            # Lean's default instances: `Neg ℤ` (mid) outranks the numerals' `OfNat ℕ` (low)
            return INT if meta.seen_neg else NAT
        raise self.error(
            b, f"cannot infer the type of {b.name}; write it, e.g. ∀ ({b.name} : ℝ), …"
        )

    # ----- everything else (names, applications, abs, if, sums, let, fun, ascriptions)

    def elab_general(self, s: SExpr, scope: Scope, expected: Type | None) -> Expr:
        """Elaborate a non-tree node; ``expected`` flows into it, and the result is coerced to
        it (``↑``) where its own type is smaller."""
        field = self.fin_field(s, scope) if isinstance(s, SName) else None
        if field is not None:
            return self.coerce(s, Cast(field, NAT), expected)
        if isinstance(s, SName):
            r = self.resolve(s, scope)
            if isinstance(r, MetaVar):
                if r.ty is None:
                    if expected is None:
                        raise self.error(s, f"cannot infer the type of {s.name}")
                    r.ty = expected
                e: Expr = _var(s.name, r.ty)
            elif isinstance(r, Definition):
                c = self.call(r, [], s, scope, build=True)
                e = Call(r.name, c.args, c.ty)
            elif isinstance(r, str):
                raise self.error(s, f"'{s.name}' needs {BUILTINS[r]} argument(s)")
            else:
                e = _var(s.name, r)
        elif isinstance(s, SApp):
            e = self.elab_app(s, scope, expected)
        elif isinstance(s, SAbs):
            abs_ty = self.numeric_expected(s, expected)
            if abs_ty == NAT:
                raise self.error(s, "|·| is not defined on ℕ; cast the argument, e.g. |(x : ℤ)|")
            e = Builtin("abs", (self.elab(s.arg, scope, abs_ty),), abs_ty)
        elif isinstance(s, SIte):
            cond = self.elab(s.cond, scope, PROP)
            ty = expected if expected is not None else self.infer(s, scope)
            if ty is None:
                ty = self.default_numeric(s, scope)
            e = Ite(cond, self.elab(s.then, scope, ty), self.elab(s.orelse, scope, ty), ty)
        elif isinstance(s, SSum):
            e = self.elab_sum(s, scope, self.sum_type(s, expected))
        elif isinstance(s, SLet):
            if s.ty is not None:
                value = self.elab(s.value, scope, self.elab_type(s.ty, scope))
            elif self.infer_quiet(s.value, scope) is None:
                value = self.elab(s.value, scope, self.let_type(s, scope, expected))
            else:
                value = self.elab(s.value, scope, None)
            body = self.elab(s.body, {**scope, s.name: value.ty}, expected)
            e = Let(s.name, value, body, body.ty)
        elif isinstance(s, SLambda):
            e = self.elab_lambda(s, scope, expected)
        elif isinstance(s, SAscribe):
            ty = self.elab_type(s.ty, scope, allow_prop=True)
            e = self.elab(s.expr, scope, ty)
        else:
            return self.elab(s, scope, expected)
        return self.coerce(s, e, expected)

    def let_type(self, s: SLet, scope: Scope, expected: Type | None) -> Type:
        """The type of ``let x := v`` when ``v`` is an untyped numeral group: as in Lean, it is
        a metavariable until the body fixes it (``let x := 2 - 3; (x : ℝ) < 0`` subtracts in
        ℝ); only if the body leaves it open do the default instances decide."""
        meta = MetaVar(s.name)
        try:
            self.elab(s.body, {**scope, s.name: meta}, expected)
        except StatementError:
            meta.ty = None  # the second pass reports the error, with the type decided below
        if meta.ty is not None:
            return meta.ty
        neg, decimal = self.group_marks(s.value, scope)
        return self.default_type(
            [s.value, s.body], neg=neg or meta.seen_neg, decimal=decimal or meta.seen_decimal
        )

    def default_numeric(self, s: SExpr, scope: Scope) -> Scalar:
        """The type Lean's default instances give the untyped numeric group ``s``."""
        neg, decimal = self.group_marks(s, scope)
        return self.default_type([s], neg=neg, decimal=decimal)

    def default_type(self, roots: Sequence[SExpr], *, neg: bool, decimal: bool) -> Scalar:
        """Lean's default instances for a group whose type nothing fixed: a decimal makes it a
        ``Float`` (``OfScientific Float``; HMS has none: an error at the decimal), a negation
        ℤ (``Neg ℤ``, priority mid, outranks ``OfNat ℕ``, low), else ℕ."""
        if decimal:
            dec = self.first_decimal(roots)
            raise self.error(
                dec, f"the decimal literal {show_surface(dec)} has no type here, so Lean makes "
                "it a Float (its `OfScientific Float` default instance); HMS has no Float — give "
                f"it a type, e.g. ({show_surface(dec)} : ℝ)",
            )  # fmt: skip
        return INT if neg else NAT

    def sum_type(self, s: SExpr, expected: Type | None) -> Scalar:
        """The type ``M`` of ``Finset.sum s f : M``; a sum of ``Fin`` values would add modulo
        ``n`` in Lean (``∑ i : Fin 3, i = 0``), which HMS does not support."""
        if isinstance(expected, FinT):
            raise self.error(
                s, f"this sum adds {show_type(expected)} values, which Lean does modulo the "
                "size; HMS does not support that — sum (i : ℕ) or give the sum a type",
            )  # fmt: skip
        return self.numeric_expected(s, expected)

    def numeric_expected(self, s: SExpr, expected: Type | None) -> Scalar:
        if expected is None:
            return NAT
        if not isinstance(expected, Scalar):
            raise self.error(
                s, f"type mismatch: a number is used where {show_type(expected)} is expected"
            )
        return expected

    def elab_sum(self, s: SSum, scope: Scope, ty: Scalar) -> Expr:
        b = s.binder
        over = s.over
        if over is not None and isinstance(over, SName) and over.name in UNIV_NAMES:
            over = None
        if over is not None:
            if not (
                isinstance(over, SApp) and isinstance(over.fn, SName)
                and over.fn.name in RANGE_NAMES and len(over.args) == 1
            ):  # fmt: skip
                raise self.error(over, "only `Finset.range n` and `Finset.univ` can be summed over")
            if b.ty is not None and self.elab_type(b.ty, scope) != NAT:
                raise self.error(b, f"the index {b.name} of `Finset.range` has type ℕ")
            bound = self.elab(over.args[0], scope, NAT)
            body = self.elab(s.body, {**scope, b.name: NAT}, ty)
            return Sum(b.name, Range(bound), body, ty, pos=s.pos)

        def make(name: str, dom: Type, body: Expr) -> Expr:
            if not isinstance(dom, FinT):
                raise self.error(
                    b, f"cannot sum over {name} : {show_type(dom)}; sum over `Fin n` or use "
                    f"`∑ {name} in Finset.range n, …`",
                )  # fmt: skip
            return Sum(name, dom, body, ty, pos=s.pos)

        return self.binder(b, scope, lambda sc: self.elab(s.body, sc, ty), make)

    def elab_lambda(self, s: SLambda, scope: Scope, expected: Type | None) -> Expr:
        b = s.binder
        if expected is None:
            if b.ty is None:
                raise self.error(
                    s, f"cannot infer the type of {b.name}; write fun ({b.name} : ℝ) => …"
                )
            dom = self.elab_type(b.ty, scope)
            body = self.elab(s.body, {**scope, b.name: dom}, None)
            return Lambda(b.name, dom, body, Arrow(dom, body.ty))
        if not isinstance(expected, Arrow):
            raise self.error(
                s, f"type mismatch: a function is used where {show_type(expected)} is expected"
            )
        dom = expected.dom
        if b.ty is not None:
            written = self.elab_type(b.ty, scope)
            if written != dom:
                raise self.error(
                    b,
                    f"type mismatch: {b.name} has type {show_type(written)} "
                    f"but {show_type(dom)} is expected",
                )
        body = self.elab(s.body, {**scope, b.name: dom}, expected.cod)
        return Lambda(b.name, dom, body, expected)

    def elab_app(self, s: SApp, scope: Scope, expected: Type | None) -> Expr:
        head = s.fn
        if isinstance(head, SName):
            r = self.resolve(head, scope)
            if isinstance(r, str):
                return self.elab_builtin(r, s, scope, expected)
            if isinstance(r, Definition):
                c = self.call(r, list(s.args), s, scope, build=True)
                return self.extra_args(r, c, s, scope)
            if isinstance(r, MetaVar) and r.ty is None:
                raise self.cannot_apply(head)
        if isinstance(head, SLambda) and head.binder.ty is None and s.args:
            # `(fun x => body) a`: the binder gets the type of the argument, as in Lean
            arg = self.elab(s.args[0], scope, None)
            body = self.elab(head.body, {**scope, head.binder.name: arg.ty}, None)
            lam = Lambda(head.binder.name, arg.ty, body, Arrow(arg.ty, body.ty))
            return self.apply(App(lam, arg, body.ty), s.args[1:], scope, head)
        fn = self.elab(head, scope, None)
        return self.apply(fn, s.args, scope, head)

    def extra_args(self, d: Definition, c: _Call, s: SApp, scope: Scope) -> Expr:
        n_explicit = sum(not p.implicit for p in d.params)
        e: Expr = Call(d.name, c.args, c.ty)
        return self.apply(e, s.args[n_explicit:], scope, s.fn) if len(s.args) > n_explicit else e

    def apply(self, fn: Expr, args: Sequence[SExpr], scope: Scope, head: SExpr) -> Expr:
        for a in args:
            if not isinstance(fn.ty, Arrow):
                raise self.error(
                    a,
                    f"too many arguments: {show_surface(head)} has type {show_type(fn.ty)}, "
                    "not a function",
                )
            fn = App(
                fn,
                self.elab_arg(a, scope, fn.ty.dom, f"argument of {show_surface(head)}"),
                fn.ty.cod,
            )
        return fn

    def elab_arg(self, a: SExpr, scope: Scope, ty: Type, what: str) -> Expr:
        try:
            return self.elab(a, scope, ty)
        except StatementError as exc:
            if exc.message.startswith("type mismatch") and "(in " not in exc.message:
                raise StatementError(
                    f"{exc.message} (in {what})", line=exc.line, column=exc.column,
                    source=self.source,
                ) from None  # fmt: skip
            raise

    def elab_builtin(self, name: str, s: SApp, scope: Scope, expected: Type | None) -> Expr:
        self.check_arity(name, s)
        if name == "Not":
            return Not(self.elab(s.args[0], scope, PROP))
        if name == "Finset.sum":
            over, lam = s.args
            if not isinstance(lam, SLambda):
                raise self.error(lam, "Finset.sum expects a function `fun i => …` here")
            return self.elab_sum(
                SSum(lam.binder, over, lam.body, s.pos), scope, self.sum_type(s, expected)
            )
        if name == "Fin.val":
            arg = self.elab(s.args[0], scope, None)
            if not isinstance(arg.ty, FinT):
                raise self.error(s.args[0], f"Fin.val expects a Fin value, not {show_type(arg.ty)}")
            return Cast(arg, NAT)
        if isinstance(expected, FinT) and name in ("min", "max"):
            ty: Scalar | FinT = expected
        else:
            ty = self.numeric_expected(s, expected)
        if name == "abs" and ty == NAT:
            raise self.error(s, "abs is not defined on ℕ; cast the argument, e.g. abs (x : ℤ)")
        return Builtin(name, tuple(self.elab(a, scope, ty) for a in s.args), ty)

    # ----- calls of definitions

    def call(
        self, d: Definition, args: list[SExpr], node: Any, scope: Scope, *, build: bool
    ) -> _Call:
        """Match ``args`` to the explicit parameters of ``d``, inferring the implicit ones.

        With ``build=False`` only the result type is computed (arguments are inferred, not
        elaborated, unless a later type depends on them).
        """
        explicit = [p for p in d.params if not p.implicit]
        if len(args) < len(explicit):
            sig = " ".join(p.name for p in explicit)
            raise self.error(
                node, f"{d.name} expects {len(explicit)} argument(s) ({d.name} {sig}), "
                f"but is given {len(args)}",
            )  # fmt: skip
        if build:
            self.used.add(d.name)
        implicit = {p.name for p in d.params if p.implicit}
        subst: dict[str, Expr] = {}
        deferred: list[tuple[int, Param, SExpr]] = []
        for i, (p, a) in enumerate(zip(explicit, args, strict=False)):
            want = subst_type(p.ty, subst)
            if mentions_any(want, implicit - set(subst)):
                if isinstance(a, SLambda):
                    deferred.append((i, p, a))
                    continue
                got = self.infer(a, scope)
                if got is not None:
                    unify(want, got, implicit, subst)
                want = subst_type(p.ty, subst)
            if build or depends(d, p.name):
                subst[p.name] = self.call_arg(d, i, p, a, want, scope)
        for i, p, a in deferred:
            want = subst_type(p.ty, subst)
            if mentions_any(want, implicit - set(subst)) and build:
                missing = sorted(type_names(want) & (implicit - set(subst)))
                raise self.error(
                    a, f"cannot infer the implicit argument {', '.join(missing)} of {d.name} "
                    "from this function; give its binder a type",
                )  # fmt: skip
            if build:
                subst[p.name] = self.call_arg(d, i, p, a, want, scope)
        missing = [p.name for p in d.params if p.implicit and p.name not in subst]
        if missing and build:
            raise self.error(
                node, f"cannot infer the implicit argument {', '.join(missing)} of {d.name}"
            )
        ret = subst_type(d.ret, subst)
        if not build:
            return _Call((), ret)
        return _Call(tuple(subst[p.name] for p in d.params), ret)

    def call_arg(self, d: Definition, i: int, p: Param, a: SExpr, want: Type, scope: Scope) -> Expr:
        return self.elab_arg(a, scope, want, f"argument {i + 1} ({p.name}) of {d.name}")


def _var(name: str, ty: Type) -> Expr:
    return Var(name, ty)


def _collect_leaves(s: SExpr, out: list[SExpr]) -> None:
    if isinstance(s, SBin):
        _collect_leaves(s.left, out)
        _collect_leaves(s.right, out)
    elif isinstance(s, SNeg):
        _collect_leaves(s.arg, out)
    elif isinstance(s, SPow):
        _collect_leaves(s.base, out)
    else:
        out.append(s)


def elaborate_definition(
    sdef: SDef, definitions: Mapping[str, Definition], *, doc: str = "", source: str = ""
) -> Definition:
    """Elaborate a parsed ``def`` against the definitions before it."""
    if sdef.name in definitions or sdef.name in BUILTINS:
        raise StatementError(
            f"'{sdef.name}' is defined twice", line=sdef.pos.line, column=sdef.pos.column,
            source=source,
        )  # fmt: skip
    el = Elaborator(definitions, source)
    scope: Scope = {}
    params: list[Param] = []
    for p in sdef.params:
        ty = el.elab_type(p.ty, scope)
        scope[p.name] = ty
        params.append(Param(p.name, ty, p.implicit))
    ret = el.elab_type(sdef.ret, scope, allow_prop=True) if sdef.ret is not None else None
    body = el.elab(sdef.body, scope, ret)
    return Definition(sdef.name, tuple(params), body.ty, body, doc)
