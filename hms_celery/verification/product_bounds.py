"""HMS's own sound preprocessing of Z3 terms: ``product-bounds``.

It only adds facts implied by the assertions (monomials named by fresh constants, interval
bounds and sign lemmas for nonlinear products), so an ``unsat`` of the result is an ``unsat``
of the original.  Used by the prover (a strategy's ``preprocess``) and by SMT-LIB problems.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from functools import reduce
from typing import Any

import z3

from .bignum import fraction_to_str, int_to_decimal
from .z3_terms import exact_value, hidden_name


def _numeral(t: z3.ExprRef) -> Fraction | None:
    if z3.is_int_value(t) or z3.is_rational_value(t):
        return exact_value(t)
    # SMT-LIB writes negative constants as ``(- 100.0)``: a unary minus of a numeral.
    if z3.is_app_of(t, z3.Z3_OP_UMINUS):
        inner = _numeral(t.arg(0))
        return None if inner is None else -inner
    return None


def _is_atom(t: z3.ExprRef) -> bool:
    if z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED:
        return True
    return z3.is_to_real(t) and _is_atom(t.arg(0))


def _flatten_mul(t: z3.ExprRef) -> tuple[Fraction, list[z3.ExprRef]] | None:
    coeff, atoms = Fraction(1), []
    stack = [t]
    while stack:
        x = stack.pop()
        if z3.is_mul(x):
            stack.extend(x.children())
            continue
        num = _numeral(x)
        if num is not None:
            coeff *= num
        elif z3.is_quantifier(x) or not z3.is_app(x) or z3.is_var(x):
            return None
        else:
            atoms.append(x)
    return coeff, atoms


def _collect_bounds(
    facts: list[z3.BoolRef],
) -> tuple[dict[int, tuple[Fraction | None, Fraction | None]], set[int]]:
    """Bounds of constants from the top-level facts, and the constants known to be > 0."""
    bounds: dict[int, list[Fraction | None]] = {}
    positive: set[int] = set()

    def note(atom: z3.ExprRef, lo: Fraction | None, hi: Fraction | None) -> None:
        cur = bounds.setdefault(atom.get_id(), [None, None])
        if lo is not None and (cur[0] is None or lo > cur[0]):
            cur[0] = lo
        if hi is not None and (cur[1] is None or hi < cur[1]):
            cur[1] = hi

    stack = list(facts)
    while stack:
        f = stack.pop()
        if z3.is_and(f):
            stack.extend(f.children())
            continue
        negated = z3.is_not(f)
        if negated:
            f = f.arg(0)
        kinds = {
            z3.Z3_OP_LE: "le",
            z3.Z3_OP_LT: "le",
            z3.Z3_OP_GE: "ge",
            z3.Z3_OP_GT: "ge",
            z3.Z3_OP_EQ: "eq",
        }
        if not z3.is_app(f) or f.decl().kind() not in kinds or f.num_args() != 2:
            continue
        kind = kinds[f.decl().kind()]
        if negated:
            if kind == "eq":
                continue
            kind = "ge" if kind == "le" else "le"
        x, y = f.arg(0), f.arg(1)
        if _is_atom(x) and (cy := _numeral(y)) is not None:
            atom, c, flip = x, cy, False
        elif _is_atom(y) and (cx := _numeral(x)) is not None:
            atom, c, flip = y, cx, True
        else:
            continue
        if kind == "eq":
            note(atom, c, c)
        elif (kind == "le") != flip:  # atom ≤ c
            note(atom, None, c)
        else:  # atom ≥ c
            note(atom, c, None)
            strict = f.decl().kind() in (z3.Z3_OP_LT, z3.Z3_OP_GT) and not negated
            if c > 0 or (c == 0 and strict):
                positive.add(atom.get_id())
    return {k: (v[0], v[1]) for k, v in bounds.items()}, positive


Bound = tuple[Fraction | None, Fraction | None]


def _mul_interval(a: Bound, b: Bound) -> Bound:
    """Interval product; ``None`` is an infinite end (``0 · ∞ = 0`` for interval ends)."""
    inf = float("inf")

    def ends(x: Bound) -> tuple[Any, Any]:
        return (-inf if x[0] is None else x[0], inf if x[1] is None else x[1])

    def times(u: Any, v: Any) -> Any:
        return 0 if u == 0 or v == 0 else u * v

    (alo, ahi), (blo, bhi) = ends(a), ends(b)
    products = [times(alo, blo), times(alo, bhi), times(ahi, blo), times(ahi, bhi)]
    lo, hi = min(products), max(products)
    return (
        None if lo in (inf, -inf) else Fraction(lo),
        None if hi in (inf, -inf) else Fraction(hi),
    )


class _Intervals:
    """Interval bounds of terms from the bounds of constants (sums, products, ``If``)."""

    def __init__(self, atoms: dict[int, Bound]) -> None:
        self.atoms = atoms
        self.memo: dict[int, Bound] = {}

    def of(self, t: z3.ExprRef) -> Bound:
        tid = t.get_id()
        if tid not in self.memo:
            self.memo[tid] = (None, None)  # cycles cannot occur; this just bounds recursion
            self.memo[tid] = self._compute(t)
        return self.memo[tid]

    def _compute(self, t: z3.ExprRef) -> Bound:
        num = _numeral(t)
        if num is not None:
            return (num, num)
        if t.get_id() in self.atoms:
            return self.atoms[t.get_id()]
        if not z3.is_app(t) or z3.is_quantifier(t):
            return (None, None)
        if z3.is_to_real(t):
            return self.of(t.arg(0))
        kids = t.children()
        if z3.is_add(t):
            bs = [self.of(k) for k in kids]
            los = [b[0] for b in bs if b[0] is not None]
            his = [b[1] for b in bs if b[1] is not None]
            lo = sum(los, Fraction(0)) if len(los) == len(bs) else None  # None: unbounded
            hi = sum(his, Fraction(0)) if len(his) == len(bs) else None
            return (lo, hi)
        if z3.is_sub(t) and len(kids) == 2:
            (alo, ahi), (blo, bhi) = self.of(kids[0]), self.of(kids[1])
            lo = None if alo is None or bhi is None else alo - bhi
            hi = None if ahi is None or blo is None else ahi - blo
            return (lo, hi)
        if z3.is_app_of(t, z3.Z3_OP_UMINUS):
            lo, hi = self.of(kids[0])
            return (None if hi is None else -hi, None if lo is None else -lo)
        if z3.is_mul(t):
            out: Bound = (Fraction(1), Fraction(1))
            for k in kids:
                out = _mul_interval(out, self.of(k))
            return out
        if z3.is_app_of(t, z3.Z3_OP_ITE):
            (alo, ahi), (blo, bhi) = self.of(kids[1]), self.of(kids[2])
            lo = None if alo is None or blo is None else min(alo, blo)
            hi = None if ahi is None or bhi is None else max(ahi, bhi)
            return (lo, hi)
        return (None, None)


def _sign(b: Bound) -> int | None:
    if b[0] is not None and b[0] >= 0:
        return 1
    if b[1] is not None and b[1] <= 0:
        return -1
    return None


def _has_product_or_division(assertions: list[z3.BoolRef]) -> bool:
    """Whether some assertion has a ``*`` or a ``/`` — the only terms the step rewrites —
    read off Z3's own s-expression printer (in C: a walk of the terms through Z3's Python API
    costs ~30× more).  Every product and division prints as ``(* …)`` or ``(/ …)``; a quoted
    symbol containing that text only costs the full walk."""
    return any("(*" in text or "(/" in text for text in (a.sexpr() for a in assertions))


def product_bounds(assertions: list[z3.BoolRef], max_monomials: int = 5000) -> list[z3.BoolRef]:
    """The ``product-bounds`` preprocessing step (sound: the result is equisatisfiable).

    Every product of two or more non-constant factors is replaced by a fresh variable ``M``
    with the definition ``M = x·y·…``; for each factor ``x`` with an interval ``lo ≤ x ≤ hi``
    (from the top-level bound facts, propagated through sums and products) and a rest ``R`` of
    known sign, the implied lemmas ``lo·R ≤ M ≤ hi·R`` (reversed for ``R ≤ 0``) and the sign
    of ``M`` are added.  With them, weighted sums such as ``Σ wᵢ·aᵢ·dᵢ`` or ``raw·M`` with
    ``0 < M ≤ 1`` are bounded by linear reasoning alone.
    """
    if not assertions or not _has_product_or_division(assertions):
        return assertions  # what the rewrite below would return, for a fraction of its cost
    atom_bounds, strict_pos = _collect_bounds(assertions)
    intervals = _Intervals(atom_bounds)
    bounds: dict[int, Bound] = {}  # rewritten factor id -> interval
    monos: dict[tuple[int, ...], z3.ExprRef] = {}
    factors_of: dict[tuple[int, ...], list[z3.ExprRef]] = {}
    facts: list[z3.BoolRef] = []
    queue: list[tuple[int, ...]] = []
    memo: dict[int, z3.ExprRef] = {}
    fresh = itertools.count()

    def fresh_const(sort: z3.SortRef, kind: str) -> z3.ExprRef:
        # "»kind»|k": no user name (Lean or SMT-LIB) and no compiler name starts with "»".
        return z3.Const(hidden_name(f"»{kind}", next(fresh)), sort)

    def mono_var(factors: list[z3.ExprRef]) -> z3.ExprRef:
        key = tuple(sorted(f.get_id() for f in factors))
        if key not in monos:
            product = reduce(lambda a, b: a * b, factors)
            var = fresh_const(product.sort(), "mono")
            monos[key] = var
            factors_of[key] = factors
            facts.append(var == product)
            queue.append(key)
        return monos[key]

    def numeral(c: Fraction, like: z3.ExprRef) -> z3.ExprRef:
        if like.is_real():
            return z3.RealVal(fraction_to_str(c), like.ctx)
        return z3.IntVal(int_to_decimal(int(c)), like.ctx)

    def divide(t: z3.ExprRef, a: z3.ExprRef, b: z3.ExprRef) -> z3.ExprRef:
        """``a / b`` as a fresh ``D`` with ``b ≠ 0 → D·b = a`` (and the sign of ``D``)."""
        d = fresh_const(t.sort(), "quot")
        na, nb = intervals.of(t.arg(0)), intervals.of(t.arg(1))
        sa = _sign(na)
        positive = nb[0] is not None and (nb[0] > 0 or t.arg(1).get_id() in strict_pos)
        if sa is not None and positive:
            facts.append(d >= 0 if sa > 0 else d <= 0)
            bounds[d.get_id()] = (Fraction(0), None) if sa > 0 else (None, Fraction(0))
        bounds[b.get_id()] = nb
        facts.append(z3.Implies(b != 0, mono_var([d, b]) == a))
        return d

    def rewrite(t: z3.ExprRef) -> z3.ExprRef:
        tid = t.get_id()
        if tid in memo:
            return memo[tid]
        result = t
        if z3.is_app(t) and not z3.is_quantifier(t) and t.num_args() > 0:
            flat = _flatten_mul(t) if z3.is_mul(t) else None
            if flat is not None and len(flat[1]) >= 2 and len(monos) < max_monomials:
                coeff, originals = flat
                factors = [rewrite(f) for f in originals]
                for orig, new in zip(originals, factors, strict=True):
                    bounds[new.get_id()] = intervals.of(orig)
                var = mono_var(factors)
                result = var if coeff == 1 else numeral(coeff, var) * var
            elif z3.is_app_of(t, z3.Z3_OP_DIV) and t.is_real() and len(monos) < max_monomials:
                result = divide(t, rewrite(t.arg(0)), rewrite(t.arg(1)))
            else:
                kids = [rewrite(k) for k in t.children()]
                if any(not k.eq(c) for k, c in zip(kids, t.children(), strict=True)):
                    result = t.decl()(*kids)
        memo[tid] = result
        return result

    rewritten = [rewrite(a) for a in assertions]
    if not monos:
        return assertions

    def sign_of(factors: list[z3.ExprRef]) -> int | None:
        """+1 (≥ 0), -1 (≤ 0) or None; even powers are ≥ 0."""
        counts: dict[int, int] = {}
        for f in factors:
            counts[f.get_id()] = counts.get(f.get_id(), 0) + 1
        result = 1
        for fid, count in counts.items():
            if count % 2 == 0:
                continue
            s = _sign(bounds.get(fid, (None, None)))
            if s is None:
                return None
            result *= s
        return result

    lemmas: list[z3.BoolRef] = []
    while queue and len(monos) < max_monomials:
        key = queue.pop()
        factors, m = factors_of[key], monos[key]
        s = sign_of(factors)
        if s is not None:
            lemmas.append(m >= 0 if s > 0 else m <= 0)
        done: set[int] = set()
        for i, x in enumerate(factors):
            if x.get_id() in done:
                continue
            done.add(x.get_id())
            lo, hi = bounds.get(x.get_id(), (None, None))
            if lo is None and hi is None:
                continue
            rest_factors = factors[:i] + factors[i + 1 :]
            rs = sign_of(rest_factors)
            if rs is None:
                continue
            rest = rest_factors[0] if len(rest_factors) == 1 else mono_var(rest_factors)
            if m.is_real() and not rest.is_real():
                rest = z3.ToReal(rest)
            lower, upper = (lo, hi) if rs > 0 else (hi, lo)
            for c, is_lower in ((lower, True), (upper, False)):
                if c is None or (not rest.is_real() and c.denominator != 1):
                    continue
                scaled = numeral(c, rest) * rest
                lemmas.append(m >= scaled if is_lower else m <= scaled)
    return [*rewritten, *facts, *lemmas]


# --------------------------------------------------------------------------- models
