"""Exact big numbers as decimal text, without Python's int↔str digit limit.

CPython refuses to convert an ``int`` of more than ``sys.get_int_max_str_digits()`` (4300 by
default) decimal digits to or from text, and everything that goes through text inherits the
limit: ``str(Fraction)``, ``Fraction("…")``, Z3's ``as_long()`` / ``numerator_as_long()``
(``int(as_string())``) and ``z3.IntVal(n)`` (``str(n)``).  A counterexample with a 10,000-digit
value would then turn into an ERROR.  The helpers below convert in pieces that stay under the
limit (the limit itself is left alone: it protects every other conversion in the process):

* text → int: divide and conquer on the digit string, ``hi · 10^k + lo`` (sub-quadratic, as
  ``int`` multiplication is Karatsuba);
* int → text: divide and conquer on the bits, in :mod:`decimal` (whose arithmetic has no
  digit limit and multiplies big numbers fast), as CPython 3.12's ``_pylong`` does.

The size of the numbers is bounded elsewhere (:data:`.limits.MAX_NUMBER_BITS`); these helpers
only make the conversions possible.
"""

from __future__ import annotations

import decimal
import re
import sys
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "decimal_to_int",
    "describe",
    "fraction_to_str",
    "int_to_decimal",
    "parse_fraction",
]

_DIGITS = re.compile(r"[+-]?[0-9]+", re.ASCII)
_RATIONAL = re.compile(
    r"\s*(?P<sign>[+-]?)(?P<num>[0-9]+)(?:/(?P<den>[0-9]+)|\.(?P<frac>[0-9]*))?\s*", re.ASCII
)


def _chunk_digits() -> int:
    """Digits converted by one builtin ``int``/``str`` call (0: no limit in this process)."""
    limit = sys.get_int_max_str_digits()
    return 0 if limit == 0 else max(limit // 2, 1)


@lru_cache(maxsize=256)
def _pow10(k: int) -> int:
    return 10**k


def decimal_to_int(text: str) -> int:
    """The int written in decimal by ``text`` (``[+-]?[0-9]+``, any length).

    Raises :class:`ValueError` for anything else (no spaces, underscores or non-ASCII digits)."""
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(f"not a decimal integer: {shown!r}")
    sign = -1 if text[0] == "-" else 1
    digits = text.lstrip("+-")
    return sign * _digits_to_int(digits, _chunk_digits())


def _digits_to_int(digits: str, chunk: int) -> int:
    if chunk == 0 or len(digits) <= chunk:
        return int(digits)
    k = len(digits) // 2
    return _digits_to_int(digits[:-k], chunk) * _pow10(k) + _digits_to_int(digits[-k:], chunk)


def int_to_decimal(n: int) -> str:
    """``str(n)`` for an int of any size."""
    chunk = _chunk_digits()
    if chunk == 0 or n.bit_length() <= chunk * 3:  # 3 bits < 1 digit: str() accepts it
        return str(n)
    return ("-" if n < 0 else "") + _int_to_decimal(abs(n))


def _int_to_decimal(n: int) -> str:
    """Divide and conquer on the bits: ``n = hi · 2^w + lo`` evaluated in exact decimal."""
    D = decimal.Decimal
    context = decimal.Context(
        prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
    )
    context.traps[decimal.Inexact] = True  # every step is exact; anything else is a bug
    powers: dict[int, decimal.Decimal] = {}

    def two_to(w: int) -> decimal.Decimal:
        found = powers.get(w)
        if found is None:
            if w <= 512:
                found = context.power(D(2), w)
            else:
                half = w >> 1
                found = context.multiply(two_to(half), two_to(w - half))
            powers[w] = found
        return found

    def convert(m: int, w: int) -> decimal.Decimal:
        if w <= 1024:
            return D(m)  # small enough for the builtin conversion
        half = w >> 1
        hi = m >> half
        lo = m - (hi << half)
        return context.add(convert(lo, half), context.multiply(convert(hi, w - half), two_to(half)))

    return format(convert(n, n.bit_length()), "f")


def fraction_to_str(q: Fraction) -> str:
    """``str(q)`` (``"p"`` or ``"p/q"``) for a Fraction of any size."""
    if q.denominator == 1:
        return int_to_decimal(q.numerator)
    return f"{int_to_decimal(q.numerator)}/{int_to_decimal(q.denominator)}"


def parse_fraction(text: str) -> Fraction:
    """``Fraction(text)`` for text of any length.

    Short text is read by ``Fraction`` itself (all its forms); longer text may be an integer,
    ``p/q`` or a decimal ``a.b`` (optional sign and surrounding spaces).  Raises
    :class:`ValueError` / :class:`ZeroDivisionError` as ``Fraction`` does."""
    chunk = _chunk_digits()
    if chunk == 0 or len(text) <= chunk:
        return Fraction(text)
    m = _RATIONAL.fullmatch(text)
    if m is None:
        raise ValueError(f"invalid literal for Fraction: {text[:40]!r}… ({len(text)} characters)")
    num = _digits_to_int(m["num"], chunk)
    if m["den"] is not None:
        value = Fraction(num, _digits_to_int(m["den"], chunk))
    elif m["frac"]:
        frac = m["frac"]
        value = Fraction(num * _pow10(len(frac)) + _digits_to_int(frac, chunk), _pow10(len(frac)))
    else:
        value = Fraction(num)
    return -value if m["sign"] == "-" else value


def describe(n: int | Fraction) -> str:
    """A number for an error message: itself when short, else its size (never raises)."""
    if isinstance(n, Fraction) and n.denominator != 1:
        if max(n.numerator.bit_length(), n.denominator.bit_length()) <= 200:
            return str(n)
        return f"a fraction of {n.numerator.bit_length()}/{n.denominator.bit_length()} bits"
    value = int(n)
    if value.bit_length() <= 200:
        return str(value)
    digits = round(value.bit_length() * 0.30103)
    return f"a {'negative ' if value < 0 else ''}number of about {digits:,} digits"
