"""The compose file's structure: what every HMS service must have, and what nothing may do.

These read ``docker-compose.yml`` (and Prometheus' config) without starting anything; the
process test (``test_compose_stack.py``) runs the same services.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from hms_celery.runtime.skills import SKILLS, get_skill
from tests.deploy import compose

SECRETS = {
    "REDIS_PASSWORD": "redis-pw",
    "POSTGRES_PASSWORD": "pg-pw",
    "HMS_FLOWER_PASSWORD": "flower-pw",
    "HMS_METRICS_PASSWORD": "metrics-pw",
    "GRAFANA_ADMIN_PASSWORD": "grafana-pw",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_AUTH$|BASIC_AUTH")
REQUIRED_VAR = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*):\?[^}]+\}$")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return compose.load_raw()


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    return compose.load(SECRETS)


def hms_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services built from this repository (the HMS image)."""
    return {name: s for name, s in doc["services"].items() if "build" in s}


def agent_skills(service: dict[str, Any]) -> list[str] | None:
    """The skills of an ``hms service agent`` command (None: not an agent)."""
    argv = compose.command_of(service)
    if argv[:3] != ["hms", "service", "agent"]:
        return None
    skills = []
    for arg in argv[3:]:
        if arg.startswith("-"):
            break
        skills.append(arg)
    return skills


def test_the_services_of_a_complete_stack_are_there(raw: dict[str, Any]) -> None:
    services = raw["services"]
    expected = {"redis", "postgres", "migrate", "supervisor", "beat", "flower"}
    assert expected | {"prometheus", "grafana"} <= set(services)
    assert set(compose.INFRASTRUCTURE) <= set(services)
    # Redis is append-only on a named volume; PostgreSQL keeps its data on one.
    redis_command = " ".join(compose.command_of(services["redis"]))
    assert "--appendonly yes" in redis_command
    for name, mount in (("redis", "/data"), ("postgres", "/var/lib/postgresql/data")):
        volume, _, target = services[name]["volumes"][0].partition(":")
        assert target == mount and volume in raw["volumes"], (name, services[name]["volumes"])
    assert {"prometheus-data", "grafana-data"} <= set(raw["volumes"])


def test_every_hms_service_has_command_environment_restart_and_health(
    raw: dict[str, Any],
) -> None:
    services = hms_services(raw)
    assert len(services) >= 6, sorted(services)
    for name, service in services.items():
        assert compose.command_of(service), f"{name}: no command"
        env = compose.environment_of(service)
        assert {"HMS_BROKER_URL", "HMS_DATABASE_URL"} <= set(env), f"{name}: {sorted(env)}"
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        one_shot = service["restart"] == "on-failure"
        if one_shot:  # migrate: the others wait for it to succeed, it needs no health check
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name}: no health check"
        assert test[1:4] == ["hms", "service", "check"], f"{name}: {test}"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert compose.command_of(services["migrate"]) == ["hms", "db", "upgrade"]


def test_agents_cover_every_prover_skill_and_the_supervisor(raw: dict[str, Any]) -> None:
    skills_by_service = {
        name: skills
        for name, service in hms_services(raw).items()
        if (skills := agent_skills(service)) is not None
    }
    for skills in skills_by_service.values():
        for skill in skills:
            get_skill(skill)  # a known skill (KeyError otherwise)
    run = {skill for skills in skills_by_service.values() for skill in skills}
    prover_skills = {s.id for s in SKILLS.values() if s.proof_backend}  # every installed one
    assert {"prove.z3", "prove.cvc5"} <= prover_skills <= run
    assert sorted(skills_by_service["supervisor"]) == ["ga", "supervisor"]
    # One skill per prover service: each scales on its own (`--scale prover-z3=3`).
    assert all(len(s) == 1 for n, s in skills_by_service.items() if n != "supervisor")
    beat = compose.command_of(raw["services"]["beat"])
    assert beat[:4] == ["celery", "-A", "hms_celery", "beat"]


def test_nothing_is_published_beyond_loopback(raw: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # long syntax
                host_ip = port.get("host_ip")
            else:
                parts = str(port).split(":")
                assert len(parts) == 3, f"{name}: {port!r} publishes on every interface"
                host_ip = parts[0]
            assert host_ip == "127.0.0.1", f"{name}: {port!r} is not bound to loopback"
    for name in ("redis", "postgres", "migrate", "beat"):
        assert not raw["services"][name].get("ports"), f"{name} must not be published"


def test_no_literal_secret_and_every_secret_is_required(raw: dict[str, Any]) -> None:
    for name, service in raw["services"].items():
        for key, value in compose.environment_of(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VAR.match(value), f"{name}: {key}={value!r} is not ${{VAR:?…}}"
            for url in re.findall(r"\w+://[^\s]+", value):
                userinfo = url.split("://", 1)[1].rpartition("@")[0]
                if ":" in userinfo:
                    password = userinfo.split(":", 1)[1]
                    assert REQUIRED_VAR.match(password), f"{name}: {key} has a literal password"
    for secret in raw["secrets"].values():
        assert set(secret) == {"environment"}, secret  # from the environment, never a file


def test_compose_refuses_to_start_without_each_secret() -> None:
    for missing in SECRETS:
        env = {k: v for k, v in SECRETS.items() if k != missing}
        with pytest.raises(compose.InterpolationError, match=missing):
            compose.load(env)


def test_flower_runs_with_basic_auth_on_its_own_port(resolved: dict[str, Any]) -> None:
    flower = resolved["services"]["flower"]
    assert compose.command_of(flower) == ["hms", "service", "flower"]
    env = compose.environment_of(flower)
    assert env["HMS_FLOWER_PASSWORD"] == SECRETS["HMS_FLOWER_PASSWORD"]
    assert flower["ports"] == [f"127.0.0.1:{env['HMS_FLOWER_PORT']}:{env['HMS_FLOWER_PORT']}"]


def test_prometheus_scrapes_hms_and_flower_with_the_compose_secrets(
    resolved: dict[str, Any],
) -> None:
    config = compose.yaml.safe_load(compose.PROMETHEUS_FILE.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = resolved["services"]
    prometheus = services["prometheus"]
    mounted = {v.split(":")[1] for v in prometheus["volumes"] if v.startswith("./")}
    assert "/etc/prometheus/prometheus.yml" in mounted
    secrets = set(prometheus["secrets"])
    expected = {
        "hms": ("supervisor", "HMS_METRICS_PORT", "HMS_METRICS_USER", "HMS_METRICS_PASSWORD"),
        "flower": ("flower", "HMS_FLOWER_PORT", "HMS_FLOWER_USER", "HMS_FLOWER_PASSWORD"),
    }
    for job_name, (service, port_var, user_var, password_var) in expected.items():
        job = jobs[job_name]
        env = compose.environment_of(services[service])
        assert job["static_configs"][0]["targets"] == [f"{service}:{env[port_var]}"]
        assert job["basic_auth"]["username"] == env[user_var]
        secret_file = job["basic_auth"]["password_file"]
        secret = secret_file.removeprefix("/run/secrets/")
        assert secret in secrets, f"{job_name}: {secret_file} is not mounted"
        assert resolved["secrets"][secret] == {"environment": password_var}


def test_grafana_is_provisioned_from_the_repository(resolved: dict[str, Any]) -> None:
    grafana = resolved["services"]["grafana"]
    env = compose.environment_of(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    binds = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert binds["./config/grafana/provisioning"] == "/etc/grafana/provisioning"
    for source in binds:
        assert (compose.REPO / source).is_dir(), f"{source} is missing"
    # The dashboard provider reads the directory the dashboards are mounted on.
    providers = compose.REPO / "config/grafana/provisioning/dashboards"
    paths = {
        provider["options"]["path"]
        for file in sorted(providers.glob("*.y*ml"))
        for provider in compose.yaml.safe_load(file.read_text())["providers"]
    }
    assert paths == {binds["./config/grafana/dashboards"]}, paths
    assert list((compose.REPO / "config/grafana/dashboards").glob("*.json"))


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((compose.REPO / ".dockerignore").read_text().split())
    assert {".venv", "var", ".git", ".env", "*.db", "**/__pycache__", ".pytest_cache"} <= ignored


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A-$$A", "a-$A"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}|${EMPTY-d}", "d|"),
        ("${A:?need A}", "a"),
        ("${A:+set}${UNSET:+set}", "set"),
        ("${UNSET:-${A}}", "a"),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert compose.interpolate(text, {"A": "a", "EMPTY": ""}) == expected


def test_a_missing_required_variable_names_itself() -> None:
    with pytest.raises(compose.InterpolationError, match="B is missing: set B"):
        compose.interpolate("x ${B:?set B}", {"B": ""}, "here")
    assert compose.interpolate("${B?set B}", {"B": ""}) == ""
