"""Strategies are validated data: JSON round trip, rejection of bad items, building solvers."""

from __future__ import annotations

import json

import pytest
import z3

from hms_celery.verification import ast as A
from hms_celery.verification.prover import prove
from hms_celery.verification.strategy import (
    DEFAULT_STRATEGY,
    NAMED_STRATEGIES,
    Slice,
    Strategy,
    TacticStep,
    strategy_from_any,
)
from hms_celery.verification.verdict import Verdict

from .hand_ast import cmp, lit, op, stmt, var

CUSTOM = {
    "name": "custom-schedule",
    "preprocess": ["product-bounds"],
    "pipeline": [{"tactic": "simplify", "params": {"som": True, "som_blowup": 5}}],
    "decider": {"tactic": "smt", "params": {"arith.nl.grobner": False}},
    "schedule": [
        {"timeout_ms": 300, "strategy": {"decider": {"tactic": "qfnra-nlsat", "params": {}}}},
    ],
    "params": {"random_seed": 7},
}


def square_nonneg():
    x = var("x")
    return stmt([("x", x.ty)], [], cmp("≥", op("*", x, x), lit(0)))


def square_exceeds():
    x = var("x")
    return stmt([("x", x.ty)], [cmp(">", x, lit(0))], cmp(">", op("*", x, x), x))


@pytest.mark.parametrize("name", sorted(NAMED_STRATEGIES))
def test_named_strategies_round_trip_through_json(name):
    s = NAMED_STRATEGIES[name]
    data = json.loads(json.dumps(s.to_json()))
    assert Strategy.from_json(data) == s
    assert strategy_from_any(json.dumps(data)) == s


def test_custom_strategy_round_trip_keeps_every_field():
    s = Strategy.from_json(CUSTOM)
    assert s.pipeline[0] == TacticStep("simplify", (("som", True), ("som_blowup", 5)))
    assert s.schedule[0].timeout_ms == 300
    assert s.schedule[0].strategy.decider == TacticStep("qfnra-nlsat")
    assert dict(s.params) == {"random_seed": 7}
    again = Strategy.from_json(json.loads(json.dumps(s.to_json())))
    assert again == s and hash(again) == hash(s)


def test_unknown_tactic_is_rejected_by_name():
    bad = {**CUSTOM, "pipeline": [{"tactic": "no-such-tactic", "params": {}}]}
    with pytest.raises(ValueError, match="no-such-tactic"):
        Strategy.from_json(bad)


def test_unknown_tactic_in_a_schedule_is_rejected_by_name():
    bad = {**CUSTOM, "schedule": [{"timeout_ms": 10, "strategy": {"decider": "frobnicate"}}]}
    with pytest.raises(ValueError, match="frobnicate"):
        Strategy.from_json(bad)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"bogus_option": 1}, "bogus_option"),
        ({"som": 3}, "som"),
        ({"som_blowup": -1}, "som_blowup"),
    ],
)
def test_bad_tactic_parameters_are_rejected_by_name(params, needle):
    with pytest.raises(ValueError, match=needle):
        TacticStep("simplify", tuple(params.items()))


def test_bad_solver_params_and_preprocess_steps_are_rejected():
    with pytest.raises(ValueError, match="not_a_param"):
        Strategy.from_json({"params": {"not_a_param": 1}})
    with pytest.raises(ValueError, match="rlimit"):
        Strategy.from_json({"params": {"rlimit": "lots"}})
    with pytest.raises(ValueError, match="magic"):
        Strategy.from_json({"preprocess": ["magic"]})
    with pytest.raises(ValueError, match="unknown strategy keys"):
        Strategy.from_json({"tactics": []})
    with pytest.raises(ValueError, match="decider"):
        Strategy.from_json({"pipeline": ["simplify"]})
    with pytest.raises(ValueError, match="timeout_ms"):
        Slice(NAMED_STRATEGIES["smt"], 0)


def test_strategy_from_any():
    assert strategy_from_any(None) is DEFAULT_STRATEGY
    assert strategy_from_any("smt") is NAMED_STRATEGIES["smt"]
    assert strategy_from_any(CUSTOM).name == "custom-schedule"
    s = Strategy.from_json(CUSTOM)
    assert strategy_from_any(s) is s
    with pytest.raises(ValueError, match="nope"):
        strategy_from_any("nope")
    with pytest.raises(ValueError, match="does not parse"):
        strategy_from_any("{not json")


def test_build_gives_a_solver_in_the_given_context():
    ctx = z3.Context()
    for s in (*NAMED_STRATEGIES.values(), Strategy.from_json(CUSTOM)):
        solver = s.build(ctx)
        assert isinstance(solver, z3.Solver)
        assert solver.ctx is ctx
    plain = NAMED_STRATEGIES["z3-default"]
    assert not plain.has_tactic and plain.tactic(ctx) is None


@pytest.mark.parametrize(
    "data",
    [
        {"pipeline": ["nla2bv"], "decider": "smt"},  # an under-approximation
        {"decider": "sls-smt"},  # local search
        {"decider": "qfnia"},  # built on nla2bv
        {"pipeline": ["add-bounds"], "decider": "smt"},
        {"schedule": [{"timeout_ms": 100, "strategy": {"decider": "qfbv-sls"}}], "decider": "smt"},
        {"decider": {"tactic": "subpaving", "params": {}}},  # installed but never vetted
    ],
)
def test_a_tactic_off_the_allow_list_is_rejected_by_name(data):
    from hms_celery.verification.strategy import SOUND_TACTICS

    names = [s if isinstance(s, str) else s["tactic"] for s in data.get("pipeline", [])]
    decider = data.get("decider")
    names.append(decider if isinstance(decider, str) else decider["tactic"])
    names += [sl["strategy"]["decider"] for sl in data.get("schedule", [])]
    bad = next(n for n in names if n not in SOUND_TACTICS)
    with pytest.raises(ValueError, match=f"tactic '{bad}' is not on the allow-list"):
        Strategy.from_json(data)
    with pytest.raises(ValueError, match=bad):
        strategy_from_any(json.dumps(data))  # the JSON text a task carries: same gate


def test_every_named_strategy_is_on_the_allow_list():
    from hms_celery.verification.strategy import SOUND_TACTICS
    from hms_celery.verification.z3_params import available_tactics

    assert set(SOUND_TACTICS) <= available_tactics()
    assert not {"nla2bv", "add-bounds", "sls-smt", "qfbv-sls", "qfnia"} & set(SOUND_TACTICS)
    for s in NAMED_STRATEGIES.values():
        assert s.sound_for_unsat
        assert set(s.tactic_names()) <= set(SOUND_TACTICS)


@pytest.mark.parametrize("name", sorted(NAMED_STRATEGIES))
def test_every_named_strategy_decides_simple_claims(name):
    proved = prove(square_nonneg(), strategy=name, timeout_s=20)
    assert proved.verdict is Verdict.PROVED, proved.reason
    refuted = prove(square_exceeds(), strategy=name, timeout_s=20)
    assert refuted.verdict is Verdict.REFUTED, refuted.reason
    assert proved.strategy == NAMED_STRATEGIES[name].to_json()


def test_schedule_falls_back_to_the_next_slice():
    # The first slice (nlsat) cannot handle an uninterpreted function; smt then decides.
    s = Strategy.from_json(
        {
            "schedule": [{"timeout_ms": 1000, "strategy": {"decider": "qfnra-nlsat"}}],
            "decider": "smt",
        }
    )
    f = var("f", A.Arrow(A.REAL, A.REAL))
    fx = A.App(f, lit(0), A.REAL)
    st = stmt([("f", f.ty)], [cmp(">", fx, lit(1))], cmp(">", fx, lit(0)))
    out = prove(st, strategy=s, timeout_s=20)
    assert out.verdict is Verdict.PROVED, out.reason


@pytest.mark.parametrize(
    "params",
    [
        {"smtlib2_log": "/tmp/hms-strategy-log.smt2"},
        {"proof.log": "/tmp/hms-proof.log"},
        {"axioms2files": True},
        {"arith.dump_lemmas": True},
        {"lemmas2console": True},
        {"mbqi.trace": True},
        {"cancel_backup_file": "/tmp/hms-backup"},
    ],
)
def test_a_strategy_cannot_make_z3_write_files_or_output(params, tmp_path, monkeypatch):
    """A strategy is user data: parameters that log, dump or trace are refused (issue 8)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"refused|not accepted"):
        strategy_from_any({"name": "hostile", "params": params})
    with pytest.raises(ValueError, match=r"refused|not accepted"):
        strategy_from_any({"name": "hostile", "pipeline": [{"tactic": "smt", "params": params}]})
    assert list(tmp_path.iterdir()) == []
