"""Scalable Moneyball claim families: the instances strategies are evolved and judged on.

A family is a catalogue claim over vectors ``Fin n → ℝ`` with the size ``n`` made a literal, so
that every instance is one ground problem (no size enumeration) and its difficulty grows with
``n``.  An instance is a plain dict::

    {"id": "war-abs-n5", "family": "war-abs", "n": 5,
     "request": {"theorem_id": ..., "statement": ..., "assumptions": [...], "variables": {...}},
     "expected": "PROVED" | "REFUTED"}

where ``request`` is the field dict of a :class:`~hms_celery.verification.request.ProofRequest`
(``ProofRequest.build(**instance["request"])``).  Each family has default training sizes and
larger held-out sizes (:func:`split`), chosen by measurement (rlimit 5M, 5 s): Z3's plain
solver gives up on ``war-abs`` from n = 4, ``war-unit`` from 10, ``drp-baseline``, ``fs-bounds``
and ``um-nested`` from 8, where ``linearise-smt`` (product bounds, simplify, smt) decides all
but ``um-nested`` with a few thousand to 70k rlimit.  ``war-original`` is refuted cheaply by
every strategy (a check that evolution keeps refutations working); ``um-nested`` (a nested
division) is hard for every named strategy beyond n = 8.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from hms_celery.errors import InputError

Expected = Literal["PROVED", "REFUTED"]
VarKind = Literal["vec", "real"]

_WAR_CONSTRAINTS = (
    "∀ i, 0 < w i ∧ w i ≤ 1",
    "∑ i, w i = 1",
    "∀ i, -100 ≤ a i ∧ a i ≤ 100",
    "∀ i, 0 ≤ d i",
)
_WAR_VARS: tuple[tuple[str, VarKind], ...] = (("w", "vec"), ("a", "vec"), ("d", "vec"))
_WAR_BOUNDS = "-100 ≤ warScore w a d ∧ warScore w a d ≤ 100"
_FS_CONSTRAINTS = (
    "maxRisk > 0",
    "∑ k, s k * q k * m k ≤ maxRisk",
    "∀ k, 0 ≤ s k ∧ s k ≤ 1",
    "∀ k, 0 ≤ q k ∧ q k ≤ 1",
    "∀ k, m k ≥ 1",
)
_FS_VARS: tuple[tuple[str, VarKind], ...] = (
    ("s", "vec"),
    ("q", "vec"),
    ("m", "vec"),
    ("maxRisk", "real"),
)
_UM = "unifiedModel EI (financialStability s q m maxRisk) (marketHealth L T P R) BS"


class UnknownFamilyError(InputError):
    """A claim family name that is not in :data:`FAMILIES` (the message lists the known ones)."""

    def __init__(self, family: str) -> None:
        self.family = family
        super().__init__(f"unknown claim family {family!r}; known families: {sorted(FAMILIES)}")


@dataclass(frozen=True)
class FamilyTemplate:
    """A claim whose vectors have a literal size ``n``.

    ``variables`` lists ``(name, kind)`` in binder order: ``"vec"`` is ``Fin n → ℝ``, ``"real"``
    is ``ℝ``.  ``source_claim`` is the catalogue claim the texts come from (``None``: composed
    here).  ``train`` / ``heldout`` are the default sizes of :func:`split`.
    """

    name: str
    description: str
    formal_expression: str
    assumptions: tuple[str, ...]
    variables: tuple[tuple[str, VarKind], ...]
    expected: Expected
    source_claim: str | None
    train: tuple[int, ...]
    heldout: tuple[int, ...]

    def variable_types(self, n: int) -> dict[str, str]:
        """``{name: Lean type}`` at size ``n``."""
        vec = f"Fin {n} → ℝ"
        return {name: vec if kind == "vec" else "ℝ" for name, kind in self.variables}

    def instance(self, n: int) -> dict[str, Any]:
        """The instance of size ``n`` (``n ≥ 1``; see the module docstring for its shape)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"family {self.name!r}: size n must be an int ≥ 1, got {n!r}")
        ident = f"{self.name}-n{n}"
        return {
            "id": ident,
            "family": self.name,
            "n": n,
            "request": {
                "theorem_id": ident,
                "statement": self.formal_expression,
                "assumptions": list(self.assumptions),
                "variables": self.variable_types(n),
            },
            "expected": self.expected,
        }


FAMILIES: dict[str, FamilyTemplate] = {
    t.name: t
    for t in (
        FamilyTemplate(
            name="war-abs",
            description="|warScore w a d| ≤ 100·Σ wᵢ·dᵢ under the WAR constraints (true)",
            formal_expression="|warScore w a d| ≤ 100 * ∑ i, w i * d i",
            assumptions=_WAR_CONSTRAINTS,
            variables=_WAR_VARS,
            expected="PROVED",
            source_claim="war-abs-bound",
            train=(3, 4, 5, 6),
            heldout=(8, 10, 12, 14),
        ),
        FamilyTemplate(
            name="war-unit",
            description="−100 ≤ warScore w a d ≤ 100 with, in addition, dᵢ ≤ 1 (true)",
            formal_expression=_WAR_BOUNDS,
            assumptions=(*_WAR_CONSTRAINTS, "∀ i, d i ≤ 1"),
            variables=_WAR_VARS,
            expected="PROVED",
            source_claim="war-bounds-unit",
            train=(4, 5, 6, 8),
            heldout=(10, 12, 14, 16),
        ),
        FamilyTemplate(
            name="war-original",
            description="−100 ≤ warScore w a d ≤ 100 without dᵢ ≤ 1 (false: refuted)",
            formal_expression=_WAR_BOUNDS,
            assumptions=_WAR_CONSTRAINTS,
            variables=_WAR_VARS,
            expected="REFUTED",
            source_claim="war-bounds-original",
            train=(3, 4, 5, 6),
            heldout=(8, 10, 12, 14),
        ),
        FamilyTemplate(
            name="drp-baseline",
            description="drp B p c r M ≤ B with n policies (true)",
            formal_expression="drp B p c r M ≤ B",
            assumptions=(
                "0 ≤ B",
                "0 < M",
                "M ≤ 1",
                "∀ j, 0 ≤ p j ∧ p j ≤ 100",
                "∀ j, 0 ≤ c j ∧ c j ≤ 1",
                "∀ j, 0 ≤ r j ∧ r j ≤ 1",
            ),
            variables=(("B", "real"), ("p", "vec"), ("c", "vec"), ("r", "vec"), ("M", "real")),
            expected="PROVED",
            source_claim="drp-at-most-baseline",
            train=(3, 4, 5, 6),
            heldout=(8, 10, 12, 14),
        ),
        FamilyTemplate(
            name="fs-bounds",
            description="0 ≤ financialStability s q m maxRisk ≤ 1 with n risks (true)",
            formal_expression=(
                "0 ≤ financialStability s q m maxRisk ∧ financialStability s q m maxRisk ≤ 1"
            ),
            assumptions=_FS_CONSTRAINTS,
            variables=_FS_VARS,
            expected="PROVED",
            source_claim="fs-bounds",
            train=(3, 4, 5, 6),
            heldout=(8, 10, 12, 14),
        ),
        FamilyTemplate(
            name="um-nested",
            description=(
                "0 ≤ unifiedModel EI FS (marketHealth L T P R) BS ≤ 1 with FS the financial "
                "stability of n risks and every other input in [0, 1] (true)"
            ),
            formal_expression=f"0 ≤ {_UM} ∧ {_UM} ≤ 1",
            assumptions=(
                "0 ≤ EI ∧ EI ≤ 1",
                *_FS_CONSTRAINTS,
                "0 ≤ L ∧ L ≤ 1",
                "0 ≤ T ∧ T ≤ 1",
                "0 ≤ P ∧ P ≤ 1",
                "0 ≤ R ∧ R ≤ 1",
                "0 ≤ BS ∧ BS ≤ 1",
            ),
            variables=(
                ("EI", "real"),
                *_FS_VARS,
                ("L", "real"),
                ("T", "real"),
                ("P", "real"),
                ("R", "real"),
                ("BS", "real"),
            ),
            expected="PROVED",
            source_claim=None,
            train=(3, 4, 5, 6),
            heldout=(8, 10),
        ),
    )
}


#: Small training instances for quick end-to-end runs (rlimit budget 100_000, each evaluation
#: well under 0.2 s): Z3's plain solver solves two (it needs ~320k rlimit on ``war-abs-n3``),
#: ``linearise-smt`` all three with ~2k rlimit each; ``war-original-n3`` must stay refuted.
QUICK_TRAINING: tuple[tuple[str, int], ...] = (
    ("war-abs", 3),
    ("drp-baseline", 3),
    ("war-original", 3),
)


def family(name: str) -> FamilyTemplate:
    """The template called ``name`` (raises :class:`UnknownFamilyError`)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(name) from None


def instance(family_name: str, n: int) -> dict[str, Any]:
    """The instance of ``family_name`` at size ``n``."""
    return family(family_name).instance(n)


def instances(family_name: str, sizes: Iterable[int]) -> list[dict[str, Any]]:
    """The instances of ``family_name`` at ``sizes``, in that order."""
    template = family(family_name)
    return [template.instance(n) for n in sizes]


def split(
    family_name: str,
    train: Iterable[int] | None = None,
    heldout: Iterable[int] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(training instances, held-out instances)`` of a family; sizes default to the
    template's (held-out sizes are larger than training ones, to test generalisation)."""
    template = family(family_name)
    train_sizes = template.train if train is None else tuple(train)
    heldout_sizes = template.heldout if heldout is None else tuple(heldout)
    return (
        [template.instance(n) for n in train_sizes],
        [template.instance(n) for n in heldout_sizes],
    )
