"""Claim families: well-formed instances that parse, with the verdicts they claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from hms_celery.errors import InputError
from hms_celery.genetic import families as F
from hms_celery.verification.catalogue import find_claim
from hms_celery.verification.request import ProofRequest
from hms_celery.verification.sizes import size_parameters

CATALOGUE = Path(__file__).resolve().parents[2] / "lean_workspace" / "claims" / "moneyball.json"
NAMES = {"war-abs", "war-unit", "war-original", "drp-baseline", "fs-bounds", "um-nested"}


def _all_default_instances():
    for name in sorted(F.FAMILIES):
        train, heldout = F.split(name)
        yield from train + heldout


def test_the_families():
    assert set(F.FAMILIES) == NAMES
    for name, template in F.FAMILIES.items():
        assert template.name == name
        assert template.expected == ("REFUTED" if name == "war-original" else "PROVED")
        assert template.train and template.heldout
        assert min(template.heldout) > max(template.train)


def test_instance_shape():
    inst = F.instance("drp-baseline", 7)
    assert inst["id"] == "drp-baseline-n7" and inst["family"] == "drp-baseline"
    assert inst["n"] == 7 and inst["expected"] == "PROVED"
    assert inst["request"]["theorem_id"] == "drp-baseline-n7"
    assert inst["request"]["variables"] == {
        "B": "ℝ",
        "p": "Fin 7 → ℝ",
        "c": "Fin 7 → ℝ",
        "r": "Fin 7 → ℝ",
        "M": "ℝ",
    }
    assert [i["n"] for i in F.instances("war-abs", [5, 3])] == [5, 3]
    train, heldout = F.split("war-abs", train=(2,), heldout=(9, 11))
    assert [i["id"] for i in train + heldout] == ["war-abs-n2", "war-abs-n9", "war-abs-n11"]


def test_every_default_instance_parses_with_its_literal_size():
    count = 0
    for inst in _all_default_instances():
        request = ProofRequest.build(**inst["request"])
        statement = request.parse()
        assert [p.name for p in statement.variables] == list(inst["request"]["variables"])
        assert size_parameters(statement) == []  # one ground problem: no size enumeration
        assert f"Fin {inst['n']} → ℝ" in inst["request"]["variables"].values()
        count += 1
    assert count >= 40
    for name, n in F.QUICK_TRAINING:
        ProofRequest.build(**F.instance(name, n)["request"]).parse()


@pytest.mark.parametrize("name", sorted(n for n in NAMES if F.FAMILIES[n].source_claim))
def test_texts_are_the_catalogue_claims(name):
    template = F.FAMILIES[name]
    claim = find_claim(template.source_claim, CATALOGUE)
    assert template.formal_expression == claim.formal_expression
    assert template.assumptions == claim.assumptions
    claim_vars = {v: t for v, t in claim.variables.items() if v != "n"}
    assert template.variable_types(3) == {
        v: t.replace("Fin n", "Fin 3") for v, t in claim_vars.items()
    }
    assert list(template.variable_types(3)) == list(claim_vars)


@pytest.mark.parametrize("call", [F.instance, F.instances, F.split])
def test_unknown_family_names_the_known_ones(call):
    args = {F.instance: ("war-abz", 3), F.instances: ("war-abz", [3]), F.split: ("war-abz",)}
    with pytest.raises(F.UnknownFamilyError) as info:
        call(*args[call])
    assert isinstance(info.value, InputError)
    assert "war-abz" in str(info.value)
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("n", [0, -1, True, 2.5, "3"])
def test_bad_sizes_are_input_errors(n):
    with pytest.raises(InputError):
        F.instance("war-abs", n)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_small_instances_get_their_expected_verdict(name):
    inst = F.instance(name, 3)
    outcome = ProofRequest.build(**inst["request"]).run(
        timeout=10, max_size=20, rlimit=2_000_000, strategy="linearise-smt"
    )
    assert outcome.verdict.value == inst["expected"], outcome.reason
    if inst["expected"] == "REFUTED":
        assert outcome.counterexample


def test_quick_training_separates_z3_default_from_linearise_smt():
    budget = 100_000
    solved = {"z3-default": 0, "linearise-smt": 0}
    for name, n in F.QUICK_TRAINING:
        inst = F.instance(name, n)
        request = ProofRequest.build(**inst["request"])
        for strategy in solved:
            out = request.run(timeout=5, max_size=20, rlimit=budget, strategy=strategy)
            solved[strategy] += out.verdict.value == inst["expected"]
    assert solved == {"z3-default": 2, "linearise-smt": 3}
    war = ProofRequest.build(**F.instance("war-abs", 3)["request"])
    lin = war.run(timeout=5, max_size=20, rlimit=5_000_000, strategy="linearise-smt")
    z3d = war.run(timeout=5, max_size=20, rlimit=5_000_000, strategy="z3-default")
    assert lin.verdict.value == z3d.verdict.value == "PROVED"
    assert z3d.stats["rlimit_count"] > 10 * lin.stats["rlimit_count"]
