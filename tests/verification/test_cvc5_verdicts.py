"""``prove(..., backend="cvc5")``: the same compiler, the same size enumeration, cvc5 deciding
every check; its counterexamples pass the same exact re-check as Z3's."""

from __future__ import annotations

import pytest

from hms_celery.verification import exact
from hms_celery.verification.catalogue import find_claim
from hms_celery.verification.frontend import parse_statement
from hms_celery.verification.prover import prove
from hms_celery.verification.verdict import Verdict

CLAIMS = [
    "war-bounds-original",
    "drp-upper-original-n3",
    "drp-conservative",
    "war-zero-impact",
    "war-abs-bound-n3",
    "sps-bounds",
    "drp-projected-bounds-y3",
]


@pytest.mark.parametrize("theorem_id", CLAIMS)
def test_cvc5_reaches_the_catalogue_verdict_like_z3(theorem_id):
    claim = find_claim(theorem_id)
    statement = claim.statement()
    ours = prove(statement, backend="cvc5", timeout_s=60, max_size=6)
    z3s = prove(statement, backend="z3", timeout_s=60, max_size=6, confirm=False)
    assert ours.backend == "cvc5"
    assert ours.verdict is claim.expected, ours.reason
    assert ours.verdict is z3s.verdict
    assert ours.bound == z3s.bound
    assert ours.stats["size_parameters"] == z3s.stats["size_parameters"]
    assert [c["sizes"] for c in ours.stats["checks"]] == [c["sizes"] for c in z3s.stats["checks"]]
    assert "cvc5_seconds" in ours.stats
    if ours.verdict is Verdict.REFUTED:
        assert exact.check_counterexample(statement, ours.counterexample) is True
        assert "re-checked by exact evaluation" in ours.reason
    if ours.verdict is Verdict.PROVED:
        assert ours.confirmed_by["solver"] == "z3"
        assert ours.confirmed_by["status"] == "confirmed"
    else:
        assert ours.confirmed_by is None


def test_cvc5_refutes_with_functions_and_naturals():
    statement = parse_statement(
        "f 1 ≤ f 0 + n", variables={"f": "ℝ → ℝ", "n": "ℕ"}, assumptions=("h : f 0 ≥ 0",)
    )
    out = prove(statement, backend="cvc5", timeout_s=30)
    assert out.verdict is Verdict.REFUTED, out.reason
    assert set(out.counterexample) == {"f", "n"}
    assert exact.check_counterexample(statement, out.counterexample) is True


def test_cvc5_timeouts_are_reported_as_cvc5_timeouts():
    statement = parse_statement(
        "x * x * x + y * y * y ≠ z * z * z",
        variables={"x": "ℤ", "y": "ℤ", "z": "ℤ"},
        assumptions=("hx : x > 0", "hy : y > 0", "hz : z > 0"),
    )
    out = prove(statement, backend="cvc5", strategy="smt", timeout_s=0.5)
    assert out.verdict in (Verdict.TIMEOUT, Verdict.UNKNOWN)
    assert out.reason.startswith("cvc5 "), out.reason
    assert out.elapsed_s < 3


def test_unknown_backend_lists_the_available_ones():
    out = prove(parse_statement("∀ x : ℝ, x = x"), backend="yices")
    assert out.verdict is Verdict.ERROR and "z3, cvc5, lean" in out.reason
