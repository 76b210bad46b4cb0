"""The policy rules file: what agent actions are allowed, limited, or wait for a person.

Rules are data (``config/policy.toml``, or the file ``HMS_POLICY_FILE`` names).  Each rule is
a TOML table ``[rules.<name>]`` with a ``kind``; its name is what every decision in the audit
log cites.  The file is validated as a whole when a process starts (a worker via a Celery
signal, the ``hms`` CLI); a problem raises :class:`PolicyFileError` naming the file, the rule
and, for TOML syntax, the line and column.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hms_celery.errors import SettingsError

#: Every action the policy engine decides (``ActionRequest.kind``).
SPAWN, STOP, RESTART, RESPAWN, ALERT, REQUEUE = (
    "spawn",
    "stop",
    "restart",
    "respawn",
    "alert",
    "requeue",
)
BREAKER_OPEN, BREAKER_HALF_OPEN, BREAKER_CLOSE = (
    "breaker.open",
    "breaker.half_open",
    "breaker.close",
)
GA_RUN_START, GA_RUN_RESUME, STRATEGY_PROMOTE = "ga.run.start", "ga.run.resume", "strategy.promote"
ACTION_KINDS: tuple[str, ...] = (
    SPAWN,
    STOP,
    RESTART,
    RESPAWN,
    ALERT,
    REQUEUE,
    BREAKER_OPEN,
    BREAKER_HALF_OPEN,
    BREAKER_CLOSE,
    GA_RUN_START,
    GA_RUN_RESUME,
    STRATEGY_PROMOTE,
)
#: Actions that may wait for a person.  Breakers and alerts act at once or not at all (a
#: breaker that waited for a person would route work to a failing agent meanwhile), and a
#: GA resume only re-publishes a step of a run that was already allowed.
APPROVABLE: tuple[str, ...] = (
    SPAWN,
    STOP,
    RESTART,
    RESPAWN,
    REQUEUE,
    GA_RUN_START,
    STRATEGY_PROMOTE,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PolicyFileError(SettingsError):
    """The policy file is unreadable or invalid; the message names the file and the rule."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    #: Glob patterns of the actors the rule applies to (``supervisor``, ``client``,
    #: ``host:*``…); empty: every actor.
    actors: tuple[str, ...] = ()

    def applies_to_actor(self, actor: str) -> bool:
        """Does this rule apply to requests from ``actor``?"""
        return not self.actors or any(fnmatch.fnmatchcase(actor, p) for p in self.actors)


class MaxAgentsPerHost(_Rule):
    """No spawn/respawn that would give one agent host more than ``limit`` live agents."""

    kind: Literal["max_agents_per_host"]
    limit: int = Field(ge=1)


class MaxAgentsPerSkill(_Rule):
    """No spawn/respawn that would give a skill more than its limit of live agents:
    ``per_skill[skill]`` if set, else ``limit`` (unset: that skill is not limited)."""

    kind: Literal["max_agents_per_skill"]
    limit: int | None = Field(default=None, ge=1)
    per_skill: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)


class MaxTotalConcurrency(_Rule):
    """No spawn/respawn that would take the pool processes of all live agents above ``limit``."""

    kind: Literal["max_total_concurrency"]
    limit: int = Field(ge=1)


class MaxRestartsPerHour(_Rule):
    """No restart/respawn of a lineage that had ``limit`` of them in the last hour."""

    kind: Literal["max_restarts_per_hour"]
    limit: int = Field(ge=0)


class AllowedSkills(_Rule):
    """Spawn/respawn only agents whose every skill matches one of ``skills`` (globs)."""

    kind: Literal["allowed_skills"]
    skills: tuple[str, ...]


class AllowedBackends(_Rule):
    """Agents (``prove.<backend>`` skills), requeued tasks and GA runs only on ``backends``."""

    kind: Literal["allowed_backends"]
    backends: tuple[str, ...]


class Forbid(_Rule):
    """Deny ``actions`` outright (for the rule's ``actors``)."""

    kind: Literal["forbid"]
    actions: tuple[str, ...] = Field(min_length=1)

    @field_validator("actions")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known_actions(value, ACTION_KINDS)


class RequireApproval(_Rule):
    """``actions`` wait for a person (``hms approvals approve ID``) instead of running."""

    kind: Literal["require_approval"]
    actions: tuple[str, ...] = Field(min_length=1)

    @field_validator("actions")
    @classmethod
    def _approvable(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known_actions(value, APPROVABLE)


Rule = Annotated[
    MaxAgentsPerHost
    | MaxAgentsPerSkill
    | MaxTotalConcurrency
    | MaxRestartsPerHour
    | AllowedSkills
    | AllowedBackends
    | Forbid
    | RequireApproval,
    Field(discriminator="kind"),
]
RULE_KINDS = (
    "max_agents_per_host",
    "max_agents_per_skill",
    "max_total_concurrency",
    "max_restarts_per_hour",
    "allowed_skills",
    "allowed_backends",
    "forbid",
    "require_approval",
)


def _known_actions(value: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    bad = [a for a in value if a not in allowed]
    if bad:
        raise ValueError(f"unknown or not allowed here: {bad}; allowed: {list(allowed)}")
    return value


class _RuleEntry(BaseModel):
    rule: Rule


class Policy(BaseModel):
    """A validated rules file: named rules in file order."""

    model_config = ConfigDict(frozen=True)

    source: str = "<built-in>"
    rules: dict[str, Any] = Field(default_factory=dict)  # name → one of the Rule classes

    def named(self) -> list[tuple[str, _Rule]]:
        """``(name, rule)`` pairs in file order."""
        return list(self.rules.items())


def parse_policy(text: str, source: str = "<text>") -> Policy:
    """Parse and validate the TOML ``text``; :class:`PolicyFileError` names ``source``,
    the rule and the field (or TOML's line and column)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
        raise PolicyFileError(f"{source}: TOML syntax error: {exc}") from None
    unknown = sorted(set(data) - {"version", "rules"})
    if unknown:
        raise PolicyFileError(f"{source}: unknown top-level key(s) {unknown}; expected [rules.*]")
    if data.get("version", 1) != 1:
        raise PolicyFileError(f"{source}: version must be 1, not {data['version']!r}")
    tables = data.get("rules", {})
    if not isinstance(tables, dict):
        raise PolicyFileError(f"{source}: 'rules' must be tables [rules.<name>]")
    rules: dict[str, Any] = {}
    for name, table in tables.items():
        where = f"{source}: rule {name!r}"
        if not _NAME.match(name):
            raise PolicyFileError(f"{where}: a rule name is letters, digits, '_', '-', '.'")
        if not isinstance(table, dict):
            raise PolicyFileError(f"{where}: must be a table [rules.{name}]")
        if "kind" not in table:
            raise PolicyFileError(f"{where}: missing 'kind' (one of {', '.join(RULE_KINDS)})")
        try:
            rules[name] = _RuleEntry.model_validate({"rule": table}).rule
        except ValidationError as exc:
            raise PolicyFileError(f"{where}: {_first_error(exc)}") from None
    return Policy(source=source, rules=rules)


def load_policy(path: Path) -> Policy:
    """Read and validate the rules file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{path}: cannot read the policy file: {exc}") from None
    return parse_policy(text, str(path))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"][1:] if not _is_kind_tag(p)]  # drop "rule" and the tag
    field = ".".join(loc)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "union_tag_invalid":
        message = f"unknown kind {err['input'].get('kind')!r}; known: {', '.join(RULE_KINDS)}"
    return f"{field}: {message}" if field else message


def _is_kind_tag(part: object) -> bool:
    return isinstance(part, str) and part in RULE_KINDS
