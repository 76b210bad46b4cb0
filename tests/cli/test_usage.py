"""The command line as a user meets it, through the installed console script `.venv/bin/hms`:
usage errors, `--version`, and settings validated before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.support import REPO

#: The console script pip installed beside this interpreter (``[project.scripts] hms``).
HMS_SCRIPT = Path(sys.executable).with_name("hms")


def hms(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hms`` script as a user would: no terminal, no stdin."""
    assert HMS_SCRIPT.exists(), f"the console script is not installed: {HMS_SCRIPT}"
    return subprocess.run(
        [str(HMS_SCRIPT), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def no_stack_env(tmp_path: Path) -> dict[str, str]:
    """A data directory with no stack and no broker: usage errors need neither."""
    return {"HMS_DATA_DIR": str(tmp_path), "HMS_DATABASE_URL": f"sqlite:///{tmp_path}/hms.db"}


USAGE_ERRORS = {
    "unknown command": (["frobnicate"], "No such command 'frobnicate'"),
    "unknown subcommand": (["ga", "frobnicate"], "No such command 'frobnicate'"),
    "missing argument": (["prove"], "Missing argument"),
    "missing argument of a subcommand": (["ga", "status"], "Missing argument"),
    "missing required option": (["agents", "spawn"], "Missing option '--skill'"),
    "unknown option": (["ping", "--bogus"], "No such option: --bogus"),
    "bad option value": (["prove", "x > 0", "--timeout", "soon"], "Invalid value for '--timeout'"),
    "option value out of range": (["audit", "--limit", "0"], "Invalid value for '--limit'"),
    "option without its value": (["prove", "x > 0", "--timeout"], "requires an argument"),
    "extra argument": (["ping", "extra"], "Got unexpected extra argument"),
}


@pytest.mark.parametrize("argv,message", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_a_usage_error_prints_the_usage_and_exits_2(
    argv: list[str], message: str, no_stack_env: dict[str, str]
) -> None:
    done = hms(*argv, env=no_stack_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert message in done.stderr, done.stderr
    assert done.stderr.startswith("Usage: hms"), done.stderr
    assert "for help." in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("argv", [[], ["ga"], ["strategies", "frobnicate"]], ids=str)
def test_a_bare_command_group_shows_its_help_and_exits_2(
    argv: list[str], no_stack_env: dict[str, str]
) -> None:
    done = hms(*argv, env=no_stack_env)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Usage: hms" in done.stderr, done.stderr


def test_help_exits_0(no_stack_env: dict[str, str]) -> None:
    done = hms("--help", env=no_stack_env)
    assert done.returncode == 0, done.stderr
    assert "Usage: hms" in done.stdout and "audit" in done.stdout


def test_version_prints_the_package_version(no_stack_env: dict[str, str]) -> None:
    done = hms("--version", env=no_stack_env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hms {metadata.version('hms-celery')}"


BAD_STRATEGIES = {
    "unknown name": "nope",
    "JSON that does not parse": '{"decider": ',
    "JSON of no strategy": '{"decider": {"tactic": "no-such-tactic"}}',
    "JSON of the wrong shape": '{"decider": 3}',
}


@pytest.mark.parametrize("value", BAD_STRATEGIES.values(), ids=BAD_STRATEGIES.keys())
def test_an_invalid_default_strategy_stops_the_cli(
    value: str, redis_url: str, no_stack_env: dict[str, str]
) -> None:
    env = {**no_stack_env, "HMS_BROKER_URL": redis_url, "HMS_DEFAULT_STRATEGY": value}
    done = hms("ping", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "HMS_DEFAULT_STRATEGY" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_valid_default_strategy_is_accepted(no_stack_env: dict[str, str]) -> None:
    for value in ("smt", '{"name": "mine", "decider": "smt"}'):
        done = hms("theorems", "--json", env={**no_stack_env, "HMS_DEFAULT_STRATEGY": value})
        assert done.returncode == 0, done.stderr


def test_a_worker_refuses_to_start_with_an_unknown_default_strategy(
    redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HMS_BROKER_URL": redis_url,
        "HMS_DATABASE_URL": f"sqlite:///{tmp_path}/hms.db",
        "HMS_DATA_DIR": str(tmp_path),
        "HMS_DEFAULT_STRATEGY": "nope",
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "hms_celery", "worker", "-Q", "prove.z3",
         "-n", f"refused-{os.getpid()}@%h", "--without-mingle", "--without-gossip"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    # (a worker that started would still be running: the call above would time out)
    assert "HMS_DEFAULT_STRATEGY='nope'" in done.stdout + done.stderr
