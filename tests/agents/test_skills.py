"""Skills as plugins: the entry-point registry, the Celery wiring it derives, and a plugin
skill (``tests/plugins/hms_echo_skill``) run by a real worker process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from kombu.common import Broadcast

from hms_celery import client
from hms_celery.agents.builtin.health import HealthSkill
from hms_celery.agents.builtin.prove_z3 import ProveZ3Skill
from hms_celery.app import app
from hms_celery.errors import InputError
from hms_celery.runtime import skills
from hms_celery.runtime.skills import (
    ENTRY_POINT_GROUP,
    Skill,
    SkillError,
    get_skill,
    register_skill,
    reload_skills,
    skill_info,
    skill_load_errors,
    task_queues,
    task_routes,
)
from tests.support import REPO, WorkerProcess, wait_until

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "hms_echo_skill"
BUILTINS = {"prove.z3", "prove.cvc5", "health", "supervisor", "ga"}


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], dict[str, Skill]]]:
    """Put a directory on sys.path and reload the registry; undone (and reloaded) after."""

    def add(path: Path) -> dict[str, Skill]:
        monkeypatch.syspath_prepend(str(path))
        return reload_skills()

    yield add
    monkeypatch.undo()
    reload_skills()


def _dist_info(root: Path, name: str, entry_points_txt: str) -> Path:
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points_txt}")
    return root


def _hms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hms_celery.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


# ------------------------------------------------------------------------------ registry
def test_builtins_load_from_entry_points() -> None:
    declared = {
        ep.name: ep.value
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.dist is not None and ep.dist.name == "hms-celery"
    }
    assert set(declared) == BUILTINS
    assert set(skills.SKILLS) >= BUILTINS
    assert isinstance(skills.PROVE_Z3, ProveZ3Skill)
    assert skills.PROVE_Z3 is get_skill("prove.z3")
    assert skills.PROOF_QUEUES["z3"] == "prove.z3"
    assert skills.PROOF_QUEUES["cvc5"] == "prove.cvc5"
    cvc5 = get_skill("prove.cvc5")
    assert (cvc5.queue, cvc5.task_name, cvc5.proof_backend) == (
        "prove.cvc5",
        "hms.skill.prove.cvc5",
        "cvc5",
    )
    assert cvc5.can_handle({"backend": "cvc5"}) and not cvc5.can_handle({"backend": "z3"})
    # hms.prove belongs to prove.z3's routes; the client names prove.cvc5's queue itself
    assert task_routes()["hms.prove"]["queue"] == "prove.z3"
    rows = {row["id"]: row for row in skill_info()}
    assert rows["prove.z3"]["source"].startswith(f"prove.z3 = {declared['prove.z3']}")
    assert rows["health"] | {"source": ""} == {
        "id": "health",
        "name": "Health check",
        "description": HealthSkill.description,
        "queue": "hms.health",
        "broadcast": True,
        "task_name": "hms.skill.health",
        "task_names": ["hms.health.check"],
        "source": "",
    }
    assert skill_load_errors() == []
    with pytest.raises(KeyError, match=r"known: .*prove\.z3"):
        get_skill("no-such-skill")


def test_queues_and_routes_derive_from_the_registry() -> None:
    routes = task_routes()
    assert routes["hms.prove"]["queue"] == "prove.z3"
    assert routes["hms.skill.prove.z3"]["queue"] == "prove.z3"
    assert routes["hms.supervisor.sweep"]["queue"] == "supervisor"
    assert routes["hms.skill.supervisor"]["queue"] == "supervisor"
    assert routes["hms.skill.health"]["queue"] == "hms.health"
    queues = {q.alias or q.name: q for q in task_queues()}
    assert BUILTINS - {"health"} <= set(queues)
    health = queues["hms.health"]
    assert isinstance(health, Broadcast)
    assert health.exchange.type == "fanout" and health.exchange.name == "hms.health"
    assert not isinstance(queues["prove.z3"], Broadcast)
    # The app took the same routing when it was configured.
    assert app.conf.task_routes["hms.prove"]["queue"] == "prove.z3"
    assert app.conf.task_routes["hms.supervisor.sweep"]["queue"] == "supervisor"
    assert isinstance(app.amqp.queues["hms.health"], Broadcast)
    assert app.amqp.queues["supervisor"].name == "supervisor"


def test_skill_defaults_follow_the_id() -> None:
    class Plain(Skill):
        id = "plain"

        def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
            return payload

    class Renamed(Plain):
        id = "renamed"
        queue = "elsewhere"

    class Child(Renamed):
        id = "child"

    assert (Plain.name, Plain.queue, Plain.task_name) == ("plain", "plain", "hms.skill.plain")
    assert (Renamed.queue, Renamed.task_name) == ("elsewhere", "hms.skill.renamed")
    assert (Child.queue, Child.task_name) == ("elsewhere", "hms.skill.child")
    assert Plain().can_handle({"anything": 1})


def test_generic_skill_tasks_run_execute_after_can_handle() -> None:
    names = set(app.tasks)
    assert {"hms.skill.prove.z3", "hms.skill.health", "hms.skill.supervisor"} <= names
    prove = app.tasks["hms.skill.prove.z3"]
    outcome = prove(payload={"statement": "∀ x : ℝ, x * x ≥ 0"})
    assert outcome["verdict"] == "PROVED"
    assert prove(payload={"statement": "1 = 1", "backend": "lean"}) == {
        "error": "skill 'prove.z3' cannot handle this payload"
    }
    assert prove(payload={"statement": "1 = 1", "nonsense": 1})["verdict"] == "ERROR"
    assert "JSON object" in prove(payload=[1, 2])["error"]
    assert app.tasks["hms.skill.supervisor"](payload={}) == {"ok": True}
    health = app.tasks["hms.skill.health"]()
    assert health["status"] == "Healthy" and health["pid"] == os.getpid()
    assert health["rss_bytes"]["child"] > 1_000_000
    assert health["backends"] == {"z3": True}
    # Late acknowledgement is the app's default; a health check opts out.
    assert prove.acks_late is True and prove.reject_on_worker_lost is True
    assert app.tasks["hms.skill.health"].acks_late is False


def test_broken_entry_points_are_skipped_with_an_error_naming_them(
    tmp_path: Path, on_path: Callable[[Path], dict[str, Skill]]
) -> None:
    root = _dist_info(
        tmp_path,
        "hms_broken_skills",
        "missing = hms_no_such_module:Nope\n"
        "notaskill = collections:OrderedDict\n"
        "twice = hms_celery.agents.builtin.health:HealthSkill\n",
    )
    loaded = on_path(root)
    assert set(loaded) >= BUILTINS
    errors = {e.entry_point.split(" = ")[0]: e for e in skill_load_errors()}
    assert set(errors) == {"missing", "notaskill", "twice"}
    assert errors["missing"].entry_point == "missing = hms_no_such_module:Nope"
    assert errors["missing"].distribution == "hms_broken_skills"
    assert "ModuleNotFoundError" in errors["missing"].error
    assert "not a subclass" in errors["notaskill"].error
    assert "duplicate skill id 'health'" in errors["twice"].error
    assert type(loaded["health"]).__module__ == "hms_celery.agents.builtin.health"
    # A worker (any process importing the app) still starts, and says what it skipped.
    env = {"PYTHONPATH": str(root), "HMS_BROKER_URL": "redis://127.0.0.1:1/0"}
    done = _hms("skills", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert {row["id"] for row in json.loads(done.stdout)} == BUILTINS
    assert "missing = hms_no_such_module:Nope" in done.stderr


def test_register_skill_programmatically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skills, "_PROGRAMMATIC", [])

    class Lean(Skill):
        id = "prove.lean"
        proof_backend = "lean"

        def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
            return {}

    class Clash(Lean):
        id = "clash"
        queue = "prove.z3"

    class BadQueue(Lean):
        id = "bad-queue"
        queue = "no spaces please"

    try:
        skill = register_skill(Lean)
        assert get_skill("prove.lean") is skill
        assert skills.PROOF_QUEUES == {
            "z3": "prove.z3",
            "cvc5": "prove.cvc5",
            "lean": "prove.lean",
        }
        assert task_routes()["hms.skill.prove.lean"]["queue"] == "prove.lean"
        assert reload_skills()["prove.lean"].queue == "prove.lean"  # survives a reload
        with pytest.raises(SkillError, match=r"queue .prove\.z3. is .prove\.z3."):
            register_skill(Clash)
        with pytest.raises(SkillError, match="invalid queue"):
            register_skill(BadQueue)
        with pytest.raises(SkillError, match="not a subclass"):
            register_skill(dict)  # type: ignore[arg-type]
    finally:
        monkeypatch.undo()
        reload_skills()
    assert "prove.lean" not in skills.SKILLS
    assert skills.PROOF_QUEUES == {"z3": "prove.z3", "cvc5": "prove.cvc5"}


def test_the_echo_plugin_is_discovered_on_the_path(
    on_path: Callable[[Path], dict[str, Skill]],
) -> None:
    loaded = on_path(PLUGIN_DIR)
    echo = loaded["echo"]
    assert type(echo).__module__ == "hms_echo_skill"
    assert (echo.queue, echo.task_name) == ("echo", "hms.skill.echo")
    assert task_routes()["hms.skill.echo"] == {"queue": "echo", "routing_key": "echo"}
    row = next(row for row in skill_info() if row["id"] == "echo")
    assert row["source"] == "echo = hms_echo_skill:EchoSkill (hms-echo-skill)"
    assert echo.execute({"a": 1}) == {"echo": {"a": 1}, "pid": os.getpid()}
    assert not echo.can_handle({"refuse": True})


def test_hms_skills_lists_builtin_and_plugin_skills() -> None:
    done = _hms("skills", "--json", env={"PYTHONPATH": str(PLUGIN_DIR)})
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert set(rows) == BUILTINS | {"echo"}
    assert rows["echo"]["queue"] == "echo" and rows["health"]["broadcast"] is True
    table = _hms("skills", env={})
    assert table.returncode == 0, table.stderr
    assert "hms.supervisor.sweep" in table.stdout and "hms.health (broadcast)" in table.stdout


def test_run_skill_rejects_unknown_skills_and_bad_payloads() -> None:
    with pytest.raises(InputError, match=r"unknown skill .nope.; known: .*health.*prove\.z3"):
        client.run_skill("nope", {})
    with pytest.raises(InputError, match="JSON object"):
        client.run_skill("supervisor", [1])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not JSON"):
        client.run_skill("supervisor", {"x": object()})


# -------------------------------------------------------------- a plugin on a real worker
@pytest.fixture(scope="module")
def echo_installed() -> Iterator[None]:
    """The echo plugin installed in this (client) process too, as PYTHONPATH does below."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(PLUGIN_DIR))
        reload_skills()
        yield
    reload_skills()


@pytest.fixture(scope="module")
def plugin_env(stack_env: dict[str, str]) -> dict[str, str]:
    path = [str(PLUGIN_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**stack_env, "PYTHONPATH": os.pathsep.join(path)}


@pytest.fixture(scope="module")
def echo_worker(plugin_env: dict[str, str], echo_installed: None) -> Iterator[WorkerProcess]:
    """A worker consuming the plugin's queue (and the health broadcast)."""
    proc = WorkerProcess(plugin_env, queues="echo,hms.health", concurrency=1)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def _parent_pid(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))


def _logged(worker: WorkerProcess, line: str, timeout: float = 20) -> bool:
    """Whether ``line`` shows up in the worker's log (written after the result is stored)."""
    try:
        wait_until(lambda: line in worker.log(), timeout, f"{line!r} in the worker's log")
    except AssertionError:
        return False
    return True


@pytest.mark.services
def test_a_plugin_skill_runs_on_a_real_worker(echo_worker: WorkerProcess) -> None:
    payload = {"n": 3, "text": "héllo", "items": [1, "two", None], "nested": {"ok": True}}
    task_id = client.run_skill("echo", payload)
    result = client.wait_skill_result(task_id, timeout=60)
    assert result["echo"] == payload
    assert result["pid"] != os.getpid()
    # A pool process of that worker (it is alive: the worker keeps its pool).
    assert _parent_pid(result["pid"]) == echo_worker.process.pid
    assert _logged(echo_worker, f"hms.skill.echo[{task_id}] succeeded"), echo_worker.log()


@pytest.mark.services
def test_a_refused_payload_returns_an_error_and_the_worker_lives(
    echo_worker: WorkerProcess,
) -> None:
    task_id = client.run_skill("echo", {"refuse": True})
    assert client.wait_skill_result(task_id, timeout=60) == {
        "error": "skill 'echo' cannot handle this payload"
    }
    assert echo_worker.alive()
    again = client.wait_skill_result(client.run_skill("echo", {"after": 1}), timeout=60)
    assert again["echo"] == {"after": 1}
    with pytest.raises(TimeoutError):
        client.wait_skill_result("no-such-task-id", timeout=0.2)


@pytest.mark.services
def test_health_checks_are_broadcast_to_every_agent(
    echo_worker: WorkerProcess, plugin_env: dict[str, str]
) -> None:
    other = WorkerProcess(plugin_env, queues="hms.health", concurrency=1)
    try:
        other.wait_ready()
        task_id = client.run_skill("health", {})
        report = client.wait_skill_result(task_id, timeout=60)
        assert report["status"] == "Healthy" and report["pid"] != os.getpid()
        line = f"hms.skill.health[{task_id}] succeeded"
        assert _logged(echo_worker, line), echo_worker.log()
        assert _logged(other, line), other.log()
    finally:
        other.stop()
