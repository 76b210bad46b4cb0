"""The policy rules file: parsing, validation errors naming the file, the rule and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hms_celery.errors import InputError
from hms_celery.policy import rules as R
from hms_celery.policy.engine import DEFAULT_POLICY_FILE
from hms_celery.policy.rules import PolicyFileError, load_policy, parse_policy

SRC = "policy.toml"


def error(text: str) -> str:
    with pytest.raises(PolicyFileError) as info:
        parse_policy(text, SRC)
    return str(info.value)


def test_the_repository_file_is_valid_and_asks_no_approval() -> None:
    policy = load_policy(DEFAULT_POLICY_FILE)
    kinds = {type(rule) for _, rule in policy.named()}
    assert R.RequireApproval not in kinds and R.Forbid not in kinds
    assert {"agents-per-host", "restarts-per-hour", "skills", "backends"} <= set(policy.rules)


def test_every_rule_kind_parses_in_file_order() -> None:
    policy = parse_policy(
        """
        [rules.host]
        kind = "max_agents_per_host"
        limit = 2
        [rules.skill]
        kind = "max_agents_per_skill"
        per_skill = { "prove.z3" = 3 }
        [rules.total]
        kind = "max_total_concurrency"
        limit = 8
        [rules.restarts]
        kind = "max_restarts_per_hour"
        limit = 0
        [rules.skills]
        kind = "allowed_skills"
        skills = ["prove.*", "supervisor"]
        [rules.backends]
        kind = "allowed_backends"
        backends = ["z3"]
        [rules.no-stop]
        kind = "forbid"
        actions = ["stop"]
        actors = ["client"]
        [rules.ask]
        kind = "require_approval"
        actions = ["respawn", "strategy.promote"]
        """,
        SRC,
    )
    assert [name for name, _ in policy.named()] == [
        "host", "skill", "total", "restarts", "skills", "backends", "no-stop", "ask",
    ]  # fmt: skip
    assert policy.rules["skill"].per_skill == {"prove.z3": 3}
    assert policy.rules["no-stop"].applies_to_actor("client")
    assert not policy.rules["no-stop"].applies_to_actor("supervisor")


def test_a_toml_syntax_error_names_the_file_line_and_column() -> None:
    message = error('[rules.a]\nkind = forbid\nactions = ["stop"]\n')
    assert message.startswith(f"{SRC}: TOML syntax error")
    assert "line 2, column 8" in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[rules.cap]\nkind = "max_agents_per_host"\nlimit = 0\n', "rule 'cap': limit:"),
        ('[rules.cap]\nkind = "max_agents_per_host"\n', "rule 'cap': limit: Field required"),
        ("[rules.cap]\nlimit = 3\n", "rule 'cap': missing 'kind'"),
        ('[rules.cap]\nkind = "no_such"\n', "rule 'cap': unknown kind 'no_such'"),
        (
            '[rules.cap]\nkind = "max_agents_per_host"\nlimit = 3\nlimt = 4\n',
            "rule 'cap': limt: Extra inputs are not permitted",
        ),
        (
            '[rules.ask]\nkind = "require_approval"\nactions = ["breaker.open"]\n',
            "rule 'ask': actions:",
        ),
        ('[rules.no]\nkind = "forbid"\nactions = ["reboot"]\n', "rule 'no': actions:"),
        ('[rules.no]\nkind = "forbid"\nactions = []\n', "rule 'no': actions:"),
        ('[rules.x]\nkind = "allowed_skills"\nskills = "prove.z3"\n', "rule 'x': skills:"),
        ("[limits]\nx = 1\n", "unknown top-level key(s) ['limits']"),
        ("version = 2\n", "version must be 1"),
        ("rules = 3\n", "'rules' must be tables"),
        ("[rules]\nbad = 3\n", "rule 'bad': must be a table"),
        ('[rules."a b"]\nkind = "forbid"\nactions = ["stop"]\n', "rule 'a b': a rule name"),
    ],
)
def test_validation_errors_name_the_file_and_the_rule(text: str, expected: str) -> None:
    message = error(text)
    assert message.startswith(f"{SRC}: "), message
    assert expected in message, message


def test_an_unreadable_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PolicyFileError, match=r"nope\.toml: cannot read") as info:
        load_policy(missing)
    assert isinstance(info.value, InputError)  # the CLI exits 2
