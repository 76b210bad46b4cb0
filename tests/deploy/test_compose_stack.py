"""The compose stack, run as local processes: docker-compose.yml's commands work together.

Every HMS service of ``docker-compose.yml`` (migrate, the prover agents, the supervisor,
beat, Flower) is started from the file — its ``command`` and ``environment``, interpolated as
compose does with freshly generated secrets — against the machine's Redis (the test's
database) and a fresh PostgreSQL database, which stand in for the ``redis`` and ``postgres``
services (``tests/deploy/compose.py`` maps hosts, ports and paths).  ``migrate`` runs to
completion first (``service_completed_successfully``); the others are restarted when they
exit, as their ``restart: unless-stopped`` would.  Then: a claim is proved on each prover,
every health check of the file passes, Flower and the HMS metrics answer with their
credentials only, and a SIGKILLed prover agent comes back as a new agent while the supervisor
marks the dead one FAILED and reruns its task, which gets exactly one result.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hms_celery import client
from hms_celery.agents import registry
from hms_celery.runtime.skills import get_skill
from hms_celery.store import repository
from tests.deploy import compose
from tests.support import (
    BOUNDED_ONLY,
    PG_ADMIN_URL,
    configure_process,
    http_get,
    scratch_database,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

SECRET_VARS = (
    "REDIS_PASSWORD",
    "POSTGRES_PASSWORD",
    "HMS_FLOWER_PASSWORD",
    "HMS_METRICS_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)
TRUE_CLAIM = "∀ (x y : ℝ), 0 ≤ x → x ≤ y → x * x ≤ y * y"


@dataclass
class Stack:
    doc: dict[str, Any]
    localizer: compose.Localizer
    services: dict[str, compose.Service]
    secrets: dict[str, str]

    def env(self, name: str) -> dict[str, str]:
        return self.services[name].env

    def agent_name(self, name: str) -> str:
        return (Path(self.env(name)["HMS_DATA_DIR"]) / "agent.name").read_text().strip()

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        """The service's ``healthcheck.test`` (CMD form), run as Docker would run it."""
        test = self.doc["services"][name]["healthcheck"]["test"]
        assert test[0] == "CMD", test
        argv = self.localizer.command(name, {"command": test[1:]})
        return subprocess.run(
            argv, env=self.env(name), cwd=compose.REPO, capture_output=True, text=True, timeout=60
        )

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{s.log()[-2500:]}" for n, s in self.services.items())


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database: the compose ``postgres`` service's role."""
    with scratch_database(PG_ADMIN_URL, "hms_compose") as url:
        yield url


@pytest.fixture(scope="module")
def stack(
    deploy_redis_url: str, database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("compose")
    generated = {name: secrets.token_hex(12) for name in SECRET_VARS}
    doc = compose.load(generated)
    localizer = compose.Localizer(deploy_redis_url, database, root)
    hms = {n: s for n, s in doc["services"].items() if n not in compose.INFRASTRUCTURE}
    assert {"migrate", "prover-z3", "prover-cvc5", "supervisor", "beat", "flower"} <= set(hms)

    def service(name: str) -> compose.Service:
        spec = hms[name]
        return compose.Service(
            name, localizer.command(name, spec), localizer.environment(name, spec), root
        )

    saved = {k: v for k, v in os.environ.items() if k.startswith("HMS_")}
    running: dict[str, compose.Service] = {}
    try:
        migrate = service("migrate").start(restart=False)
        running["migrate"] = migrate
        assert migrate.wait(180) == 0, migrate.log()  # service_completed_successfully
        for name in hms:
            if name != "migrate":
                assert hms[name]["restart"] == "unless-stopped", name
                running[name] = service(name).start(restart=True)
        # The test is a client of the stack: the services' own broker and store.
        client_env = {k: v for k, v in running["prover-z3"].env.items() if k.startswith("HMS_")}
        configure_process({k: v for k, v in client_env.items() if k != "HMS_DATA_DIR"})
        result = Stack(doc, localizer, running, generated)
        try:
            wait_until(lambda: len(ready_agents()) >= 3, 180, "three READY agents")
        except AssertionError:
            raise AssertionError(result.logs()) from None
        yield result
    finally:
        for svc in running.values():
            svc.stop()
        try:
            wait_until(lambda: not any(s.leftovers() for s in running.values()), 30, "no leftovers")
        except AssertionError:
            leaked = {n: s.leftovers() for n, s in running.items() if s.leftovers()}
            raise AssertionError(f"leaked process groups: {leaked}") from None
        finally:
            for key in [k for k in os.environ if k.startswith("HMS_")]:
                del os.environ[key]
            configure_process(saved)


def ready_agents() -> list[dict[str, Any]]:
    return [a for a in registry.list_agents(include_ended=False) if a["state"] == "READY"]


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    return http_get(url, auth, timeout=15)


def metrics(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    env = stack.env("supervisor")
    url = f"http://127.0.0.1:{env['HMS_METRICS_PORT']}/metrics"
    status, body = get(url, (env["HMS_METRICS_USER"], env["HMS_METRICS_PASSWORD"]))
    assert status == 200, body[:300]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def running_attempt(task_id: str) -> dict[str, Any] | None:
    status = client.query_task_status(task_id)
    open_attempts = [a for a in status["attempts"] if a["ended_at"] is None]
    return open_attempts[-1] if open_attempts else None


# ---------------------------------------------------------------------------------- tests
def test_the_agents_are_the_files_services(stack: Stack) -> None:
    agents = {a["id"]: a for a in ready_agents()}
    expected = {
        "prover-z3": ["prove.z3"],
        "prover-cvc5": ["prove.cvc5"],
        "supervisor": ["ga", "supervisor"],
    }
    for service, skills in expected.items():
        name = stack.agent_name(service)
        assert name in agents, (service, name, sorted(agents))
        assert sorted(agents[name]["skills"]) == skills
        assert get_skill("health").queue in agents[name]["queues"]  # every agent takes it


def test_the_stack_proves_a_claim_on_each_prover(stack: Stack) -> None:
    for service, backend in (("prover-z3", "z3"), ("prover-cvc5", "cvc5")):
        task_id = client.submit_proof_task(f"compose-{backend}", TRUE_CLAIM, backend=backend)
        status = client.wait_for_result(task_id, timeout=120)
        assert status["verdict"] == "PROVED", status
        assert status["agent"] == stack.agent_name(service)


def test_every_health_check_of_the_file_passes(stack: Stack) -> None:
    for name in ("prover-z3", "prover-cvc5", "supervisor", "beat", "flower"):
        try:
            wait_until(lambda n=name: stack.healthcheck(n).returncode == 0, 90, f"{name} healthy")
        except AssertionError:
            result = stack.healthcheck(name)
            raise AssertionError(f"{name}: {result.stdout}{result.stderr}") from None


def test_flower_answers_with_its_password_only(stack: Stack) -> None:
    env = stack.env("flower")
    url = f"http://127.0.0.1:{env['HMS_FLOWER_PORT']}/"
    assert get(url)[0] == 401
    assert get(url, (env["HMS_FLOWER_USER"], "not-the-password"))[0] == 401
    assert get(url, (env["HMS_FLOWER_USER"], stack.secrets["HMS_FLOWER_PASSWORD"]))[0] == 200


def test_the_metrics_endpoint_answers_with_its_password_only(stack: Stack) -> None:
    env = stack.env("supervisor")
    url = f"http://127.0.0.1:{env['HMS_METRICS_PORT']}/metrics"
    assert get(url)[0] == 401
    assert get(url, ("hms", "not-the-password"))[0] == 401
    figures = metrics(stack)
    assert any(name.startswith("hms_") for name, _ in figures), sorted(figures)[:20]


def test_a_killed_prover_is_replaced_and_its_task_rerun_once(stack: Stack) -> None:
    prover = stack.services["prover-z3"]
    victim = stack.agent_name("prover-z3")
    failed_before = metrics(stack).get(("hms_agents", (("state", "FAILED"),)), 0.0)
    task_id = client.submit_proof_task("compose-slow", BOUNDED_ONLY, max_size=200, timeout=120)
    attempt = wait_until(lambda: running_attempt(task_id), 60, "the proof to start")
    assert attempt["agent"] == victim

    # SIGKILL the agent's main process; its container ends with it (init exits, and the
    # kernel kills everything left in it: here, the process group).  The restart waits
    # until the health check has seen the dead agent.
    prover.restart_allowed.clear()
    os.kill(prover.pid, signal.SIGKILL)
    prover.wait(30)
    compose.signal_group(prover.pgids[-1], signal.SIGKILL)
    dead = stack.healthcheck("prover-z3")
    assert dead.returncode == 1, dead.stdout + dead.stderr
    assert victim in dead.stderr
    prover.restart_allowed.set()
    prover.wait_started(2, 30)  # restart: unless-stopped

    wait_until(lambda: registry.get_agent(victim)["state"] == "FAILED", 90, "FAILED")
    status = client.wait_for_result(task_id, timeout=240)
    assert status["state"] == "DONE" and status["verdict"] == "BOUNDED", status
    assert repository.count_results(task_id) == 1
    outcomes = [(a["agent"], a["outcome"]) for a in status["attempts"]]
    assert outcomes[0] == (victim, "LOST"), outcomes
    assert [o for _, o in outcomes].count("BOUNDED") == 1, outcomes
    successor = stack.agent_name("prover-z3")
    assert successor != victim
    assert status["agent"] == successor
    requeued = [
        e for e in repository.audit_events(subject=task_id) if e["action"] == "task.requeued"
    ]
    assert requeued and requeued[0]["details"]["agent"] == victim
    # No HMS agent host owns a container's agent: the supervisor alerts, the runtime restarts.
    wait_until(
        lambda: any(
            e["action"] == "recovery.alert" for e in repository.audit_events(subject=victim)
        ),
        60,
        "the supervisor's alert",
    )
    events = repository.audit_events(subject=victim)
    actions = {e["action"] for e in events}
    assert "recovery.respawn" not in actions, actions
    alerts = [e for e in events if e["action"] == "recovery.alert"]
    assert any("no agent host owns" in e["details"]["reason"] for e in alerts), alerts
    wait_until(lambda: stack.healthcheck("prover-z3").returncode == 0, 90, "healthy again")
    wait_until(
        lambda: (
            metrics(stack).get(("hms_agents", (("state", "FAILED"),)), 0.0) >= failed_before + 1
        ),
        60,
        "the FAILED agent in the metrics",
    )
