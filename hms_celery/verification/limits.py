"""Size limits of the exact arithmetic and of the unrolling done by the compiler and evaluator.

Both :class:`~hms_celery.verification.z3_compile.Compiler` and the exact evaluator of
:mod:`~hms_celery.verification.exact` compute concrete values in Python and unroll sums,
finite quantifiers and powers of symbolic terms.  Without bounds a short statement such as
``(3 : ℕ) ^ 3 ^ 3 ^ 3 ^ 3 > 0`` or ``∑ i in Finset.range 500000000, i ≥ 0`` keeps Python
busy past any timeout (a C-level big-int operation cannot even be interrupted).  Every such
step is checked *before* it is done, against the limits below; one over a limit raises
:class:`TooLarge`, whose message names the limit and the place (``line:column`` when the
node carries a position).  The compiler turns it into UNSUPPORTED, the counterexample re-check
into UNKNOWN.  (The attempt as a whole is also bounded in time and memory by
:mod:`.sandbox`.)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from .bignum import describe

__all__ = [
    "MAX_EXPONENT",
    "MAX_NUMBER_BITS",
    "MAX_UNROLL",
    "TooLarge",
    "Unroller",
    "check_number",
    "check_power",
    "check_symbolic_power",
    "location",
]

#: Largest exponent of a symbolic base (``x ^ k`` is expanded to the product of k factors).
MAX_EXPONENT = 10_000
#: Largest exact number computed (numerator or denominator), in bits: ~301,000 digits.
MAX_NUMBER_BITS = 1_000_000
#: Most terms unrolled per problem (one compiled instance, or one counterexample re-check):
#: sum terms, instances of a quantifier over ``Fin n``, vector entries and power factors.
MAX_UNROLL = 100_000


class TooLarge(Exception):
    """A value or an expansion over one of the limits of this module (the message says
    which, and where)."""


def location(node: Any) -> str:
    """``line:column`` of an AST node with a position (1-based), else ``""``."""
    pos = getattr(node, "pos", None)
    line, column = getattr(pos, "line", 0), getattr(pos, "column", 0)
    return f"{line}:{column}" if line else ""


def _at(node: Any) -> str:
    where = location(node)
    return f" at {where}" if where else ""


def _bits(q: Fraction) -> int:
    return max(q.numerator.bit_length(), q.denominator.bit_length())


def _approx(x: float) -> str:
    return f"{x:,.0f}" if x < 1e15 else f"{x:.3g}"


def check_power(base: Fraction, k: int, node: Any = None) -> None:
    """Refuse ``base ** k`` (concrete) whose result would exceed :data:`MAX_NUMBER_BITS` —
    decided from the sizes alone, before computing anything."""
    if k <= 1 or (abs(base.numerator) <= 1 and base.denominator == 1):
        return  # 0, 1 and -1 to any power, and x^0 / x^1, cost nothing
    per_factor = math.log2(abs(base.numerator)) + math.log2(base.denominator)
    if k * per_factor > MAX_NUMBER_BITS:
        raise TooLarge(
            f"the power{_at(node)} is too large to compute: {describe(base)} ^ {describe(k)} "
            f"would have about {_approx(k * per_factor)} bits, over the limit of "
            f"{MAX_NUMBER_BITS:,} bits (MAX_NUMBER_BITS)"
        )


def check_symbolic_power(k: int, node: Any = None) -> None:
    """Refuse expanding a symbolic ``x ^ k`` to a product when ``k`` > :data:`MAX_EXPONENT`."""
    if k > MAX_EXPONENT:
        raise TooLarge(
            f"the power{_at(node)} has the exponent {describe(k)} on a symbolic base, over the "
            f"limit of {MAX_EXPONENT:,} (MAX_EXPONENT): it would be expanded to that many factors"
        )


def check_number(value: Fraction, what: str = "an intermediate value") -> Fraction:
    """``value`` itself, or :class:`TooLarge` if it exceeds :data:`MAX_NUMBER_BITS`."""
    if _bits(value) > MAX_NUMBER_BITS:
        raise TooLarge(
            f"{what} has {_bits(value):,} bits, over the limit of {MAX_NUMBER_BITS:,} bits "
            "(MAX_NUMBER_BITS)"
        )
    return value


class Unroller:
    """The unrolling budget of one problem: :data:`MAX_UNROLL` items in total."""

    def __init__(self, limit: int = MAX_UNROLL) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, n: int, what: str, node: Any = None) -> None:
        """Account for unrolling ``n`` items of ``what`` (e.g. "the terms of the sum")."""
        if n > self.limit - self.used:
            count = f"{n:,}" if n < 10**15 else describe(n)
            already = f"; {self.used:,} already unrolled" if self.used else ""
            raise TooLarge(
                f"{what}{_at(node)}: unrolling {count} more would exceed the limit of "
                f"{self.limit:,} unrolled terms per problem (MAX_UNROLL{already})"
            )
        self.used += n
