"""Quantifier alternation: decide ``∃``, ``∀ … ∃`` and ``∃ … ∀`` claims, with evidence.

:func:`~.prover.prove` calls :func:`decide` before its ordinary check of a statement that has
no size parameters and a quantifier over an infinite type inside, and
:func:`recheck_model` on a model that exact evaluation could not re-check.  Each step is
sound on its own:

1. **Witness search** (``proof.method == "witness"``).  The goal is put in prenex form at
   its top (``∀ x, …`` and ``h → …`` join the variables and hypotheses; ``¬∃ x, p`` is
   ``∀ x, ¬p``, ``¬∀ x, p`` is ``∃ x, ¬p``); for its leading ``∃ x``, candidate terms ``t``
   are tried: terms solving an atom of the body for ``x`` where ``x`` occurs linearly
   (``a * x > b`` gives ``b / a``, then ``t + 1``, ``t - 1`` and midpoints of two solutions),
   small constants, a model value of the body.  ``t`` is an AST term over the outer
   variables (so Lean's semantics, ``x / 0 = 0``, truncated ℕ subtraction, hold for it as
   everywhere), and the *instance* — the statement with ``x := t`` — is proved by
   :func:`~.prover.prove` itself (and confirmed like any proof).  A proved instance proves
   the ``∃``: the witness is reported.
2. **Quantifier elimination** (``"quantifier-elimination"``): Z3's decision procedures for
   quantified arithmetic — ``nlqsat`` (nonlinear real) and ``qe`` then ``smt`` (linear real
   and integer) — on the compiled assertions.  In a Z3 attempt ``unsat`` is a proof,
   confirmed by cvc5 on the same assertions — except for quantified *nonlinear* ones, which
   cvc5 cannot decide (and on which it overruns its time limit by seconds): that proof says
   ``unconfirmed (unsupported: …)``.  ``sat`` only *suggests* a counterexample (in a cvc5
   attempt too), which step 3 must establish.
3. **No-witness refutation** (``"no-witness"``): the statement's variables are fixed at the
   model's exact values (or small values when the model is irrational); every hypothesis
   must then hold — by exact evaluation, or as a closed claim proved *and confirmed* — and
   the negated goal at those values, a closed claim such as ``¬∃ x : ℝ, x * x = -1``, must be
   proved by one solver and confirmed by the other.  Only then is the verdict REFUTED, with
   the values as counterexample and the closed claims (Lean text) in ``proof``; otherwise
   UNKNOWN with the reason.

The steps call ``prove`` recursively on smaller claims, at most :data:`MAX_DEPTH` deep, and
within the attempt's budget: each share of it is a fraction of ``timeout_s``, and a nested
``prove`` gets half of what is left of its share (its confirmation may take as long again).
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import z3

from . import ast as A
from . import ast_walk, exact
from .ast_walk import CaptureError, names_in, substitute
from .bignum import parse_fraction
from .printer import show_expr, show_statement
from .strategy import Strategy, TacticStep
from .verdict import ProofOutcome, Verdict
from .z3_backend import (
    CounterexampleError,
    Unsupported,
    compile_statement,
    read_counterexample,
)

#: Nested ``prove`` calls (a witness instance, an obligation) at most this deep.
MAX_DEPTH = 3
#: Candidate witnesses tried for one ``∃``.
MAX_CANDIDATES = 14
#: Candidate counterexamples tried when the model of step 2 cannot be used as it is.
MAX_OUTER_CANDIDATES = 6
#: Where each step must end, as a fraction of the attempt's ``timeout_s`` from its start; the
#: ordinary check gets the rest (an undecided step leaves it at least 10 %).
WITNESS_UNTIL, ELIMINATE_UNTIL, REFUTE_UNTIL = 0.3, 0.6, 0.9

#: Z3 decision procedures for quantified arithmetic (both on ``strategy.SOUND_TACTICS``).
NLQSAT = Strategy(name="nlqsat", decider=TacticStep("nlqsat"))
QE_SMT = Strategy(
    name="qe-smt", pipeline=(TacticStep("simplify"), TacticStep("qe")), decider=TacticStep("smt")
)

_LABELS: dict[str | None, str] = {"z3": "Z3", "cvc5": "cvc5"}  # looked up by optional names

_depth: contextvars.ContextVar[int] = contextvars.ContextVar("hms_quantifier_depth", default=0)


@dataclass
class Attempt:
    """The proof attempt the steps run in: its solver, strategy, budget and records."""

    strategy: Strategy
    solver: str  # "z3" | "cvc5": the solver that decides every nested claim
    start: float
    timeout_s: float
    rlimit: int | None
    confirm: bool
    stats: dict[str, Any] = field(default_factory=dict)

    def until(self, share: float) -> float:
        """The monotonic time at which the step ending at ``share`` of the budget must end."""
        return self.start + share * self.timeout_s

    def record(self, step: str, result: str, seconds: float, rlimit: int | None = None) -> None:
        """One entry of ``stats["checks"]`` (the prover sums their seconds and rlimit)."""
        self.stats.setdefault("checks", []).append(
            {
                "sizes": {},
                "step": step,
                "result": result,
                "seconds": round(seconds, 6),
                "rlimit": rlimit,
            }
        )


# --------------------------------------------------------------------------- entry points


def decide(statement: A.Statement, ctx: z3.Context, attempt: Attempt) -> ProofOutcome | None:
    """Steps 1–3 for a statement without size parameters; None when undecided (the ordinary
    check follows) or when the statement has no quantifier over an infinite type."""
    if _depth.get() >= MAX_DEPTH or not has_infinite_quantifier(statement):
        return None
    try:
        peeled = peel(statement)
        if peeled.chain and peeled.chain[0].ty in _WITNESS_TYPES:
            found = witness_search(peeled, attempt, ctx)
            if found is not None:
                return found
        return _eliminate(statement, ctx, attempt)
    except (Unsupported, z3.Z3Exception, exact.EvalError, exact.TooLarge):
        return None  # not for these steps: the ordinary check reports the construct


def recheck_model(outcome: ProofOutcome, statement: A.Statement, attempt: Attempt) -> ProofOutcome:
    """Step 3 for a model of the ordinary check that exact evaluation could not decide
    (UNKNOWN with a counterexample that :func:`exact.check_counterexample` finds undecidable,
    not one over a size limit): REFUTED when no witness exists there, else ``outcome`` with
    the reason extended."""
    if (
        outcome.verdict is not Verdict.UNKNOWN
        or outcome.counterexample is None
        or _depth.get() >= MAX_DEPTH
        or attempt.until(1.0) - time.monotonic() <= 0.05
    ):
        return outcome
    try:  # only the case `ok is None` of the prover's re-check (a ∀ over ℝ inside)
        if exact.check_counterexample(statement, outcome.counterexample) is not None:
            return outcome
        refuted = refute_at(statement, outcome.counterexample, attempt, attempt.until(1.0))
    except (Unsupported, exact.EvalError, exact.TooLarge):
        return outcome
    if refuted.verdict is Verdict.REFUTED:
        refuted.stats = outcome.stats
        return refuted
    outcome.reason = f"{outcome.reason}; {refuted.reason}"
    return outcome


# --------------------------------------------------------------------------- AST helpers

_WITNESS_TYPES = (A.REAL, A.INT, A.NAT)  # ℚ: an ∃ over ℚ is left to the ordinary check


def _nodes(*roots: Any) -> Iterator[Any]:
    """Every node of the ``roots`` (types included)."""
    for root in roots:
        yield from ast_walk.nodes(root)


def has_infinite_quantifier(statement: A.Statement) -> bool:
    """Does a hypothesis or the goal hold a ``∀``/``∃`` over ℝ, ℚ, ℤ or ℕ?"""
    return any(
        isinstance(x, A.Quant) and isinstance(x.dom, A.Scalar)
        for x in _nodes(*statement.hypotheses, statement.goal)
    )


@dataclass(frozen=True)
class Peeled:
    """A statement with its goal in prenex form at the top: ``∀ variables, hypotheses →
    ∃ chain, body`` (logically equivalent to the statement it came from)."""

    variables: tuple[A.Param, ...]
    hypotheses: tuple[A.Expr, ...]
    chain: tuple[A.Param, ...]
    body: A.Expr
    definitions: dict[str, A.Definition]

    def instance(self, values: Mapping[str, A.Expr]) -> A.Statement:
        """The statement with the chain's leading variables fixed to ``values``."""
        rest = [p for p in self.chain if p.name not in values]
        goal = substitute(self.body, values)
        for p in reversed(rest):
            goal = A.Quant("exists", p.name, p.ty, goal)
        st = A.Statement(self.variables, self.hypotheses, goal, definitions=self.definitions)
        return replace(st, source=show_statement(st))


def peel(statement: A.Statement) -> Peeled:
    """Move the goal's leading ``∀``, ``→`` and ``∃`` (through ``¬``) into a :class:`Peeled`
    form; a bound name that clashes with a name already in use is renamed (``x'``)."""
    variables, hypotheses = list(statement.variables), list(statement.hypotheses)
    taken = {p.name for p in variables} | names_in(*statement.hypotheses, statement.goal)
    goal = statement.goal
    chain: list[A.Param] = []

    def fresh(q: A.Quant) -> tuple[str, A.Expr]:
        if q.var not in {p.name for p in (*variables, *chain)}:
            return q.var, q.body
        name = q.var + "'"
        while name in taken:
            name += "'"
        taken.add(name)
        return name, substitute(q.body, {q.var: A.Var(name, q.dom)})

    while True:
        if isinstance(goal, A.Not) and isinstance(goal.arg, A.Not):
            goal = goal.arg.arg
        elif isinstance(goal, A.Not) and isinstance(goal.arg, A.Quant):
            q = goal.arg
            flipped = "forall" if q.kind == "exists" else "exists"
            goal = A.Quant(flipped, q.var, q.dom, A.Not(q.body))
        elif isinstance(goal, A.Quant) and goal.kind == "forall" and not chain:
            name, body = fresh(goal)
            variables.append(A.Param(name, goal.dom))
            goal = body
        elif isinstance(goal, A.Logic) and goal.op in ("→", "->") and not chain:
            hypotheses.append(goal.left)
            goal = goal.right
        elif isinstance(goal, A.Quant) and goal.kind == "exists" and isinstance(goal.dom, A.Scalar):
            name, body = fresh(goal)
            chain.append(A.Param(name, goal.dom))
            goal = body
        else:
            break
    return Peeled(
        tuple(variables), tuple(hypotheses), tuple(chain), goal, dict(statement.definitions)
    )


# --------------------------------------------------------------------------- candidate terms


class _NotLinear(Exception):
    pass


def _arith(op: str, a: A.Expr | None, b: A.Expr | None, ty: A.Type) -> A.Expr | None:
    """``a op b`` with None as 0, literals folded exactly (Lean semantics), trivial identities
    dropped; raises :class:`_NotLinear` for a negation in ℕ."""
    a = None if isinstance(a, A.Lit) and a.value == 0 else a
    b = None if isinstance(b, A.Lit) and b.value == 0 else b
    if op == "+" and (a is None or b is None):
        return a if b is None else b
    if op in ("+", "-") and isinstance(b, A.Neg):  # a + -b = a - b, a - -b = a + b
        return _arith("-" if op == "+" else "+", a, b.arg, ty)
    if op == "-":
        if b is None:
            return a
        if a is None:
            if ty == A.NAT:
                raise _NotLinear("negation in ℕ")
            return ast_walk.lit(-b.value, ty) if isinstance(b, A.Lit) else A.Neg(b, ty)
    if op in ("*", "/") and (a is None or b is None):
        return None  # 0 · b = a · 0 = 0 / b = 0, and a / 0 = 0 in Lean
    assert a is not None and b is not None
    if isinstance(a, A.Lit) and isinstance(b, A.Lit):
        value = exact.arith(op, ty, Fraction(a.value), Fraction(b.value))
        return None if value == 0 else ast_walk.lit(value, ty)
    if op in ("*", "/") and isinstance(b, A.Lit) and b.value == 1:
        return a
    if op == "*" and isinstance(a, A.Lit) and a.value == 1:
        return b
    return A.BinOp(op, a, b, ty)


def _occurs(x: str, e: Any) -> bool:
    if isinstance(e, A.Var):
        return e.name == x
    if isinstance(e, A.Quant | A.Lambda | A.Sum) and e.var == x:
        return _occurs(x, getattr(e, "dom", None) or getattr(e, "domain", None))
    if isinstance(e, A.Let) and e.name == x:
        return _occurs(x, e.value)
    return any(_occurs(x, c) for c in ast_walk.children(e))


def _linear(e: A.Expr, x: str, ty: A.Type) -> tuple[A.Expr | None, A.Expr | None]:
    """``(c, r)`` with ``e = c·x + r`` (None for 0), ``c`` and ``r`` free of ``x``."""
    if not _occurs(x, e):
        return None, (None if isinstance(e, A.Lit) and e.value == 0 else e)
    if isinstance(e, A.Var) and e.name == x:
        return ast_walk.lit(1, ty), None
    if isinstance(e, A.BinOp) and e.ty == ty:
        (c1, r1), (c2, r2) = _linear(e.left, x, ty), _linear(e.right, x, ty)
        if e.op in ("+", "-"):
            if e.op == "-" and ty == A.NAT and c2 is not None:
                raise _NotLinear("x subtracted in ℕ")
            return _arith(e.op, c1, c2, ty), _arith(e.op, r1, r2, ty)
        if e.op == "*" and (c1 is None) != (c2 is None):
            k = e.left if c1 is None else e.right
            c, r = (c2, r2) if c1 is None else (c1, r1)
            return _arith("*", k, c, ty), _arith("*", k, r, ty)
        if e.op == "/" and c2 is None and ty in (A.REAL, A.RAT):
            return _arith("/", c1, e.right, ty), _arith("/", r1, e.right, ty)
    if isinstance(e, A.Neg) and e.ty == ty:
        c, r = _linear(e.arg, x, ty)
        return _arith("-", None, c, ty), _arith("-", None, r, ty)
    raise _NotLinear(type(e).__name__)


def _atoms(e: Any, x: str) -> Iterator[A.Compare]:
    """The comparisons of ``e`` in which ``x`` (not rebound) occurs."""
    if isinstance(e, A.Compare):
        if _occurs(x, e):
            yield e
        return
    if isinstance(e, A.Quant | A.Lambda | A.Sum) and e.var == x:
        return
    for c in ast_walk.children(e):
        yield from _atoms(c, x)


def solutions(body: A.Expr, x: A.Param, outer: set[str]) -> list[A.Expr]:
    """Terms ``t`` over the ``outer`` names with ``l = r`` at ``x = t`` for an atom ``l op r``
    of ``body`` in which ``x`` occurs linearly (at ``x``'s type; ℤ/ℕ division is Euclidean:
    the terms are candidates, and the instance's proof decides)."""
    found: list[A.Expr] = []
    for atom in _atoms(body, x.name):
        if atom.left.ty != x.ty or atom.right.ty != x.ty:
            continue
        coef: A.Expr | None
        try:
            (c1, r1), (c2, r2) = _linear(atom.left, x.name, x.ty), _linear(atom.right, x.name, x.ty)
            if c2 is None and c1 is not None:  # c1·x + r1 = r2
                coef, rest = c1, _arith("-", r2, r1, x.ty)
            elif c1 is None and c2 is not None:  # r1 = c2·x + r2
                coef, rest = c2, _arith("-", r1, r2, x.ty)
            elif c1 is not None and c2 is not None and x.ty != A.NAT:
                coef, rest = _arith("-", c1, c2, x.ty), _arith("-", r2, r1, x.ty)
            else:
                continue
        except _NotLinear:
            continue
        if coef is None:
            continue
        t = _arith("/", rest, coef, x.ty) or ast_walk.lit(0, x.ty)
        if names_in(t) <= outer:
            found.append(t)
    return found


def _constants(ty: A.Type) -> list[A.Lit]:
    values: list[int | Fraction] = [0, 1, -1, 2, Fraction(1, 2)]
    if ty == A.NAT:
        values = [0, 1, 2]
    elif ty == A.INT:
        values = [0, 1, -1, 2]
    return [ast_walk.lit(v, ty) for v in values]


def candidates(peeled: Peeled, model: Mapping[str, A.Expr] | None) -> list[dict[str, A.Expr]]:
    """Candidate witnesses, at most :data:`MAX_CANDIDATES`: terms for the chain's first
    variable (atom solutions ``t``, ``t ± 1``, midpoints of two solutions, ``0, 1, -1``), the
    ``model``'s values for the whole chain, then other small constants."""
    x = peeled.chain[0]
    outer = {p.name for p in peeled.variables}
    terms: list[A.Expr] = []
    roots = solutions(peeled.body, x, outer)
    for t in roots:
        terms += [t, _arith("+", t, ast_walk.lit(1, x.ty), x.ty) or ast_walk.lit(0, x.ty)]
        terms.append(_arith("-", t, ast_walk.lit(1, x.ty), x.ty) or ast_walk.lit(0, x.ty))
    if x.ty != A.NAT and x.ty != A.INT:
        for s, t in itertools.combinations(roots, 2):
            mid = _arith("/", _arith("+", s, t, x.ty), ast_walk.lit(2, x.ty), x.ty)
            terms.append(mid or ast_walk.lit(0, x.ty))
    # 0, 1, -1 before the model's value (the simplest witness is the one reported), the other
    # constants after it
    small = _constants(x.ty)
    out: list[dict[str, A.Expr]] = [{x.name: t} for t in (*terms, *small[:3])]
    out += [dict(model)] if model else []
    out += [{x.name: t} for t in small[3:]]
    unique: dict[tuple[tuple[str, str], ...], dict[str, A.Expr]] = {}
    for cand in out:
        unique.setdefault(_key(cand), cand)
    return list(unique.values())[:MAX_CANDIDATES]


def _shown(term: A.Expr, definitions: Mapping[str, A.Definition]) -> str:
    """A witness as reported: a value as in counterexamples (``"-1"``, ``"1/2"``), a term as
    Lean text over the outer variables (``"b / a + 1"``)."""
    if isinstance(term, A.Lit) and isinstance(term.ty, A.Scalar):
        return str(Fraction(term.value))
    return show_expr(term, definitions)


def _key(values: Mapping[str, A.Expr]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, show_expr(v)) for k, v in values.items()))


# --------------------------------------------------------------------------- step 1: witnesses


@contextmanager
def _nested() -> Iterator[None]:
    token = _depth.set(_depth.get() + 1)
    try:
        yield
    finally:
        _depth.reset(token)


def _prove(statement: A.Statement, attempt: Attempt, until: float, *, confirm: bool) -> Any:
    """``prove`` a smaller claim with half the time left until ``until`` (its confirmation
    may take as long again), one level deeper."""
    from .prover import prove

    left = max(until - time.monotonic(), 0.0) / 2
    with _nested():
        return prove(
            statement,
            backend=attempt.solver,
            strategy=attempt.strategy,
            timeout_s=max(left, 0.01),
            rlimit=attempt.rlimit,
            confirm=confirm,
        )


def _model_values(peeled: Peeled, ctx: z3.Context, until: float) -> dict[str, A.Expr] | None:
    """Exact values of the chain that satisfy the body under the hypotheses, from one short
    Z3 check (a hint only: the instance is proved before anything is reported)."""
    probe = A.Statement(
        (*peeled.variables, *peeled.chain),
        peeled.hypotheses,
        A.Not(peeled.body),
        definitions=peeled.definitions,
    )
    compiled = compile_statement(probe, {}, ctx)
    solver = z3.Solver(ctx=ctx)
    budget_ms = int(min(0.5, max(until - time.monotonic(), 0.0) / 4) * 1000)
    if budget_ms <= 0:
        return None
    solver.set("timeout", budget_ms)
    solver.add(*compiled.assertions)
    try:
        if solver.check() != z3.sat:
            return None
        values = read_counterexample(compiled, solver.model())
    except (z3.Z3Exception, CounterexampleError):
        return None
    try:
        return {p.name: ast_walk.lit(parse_fraction(values[p.name]), p.ty) for p in peeled.chain}
    except (KeyError, TypeError, ValueError):
        return None


def witness_search(peeled: Peeled, attempt: Attempt, ctx: z3.Context) -> ProofOutcome | None:
    """Step 1: PROVED with a witness whose instance is proved, or None."""
    until = attempt.until(WITNESS_UNTIL)
    try:
        model = _model_values(peeled, ctx, until)
    except Unsupported:
        model = None
    cands = candidates(peeled, model)
    for k, cand in enumerate(cands):
        t0 = time.monotonic()
        if until - t0 <= 0.02:
            break
        try:
            instance = peeled.instance(cand)
        except CaptureError:
            continue
        shown = {k: _shown(v, peeled.definitions) for k, v in cand.items()}
        # a share of the time left, so that an undecided candidate leaves time for the next
        share = (until - t0) / min(len(cands) - k, 4)
        out = _prove(instance, attempt, t0 + share, confirm=attempt.confirm)
        step = "witness " + ", ".join(f"{k} = {v}" for k, v in shown.items())
        attempt.record(
            step, out.verdict.value, time.monotonic() - t0, out.stats.get("rlimit_count")
        )
        if out.verdict is not Verdict.PROVED:
            continue
        inner = out.proof or {}
        witness = {**shown, **(inner.get("witness") or {})}
        text = ", ".join(f"{k} = {v}" for k, v in witness.items())
        return ProofOutcome(
            Verdict.PROVED,
            reason=f"witness {text}: the instance is proved",
            stats=attempt.stats,
            confirmed_by=out.confirmed_by,
            proof={
                "method": "witness",
                "witness": witness,
                "instance": instance.source,
                "instance_proof": out.proof,
                "instance_reason": out.reason,
            },
        )
    return None


# --------------------------------------------------------------------------- step 2: elimination


def _has_quantifier(terms: list[z3.ExprRef]) -> bool:
    seen: set[int] = set()
    todo: list[z3.ExprRef] = list(terms)
    while todo:
        t = todo.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_quantifier(t):
            return True
        if z3.is_app(t):
            todo.extend(t.children())
    return False


def _nonlinear(terms: list[z3.ExprRef]) -> bool:
    """Is there a product of two non-numerals, or a division, modulus or power by one?"""

    def numeral(t: z3.ExprRef) -> bool:
        return z3.is_rational_value(t) or z3.is_int_value(t) or z3.is_algebraic_value(t)

    seen: set[int] = set()
    todo: list[z3.ExprRef] = list(terms)
    while todo:
        t = todo.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_quantifier(t):
            todo.append(t.body())
            continue
        if not z3.is_app(t):
            continue
        kids = t.children()
        if z3.is_mul(t) and sum(not numeral(k) for k in kids) >= 2:
            return True
        if (z3.is_div(t) or z3.is_idiv(t) or z3.is_mod(t) or z3.is_app_of(t, z3.Z3_OP_POWER)) and (
            not numeral(kids[-1])
        ):
            return True
        todo.extend(kids)
    return False


def _not_confirmed(status: str) -> dict[str, Any]:
    from .cvc5_backend import cvc5_version

    return {
        "solver": "cvc5",
        "version": cvc5_version(),
        "budget_s": 0.0,
        "seconds": 0.0,
        "status": status,
    }


def _eliminate(statement: A.Statement, ctx: z3.Context, attempt: Attempt) -> ProofOutcome | None:
    """Step 2 (and 3 on its model): PROVED, REFUTED, UNKNOWN with the reason, or None.

    Z3 eliminates the quantifiers whichever solver the attempt uses; for cvc5 its model is a
    hint for step 3 only (whose claims cvc5 proves), and its proof is not used."""
    from .prover import _solve, confirm_proved

    compiled = compile_statement(statement, {}, ctx)
    assertions = compiled.assertions
    if not _has_quantifier(assertions):
        return None
    until = attempt.until(ELIMINATE_UNTIL)
    for i, strat in enumerate((NLQSAT, QE_SMT)):
        left = until - time.monotonic()
        if left <= 0.02:
            return None
        share = left / 2 if i == 0 else left  # nlqsat first, but never all of the time
        t0 = time.monotonic()
        check = _solve(list(assertions), strat, ctx, t0, share, attempt.rlimit)
        attempt.record(
            f"quantifier elimination ({strat.describe()})",
            check.status,
            check.seconds,
            check.rlimit_used,
        )
        if check.status == "unsat":
            if attempt.solver != "z3":  # Z3's proof is not the requested solver's proof
                return None
            proved = ProofOutcome(
                Verdict.PROVED,
                reason=f"quantifier elimination ({strat.describe()}): hypotheses ∧ ¬goal is "
                "unsatisfiable",
                stats=attempt.stats,
                proof={"method": "quantifier-elimination", "strategy": strat.to_json()},
            )
            if not attempt.confirm:
                return proved
            if strat is NLQSAT and _nonlinear(assertions):
                # cvc5 has no decision procedure here, and overruns its time limit on such
                # problems by seconds: this proof is Z3's alone, and says so.
                proved.confirmed_by = _not_confirmed(
                    "unconfirmed (unsupported: cvc5 does not decide quantified nonlinear real "
                    "arithmetic)"
                )
                return proved
            return confirm_proved(
                proved,
                assertions,
                proved_by="z3",
                start=attempt.start,
                timeout_s=attempt.timeout_s,
                rlimit=attempt.rlimit,
                strategy=attempt.strategy,
                statement=statement,
                compiled=compiled,
            )
        if check.status == "sat":
            try:
                cex: dict[str, Any] | None = read_counterexample(compiled, check.model)
            except CounterexampleError:
                cex = None
            return _refute_from_model(statement, cex, attempt, strat.describe())
    return None


# --------------------------------------------------------------------------- step 3: no witness


def _refute_from_model(
    statement: A.Statement, cex: dict[str, Any] | None, attempt: Attempt, by: str
) -> ProofOutcome:
    """REFUTED at the model's values or at small values; else UNKNOWN saying why."""
    until = attempt.until(REFUTE_UNTIL)
    tried: list[dict[str, Any]] = [cex] if cex is not None else []
    for extra in _outer_candidates(statement):
        if len(tried) >= MAX_OUTER_CANDIDATES:
            break
        if extra not in tried:
            tried.append(extra)
    why = "its model has no exact rational value" if cex is None else ""
    for values in tried:
        if until - time.monotonic() <= 0.05:
            why = why or "the time budget ran out"
            break
        out = refute_at(statement, values, attempt, until)
        if out.verdict is Verdict.REFUTED:
            return out
        why = why or out.reason
    return ProofOutcome(
        Verdict.UNKNOWN,
        reason=f"{by} finds the claim false, but no counterexample was established: {why}",
        counterexample=cex,
        stats=attempt.stats,
    )


def _outer_candidates(statement: A.Statement) -> Iterator[dict[str, Any]]:
    """Small values for the statement's scalar variables (every combination, smallest first)."""
    params = statement.variables
    if not params or not all(isinstance(p.ty, A.Scalar) for p in params):
        return
    pools = [[str(v.value) for v in _constants(p.ty)] for p in params]
    for combo in itertools.islice(itertools.product(*pools), MAX_OUTER_CANDIDATES):
        yield dict(zip((p.name for p in params), combo, strict=True))


def _literal_for(ty: A.Type, value: Any) -> A.Expr:
    if isinstance(ty, A.PropT):
        return A.BoolLit(bool(value))
    if isinstance(ty, A.Scalar | A.FinT):
        return A.Lit(Fraction(value), ty)
    raise Unsupported(f"a value of type {ty} cannot be written as a literal")


def _exact_truth(e: A.Expr, definitions: Mapping[str, A.Definition]) -> bool | None:
    try:
        return bool(exact.evaluate(e, {}, definitions))
    except (exact.Undecidable, exact.TooLarge):
        return None


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in values.items()) or "(no variables)"


def refute_at(
    statement: A.Statement, cex: Mapping[str, Any], attempt: Attempt, until: float
) -> ProofOutcome:
    """Step 3 at the values ``cex`` (counterexample JSON): REFUTED when the hypotheses hold
    there and the negated goal is proved and confirmed, else UNKNOWN with the reason."""
    defs = statement.definitions
    where = _describe(cex)
    mapping: dict[str, A.Expr] = {}
    env: dict[str, Any] = {}
    try:
        for p in statement.variables:
            ty = substitute(p.ty, mapping)
            env[p.name] = exact.decode_value(ty, cex[p.name], env, p.name)
            mapping[p.name] = _literal_for(ty, env[p.name])
    except (KeyError, exact.EvalError, Unsupported) as exc:
        return _unknown(f"values {where} cannot be fixed in the statement: {exc}", cex, attempt)
    claims: list[tuple[str, A.Expr]] = []
    for h in statement.hypotheses:
        fixed = substitute(h, mapping)
        truth = _exact_truth(fixed, defs)
        if truth is False:
            return _unknown(f"a hypothesis is false at {where}", cex, attempt)
        if truth is None:
            claims.append(("hypothesis", fixed))
    goal = substitute(statement.goal, mapping)
    truth = _exact_truth(goal, defs)
    if truth is True:
        return _unknown(f"the goal holds at {where}", cex, attempt)
    if truth is False and not claims:
        return ProofOutcome(
            Verdict.REFUTED,
            reason=f"counterexample {where}, re-checked by exact evaluation",
            counterexample=dict(cex),
            stats=attempt.stats,
        )
    if truth is None:
        claims.append(("goal", A.Not(goal)))
    return _prove_obligations(statement, claims, dict(cex), attempt, until)


def _prove_obligations(
    statement: A.Statement,
    claims: list[tuple[str, A.Expr]],
    cex: dict[str, Any],
    attempt: Attempt,
    until: float,
) -> ProofOutcome:
    where = _describe(cex)
    records: list[dict[str, Any]] = []
    for role, claim in claims:
        closed = A.Statement((), (), claim, definitions=statement.definitions)
        closed = replace(closed, source=show_statement(closed))
        t0 = time.monotonic()
        out = _prove(closed, attempt, until, confirm=True)  # always confirmed: it refutes
        attempt.record(
            f"no-witness {role} at {where}",
            out.verdict.value,
            time.monotonic() - t0,
            out.stats.get("rlimit_count"),
        )
        status = (out.confirmed_by or {}).get("status", "not confirmed")
        records.append(
            {
                "role": role,
                "claim": closed.source,
                "verdict": out.verdict.value,
                "reason": out.reason,
                "proof": out.proof,
                "confirmed_by": out.confirmed_by,
            }
        )
        if out.verdict is not Verdict.PROVED:
            return _unknown(
                f"at {where}, {closed.source} is {out.verdict.value} ({out.reason})", cex, attempt
            )
        if status != "confirmed":
            return _unknown(f"at {where}, {closed.source} is proved but {status}", cex, attempt)
    goal = next((r for r in records if r["role"] == "goal"), None)
    proof: dict[str, Any] = {"method": "no-witness", "outer": cex, "obligations": records}
    if goal is not None:
        proof["obligation"] = goal["claim"]
        proof["confirmed_by"] = goal["confirmed_by"]
        confirmer = _LABELS.get((goal["confirmed_by"] or {}).get("solver"), "the other solver")
        at = f" at {where}" if cex else ""
        reason = (
            f"no witness{at}: {goal['claim']} is proved by {_LABELS[attempt.solver]} and "
            f"confirmed by {confirmer}"
        )
    else:
        reason = f"counterexample {where}: its hypotheses are proved, its goal fails exactly"
    return ProofOutcome(
        Verdict.REFUTED, reason=reason, counterexample=cex, stats=attempt.stats, proof=proof
    )


def _unknown(why: str, cex: Mapping[str, Any], attempt: Attempt) -> ProofOutcome:
    return ProofOutcome(
        Verdict.UNKNOWN,
        reason=f"no-witness check: {why}",
        counterexample=dict(cex),
        stats=attempt.stats,
    )
