"""Re-check a model of an SMT-LIB problem: exact evaluation, then closed proof obligations.

A solver's ``sat`` becomes REFUTED only when its model is shown to satisfy *every* assertion:

* an assertion that evaluates to ``true`` under the model (Z3's exact evaluation) holds;
* one that evaluates to ``false`` is an internal error (the solver's model is wrong);
* one that evaluates to neither — a quantified assertion, typically — becomes a *closed proof
  obligation*: the model's values are substituted for the free constants (``z3.substitute``)
  and the model's function interpretations for the functions (``z3.substitute_funs``; an
  interpretation may use other functions of the model, so this is repeated until none is
  left), and the closed formula is *proved* valid: its negation is unsatisfiable for Z3, and
  the other solver (cvc5) confirms it (:func:`~.confirm.confirm_proved`'s record).

Why a proof of validity is enough: every substitution is the model's own value, and whatever
is left free in an obligation (a function the model does not interpret, Z3's division by
zero, the elements of an uninterpreted sort) is, in a validity proof, universally
quantified — so the assertion holds in the model whatever the model says about them.  The
converse does not hold: an obligation that is true in the model but not valid (it depends
on what the model leaves free) is UNKNOWN, never REFUTED.

The result: REFUTED with ``proof = {"method": "model-check", "obligations": [...]}`` (one
entry per obligation: the assertion's 1-based index, status, seconds, ``confirmed_by``) when
every assertion holds; UNKNOWN/TIMEOUT naming the assertion otherwise; ERROR when an
assertion is false under the model or the two solvers disagree about an obligation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import z3

from . import z3_session
from .confirm import CONFIRM_MIN_S, confirm_proved
from .strategy import Z3_DEFAULT
from .verdict import ProofOutcome, Verdict

__all__ = ["ModelSubstitution", "check_model", "from_z3_model", "interpretation_body"]

#: The obligations' Z3 checks may run this long past the attempt's deadline in all (a model
#: found just before it still gets its obligations checked); the attempt stays well inside
#: the sandbox's kill at T + 2 s, together with the confirmations' ``CONFIRM_MIN_S``.
OBLIGATION_MIN_S = 0.25

#: An obligation is recorded as SMT-LIB text up to this many characters.
MAX_RECORDED_CHARS = 2000


@dataclass
class ModelSubstitution:
    """A model as exact substitutions into Z3 terms.

    ``constants``: (constant, value) pairs; ``functions``: (function, body) pairs, the body a
    term over ``Var(0) … Var(arity - 1)`` for the arguments (first argument ``Var(0)``, as
    ``z3.substitute_funs`` and Z3's function interpretations both number them); ``evaluate``:
    the model's exact evaluation of a term (Z3: ``model.eval``; default: simplify the closed
    term)."""

    constants: list[tuple[z3.ExprRef, z3.ExprRef]] = field(default_factory=list)
    functions: list[tuple[z3.FuncDeclRef, z3.ExprRef]] = field(default_factory=list)
    evaluate: Callable[[z3.ExprRef], z3.ExprRef] | None = None

    def close(self, term: z3.ExprRef) -> z3.ExprRef:
        """``term`` with the model substituted: constants once, functions until no function
        of the model is left (at most one round per function: a body that keeps mentioning
        a function of the model — a cycle — leaves it free, which a validity proof covers)."""
        out = z3.substitute(term, *self.constants) if self.constants else term
        names = {d.get_id() for d, _ in self.functions}
        for _ in range(len(self.functions) + 1):
            if not self.functions or not _mentions(out, names):
                break
            out = z3.substitute_funs(out, *self.functions)
            if self.constants:  # a function body may mention a constant of the model
                out = z3.substitute(out, *self.constants)
        return out

    def value(self, term: z3.ExprRef) -> z3.ExprRef:
        """The model's exact value of ``term`` (``true``/``false`` for a decided formula)."""
        if self.evaluate is not None:
            return self.evaluate(term)
        return z3.simplify(self.close(term))


def interpretation_body(interp: z3.FuncInterp, decl: z3.FuncDeclRef) -> z3.ExprRef:
    """Z3's function interpretation ``interp`` of ``decl`` as one term over ``Var(i)``:
    its entries as an if-then-else chain (first entry first) ending in its else value."""
    entries = interp.as_list()
    body = interp.else_value()
    if body is None:  # no else value: Z3 leaves the function free outside its entries
        raise ValueError(f"the interpretation of {decl.name()} has no else value")
    for entry in reversed(entries[:-1]):
        args, val = entry[:-1], entry[-1]
        cond = z3.And([z3.Var(i, decl.domain(i)) == a for i, a in enumerate(args)])
        body = z3.If(cond, val, body)
    return body


def from_z3_model(model: z3.ModelRef, constants: list[z3.FuncDeclRef]) -> ModelSubstitution:
    """The substitution of a Z3 model: ``constants`` (every constant of the problem) get their
    completed value (``model_completion``, as the counterexample reports them); every function
    the model interprets gets its interpretation; evaluation is ``model.eval``."""
    pairs = [(c(), model.eval(c(), model_completion=True)) for c in constants]
    functions: list[tuple[z3.FuncDeclRef, z3.ExprRef]] = []
    for decl in model.decls():
        if decl.arity() == 0 or decl.kind() != z3.Z3_OP_UNINTERPRETED:
            continue
        try:
            functions.append((decl, interpretation_body(model[decl], decl)))
        except (ValueError, z3.Z3Exception):
            continue  # left free: a validity proof covers every interpretation
    return ModelSubstitution(
        [(c, v) for c, v in pairs if not c.eq(v)],
        functions,
        lambda t: model.eval(t, model_completion=True),
    )


def from_values(
    constants: dict[z3.FuncDeclRef, Any], functions: dict[z3.FuncDeclRef, dict[str, Any]]
) -> ModelSubstitution:
    """The substitution of another solver's model, read as counterexample JSON: a constant's
    value (``"p/q"``, ``"n"`` or a bool), a function's table ``{"entries": [[x…, y], …],
    "else": y}``.  Evaluation simplifies the closed term (Z3's exact arithmetic)."""
    pairs = [(decl(), json_value(value, decl.range())) for decl, value in constants.items()]
    bodies: list[tuple[z3.FuncDeclRef, z3.ExprRef]] = []
    for decl, table in functions.items():
        body = json_value(table["else"], decl.range())
        for entry in reversed(table["entries"]):
            cond = z3.And(
                [
                    z3.Var(i, decl.domain(i)) == json_value(a, decl.domain(i))
                    for i, a in enumerate(entry[:-1])
                ]
            )
            body = z3.If(cond, json_value(entry[-1], decl.range()), body)
        bodies.append((decl, body))
    return ModelSubstitution(pairs, bodies)


def json_value(value: Any, sort: z3.SortRef) -> z3.ExprRef:
    """A counterexample JSON value as a Z3 value of ``sort`` (exact: from its decimal text)."""
    ctx = sort.ctx
    if sort.kind() == z3.Z3_BOOL_SORT and isinstance(value, bool):
        return z3.BoolVal(value, ctx)
    if isinstance(value, str) and sort.kind() == z3.Z3_INT_SORT and "/" not in value:
        return z3.IntVal(value, ctx)
    if isinstance(value, str) and sort.kind() == z3.Z3_REAL_SORT:
        return z3.RealVal(value, ctx)
    raise ValueError(f"no exact {sort} value in {str(value)[:80]!r}")


def _mentions(term: z3.ExprRef, decl_ids: set[int]) -> bool:
    seen: set[int] = set()
    stack = [term]
    while stack:
        t = stack.pop()
        if t.get_id() in seen:
            continue
        seen.add(t.get_id())
        if z3.is_quantifier(t):
            stack.append(t.body())
        elif z3.is_app(t):
            if t.decl().get_id() in decl_ids:
                return True
            stack.extend(t.children())
    return False


@dataclass
class ModelCheck:
    """What :func:`check_model` found: a verdict (REFUTED, UNKNOWN, TIMEOUT or ERROR), its
    reason, the ``proof`` record (None when every assertion evaluated to true) and, for a
    disagreement, the confirmation record."""

    verdict: Verdict
    reason: str
    proof: dict[str, Any] | None = None
    confirmed_by: dict[str, Any] | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def check_model(
    assertions: list[z3.BoolRef],
    model: ModelSubstitution,
    *,
    deadline: float,
    rlimit: int | None = None,
    confirm: bool = True,
) -> ModelCheck:
    """Re-check ``model`` against every assertion (see the module docstring).

    The obligations' Z3 checks share the time until ``deadline`` (at least
    :data:`OBLIGATION_MIN_S` in all); their confirmations then share the time left, but at
    least :data:`~.CONFIRM_MIN_S` — as a PROVED verdict's confirmation does."""
    pending: list[tuple[int, z3.BoolRef]] = []
    for i, assertion in enumerate(assertions):
        value = model.value(assertion)
        if z3.is_false(value):
            return ModelCheck(
                Verdict.ERROR,
                f"internal: model failed re-check (assertion {i + 1} is false under it)",
            )
        if not z3.is_true(value):
            pending.append((i, assertion))
    if not pending:
        return ModelCheck(Verdict.REFUTED, "sat: the model satisfies every assertion (re-checked)")
    evaluated = len(assertions) - len(pending)
    records: list[dict[str, Any]] = []
    proof = {"method": "model-check", "evaluated": evaluated, "obligations": records}
    proved: list[z3.BoolRef] = []
    prove_until = max(deadline, time.monotonic() + OBLIGATION_MIN_S)
    for i, assertion in pending:
        obligation = model.close(assertion)
        record: dict[str, Any] = {"assertion": i + 1, "solver": "z3", "confirmed_by": None}
        records.append(record)
        text = obligation.sexpr()
        record["obligation"] = text[:MAX_RECORDED_CHARS]
        if len(text) > MAX_RECORDED_CHARS:
            record["obligation_truncated"] = len(text)
        t0 = time.monotonic()
        check = z3_session.solve(
            [z3.Not(obligation)], Z3_DEFAULT, obligation.ctx, t0, prove_until - t0, rlimit
        )
        record["seconds"] = round(check.seconds, 6)
        if check.status == "unsat":
            record["status"] = "proved"
            proved.append(obligation)
            continue
        if check.status == "sat":
            record["status"] = "not valid"
            why = (
                f"assertion {i + 1} does not evaluate under the model, and its closed "
                "obligation is not valid (Z3 finds a case where it fails)"
            )
            return ModelCheck(Verdict.UNKNOWN, f"the model could not be re-checked: {why}", proof)
        verdict = z3_session.classify_unknown(check, prove_until, rlimit)
        record["status"] = "timeout" if verdict is Verdict.TIMEOUT else f"unknown: {check.reason}"
        why = f"assertion {i + 1}'s closed obligation under the model is undecided ({check.reason})"
        return ModelCheck(verdict, f"the model could not be re-checked: {why}", proof)
    if confirm:
        disagreement = _confirm(proof, proved, deadline)
        if disagreement is not None:
            return disagreement
    confirmed = sum(
        1 for r in records if (r.get("confirmed_by") or {}).get("status") == "confirmed"
    )
    how = f"{evaluated} by exact evaluation, {len(records)} as closed obligations proved by Z3"
    if confirm:
        how += f" ({confirmed} confirmed by cvc5)"
    return ModelCheck(Verdict.REFUTED, f"sat: the model satisfies every assertion ({how})", proof)


def _confirm(proof: dict[str, Any], proved: list[z3.BoolRef], deadline: float) -> ModelCheck | None:
    """cvc5 checks each proved obligation's negation; a disagreement is returned."""
    records = proof["obligations"]
    until = max(deadline, time.monotonic() + CONFIRM_MIN_S)
    for k, (record, obligation) in enumerate(zip(records, proved, strict=True)):
        start = time.monotonic()
        budget = max((until - start) / (len(proved) - k), 0.05)
        done = confirm_proved(
            ProofOutcome(Verdict.PROVED, reason="obligation proved"),
            [z3.Not(obligation)],
            proved_by="z3",
            start=start,
            timeout_s=budget,
        )
        record["confirmed_by"] = done.confirmed_by
        if done.verdict is Verdict.ERROR:
            return ModelCheck(
                Verdict.ERROR,
                f"{done.reason} (about assertion {record['assertion']}'s closed obligation "
                "under the model)",
                proof,
                confirmed_by=done.confirmed_by,
                stats={"disagreement": done.stats.get("disagreement")},
            )
    return None
