"""Typed core AST of the HMS statement language.

The parser produces a surface syntax tree; the elaborator (``elaborate.py``) resolves names,
infers binder types, inserts coercions (ℕ → ℤ → ℚ → ℝ, as Lean's ``binop%`` does) and yields
the nodes below.  Every expression carries its type, so backends never re-infer anything.

Semantics follow Lean 4 / Mathlib, not Python and not SMT-LIB defaults:

* ``x / 0 = 0`` in every numeric type;
* ℕ subtraction is truncated (``a - b = max(a - b, 0)``); ℕ and ℤ division is Euclidean
  (``Int.ediv``), ``%`` is ``Int.emod``;
* ``Fin n`` is its own type: a literal ``Lit(k, FinT(n))`` denotes ``k % n`` and ``+ - *``
  (``BinOp``/``Neg`` with ``ty = FinT``) wrap modulo ``n``; ``/`` and ``%`` are ``Fin.div`` /
  ``Fin.mod`` on the values; ``Cast(i, ℕ)`` is ``Fin.val``;
* ``^`` takes a natural-number exponent;
* decimal literals are exact rationals (``0.4 = 2/5``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

# --------------------------------------------------------------------------- types


class Num(StrEnum):
    """The four numeric types, ordered by Lean's coercion chain ℕ ⊂ ℤ ⊂ ℚ ⊂ ℝ."""

    NAT = "ℕ"
    INT = "ℤ"
    RAT = "ℚ"
    REAL = "ℝ"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Num.NAT: 0, Num.INT: 1, Num.RAT: 2, Num.REAL: 3}


@dataclass(frozen=True)
class Scalar:
    """A numeric type: ``ℕ``, ``ℤ``, ``ℚ`` or ``ℝ``."""

    num: Num

    def __str__(self) -> str:
        return self.num.value


@dataclass(frozen=True)
class PropT:
    """The type of propositions."""

    def __str__(self) -> str:
        return "Prop"


@dataclass(frozen=True)
class FinT:
    """``Fin size``: the index type ``{0, …, size-1}``; ``size`` is a ℕ expression."""

    size: Expr

    def __str__(self) -> str:
        return f"Fin {self.size}"


@dataclass(frozen=True)
class Arrow:
    """A function type ``dom → cod`` (vectors are ``Fin n → ℝ``; ``f : ℝ → ℝ``)."""

    dom: Type
    cod: Type

    def __str__(self) -> str:
        return f"({self.dom} → {self.cod})"


Type = Scalar | PropT | FinT | Arrow

NAT = Scalar(Num.NAT)
INT = Scalar(Num.INT)
RAT = Scalar(Num.RAT)
REAL = Scalar(Num.REAL)
PROP = PropT()

# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Pos:
    """A 1-based line/column in the statement text (for error messages)."""

    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class Var:
    """A variable occurrence (bound by a binder, a lambda, a let, or the statement)."""

    name: str
    ty: Type


@dataclass(frozen=True)
class Lit:
    """An exact numeric literal; ``ty`` is a :class:`Scalar`."""

    value: Fraction
    ty: Type


@dataclass(frozen=True)
class BoolLit:
    """``True`` or ``False``."""

    value: bool
    ty: Type = PROP


@dataclass(frozen=True)
class Cast:
    """Coercion of ``arg`` to ``ty`` (ℕ→ℤ→ℚ→ℝ, or ``Fin n`` → ℕ)."""

    arg: Expr
    ty: Type


@dataclass(frozen=True)
class Neg:
    """Unary minus (not allowed on ℕ)."""

    arg: Expr
    ty: Type


@dataclass(frozen=True)
class BinOp:
    """Arithmetic ``l op r`` with ``op`` in ``+ - * / %``; both sides have type ``ty``."""

    op: str
    left: Expr
    right: Expr
    ty: Type


@dataclass(frozen=True)
class Pow:
    """``base ^ exp`` with ``exp : ℕ`` (a literal or a ℕ expression)."""

    base: Expr
    exp: Expr
    ty: Type
    pos: Pos = field(default=Pos(), compare=False)  # where the `^` is (for limit errors)


@dataclass(frozen=True)
class Builtin:
    """``abs x`` (also ``|x|``), ``min a b``, ``max a b``; arguments have type ``ty``."""

    name: str  # "abs" | "min" | "max"
    args: tuple[Expr, ...]
    ty: Type


@dataclass(frozen=True)
class Ite:
    """``if cond then a else b``."""

    cond: Expr
    then: Expr
    orelse: Expr
    ty: Type


@dataclass(frozen=True)
class App:
    """Application of a function-typed expression (a vector, ``f : ℝ → ℝ``, a lambda)."""

    fn: Expr
    arg: Expr
    ty: Type


@dataclass(frozen=True)
class Lambda:
    """``fun (x : dom) => body``; ``ty`` is ``Arrow(dom, body.ty)``."""

    var: str
    dom: Type
    body: Expr
    ty: Type


@dataclass(frozen=True)
class Let:
    """``let name := value; body``."""

    name: str
    value: Expr
    body: Expr
    ty: Type


@dataclass(frozen=True)
class Range:
    """The index set of ``Finset.range bound``: ℕ values ``0 … bound-1``."""

    bound: Expr


@dataclass(frozen=True)
class Sum:
    """``∑ var, body`` over a ``Fin n`` (domain :class:`FinT`) or ``∑ var in Finset.range n, body``
    (domain :class:`Range`; then ``var : ℕ``)."""

    var: str
    domain: FinT | Range
    body: Expr
    ty: Type
    pos: Pos = field(default=Pos(), compare=False)  # where the `∑` is (for limit errors)


@dataclass(frozen=True)
class Call:
    """A call of a ``def`` from ``lean_workspace/``; ``args`` include inferred implicit ones,
    in the order of :attr:`Definition.params`."""

    name: str
    args: tuple[Expr, ...]
    ty: Type


@dataclass(frozen=True)
class Compare:
    """``l op r`` with ``op`` in ``= ≠ < ≤ > ≥``; a proposition."""

    op: str
    left: Expr
    right: Expr
    ty: Type = PROP


@dataclass(frozen=True)
class Not:
    arg: Expr
    ty: Type = PROP


@dataclass(frozen=True)
class Logic:
    """``l op r`` with ``op`` in ``∧ ∨ → ↔``."""

    op: str
    left: Expr
    right: Expr
    ty: Type = PROP


@dataclass(frozen=True)
class Quant:
    """``∀ var : dom, body`` (``kind == "forall"``) or ``∃`` (``kind == "exists"``)."""

    kind: str  # "forall" | "exists"
    var: str
    dom: Type
    body: Expr
    ty: Type = PROP


Expr = (
    Var
    | Lit
    | BoolLit
    | Cast
    | Neg
    | BinOp
    | Pow
    | Builtin
    | Ite
    | App
    | Lambda
    | Let
    | Sum
    | Call
    | Compare
    | Not
    | Logic
    | Quant
)

# ------------------------------------------------------------------ definitions / statements


@dataclass(frozen=True)
class Param:
    name: str
    ty: Type
    implicit: bool = False


@dataclass(frozen=True)
class Definition:
    """A non-recursive ``def`` of ``lean_workspace/``: ``def name params : ret := body``."""

    name: str
    params: tuple[Param, ...]
    ret: Type
    body: Expr
    doc: str = ""


@dataclass(frozen=True)
class Statement:
    """A closed claim: ``∀ variables, hypotheses → goal``.

    ``variables`` keeps declaration order (a later type may mention an earlier ℕ, as in
    ``n : ℕ`` then ``w : Fin n → ℝ``).  The elaborator peels leading ``∀`` binders and
    ``→`` premises of the text into ``variables`` and ``hypotheses``; what remains is ``goal``.
    """

    variables: tuple[Param, ...]
    hypotheses: tuple[Expr, ...]
    goal: Expr
    source: str = ""
    definitions: dict[str, Definition] = field(default_factory=dict, compare=False, hash=False)


#: ASCII spellings of the comparison operators (a hand-built AST may use them) → Lean's.
CMP_ALIASES = {"!=": "≠", "<=": "≤", ">=": "≥", "==": "="}


def arrow_parts(ty: Type) -> tuple[list[Type], Type]:
    """``A → B → C`` as ``([A, B], C)`` (a non-arrow type: ``([], ty)``)."""
    doms: list[Type] = []
    while isinstance(ty, Arrow):
        doms.append(ty.dom)
        ty = ty.cod
    return doms, ty
