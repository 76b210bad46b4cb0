"""The metrics endpoint itself: basic auth, exposure refusal, components down, the console
script.  Real HTTP over loopback, the real Redis and PostgreSQL; no worker needed."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.metrics_core import Metric

from hms_celery.errors import SettingsError
from hms_celery.metrics.collector import HMSCollector, make_registry
from hms_celery.metrics.server import Endpoint, MetricsServer
from hms_celery.settings import REPO_ROOT, load_settings
from tests.metrics.support import families, fetch, parse, value
from tests.support import wait_until

HMS_SCRIPT = Path(sys.executable).with_name("hms")  # the installed console script


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _probe_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("hms_probe", "a fixed figure", registry=registry).set(42)
    return registry


# ----------------------------------------------------------------------------- basic auth
def test_basic_auth_rejects_missing_and_wrong_credentials() -> None:
    server = MetricsServer(
        Endpoint("127.0.0.1", 0, user="ops", password="s3cret:with:colons"), _probe_registry()
    ).start()
    try:
        status, body = fetch(server.url)
        assert status == 401 and "hms_probe" not in body
        assert fetch(server.url, ("ops", "wrong"))[0] == 401
        assert fetch(server.url, ("someone", "s3cret:with:colons"))[0] == 401
        assert fetch(server.url, ("ops", "s3cret:with"))[0] == 401  # a prefix is not enough
        status, body = fetch(server.url, ("ops", "s3cret:with:colons"))
        assert status == 200
        assert value(parse(body), "hms_probe") == 42
        port = server.port
    finally:
        server.stop()
    with pytest.raises(OSError):  # stopped means the port is closed
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_401_carries_a_basic_challenge() -> None:
    import urllib.error
    import urllib.request

    server = MetricsServer(Endpoint("127.0.0.1", 0, password="pw"), _probe_registry()).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url, timeout=10)
        assert caught.value.code == 401
        assert caught.value.headers["WWW-Authenticate"].startswith('Basic realm="HMS metrics"')
    finally:
        server.stop()


def test_no_password_on_loopback_serves_without_auth() -> None:
    server = MetricsServer(Endpoint("127.0.0.1", 0), _probe_registry()).start()
    try:
        status, body = fetch(server.url)
        assert status == 200 and value(parse(body), "hms_probe") == 42
    finally:
        server.stop()


# ----------------------------------------------------------------------------- exposure
def test_non_loopback_without_password_is_refused_by_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HMS_METRICS_ADDRESS", "0.0.0.0")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "HMS_METRICS_ADDRESS='0.0.0.0'" in message and "HMS_METRICS_PASSWORD" in message
    monkeypatch.setenv("HMS_METRICS_PASSWORD", "")  # empty is no password
    with pytest.raises(SettingsError):
        load_settings()
    monkeypatch.setenv("HMS_METRICS_PASSWORD", "long-random-secret")
    settings = load_settings()
    assert settings.metrics_address == "0.0.0.0"
    assert "long-random-secret" not in repr(settings)  # a SecretStr, never printed
    for loopback in ("127.0.0.1", "::1", "localhost", "127.8.9.10"):
        monkeypatch.delenv("HMS_METRICS_PASSWORD", raising=False)
        monkeypatch.setenv("HMS_METRICS_ADDRESS", loopback)
        assert load_settings().metrics_password is None


def test_non_loopback_without_password_is_refused_by_the_server() -> None:
    for address in ("0.0.0.0", "::", "192.0.2.7", "metrics.example.org"):
        with pytest.raises(SettingsError, match="HMS_METRICS_PASSWORD"):
            MetricsServer(Endpoint(address, 0), _probe_registry()).start()
    Endpoint("0.0.0.0", 0, password="pw").check()  # with a password it may bind anywhere


def test_console_script_refuses_an_unauthenticated_public_bind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMS_")}
    env["HMS_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [str(HMS_SCRIPT), "metrics", "serve", "--address", "0.0.0.0", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "HMS_METRICS_PASSWORD" in done.stderr and "Traceback" not in done.stderr
    env["HMS_METRICS_ADDRESS"] = "0.0.0.0"  # the same through the settings: refused at start-up
    done = subprocess.run(
        [str(HMS_SCRIPT), "metrics", "show"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "HMS_METRICS_ADDRESS='0.0.0.0'" in done.stderr


# ----------------------------------------------------------------------------- components down
@pytest.mark.services
def test_store_down_is_hms_up_zero_and_its_families_are_skipped(redis_url: str) -> None:
    dead_store = f"postgresql+psycopg2://postgres@127.0.0.1:{_closed_port()}/nothing"
    collector = HMSCollector(database_url=dead_store, broker_url=redis_url)
    server = MetricsServer(Endpoint("127.0.0.1", 0), make_registry(collector)).start()
    try:
        status, body = fetch(server.url)
        assert status == 200, body
        samples = parse(body)
        assert value(samples, "hms_up", component="store") == 0
        assert value(samples, "hms_up", component="broker") == 1
        names = families(body)
        assert not names & {"hms_tasks", "hms_verdicts", "hms_agents", "hms_ga_runs"}
        assert {"hms_queue_depth", "hms_sweep_seconds"} <= names
    finally:
        server.stop()


@pytest.mark.services
def test_broker_down_is_hms_up_zero_and_its_families_are_skipped(
    stack_env: dict[str, str],
) -> None:
    dead_broker = f"redis://127.0.0.1:{_closed_port()}/0"
    collector = HMSCollector(database_url=stack_env["HMS_DATABASE_URL"], broker_url=dead_broker)
    server = MetricsServer(Endpoint("127.0.0.1", 0), make_registry(collector)).start()
    try:
        status, body = fetch(server.url)
        assert status == 200, body
        samples = parse(body)
        assert value(samples, "hms_up", component="store") == 1
        assert value(samples, "hms_up", component="broker") == 0
        names = families(body)
        assert "hms_queue_depth" not in names and "hms_sweep_seconds" not in names
        assert {"hms_tasks", "hms_agents", "hms_recovery_actions", "hms_breakers"} <= names
    finally:
        server.stop()


# ----------------------------------------------------------------------------- hms metrics serve
@pytest.mark.services
def test_hms_metrics_serve_through_the_console_script(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMS_")}
    env.update(stack_env)
    env["HMS_METRICS_PASSWORD"] = "cli-secret"
    out_path = tmp_path / "serve.out"
    with out_path.open("w") as out:
        serve = subprocess.Popen(
            [str(HMS_SCRIPT), "metrics", "serve", "--port", "0"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:

            def printed_url() -> re.Match[str] | None:
                assert serve.poll() is None, out_path.read_text()
                return re.search(r"http://127\.0\.0\.1:\d+/metrics", out_path.read_text())

            url = wait_until(printed_url, 120, "the printed metrics URL", interval=0.2).group(0)
            assert "(basic auth)" in out_path.read_text()
            assert fetch(url)[0] == 401
            status, body = fetch(url, ("hms", "cli-secret"))
            assert status == 200, body
            samples = parse(body)
            assert value(samples, "hms_up", component="store") == 1
            assert value(samples, "hms_up", component="broker") == 1
            assert ("hms_queue_depth", frozenset({("queue", "prove.z3")})) in samples
        finally:
            serve.send_signal(signal.SIGTERM)
            code = serve.wait(30)
    assert code == 0, out_path.read_text()
    assert "stopped." in out_path.read_text()


# ----------------------------------------------------------------------------- dashboard, docs
def _sample_names(family: Metric) -> set[str]:
    """The sample names a family can export."""
    if family.type == "counter":
        return {f"{family.name}_total"}
    if family.type == "histogram":
        return {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return {family.name}


@pytest.mark.services
def test_dashboard_and_docs_cover_every_exported_family(stack_env: dict[str, str]) -> None:
    collector = HMSCollector(stack_env["HMS_DATABASE_URL"], stack_env["HMS_BROKER_URL"])
    exported = list(collector.collect())
    assert value(parse(generate_latest(make_registry(collector)).decode()), "hms_up",
                 component="store") == 1  # fmt: skip
    names = {f.name for f in exported}
    assert "hms_sweep_last_timestamp_seconds" in names or "hms_sweep_seconds" in names
    grafana = REPO_ROOT / "config" / "grafana"
    dashboard = json.loads((grafana / "dashboards" / "hms.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    used = set(re.findall(r"\bhms_[a-z_]+", exprs))
    possible = set().union(*(_sample_names(f) for f in exported)) | {
        "hms_sweep_last_timestamp_seconds"  # exported once a sweep has run
    }
    assert used <= possible, used - possible  # no panel queries a name that does not exist
    docs = (REPO_ROOT / "docs" / "metrics.md").read_text()
    for family in exported:
        assert used & _sample_names(family), f"no panel shows {family.name}"
        documented = f"{family.name}_total" if family.type == "counter" else family.name
        assert f"| `{documented}` |" in docs, documented
    datasource = (grafana / "provisioning" / "datasources" / "prometheus.yml").read_text()
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {"prometheus"} and "uid: prometheus" in datasource
    assert "url: http://prometheus:9090" in datasource
    provider = (grafana / "provisioning" / "dashboards" / "hms.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
