"""The policy engine's pure part: rules + request + facts → decision (no services)."""

from __future__ import annotations

import pytest

from hms_celery.policy import rules as R
from hms_celery.policy.engine import (
    ACTION_EVENTS,
    AUTO_PROMOTE_OFF,
    ActionRequest,
    Facts,
    Outcome,
    evaluate,
)
from hms_celery.policy.rules import Policy, parse_policy


def policy(text: str) -> Policy:
    return parse_policy(text, "test.toml")


def agent(ident: str, host: str = "h1", skills: tuple[str, ...] = ("prove.z3",), c: int = 2):
    return {"id": ident, "host_id": host, "skills": list(skills), "concurrency": c}


def spawn(skills=("prove.z3",), host="h1", concurrency=2, actor="client", kind=R.SPAWN, **extra):
    details = {"skills": list(skills), "host": host, "concurrency": concurrency, **extra}
    return ActionRequest(kind, "new@x", actor, details)


def test_no_rules_allow_everything_by_the_default_rule() -> None:
    decision = evaluate(Policy(), spawn(), Facts())
    assert decision.outcome is Outcome.ALLOW and decision.rule == "default"


def test_agents_per_host_counts_live_agents_on_that_host() -> None:
    p = policy('[rules.cap]\nkind = "max_agents_per_host"\nlimit = 2\n')
    one = Facts(agents=[agent("a"), agent("b", host="h2")])
    assert evaluate(p, spawn(), one).allowed
    two = Facts(agents=[agent("a"), agent("b")])
    denied = evaluate(p, spawn(), two)
    assert denied.outcome is Outcome.DENY and denied.rule == "cap"
    assert "host h1 runs 2 live agents; the limit is 2" in denied.reason
    assert evaluate(p, spawn(host="h2"), two).allowed


def test_a_respawn_does_not_count_the_agent_it_replaces() -> None:
    p = policy('[rules.cap]\nkind = "max_agents_per_host"\nlimit = 1\n')
    request = ActionRequest(
        R.RESPAWN, "old@x", "supervisor", {"skills": ["prove.z3"], "host": "h1"}
    )
    assert evaluate(p, request, Facts(agents=[agent("old@x")])).allowed
    assert not evaluate(p, request, Facts(agents=[agent("other")])).allowed


def test_agents_per_skill_uses_the_per_skill_limit_then_the_default() -> None:
    p = policy(
        '[rules.s]\nkind = "max_agents_per_skill"\nlimit = 3\nper_skill = { "prove.cvc5" = 1 }\n'
    )
    facts = Facts(agents=[agent("a", skills=("prove.cvc5",)), agent("b"), agent("c")])
    denied = evaluate(p, spawn(skills=("prove.cvc5",)), facts)
    assert (
        denied.rule == "s" and "skill prove.cvc5 has 1 live agents; the limit is 1" in denied.reason
    )
    assert evaluate(p, spawn(skills=("prove.z3",)), facts).allowed  # 2 + 1 ≤ 3
    facts.agents.append(agent("d"))
    assert not evaluate(p, spawn(skills=("prove.z3",)), facts).allowed
    unlimited = policy('[rules.s]\nkind = "max_agents_per_skill"\nper_skill = { "ga" = 1 }\n')
    assert evaluate(unlimited, spawn(), facts).allowed  # prove.z3 has no limit there


def test_total_concurrency_adds_the_new_agents_processes() -> None:
    p = policy('[rules.t]\nkind = "max_total_concurrency"\nlimit = 6\n')
    facts = Facts(agents=[agent("a", c=2), agent("b", c=2)])
    assert evaluate(p, spawn(concurrency=2), facts).allowed
    denied = evaluate(p, spawn(concurrency=3), facts)
    assert denied.rule == "t" and "4 pool processes run, 3 more would exceed 6" in denied.reason


def test_restarts_per_hour_limit_restarts_and_respawns_only() -> None:
    p = policy('[rules.r]\nkind = "max_restarts_per_hour"\nlimit = 2\n')
    restart = ActionRequest(R.RESTART, "a@x", "supervisor", {"lineage": "a@x"})
    assert evaluate(p, restart, Facts(restarts_last_hour=1)).allowed
    denied = evaluate(p, restart, Facts(restarts_last_hour=2))
    assert denied.rule == "r" and "restarted 2 times in the last hour" in denied.reason
    respawn = ActionRequest(R.RESPAWN, "a@x", "supervisor", {"lineage": "a@x"})
    assert not evaluate(p, respawn, Facts(restarts_last_hour=2)).allowed
    assert evaluate(p, spawn(), Facts(restarts_last_hour=99)).allowed


def test_allowed_skills_are_globs() -> None:
    p = policy('[rules.k]\nkind = "allowed_skills"\nskills = ["prove.*", "supervisor"]\n')
    assert evaluate(p, spawn(skills=("prove.z3", "supervisor")), Facts()).allowed
    denied = evaluate(p, spawn(skills=("prove.z3", "ga")), Facts())
    assert denied.rule == "k" and "['ga'] not allowed" in denied.reason


def test_allowed_backends_cover_agents_requeues_and_ga_runs() -> None:
    p = policy('[rules.b]\nkind = "allowed_backends"\nbackends = ["z3"]\n')
    assert evaluate(p, spawn(skills=("prove.z3", "supervisor")), Facts()).allowed
    assert not evaluate(p, spawn(skills=("prove.cvc5",)), Facts()).allowed
    requeue = ActionRequest(R.REQUEUE, "t1", "supervisor", {"backend": "cvc5"})
    assert evaluate(p, requeue, Facts()).rule == "b"
    ga = ActionRequest(R.GA_RUN_START, "war", "client", {"backends": ["z3", "lean"]})
    assert "['lean'] not allowed" in evaluate(p, ga, Facts()).reason
    breaker = ActionRequest(R.BREAKER_OPEN, "backend:cvc5", "supervisor")
    assert evaluate(p, breaker, Facts()).allowed  # a breaker names no backend to refuse


def test_forbid_applies_to_its_actions_and_actors() -> None:
    p = policy('[rules.f]\nkind = "forbid"\nactions = ["stop"]\nactors = ["client", "host:*"]\n')
    stop = ActionRequest(R.STOP, "a@x", "client")
    assert evaluate(p, stop, Facts()).outcome is Outcome.DENY
    assert evaluate(p, ActionRequest(R.STOP, "a@x", "host:h1-12"), Facts()).rule == "f"
    assert evaluate(p, ActionRequest(R.STOP, "a@x", "supervisor"), Facts()).allowed
    assert evaluate(p, spawn(), Facts()).allowed


def test_require_approval_parks_its_actions_after_no_rule_denied() -> None:
    p = policy(
        '[rules.cap]\nkind = "max_agents_per_host"\nlimit = 1\n'
        '[rules.ask]\nkind = "require_approval"\nactions = ["spawn"]\n'
        'description = "a person starts agents"\n'
    )
    parked = evaluate(p, spawn(), Facts())
    assert parked.outcome is Outcome.APPROVAL and parked.rule == "ask"
    assert parked.reason == "a person starts agents"
    # a request a limit refuses is denied, not parked: approving it could not make it legal
    assert evaluate(p, spawn(), Facts(agents=[agent("a")])).outcome is Outcome.DENY
    assert evaluate(p, ActionRequest(R.STOP, "a@x", "client"), Facts()).allowed


def test_the_first_objecting_rule_in_file_order_decides() -> None:
    p = policy(
        '[rules.first]\nkind = "allowed_skills"\nskills = ["supervisor"]\n'
        '[rules.second]\nkind = "forbid"\nactions = ["spawn"]\n'
    )
    assert evaluate(p, spawn(), Facts()).rule == "first"
    assert evaluate(p, spawn(skills=("supervisor",)), Facts()).rule == "second"


def test_promotion_waits_for_a_person_when_auto_promote_is_off() -> None:
    promote = ActionRequest(R.STRATEGY_PROMOTE, "war", "ga", {"run_id": "r", "auto": False})
    decision = evaluate(Policy(), promote, Facts())
    assert decision.outcome is Outcome.APPROVAL and decision.rule == AUTO_PROMOTE_OFF
    auto = ActionRequest(R.STRATEGY_PROMOTE, "war", "ga", {"run_id": "r", "auto": True})
    assert evaluate(Policy(), auto, Facts()).allowed
    manual = ActionRequest(R.STRATEGY_PROMOTE, "war", "client", {"run_id": "r"})
    assert evaluate(Policy(), manual, Facts()).allowed  # a person asked: no second approval
    four_eyes = policy('[rules.ask]\nkind = "require_approval"\nactions = ["strategy.promote"]\n')
    assert evaluate(four_eyes, manual, Facts()).outcome is Outcome.APPROVAL


def test_an_unknown_action_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown policy action"):
        ActionRequest("reboot", "a", "client")


def test_every_action_event_maps_to_known_action_kinds() -> None:
    for event, kinds in ACTION_EVENTS.items():
        assert kinds and set(kinds) <= set(R.ACTION_KINDS), event
    assert set(R.APPROVABLE) <= set(R.ACTION_KINDS)
    covered = {k for kinds in ACTION_EVENTS.values() for k in kinds}
    assert covered == set(R.ACTION_KINDS)  # every action kind has an audit event
