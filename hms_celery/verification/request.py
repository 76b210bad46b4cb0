"""A proof request: what the client sends and the worker runs, validated on both sides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hms_celery.errors import InputError, StatementError
from hms_celery.verification.ast import Statement
from hms_celery.verification.verdict import ProofOutcome, Verdict

#: ``"race"``: several solvers at once, the first decisive verdict wins (agents/race).
Backend = Literal["z3", "cvc5", "lean", "race"]


def order_variables(variables: Mapping[str, str] | None) -> dict[str, str]:
    """``variables`` (name → Lean type text) in dependency order, as binders need them.

    A variable whose type mentions another one comes after it (``{"w": "Fin n → ℝ", "n": "ℕ"}``
    gives ``n, w``); otherwise the given order is kept.  A cycle raises
    :class:`StatementError` naming its variables; a type that does not parse or mentions an
    unknown name is left to the elaborator, which reports it with its position."""
    if not variables:
        return {}
    from hms_celery.verification.surface import canonical_name

    names = {canonical_name(k): k for k in variables}
    deps = {v: [names[n] for n in _type_names(t) if n in names] for v, t in variables.items()}
    ordered: dict[str, str] = {}
    while len(ordered) < len(variables):
        # the first variable, in the given order, whose dependencies are all placed
        ready = next(
            (v for v in variables if v not in ordered and all(d in ordered for d in deps[v])),
            None,
        )
        if ready is None:
            raise _cycle_error(variables, deps, ordered)
        ordered[ready] = variables[ready]
    return ordered


def _cycle_error(
    variables: Mapping[str, str], deps: dict[str, list[str]], placed: Mapping[str, str]
) -> StatementError:
    """The error for variables that cannot be ordered: follow unplaced dependencies from the
    first unplaced variable until one repeats; the repeated stretch is a cycle."""
    path = [next(v for v in variables if v not in placed)]
    while True:
        following = next(d for d in deps[path[-1]] if d not in placed)
        if following in path:
            cycle = [*path[path.index(following) :], following]
            break
        path.append(following)
    first = cycle[0]
    if len(cycle) == 2:
        what = f"variable {first} : {variables[first]} mentions itself"
    else:
        types = ", ".join(f"{v} : {variables[v]}" for v in cycle[:-1])
        what = f"variables {' → '.join(cycle)} depend on each other in a cycle ({types})"
    return StatementError(f"type of variable {first}: {what}", source=str(variables[first]))


def _type_names(type_text: Any) -> list[str]:
    """The names a type text mentions (``Fin (n + 1) → ℝ``: ``n``); none if it does not parse."""
    from dataclasses import fields, is_dataclass

    from hms_celery.verification.parser import parse_type
    from hms_celery.verification.surface import SName

    try:
        root = parse_type(str(type_text))
    except StatementError:
        return []
    found: list[str] = []
    todo: list[Any] = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, SName):
            found.append(node.name)
        elif is_dataclass(node):
            todo.extend(getattr(node, f.name) for f in fields(node))
        elif isinstance(node, tuple | list):
            todo.extend(node)
    return found


class ProofRequest(BaseModel):
    """One statement to decide, with its assumptions, variables and prover options.

    Exactly one of ``statement`` (Lean syntax) and ``smtlib`` (an SMT-LIB 2 problem, read as
    the claim that its assertions are unsatisfiable: see :mod:`.smtlib`) is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    theorem_id: str | None = Field(default=None, max_length=200)
    statement: str = Field(default="", max_length=100_000)
    smtlib: str | None = Field(default=None, max_length=10_000_000)
    assumptions: tuple[str, ...] = ()
    variables: dict[str, str] | None = None
    backend: Backend = "z3"
    strategy: dict[str, Any] | str | None = None
    timeout: float | None = Field(default=None, gt=0, le=3600)
    rlimit: int | None = Field(default=None, gt=0)
    max_size: int | None = Field(default=None, ge=0, le=200)

    @model_validator(mode="after")
    def _one_problem(self) -> ProofRequest:
        if bool(self.statement) == bool(self.smtlib):
            raise ValueError("give exactly one of a statement and an SMT-LIB problem (smtlib)")
        if self.smtlib and (self.assumptions or self.variables):
            raise ValueError("an SMT-LIB problem takes no assumptions or variables")
        return self

    @classmethod
    def build(cls, **fields: Any) -> ProofRequest:
        """Validate ``fields``; a bad one raises :class:`InputError` naming it."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InputError(f"invalid proof request: {problems}") from None

    def parse(self) -> Statement:
        """Parse and elaborate the (Lean) statement (raises :class:`StatementError`)."""
        if self.smtlib:
            raise InputError("an SMT-LIB request has no Lean statement to parse")
        from hms_celery.verification.frontend import parse_statement

        variables = order_variables(self.variables)  # any order: binders need dependency order
        return parse_statement(self.statement, self.assumptions, variables)

    def validate_strategy(self) -> None:
        """Raise :class:`InputError` if the strategy is not a valid one."""
        if self.strategy is None:
            return
        from hms_celery.verification.strategy import strategy_from_any

        try:
            strategy_from_any(self.strategy)
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"invalid strategy: {exc}") from None

    def run(
        self,
        *,
        timeout: float,
        max_size: int,
        rlimit: int | None,
        strategy: Any = None,
        confirm: bool | None = None,
    ) -> ProofOutcome:
        """Decide the statement. Bad input becomes an ERROR verdict, never an exception.

        ``confirm``: the other solver confirms a PROVED verdict (None: ``HMS_CONFIRM_PROVED``;
        GA fitness evaluations pass False)."""
        from hms_celery.verification.prover import prove

        if self.smtlib:
            return self._run_smtlib(
                timeout=timeout, rlimit=rlimit, strategy=strategy, confirm=confirm
            )
        try:
            statement = self.parse()
        except StatementError as exc:
            return ProofOutcome(Verdict.ERROR, reason=str(exc), backend=self.backend)
        return prove(
            statement,
            backend=self.backend,
            strategy=self.strategy if self.strategy is not None else strategy,
            timeout_s=self.timeout or timeout,
            rlimit=self.rlimit or rlimit,
            max_size=self.max_size if self.max_size is not None else max_size,
            confirm=confirm,
        )

    def _run_smtlib(
        self, *, timeout: float, rlimit: int | None, strategy: Any, confirm: bool | None = None
    ) -> ProofOutcome:
        from hms_celery.verification.smtlib import decide_smtlib

        # decide_smtlib answers ERROR for a backend outside smtlib.BACKENDS (z3, cvc5)
        return decide_smtlib(
            self.smtlib or "",
            backend=self.backend,
            strategy=self.strategy if self.strategy is not None else strategy,
            timeout_s=self.timeout or timeout,
            rlimit=self.rlimit or rlimit,
            confirm=confirm,
        )
