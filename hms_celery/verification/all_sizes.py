"""Proofs for every size: reduce a claim over a symbolic size to finitely many fixed problems.

A statement with a size parameter (``n`` in ``Fin n → ℝ``, an exponent ``Y``) cannot be
compiled for all values at once; :mod:`.prover` checks ``n = 0 … max_size`` and calls that
BOUNDED.  This module finds *sound arguments for all sizes*; each one ends in fixed-size
statements that the ordinary prover must find PROVED (and the other solver confirms):

* **Sum abstraction** (:func:`sum_abstraction`).  When the vectors enter only through sums
  ``∑ i, T(x i)`` of per-index terms, through per-index hypotheses ``∀ i, φ(x i)`` and through
  constraints on those sums, every reachable vector of the ``m`` distinct sums is a finite sum
  of points ``T(xᵢ)``, hence (Carathéodory's theorem for cones) a combination
  ``Σⱼ λⱼ·T(yⱼ)`` of at most ``m`` of those very points with ``λⱼ > 0``.  So the claim for
  all ``n`` (``n = 0`` included) follows from one problem over ``m`` points ``yⱼ`` and
  multipliers ``λⱼ ≥ 0``, in which ``φ(yⱼ)`` is assumed only where ``λⱼ > 0`` (a point that
  does not contribute need not exist: with ``n = 0`` there is none).  Hypotheses of any other
  shape are dropped, which only strengthens what is proved.  If the problem is satisfiable
  that is no counterexample: the caller falls back to the bounded search.
* **Induction on an exponent** (:func:`power_induction`).  When ``Y`` occurs only as the
  exponent of one base ``b``, replace ``b ^ Y`` by a fresh ``p`` and look for an invariant
  ``I(p)``: ``I(1)`` (Lean: ``b ^ 0 = 1``), ``I(p) → I(p * b)`` (``b ^ (Y+1) = b ^ Y * b``)
  and ``I(p) → claim(p)``, each under the hypotheses that do not mention ``Y``.  Candidates are
  the claim itself and the intervals ``0 ≤ p ≤ 1``, ``0 ≤ p``, ``1 ≤ p``, ``-1 ≤ p ≤ 1``.

Both work on the typed AST, after inlining the Moneyball ``def``s, so the fixed problems keep
Lean's semantics exactly (they are compiled like any statement).  Every reduction refuses
what it cannot justify (:class:`NotApplicable`): a size used anywhere else (``(n : ℝ)``, ``w 0``,
``Finset.range n``), an index used other than as a vector argument, nested sums, shadowed
names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass, replace
from fractions import Fraction
from typing import Any

from . import ast as A
from .render import render, render_statement
from .verdict import ProofOutcome, Verdict

#: How a fixed statement is proved: ``run(statement, budget_s)`` → its outcome (the caller's
#: backend, strategy, limits and confirmation).
Runner = Callable[[A.Statement, float], ProofOutcome]


class NotApplicable(Exception):
    """The method cannot justify this claim; the message says why."""


@dataclass(frozen=True)
class Obligation:
    """One fixed-size statement a method needs PROVED."""

    role: str  # "reduced" | "base" | "step" | "conclusion"
    statement: A.Statement


@dataclass(frozen=True)
class Argument:
    """A candidate argument for all sizes: the obligations and what to record if they hold."""

    method: str
    detail: dict[str, Any]
    obligations: tuple[Obligation, ...]


# --------------------------------------------------------------------------- tree utilities


def _children(e: Any) -> Iterator[Any]:
    if not is_dataclass(e) or isinstance(e, A.Pos):
        return
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            yield from v
        elif is_dataclass(v):
            yield v


def _nodes(e: Any) -> Iterator[Any]:
    stack = [e]
    while stack:
        x = stack.pop()
        yield x
        stack.extend(_children(x))


def _binders(e: Any) -> set[str]:
    out: set[str] = set()
    for x in _nodes(e):
        if isinstance(x, A.Quant | A.Lambda | A.Sum):
            out.add(x.var)
        elif isinstance(x, A.Let):
            out.add(x.name)
    return out


def _mentions(e: Any, names: set[str]) -> bool:
    return any(isinstance(x, A.Var) and x.name in names for x in _nodes(e))


def _map(e: Any, fn: Callable[[Any], Any | None]) -> Any:
    """Rebuild ``e`` top-down: ``fn(node)`` returns a replacement (not visited further) or
    None (then the node's children are mapped)."""
    new = fn(e)
    if new is not None:
        return new
    if not is_dataclass(e) or isinstance(e, A.Pos):
        return e
    changes = {}
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, tuple):
            changes[f.name] = tuple(_map(x, fn) for x in v)
        elif is_dataclass(v):
            changes[f.name] = _map(v, fn)
    return replace(e, **changes) if changes else e


def _substitute(e: Any, subst: dict[str, A.Expr]) -> Any:
    """Replace free variables (no binder of ``e`` may bind a name free in a replacement)."""
    free = {x.name for v in subst.values() for x in _nodes(v) if isinstance(x, A.Var)}
    clash = _binders(e) & (free | set(subst))
    if clash:
        raise NotApplicable(f"bound name {sorted(clash)[0]!r} would capture a variable")
    return _map(e, lambda x: subst.get(x.name) if isinstance(x, A.Var) else None)


def inline_calls(e: Any, definitions: dict[str, A.Definition], depth: int = 0) -> Any:
    """``e`` with every call of a ``def`` replaced by its body (arguments substituted)."""
    if depth > 50:
        raise NotApplicable("definitions nest too deeply to inline")

    def expand(x: Any) -> Any | None:
        if not isinstance(x, A.Call):
            return None
        d = definitions.get(x.name)
        if d is None:
            raise NotApplicable(f"unknown definition {x.name!r}")
        args = [inline_calls(a, definitions, depth + 1) for a in x.args]
        body = inline_calls(d.body, definitions, depth + 1)
        return _substitute(body, {p.name: a for p, a in zip(d.params, args, strict=True)})

    return _map(e, expand)


def _conjuncts(e: A.Expr) -> list[A.Expr]:
    if isinstance(e, A.Logic) and e.op == "∧":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _and(parts: list[A.Expr]) -> A.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = A.Logic("∧", out, p)
    return out


def _fresh(base: str, taken: set[str]) -> str:
    """A name that no user can have written unquoted (``@`` is no identifier character)."""
    k, name = 0, base
    while name in taken:
        k += 1
        name = f"{base}@{k}"
    taken.add(name)
    return name


def _lit(value: int | Fraction, ty: A.Type) -> A.Lit:
    return A.Lit(Fraction(value), ty)


# --------------------------------------------------------------------------- sum abstraction


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
            elif _mentions(p.ty, {n}):
                raise NotApplicable(f"variable {p.name} : {p.ty} depends on {n} otherwise")
            else:
                self.scalars.append(p)
        self.names = {p.name for p in st.variables}
        written = self.names | _binders((st.hypotheses, st.goal))
        if any(x[:1] in ("·", "∑") for x in written):
            # the placeholders below use these prefixes; a «quoted» user name could clash
            raise NotApplicable("a name starts with · or ∑")
        self.templates: list[A.Expr] = []  # the distinct per-point sum bodies
        self.shown: list[str] = []  # each one's first sum, as text

    # A per-point template: the body with ``v i`` replaced by the point variable ``·v``.
    def point_template(self, body: A.Expr, index: str) -> A.Expr:
        inner = _binders(body)
        if inner & (self.names | {index}):
            raise NotApplicable("a binder inside shadows a variable or the index")
        if any(isinstance(x, A.Sum) for x in _nodes(body)):
            raise NotApplicable("nested sums")
        if any(isinstance(x, A.Quant) and x.dom == self.index_dom for x in _nodes(body)):
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

        out = _map(body, point)
        if _mentions(out, {index, self.size.name, *self.vectors}):
            raise NotApplicable(
                f"the index, {self.size.name} or a vector is used other than as `v {index}`"
            )
        return out

    def sum_id(self, e: A.Sum) -> int:
        if e.domain != self.index_dom:
            raise NotApplicable(f"a sum over {e.domain} (only Fin {self.size.name} is abstracted)")
        if e.ty != A.REAL:
            raise NotApplicable(f"a sum of type {e.ty} (only ℝ sums are abstracted)")
        t = self.point_template(e.body, e.var)
        if t not in self.templates:
            self.templates.append(t)
            self.shown.append(render(e))
        return self.templates.index(t)

    def _sum_placeholder(self, x: Any) -> A.Expr | None:
        """A sum's placeholder ``Var('∑k')`` (replaced by its combination at the end)."""
        return A.Var(f"∑{self.sum_id(x)}", A.REAL) if isinstance(x, A.Sum) else None

    def lift(self, e: A.Expr) -> A.Expr:
        """``e`` with each sum replaced by its placeholder; no other use of a vector or n."""
        out = _map(e, self._sum_placeholder)
        if _mentions(out, {self.size.name, *self.vectors}):
            raise NotApplicable(f"{self.size.name} or a vector is used outside a sum")
        return out

    def per_index(self, h: A.Expr) -> A.Expr | None:
        """``∀ i : Fin n, φ`` → the template of φ (its sums lifted), or None."""
        if not (isinstance(h, A.Quant) and h.kind == "forall" and h.dom == self.index_dom):
            return None
        body = _map(h.body, self._sum_placeholder)
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
        for h in _conjuncts(inline_calls(hyp, defs)):
            before = list(ab.templates)
            try:
                phi = ab.per_index(h)
                if phi is not None:
                    per_index.append(phi)
                else:
                    general.append(ab.lift(h))
            except NotApplicable:
                del ab.templates[len(before) :], ab.shown[len(before) :]  # it adds no sum
                dropped.append(render(h))
    m = len(ab.templates)
    taken = set(ab.names) | {f"·{v}" for v in ab.vectors}
    lams = [_fresh(f"λ{j + 1}", taken) for j in range(m)]
    points = [{v: _fresh(f"{v}{j + 1}", taken) for v in ab.vectors} for j in range(m)]
    variables = list(ab.scalars)
    for j in range(m):
        variables.append(A.Param(lams[j], A.REAL))
        variables += [A.Param(points[j][v], cod) for v, cod in ab.vectors.items()]

    def at_point(t: A.Expr, j: int) -> A.Expr:
        return _substitute(t, {f"·{v}": A.Var(points[j][v], cod) for v, cod in ab.vectors.items()})

    combos: dict[str, A.Expr] = {}
    for k, t in enumerate(ab.templates):
        total: A.Expr = _lit(0, A.REAL)
        for j in range(m):
            term = A.BinOp("*", A.Var(lams[j], A.REAL), at_point(t, j), A.REAL)
            total = term if j == 0 else A.BinOp("+", total, term, A.REAL)
        combos[f"∑{k}"] = total

    def close(e: A.Expr) -> A.Expr:
        return _substitute(e, combos)

    hypotheses = [close(h) for h in general]
    for j in range(m):
        lam = A.Var(lams[j], A.REAL)
        hypotheses.append(A.Compare("≤", _lit(0, A.REAL), lam))
        for phi in per_index:
            hypotheses.append(
                A.Logic("→", A.Compare("<", _lit(0, A.REAL), lam), close(at_point(phi, j)))
            )
    reduced = A.Statement(tuple(variables), tuple(hypotheses), close(goal), source="")
    detail = {
        "for_all": n,
        "points": m,
        "sums": ab.shown,
        "per_index_hypotheses": len(per_index),
        "dropped_hypotheses": dropped,
        "reduced": render_statement(reduced),
        "argument": (
            f"every vector of the {m} sums over Fin {n} is Σⱼ λⱼ·T(yⱼ) over at most {m} of "
            "the index points with λⱼ > 0 (Carathéodory, conic form); the reduced problem "
            "assumes each per-index hypothesis at yⱼ where λⱼ > 0, and is PROVED"
        ),
    }
    return Argument("sum-abstraction", detail, (Obligation("reduced", reduced),))


# --------------------------------------------------------------------------- power induction


def power_induction(st: A.Statement, y: str) -> list[Argument]:
    """Induction on the exponent ``y``: one argument per invariant candidate (see above)."""
    defs = st.definitions
    hyps = [inline_calls(h, defs) for h in st.hypotheses]
    goal = inline_calls(st.goal, defs)
    bases = {
        x.base
        for e in [*hyps, goal]
        for x in _nodes(e)
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
    if any(_mentions(p.ty, {y}) for p in others):
        raise NotApplicable(f"a variable's type depends on {y}")
    names = {p.name for p in st.variables}
    free = {x.name for x in _nodes(base) if isinstance(x, A.Var)}
    if y in free or not free <= names:
        raise NotApplicable("the base depends on the exponent or on a bound variable")
    taken = set(names)
    p = A.Var(_fresh("p", taken), base.ty)

    def abstract(e: A.Expr) -> A.Expr:
        if _binders(e) & free:
            raise NotApplicable("a binder shadows a variable of the base")
        out = _map(
            e,
            lambda x: (
                p if isinstance(x, A.Pow) and x.exp == A.Var(y, A.NAT) and x.base == base else None
            ),
        )
        if _mentions(out, {y}):
            raise NotApplicable(f"{y} is used other than as the exponent of {render(base)}")
        return out

    static = [h for h in hyps if not _mentions(h, {y})]
    dynamic = [abstract(h) for h in hyps if _mentions(h, {y})]
    claim_p = abstract(goal)
    for h in reversed(dynamic):
        claim_p = A.Logic("→", h, claim_p)
    ty = base.ty
    zero, one = _lit(0, ty), _lit(1, ty)
    candidates: list[tuple[str, A.Expr]] = [
        ("0 ≤ p ≤ 1", _and([A.Compare("≤", zero, p), A.Compare("≤", p, one)])),
        ("0 ≤ p", A.Compare("≤", zero, p)),
        ("1 ≤ p", A.Compare("≤", one, p)),
        ("the claim", claim_p),
    ]
    if ty != A.NAT:
        minus_one = A.Neg(one, ty)
        candidates.insert(
            3, ("-1 ≤ p ≤ 1", _and([A.Compare("≤", minus_one, p), A.Compare("≤", p, one)]))
        )
    variables = tuple(others)
    with_p = (*others, A.Param(p.name, ty))
    arguments = []
    for label, inv in candidates:
        base_case = A.Statement(variables, tuple(static), _substitute(inv, {p.name: one}))
        step = A.Statement(
            with_p, (*static, inv), _substitute(inv, {p.name: A.BinOp("*", p, base, ty)})
        )
        conclusion = A.Statement(with_p, (*static, inv), claim_p)
        detail = {
            "on": y,
            "power": f"{render(base)} ^ {y}",
            "fresh": p.name,
            "invariant": render(inv),
            "invariant_name": label,
            "base": render_statement(base_case),
            "step": render_statement(step),
            "conclusion": render_statement(conclusion),
            "argument": (
                f"I({p.name}) holds for {p.name} = {render(base)} ^ {y} by induction on {y} "
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


# --------------------------------------------------------------------------- entry point


def arguments_for(st: A.Statement, sizes: list[str]) -> tuple[list[Argument], list[str]]:
    """The candidate arguments for ``st`` (one size parameter), and why others do not apply."""
    notes: list[str] = []
    if len(sizes) != 1:
        return [], [f"{len(sizes)} size parameters (the methods handle one)"]
    (n,) = sizes
    out: list[Argument] = []
    for method, build in (
        ("sum-abstraction", lambda: [sum_abstraction(st, n)]),
        ("induction", lambda: power_induction(st, n)),
    ):
        try:
            out += build()
        except NotApplicable as exc:
            notes.append(f"{method}: {exc}")
    return out, notes


def _combined_confirmation(outcomes: list[ProofOutcome]) -> dict[str, Any] | None:
    records = [o.confirmed_by for o in outcomes]
    if any(r is None for r in records):
        return None
    first = dict(records[0] or {})
    bad = [r for r in records if r and r.get("status") != "confirmed"]
    first["status"] = bad[0]["status"] if bad else "confirmed"
    first["seconds"] = round(sum(r.get("seconds") or 0 for r in records if r), 6)
    first["budget_s"] = round(sum(r.get("budget_s") or 0 for r in records if r), 3)
    first["obligations"] = len(records)
    return first


def prove_for_all_sizes(
    st: A.Statement, sizes: list[str], run: Runner, budget_s: float, clock: Callable[[], float]
) -> tuple[ProofOutcome | None, dict[str, Any]]:
    """Try each argument within ``budget_s``: a PROVED outcome for every size (with
    ``proof``), or an ERROR if two solvers disagreed on an obligation, or None; and a
    record of what was tried (for the outcome's stats)."""
    deadline = clock() + budget_s
    arguments, notes = arguments_for(st, sizes)
    tried: list[dict[str, Any]] = []
    record: dict[str, Any] = {"not_applicable": notes, "tried": tried}
    for arg in arguments:
        outcomes: list[ProofOutcome] = []
        entry: dict[str, Any] = {"method": arg.method, "obligations": []}
        tried.append(entry)
        for ob in arg.obligations:
            left = deadline - clock()
            if left <= 0:
                entry["result"] = "time budget spent"
                return None, record
            out = run(ob.statement, left)
            entry["obligations"].append({"role": ob.role, "verdict": out.verdict.value})
            if out.verdict is Verdict.ERROR and out.reason.startswith("solvers disagree"):
                out.reason = f"{arg.method} ({ob.role}): {out.reason}"
                return out, record
            if out.verdict is not Verdict.PROVED:
                entry["result"] = f"{ob.role}: {out.verdict.value} ({out.reason})"
                break
            outcomes.append(out)
        else:
            entry["result"] = "PROVED"
            n = sizes[0]
            proof = {"method": arg.method, **arg.detail}
            what = (
                f"Carathéodory reduction to {arg.detail['points']} point"
                f"{'' if arg.detail['points'] == 1 else 's'}"
                if arg.method == "sum-abstraction"
                else f"induction on {n} with invariant {arg.detail['invariant']}"
            )
            return (
                ProofOutcome(
                    Verdict.PROVED,
                    reason=f"holds for every {n}: {what} (proof.method {arg.method})",
                    confirmed_by=_combined_confirmation(outcomes),
                    proof=proof,
                    stats={"obligations": [o.stats for o in outcomes]},
                ),
                record,
            )
    return None, record
