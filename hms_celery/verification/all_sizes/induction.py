"""Induction: on an exponent (``b ^ Y`` as a fresh ``p``) and on a size (partial sums)."""

from __future__ import annotations

from .. import ast as A
from ..ast_walk import (
    binders,
    conjoin,
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


def power_induction(st: A.Statement, y: str) -> list[Argument]:
    """Induction on the exponent ``y``: one argument per invariant candidate (see above)."""
    defs = st.definitions
    hyps = [inline_calls(h, defs) for h in st.hypotheses]
    goal = inline_calls(st.goal, defs)
    bases = {
        x.base
        for e in [*hyps, goal]
        for x in nodes(e)
        if isinstance(x, A.Pow) and x.exp == A.Var(y, A.NAT)
    }
    if not bases:
        raise NotApplicable(f"{y} is not an exponent")
    if len(bases) > 1:
        raise NotApplicable(f"{y} is the exponent of {len(bases)} different bases (need one)")
    (base,) = bases
    if not isinstance(base.ty, A.Scalar):
        raise NotApplicable(f"a power of type {base.ty}")
    others = [p for p in st.variables if p.name != y]
    if any(mentions(p.ty, {y}) for p in others):
        raise NotApplicable(f"a variable's type depends on {y}")
    names = {p.name for p in st.variables}
    free = {x.name for x in nodes(base) if isinstance(x, A.Var)}
    if y in free or not free <= names:
        raise NotApplicable("the base depends on the exponent or on a bound variable")
    taken = set(names)
    p = A.Var(fresh_name("p", taken), base.ty)

    def abstract(e: A.Expr) -> A.Expr:
        if binders(e) & free:
            raise NotApplicable("a binder shadows a variable of the base")
        out = map_expr(
            e,
            lambda x: (
                p if isinstance(x, A.Pow) and x.exp == A.Var(y, A.NAT) and x.base == base else None
            ),
        )
        if mentions(out, {y}):
            raise NotApplicable(f"{y} is used other than as the exponent of {show_expr(base)}")
        return out

    static = [h for h in hyps if not mentions(h, {y})]
    dynamic = [abstract(h) for h in hyps if mentions(h, {y})]
    claim_p = abstract(goal)
    for h in reversed(dynamic):
        claim_p = A.Logic("→", h, claim_p)
    ty = base.ty
    zero, one = lit(0, ty), lit(1, ty)
    candidates: list[tuple[str, A.Expr]] = [
        ("0 ≤ p ≤ 1", conjoin([A.Compare("≤", zero, p), A.Compare("≤", p, one)])),
        ("0 ≤ p", A.Compare("≤", zero, p)),
        ("1 ≤ p", A.Compare("≤", one, p)),
        ("the claim", claim_p),
    ]
    if ty != A.NAT:
        minus_one = A.Neg(one, ty)
        candidates.insert(
            3, ("-1 ≤ p ≤ 1", conjoin([A.Compare("≤", minus_one, p), A.Compare("≤", p, one)]))
        )
    variables = tuple(others)
    with_p = (*others, A.Param(p.name, ty))
    arguments = []
    for label, inv in candidates:
        base_case = A.Statement(variables, tuple(static), substitute(inv, {p.name: one}))
        step = A.Statement(
            with_p, (*static, inv), substitute(inv, {p.name: A.BinOp("*", p, base, ty)})
        )
        conclusion = A.Statement(with_p, (*static, inv), claim_p)
        detail = {
            "on": y,
            "power": f"{show_expr(base)} ^ {y}",
            "fresh": p.name,
            "invariant": show_expr(inv),
            "invariant_name": label,
            "base": show_statement(base_case),
            "step": show_statement(step),
            "conclusion": show_statement(conclusion),
            "argument": (
                f"I({p.name}) holds for {p.name} = {show_expr(base)} ^ {y} by induction on {y} "
                f"(Lean: x ^ 0 = 1, x ^ ({y} + 1) = x ^ {y} * x), and I implies the claim"
            ),
        }
        arguments.append(
            Argument(
                "induction",
                detail,
                (
                    Obligation("base", base_case),
                    Obligation("step", step),
                    Obligation("conclusion", conclusion),
                ),
            )
        )
    return arguments


class _Prefix:
    """Sums over the first ``n`` indices (``Fin n`` or ``Finset.range n``) as partial sums."""

    def __init__(self, st: A.Statement, n: str, k: str) -> None:
        self.size = A.Var(n, A.NAT)
        self.k = A.Var(k, A.NAT)
        self.sequences: dict[str, A.Scalar] = {}  # vectors Fin n → T and sequences ℕ → T
        self.scalars: list[A.Param] = []
        for p in st.variables:
            if p.name == n:
                continue
            ty = p.ty
            if (
                isinstance(ty, A.Arrow)
                and ty.dom in (A.FinT(self.size), A.NAT)
                and isinstance(ty.cod, A.Scalar)
            ):
                self.sequences[p.name] = ty.cod
            elif mentions(ty, {n}):
                raise NotApplicable(f"variable {p.name} : {ty} depends on {n} otherwise")
            else:
                self.scalars.append(p)
        self.names = {p.name for p in st.variables}
        written = self.names | binders((st.hypotheses, st.goal))
        if any(x[:1] in ("·", "∑") for x in written) or k in written:
            raise NotApplicable("a name starts with · or ∑")
        self.templates: list[A.Expr] = []  # per-index terms, the index's value written k
        self.types: list[A.Type] = []
        self.shown: list[str] = []

    def index_template(self, body: A.Expr, index: str, dom: A.Type) -> A.Expr:
        """``body`` with ``x i`` → ``·x`` and the index's value (``i``, ``(i : ℕ)``) → ``k``."""
        if binders(body) & (self.names | {index}):
            raise NotApplicable("a binder inside shadows a variable or the index")
        if any(isinstance(x, A.Sum) for x in nodes(body)):
            raise NotApplicable("nested sums")
        i = A.Var(index, dom)

        def visit(x: object) -> A.Expr | None:
            if (
                isinstance(x, A.App)
                and isinstance(x.fn, A.Var)
                and x.fn.name in self.sequences
                and x.arg == i
            ):
                return A.Var(f"·{x.fn.name}", self.sequences[x.fn.name])
            if dom == A.NAT and x == i:
                return self.k
            if isinstance(x, A.Cast) and x.arg == i and x.ty == A.NAT:
                return self.k  # Fin.val of the last index of Fin (k + 1)
            return None

        out = map_expr(body, visit)
        if mentions(out, {index, self.size.name, *self.sequences}):
            raise NotApplicable(f"the index, {self.size.name} or a sequence is used otherwise")
        # only the scalars, the new index's values and k: a variable bound further out
        # (`∀ c, ∑ i, c * w i`) would make the partial sums depend on it
        allowed = {p.name for p in self.scalars} | {f"·{v}" for v in self.sequences}
        if not {x.name for x in nodes(out) if isinstance(x, A.Var)} <= allowed | {self.k.name}:
            raise NotApplicable("a per-index term uses a variable bound outside the sum")
        return out

    def placeholder(self, x: object) -> A.Expr | None:
        if not isinstance(x, A.Sum):
            return None
        if isinstance(x.domain, A.Range):
            if x.domain.bound != self.size:
                raise NotApplicable(f"a sum over Finset.range ({show_expr(x.domain.bound)})")
            dom: A.Type = A.NAT
        elif x.domain == A.FinT(self.size):
            dom = x.domain
        else:
            raise NotApplicable(f"a sum over {x.domain}")
        t = self.index_template(x.body, x.var, dom)
        if (t, x.ty) not in zip(self.templates, self.types, strict=True):
            self.templates.append(t)
            self.types.append(x.ty)
            self.shown.append(show_expr(x))
        j = list(zip(self.templates, self.types, strict=True)).index((t, x.ty))
        return A.Var(f"∑{j}", x.ty)

    def lift(self, e: A.Expr) -> A.Expr:
        """``e`` with its sums as placeholders; ``n`` may stay, the sequences may not."""
        out = map_expr(e, self.placeholder)
        if mentions(out, set(self.sequences)):
            raise NotApplicable("a vector or sequence is used outside a sum")
        if any(isinstance(x, A.FinT) for x in nodes(out)):
            raise NotApplicable(f"a quantifier or type over Fin {self.size.name} outside a sum")
        return out

    def per_index(self, h: A.Expr) -> A.Expr | None:
        """``∀ i : Fin n, φ``, ``∀ i : ℕ, φ`` or ``∀ i : ℕ, i < n → φ`` → φ at index ``k``."""
        if not (isinstance(h, A.Quant) and h.kind == "forall"):
            return None
        body = h.body
        if h.dom == A.NAT:
            guard = A.Compare("<", A.Var(h.var, A.NAT), self.size)
            if isinstance(body, A.Logic) and body.op == "→" and body.left == guard:
                body = body.right
        elif h.dom != A.FinT(self.size):
            return None
        if any(isinstance(x, A.Sum) for x in nodes(body)):
            raise NotApplicable("a per-index hypothesis mentions a sum")
        return self.index_template(body, h.var, h.dom)


def size_induction(st: A.Statement, n: str) -> Argument:
    """Induction on the size ``n`` with the partial sums as fresh variables: the claim with
    ``n = 0`` and empty sums, and the step from ``k`` to ``k + 1`` indices, where the new
    index's values satisfy the per-index hypotheses at ``k``.  Other hypotheses that mention
    ``n``, a vector or a sum are dropped (that only strengthens the claim)."""
    defs = st.definitions
    taken = {p.name for p in st.variables} | binders((st.hypotheses, st.goal))
    k = fresh_name("k", taken)
    pre = _Prefix(st, n, k)
    goal = pre.lift(inline_calls(st.goal, defs))
    static: list[A.Expr] = []
    per_index: list[A.Expr] = []
    dropped: list[str] = []
    for hyp in st.hypotheses:
        for h in conjuncts(inline_calls(hyp, defs)):
            phi = None
            try:
                phi = pre.per_index(h)
            except NotApplicable:
                dropped.append(show_expr(h))
                continue
            if phi is not None:
                per_index.append(phi)
            elif mentions(h, {n, *pre.sequences}):
                dropped.append(show_expr(h))
            else:
                static.append(h)
    if not pre.templates:
        raise NotApplicable("no sum to induct on")
    sums = [A.Var(fresh_name(f"S{j + 1}", taken), ty) for j, ty in enumerate(pre.types)]
    points = {v: A.Var(fresh_name(f"{v}ₖ", taken), cod) for v, cod in pre.sequences.items()}

    def at(e: A.Expr, size: A.Expr, values: list[A.Expr]) -> A.Expr:
        return substitute(e, {n: size, **{f"∑{j}": v for j, v in enumerate(values)}})

    def new_point(e: A.Expr) -> A.Expr:
        return substitute(e, {f"·{v}": y for v, y in points.items()})

    zeros: list[A.Expr] = [lit(0, ty) for ty in pre.types]
    grown: list[A.Expr] = [
        A.BinOp("+", s, new_point(t), ty)
        for s, t, ty in zip(sums, pre.templates, pre.types, strict=True)
    ]
    invariant = at(goal, pre.k, list(sums))
    base_case = A.Statement(tuple(pre.scalars), tuple(static), at(goal, lit(0, A.NAT), zeros))
    variables = (
        *pre.scalars,
        A.Param(k, A.NAT),
        *(A.Param(s.name, s.ty) for s in sums),
        *(A.Param(y.name, y.ty) for y in points.values()),
    )
    step = A.Statement(
        variables,
        (*static, *(new_point(phi) for phi in per_index), invariant),
        at(goal, A.BinOp("+", pre.k, lit(1, A.NAT), A.NAT), grown),
    )
    detail = {
        "on": n,
        "kind": "size",
        "sums": pre.shown,
        "partial_sums": [s.name for s in sums],
        "invariant": show_expr(invariant),
        "dropped_hypotheses": dropped,
        "base": show_statement(base_case),
        "step": show_statement(step),
        "argument": (
            f"the claim for {n} = {k} with the partial sums {', '.join(s.name for s in sums)} "
            f"implies it for {k} + 1, the new index satisfying the per-index hypotheses; "
            f"and it holds for {n} = 0 (empty sums)"
        ),
    }
    return Argument("induction", detail, (Obligation("base", base_case), Obligation("step", step)))
