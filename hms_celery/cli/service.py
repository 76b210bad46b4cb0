"""``hms service``: run one part of a production stack in the foreground, and check it.

Each compose service (docker-compose.yml) runs one of these; each replaces this process with
the Celery one (``exec``), so the container's stop signal reaches Celery directly.

* ``hms service agent SKILL…`` — a Celery worker consuming the skills' queues (and the
  ``health`` broadcast), under a node name new at every start (``prove-z3-1a2b3c@host``): a
  container restarted by its restart policy is a new agent, and the supervisor can mark the
  dead one FAILED and rerun its tasks (a failed agent is never revived under its old name).
  The name is written to ``<HMS_DATA_DIR>/agent.name`` for ``hms service check agent``.
* ``hms service flower`` — Flower with the address and basic auth of the HMS settings.
* ``hms service check agent|beat|flower`` — a container health check: exit 0 when the part
  answers, 1 when it does not.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from hms_celery.agents.host import new_agent_id
from hms_celery.app import app
from hms_celery.cli.output import err, out
from hms_celery.errors import InputError
from hms_celery.flower import flower_arguments, flower_config
from hms_celery.healing.health import last_round
from hms_celery.healing.heartbeats import redis_client
from hms_celery.runtime.skills import get_skill
from hms_celery.settings import Settings, get_settings
from hms_celery.store.db import safe_url

service_cli = typer.Typer(
    help="Run one part of a production stack (a compose service) and check its health.",
    no_args_is_help=True,
)

AGENT_NAME_FILE = "agent.name"
EXIT_HEALTHY, EXIT_UNHEALTHY = 0, 1


class Part(StrEnum):
    agent = "agent"
    beat = "beat"
    flower = "flower"


def agent_name_file(settings: Settings) -> Path:
    """Where ``hms service agent`` records its node name (one agent per data directory)."""
    return settings.data_dir / AGENT_NAME_FILE


@service_cli.command("agent")
def agent(
    skills: Annotated[list[str], typer.Argument(help="Skills to run, e.g. prove.z3.")],
    concurrency: Annotated[
        int | None, typer.Option("-c", "--concurrency", help="Pool processes.", min=1, max=64)
    ] = None,
    loglevel: Annotated[str, typer.Option("-l", "--loglevel")] = "INFO",
) -> None:
    """Run a Celery worker for SKILLS under a new node name (exec)."""
    settings = get_settings()
    queues = []
    for skill_id in skills:
        try:
            queues.append(get_skill(skill_id).queue)
        except KeyError as exc:
            raise InputError(str(exc.args[0])) from None
    name = new_agent_id(list(skills))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    agent_name_file(settings).write_text(name + "\n")
    _exec_celery(
        [
            "-A", "hms_celery", "worker",
            "-Q", ",".join(dict.fromkeys(queues)),
            "-n", name,
            "-c", str(concurrency or settings.worker_concurrency),
            "-l", loglevel,
        ]
    )  # fmt: skip


@service_cli.command("flower")
def flower(
    port: Annotated[int | None, typer.Option(help="Override HMS_FLOWER_PORT.")] = None,
) -> None:
    """Run Flower on HMS_FLOWER_ADDRESS:HMS_FLOWER_PORT with basic auth (exec)."""
    config = flower_config(get_settings(), port=port)  # refuses an open non-loopback bind
    state = "basic auth" if config.authenticated else "no authentication (loopback only)"
    err.print(f"flower  {config.url}  ({state})", highlight=False)
    _exec_celery(["-A", "hms_celery", *flower_arguments(port)])


@service_cli.command("check")
def check(
    part: Annotated[Part, typer.Argument(help="What this container runs.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an answer.")] = 5.0,
) -> None:
    """Exit 0 if PART answers, 1 if not (a container health check)."""
    settings = get_settings()
    checks = {Part.agent: _check_agent, Part.beat: _check_beat, Part.flower: _check_flower}
    try:
        ok, why = checks[part](settings, timeout)
    except (OSError, KombuError, RedisError) as exc:  # broker down: unhealthy, not a crash
        ok, why = False, f"broker {safe_url(settings.effective_broker_url)} unreachable: {exc}"
    (out if ok else err).print(f"{part.value}: {why}", highlight=False)
    # Docker reads 0 as healthy and 1 as unhealthy (2 is reserved), whatever went wrong.
    raise typer.Exit(EXIT_HEALTHY if ok else EXIT_UNHEALTHY)


def _check_agent(settings: Settings, timeout: float) -> tuple[bool, str]:
    try:
        name = agent_name_file(settings).read_text().strip()
    except OSError:
        return False, f"no agent started here ({agent_name_file(settings)} missing)"
    replies = app.control.ping([name], timeout=timeout) or []
    if any(name in reply for reply in replies):
        return True, f"{name} answers"
    return False, f"{name} does not answer a ping within {timeout:g}s"


def _check_beat(settings: Settings, _timeout: float) -> tuple[bool, str]:
    """Beat is healthy while its health rounds are carried out (they mark Redis each time)."""
    at = last_round(redis_client())
    limit = 3 * settings.health_interval + settings.heartbeat_timeout
    if at is None:
        return False, "no health round has run yet"
    age = time.time() - at
    if age > limit:
        return False, f"the last health round ran {age:.0f}s ago (limit {limit:g}s)"
    return True, f"the last health round ran {age:.1f}s ago"


def _check_flower(settings: Settings, timeout: float) -> tuple[bool, str]:
    url = flower_config(settings).url + "healthcheck"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(64)
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"
    return body.strip() == b"OK", f"{url}: {body.decode(errors='replace').strip()}"


def _exec_celery(args: list[str]) -> NoReturn:
    """Become ``python -m celery ARGS`` (same pid: signals and exit code are Celery's)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "celery", *args])
