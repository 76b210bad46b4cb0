"""The rules file in force: where it is, re-read when it changes, validated at start-up."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import signals

from hms_celery.policy.rules import Policy, PolicyFileError, load_policy
from hms_celery.settings import get_settings

log = logging.getLogger(__name__)

#: The repository's rules file, used when ``HMS_POLICY_FILE`` is unset.
DEFAULT_POLICY_FILE = Path(__file__).resolve().parents[2] / "config" / "policy.toml"


_cache: dict[tuple[str, int, int], Policy] = {}


def policy_path() -> Path | None:
    """The rules file in force: ``HMS_POLICY_FILE``, else the repository's (None: neither)."""
    configured = get_settings().policy_file
    if configured is not None:
        return configured
    return DEFAULT_POLICY_FILE if DEFAULT_POLICY_FILE.is_file() else None


def current_policy() -> Policy:
    """The validated rules in force (re-read when the file changes);
    :class:`PolicyFileError` if the file is missing or invalid."""
    path = policy_path()
    if path is None:
        return Policy()  # no file anywhere: allow everything (the built-in rules)
    try:
        stat = path.stat()
    except OSError as exc:
        raise PolicyFileError(f"{path}: HMS_POLICY_FILE cannot be read: {exc}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    found = _cache.get(key)
    if found is None:
        found = load_policy(path)
        _cache.clear()
        _cache[key] = found
    return found


def check_policy() -> Policy:
    """Validate the rules file at start-up (raises :class:`PolicyFileError`)."""
    policy = current_policy()
    log.info("policy: %d rule(s) from %s", len(policy.rules), policy.source)
    return policy


@signals.worker_init.connect
def _check_at_worker_start(**_: Any) -> None:
    """A worker with a broken rules file does not start (Celery logs and ignores ordinary
    exceptions from signal handlers, so this exits)."""
    try:
        check_policy()
    except PolicyFileError as exc:
        log.critical("%s", exc)
        raise SystemExit(2) from None
