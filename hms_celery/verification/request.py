"""A proof request: what the client sends and the worker runs, validated on both sides."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hms_celery.errors import InputError, StatementError
from hms_celery.verification.ast import Statement
from hms_celery.verification.verdict import ProofOutcome, Verdict

Backend = Literal["z3", "cvc5", "lean"]


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
        from hms_celery.verification.parser import parse_statement

        return parse_statement(self.statement, self.assumptions, self.variables)

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

        if self.backend != "z3":
            # cvc5 still checks SMT-LIB problems: it confirms every unsat Z3 finds.
            why = " (cvc5 confirms every unsat Z3 finds; backend 'cvc5' takes Lean statements)"
            return ProofOutcome(
                Verdict.ERROR,
                reason=f"SMT-LIB problems are decided by the z3 backend, not {self.backend!r}"
                + (why if self.backend == "cvc5" else ""),
                backend=self.backend,
            )
        return decide_smtlib(
            self.smtlib or "",
            strategy=self.strategy if self.strategy is not None else strategy,
            timeout_s=self.timeout or timeout,
            rlimit=self.rlimit or rlimit,
            confirm=confirm,
        )
