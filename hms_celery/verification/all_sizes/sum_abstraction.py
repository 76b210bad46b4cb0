"""Sum abstraction: Carathéodory's theorem reduces sums over ``Fin n`` to m points."""

from __future__ import annotations

from typing import Any

from .. import ast as A
from ..ast_walk import (
    binders,
    conjuncts,
    fresh_name,
    inline_calls,
    lit,
    map_expr,
    mentions,
    nodes,
    substitute,
)
from ..printer import show_expr, show_statement
from .argument import Argument, NotApplicable, Obligation


def _vector_cod(ty: A.Type, size: A.Var) -> A.Scalar | None:
    if isinstance(ty, A.Arrow) and ty.dom == A.FinT(size) and isinstance(ty.cod, A.Scalar):
        return ty.cod
    return None


class _SumAbstraction:
    def __init__(self, st: A.Statement, n: str) -> None:
        self.size = A.Var(n, A.NAT)
        self.index_dom = A.FinT(self.size)
        self.vectors: dict[str, A.Scalar] = {}
        self.scalars: list[A.Param] = []
        for p in st.variables:
            if p.name == n:
                continue
            cod = _vector_cod(p.ty, self.size)
            if cod is not None:
                self.vectors[p.name] = cod
            elif mentions(p.ty, {n}):
                raise NotApplicable(f"variable {p.name} : {p.ty} depends on {n} otherwise")
            else:
                self.scalars.append(p)
        self.names = {p.name for p in st.variables}
        written = self.names | binders((st.hypotheses, st.goal))
        if any(x[:1] in ("·", "∑") for x in written):
            # the placeholders below use these prefixes; a «quoted» user name could clash
            raise NotApplicable("a name starts with · or ∑")
        self.templates: list[A.Expr] = []  # the distinct per-point sum bodies
        self.shown: list[str] = []  # each one's first sum, as text

    # A per-point template: the body with ``v i`` replaced by the point variable ``·v``.
    def point_template(self, body: A.Expr, index: str) -> A.Expr:
        inner = binders(body)
        if inner & (self.names | {index}):
            raise NotApplicable("a binder inside shadows a variable or the index")
        if any(isinstance(x, A.Sum) for x in nodes(body)):
            raise NotApplicable("nested sums")
        if any(isinstance(x, A.Quant) and x.dom == self.index_dom for x in nodes(body)):
            raise NotApplicable(f"a quantifier over Fin {self.size.name} inside a sum")

        def point(x: Any) -> Any | None:
            if (
                isinstance(x, A.App)
                and isinstance(x.fn, A.Var)
                and x.fn.name in self.vectors
                and x.arg == A.Var(index, self.index_dom)
            ):
                return A.Var(f"·{x.fn.name}", self.vectors[x.fn.name])
            return None

        out = map_expr(body, point)
        if mentions(out, {index, self.size.name, *self.vectors}):
            raise NotApplicable(
                f"the index, {self.size.name} or a vector is used other than as `v {index}`"
            )
        # A per-point term may use only the scalars and the point: one bound further out
        # (`∀ c, ∑ i, c * w i`) would make the sums depend on it.
        allowed = {p.name for p in self.scalars} | {f"·{v}" for v in self.vectors}
        used = {x.name for x in nodes(out) if isinstance(x, A.Var) and x.name[:1] != "∑"}
        if not used <= allowed:  # (a per-index hypothesis may mention the sums: ∑k)
            raise NotApplicable("a per-index term uses a variable bound outside the sum")
        return out

    def sum_id(self, e: A.Sum) -> int:
        if e.domain != self.index_dom:
            where = (
                f"Finset.range ({show_expr(e.domain.bound)})"
                if isinstance(e.domain, A.Range)
                else str(e.domain)
            )
            raise NotApplicable(f"a sum over {where} (only Fin {self.size.name} is abstracted)")
        if e.ty != A.REAL:
            raise NotApplicable(f"a sum of type {e.ty} (only ℝ sums are abstracted)")
        t = self.point_template(e.body, e.var)
        if t not in self.templates:
            self.templates.append(t)
            self.shown.append(show_expr(e))
        return self.templates.index(t)

    def _sum_placeholder(self, x: Any) -> A.Expr | None:
        """A sum's placeholder ``Var('∑k')`` (replaced by its combination at the end)."""
        return A.Var(f"∑{self.sum_id(x)}", A.REAL) if isinstance(x, A.Sum) else None

    def lift(self, e: A.Expr) -> A.Expr:
        """``e`` with each sum replaced by its placeholder; no other use of a vector or n."""
        out = map_expr(e, self._sum_placeholder)
        if mentions(out, {self.size.name, *self.vectors}):
            raise NotApplicable(f"{self.size.name} or a vector is used outside a sum")
        return out

    def per_index(self, h: A.Expr) -> A.Expr | None:
        """``∀ i : Fin n, φ`` → the template of φ (its sums lifted), or None."""
        if not (isinstance(h, A.Quant) and h.kind == "forall" and h.dom == self.index_dom):
            return None
        body = map_expr(h.body, self._sum_placeholder)
        return self.point_template(body, h.var)


def sum_abstraction(st: A.Statement, n: str) -> Argument:
    """The Carathéodory reduction of ``st`` over the size ``n`` (see the module docstring)."""
    defs = st.definitions
    ab = _SumAbstraction(st, n)
    goal = ab.lift(inline_calls(st.goal, defs))
    general: list[A.Expr] = []
    per_index: list[A.Expr] = []
    dropped: list[str] = []
    for hyp in st.hypotheses:
        for h in conjuncts(inline_calls(hyp, defs)):
            before = list(ab.templates)
            try:
                phi = ab.per_index(h)
                if phi is not None:
                    per_index.append(phi)
                else:
                    general.append(ab.lift(h))
            except NotApplicable:
                del ab.templates[len(before) :], ab.shown[len(before) :]  # it adds no sum
                dropped.append(show_expr(h))
    m = len(ab.templates)
    taken = set(ab.names) | {f"·{v}" for v in ab.vectors}
    lams = [fresh_name(f"λ{j + 1}", taken) for j in range(m)]
    points = [{v: fresh_name(f"{v}{j + 1}", taken) for v in ab.vectors} for j in range(m)]
    variables = list(ab.scalars)
    for j in range(m):
        variables.append(A.Param(lams[j], A.REAL))
        variables += [A.Param(points[j][v], cod) for v, cod in ab.vectors.items()]

    def at_point(t: A.Expr, j: int) -> A.Expr:
        return substitute(t, {f"·{v}": A.Var(points[j][v], cod) for v, cod in ab.vectors.items()})

    combos: dict[str, A.Expr] = {}
    for k, t in enumerate(ab.templates):
        total: A.Expr = lit(0, A.REAL)
        for j in range(m):
            term = A.BinOp("*", A.Var(lams[j], A.REAL), at_point(t, j), A.REAL)
            total = term if j == 0 else A.BinOp("+", total, term, A.REAL)
        combos[f"∑{k}"] = total

    def close(e: A.Expr) -> A.Expr:
        return substitute(e, combos)

    hypotheses = [close(h) for h in general]
    for j in range(m):
        lam = A.Var(lams[j], A.REAL)
        hypotheses.append(A.Compare("≤", lit(0, A.REAL), lam))
        for phi in per_index:
            hypotheses.append(
                A.Logic("→", A.Compare("<", lit(0, A.REAL), lam), close(at_point(phi, j)))
            )
    reduced = A.Statement(tuple(variables), tuple(hypotheses), close(goal), source="")
    detail = {
        "for_all": n,
        "points": m,
        "sums": ab.shown,
        "per_index_hypotheses": len(per_index),
        "dropped_hypotheses": dropped,
        "reduced": show_statement(reduced),
        "argument": (
            f"every vector of the {m} sums over Fin {n} is Σⱼ λⱼ·T(yⱼ) over at most {m} of "
            "the index points with λⱼ > 0 (Carathéodory, conic form); the reduced problem "
            "assumes each per-index hypothesis at yⱼ where λⱼ > 0, and is PROVED"
        ),
    }
    return Argument("sum-abstraction", detail, (Obligation("reduced", reduced),))
