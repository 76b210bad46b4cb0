"""`hms demo` and `hms up` on the embedded default: no HMS_* settings, no outside services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hms_celery.verification.catalogue import load_catalogue
from tests.support import wait_until

HMS = [sys.executable, "-m", "hms_celery.cli.main"]


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMS_")}
    env["HMS_DATA_DIR"] = str(data_dir)
    return env


@pytest.mark.slow
def test_demo_checks_the_catalogue_on_the_embedded_stack(tmp_path: Path) -> None:
    done = subprocess.run(
        [*HMS, "demo", "--json"],
        env=_embedded_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == len(load_catalogue())
    assert all(r["agrees"] for r in rows)
    assert "redis://127.0.0.1:" in done.stderr  # the embedded broker, on a private port
    assert (tmp_path / "hms.db").exists()
    assert not (tmp_path / "stack.json").exists()  # cleaned up on exit


@pytest.mark.slow
def test_up_serves_other_commands_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path)
    log = (tmp_path / "up.out").open("w")
    up = subprocess.Popen(
        [*HMS, "up"], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    try:

        def is_up() -> bool:
            assert up.poll() is None, (tmp_path / "up.out").read_text()
            return "HMS is up" in (tmp_path / "up.out").read_text()

        wait_until(is_up, 120, "hms up to come up", interval=0.2)
        stack = json.loads((tmp_path / "stack.json").read_text())
        assert stack["broker_url"].startswith("redis://127.0.0.1:")
        proved = subprocess.run(
            [*HMS, "prove", "∀ a b : ℝ, a ≤ b → a + 1 ≤ b + 1", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proved.returncode == 0, proved.stderr
        assert json.loads(proved.stdout)["verdict"] == "PROVED"
        # cvc5 on a fresh `hms up`, through the installed console script
        console = Path(sys.executable).with_name("hms")
        square = "∀ a b : ℝ, 0 ≤ a → a ≤ b → a * a ≤ b * b"
        by_cvc5 = subprocess.run(
            [str(console), "prove", square, "--backend", "cvc5"],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert by_cvc5.returncode == 0, by_cvc5.stdout + by_cvc5.stderr
        assert by_cvc5.stdout.startswith("PROVED"), by_cvc5.stdout
        assert "confirmed by z3" in by_cvc5.stdout, by_cvc5.stdout

        def hms(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*HMS, *args], env=env, capture_output=True, text=True, timeout=120
            )

        agents = json.loads(hms("agents", "--json").stdout)
        assert {tuple(sorted(a["skills"])) for a in agents} == {
            ("prove.cvc5", "prove.z3"),
            ("ga", "supervisor"),
        }
        assert all(a["state"] in ("READY", "BUSY") for a in agents)
        spawned = hms("agents", "spawn", "--skill", "prove.z3", "-c", "1")
        assert spawned.returncode == 0, spawned.stderr
        new_id = spawned.stdout.split()[0]
        assert "READY" in spawned.stdout
        stopped = hms("agents", "stop", new_id)
        assert stopped.returncode == 0, stopped.stderr

        def state_of_new() -> str:
            every = json.loads(hms("agents", "--all", "--json").stdout)
            return str(next(a["state"] for a in every if a["id"] == new_id))

        wait_until(lambda: state_of_new() == "TERMINATED", 60, f"{new_id} TERMINATED", 0.5)
        health = json.loads(hms("health", "--json").stdout)
        assert {a["id"] for a in health["agents"]} >= {a["id"] for a in agents}
        unknown = hms("agents", "spawn", "--skill", "no-such-skill")
        assert unknown.returncode == 2 and "no-such-skill" in unknown.stderr
        # The embedded pool runs GA generations too (the supervisor agent takes queue ga).
        evolved = hms(
            "ga", "run", "--family", "drp-baseline", "--population", "4", "--generations", "2",
            "--rlimit", "100000", "--timeout", "2",
        )  # fmt: skip
        assert evolved.returncode == 0, evolved.stderr
        assert "generation 1 scored (2/2)" in evolved.stdout, evolved.stdout
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
        log.close()
    output = (tmp_path / "up.out").read_text()
    assert code == 0, output
    assert "stopped." in output
    assert not (tmp_path / "stack.json").exists()
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True
    ).stdout.split()
    assert leftover == [], f"children left running: {leftover}"
