"""Small builders of core-AST statements by hand (no parser needed) for the prover tests."""

from __future__ import annotations

from fractions import Fraction

from hms_celery.verification import ast as A

R, N, Z, Q = A.REAL, A.NAT, A.INT, A.RAT


def lit(x: int | str | Fraction, ty: A.Type = R) -> A.Lit:
    return A.Lit(Fraction(x), ty)


def var(name: str, ty: A.Type = R) -> A.Var:
    return A.Var(name, ty)


def op(o: str, a: A.Expr, b: A.Expr, ty: A.Type = R) -> A.BinOp:
    return A.BinOp(o, a, b, ty)


def cmp(o: str, a: A.Expr, b: A.Expr) -> A.Compare:
    return A.Compare(o, a, b)


def land(a: A.Expr, b: A.Expr) -> A.Logic:
    return A.Logic("∧", a, b)


def stmt(
    variables: list[tuple[str, A.Type]], hyps: list[A.Expr], goal: A.Expr, **kw: object
) -> A.Statement:
    return A.Statement(
        tuple(A.Param(n, t) for n, t in variables),
        tuple(hyps),
        goal,
        **kw,  # type: ignore[arg-type]
    )


def fin(size: A.Expr | int) -> A.FinT:
    return A.FinT(lit(size, N) if isinstance(size, int) else size)


def vec(size: A.Expr | int, cod: A.Type = R) -> A.Arrow:
    return A.Arrow(fin(size), cod)


def at(name: str, index: A.Expr, size: A.Expr | int, cod: A.Type = R) -> A.App:
    return A.App(A.Var(name, vec(size, cod)), index, cod)


def war_statement(size: A.Expr | int, *, abs_bound: bool = False, unit_d: bool = False):
    """The WAR claims: constraints ⇒ −100 ≤ Σ w·a·d ≤ 100 (or |Σ w·a·d| ≤ 100·Σ w·d)."""
    f = fin(size)
    i = A.Var("i", f)

    def x(name: str) -> A.Expr:
        return at(name, i, size)

    def forall(body: A.Expr) -> A.Expr:
        return A.Quant("forall", "i", f, body)

    wad = A.Sum("i", f, op("*", op("*", x("w"), x("a")), x("d")), R)
    hyps = [
        forall(land(cmp("<", lit(0), x("w")), cmp("≤", x("w"), lit(1)))),
        cmp("=", A.Sum("i", f, x("w"), R), lit(1)),
        forall(land(cmp("≤", lit(-100), x("a")), cmp("≤", x("a"), lit(100)))),
        forall(cmp("≤", lit(0), x("d"))),
    ]
    if unit_d:
        hyps.append(forall(cmp("≤", x("d"), lit(1))))
    if abs_bound:
        wd = A.Sum("i", f, op("*", x("w"), x("d")), R)
        goal: A.Expr = cmp("≤", A.Builtin("abs", (wad,), R), op("*", lit(100), wd))
    else:
        goal = land(cmp("≤", lit(-100), wad), cmp("≤", wad, lit(100)))
    variables = [("w", vec(size)), ("a", vec(size)), ("d", vec(size))]
    if isinstance(size, A.Var):
        variables.insert(0, (size.name, N))
    return stmt(variables, hyps, goal)
