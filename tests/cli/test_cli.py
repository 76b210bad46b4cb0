"""The `hms` command line end to end, as a user runs it (subprocesses, real services)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from hms_celery.verification.catalogue import load_catalogue

pytestmark = pytest.mark.services
HMS = [sys.executable, "-m", "hms_celery.cli.main"]


def hms(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HMS, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_prove_prints_the_verdict(worker, stack_env) -> None:
    done = hms("prove", "∀ x : ℝ, x * x ≥ 0", "--json", env=stack_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "PROVED"


def test_prove_refutes_with_a_counterexample(worker, stack_env) -> None:
    done = hms(
        "prove", "x * x > x", "--assume", "x > 0", "--var", "x:ℝ", "--expect", "REFUTED",
        env=stack_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "REFUTED" in done.stdout and "x =" in done.stdout
    wrong = hms("prove", "∀ x : ℝ, x * x ≥ 0", "--expect", "REFUTED", env=stack_env)
    assert wrong.returncode == 1


def test_malformed_statement_gives_line_column_and_exit_2(stack_env) -> None:
    done = hms("prove", "∀ x : ℝ,\n  x + * 1 > 0", env=stack_env)
    assert done.returncode == 2
    assert "2:" in done.stderr, done.stderr
    unknown = hms("prove", "∀ x : ℝ, frobnicate x > 0", env=stack_env)
    assert unknown.returncode == 2
    assert "frobnicate" in unknown.stderr


def test_unreachable_broker_gives_exit_3_and_the_url(stack_env) -> None:
    env = {**stack_env, "HMS_BROKER_URL": "redis://127.0.0.1:1/0"}
    done = hms("prove", "∀ x : ℝ, x * x ≥ 0", env=env, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "redis://127.0.0.1:1/0" in done.stderr


def test_unreachable_database_gives_exit_3_and_the_url(stack_env) -> None:
    env = {**stack_env, "HMS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    done = hms("prove", "∀ x : ℝ, x * x ≥ 0", env=env, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "127.0.0.1:1" in done.stderr


def test_wrong_setting_names_the_variable(stack_env) -> None:
    done = hms("theorems", env={**stack_env, "HMS_PROVER_TIMEOUT": "soon"})
    assert done.returncode == 2
    assert "HMS_PROVER_TIMEOUT" in done.stderr


def test_check_reports_disagreement_with_exit_1(worker, stack_env, tmp_path: Path) -> None:
    claims = [
        {
            "theorem_id": "tiny-true",
            "natural_language": "squares are non-negative",
            "formal_expression": "x * x ≥ 0",
            "assumptions": [],
            "variables": {"x": "ℝ"},
            "expected": "PROVED",
        },
        {
            "theorem_id": "tiny-wrongly-expected",
            "natural_language": "a false claim listed as true",
            "formal_expression": "x ≤ 1",
            "assumptions": ["h_pos: x > 0"],
            "variables": {"x": "ℝ"},
            "expected": "PROVED",
        },
    ]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    done = hms("check", str(path), "--json", env=stack_env)
    assert done.returncode == 1, done.stderr
    rows = {row["theorem_id"]: row for row in json.loads(done.stdout)}
    assert rows["tiny-true"]["agrees"] is True
    assert rows["tiny-wrongly-expected"]["verdict"] == "REFUTED"
    assert Fraction(rows["tiny-wrongly-expected"]["counterexample"]["x"]) > 1


def test_check_of_the_moneyball_catalogue_agrees(worker, stack_env) -> None:
    done = hms("check", "--json", env=stack_env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)
    claims = load_catalogue()
    tags = {c.theorem_id: c.tags for c in claims}
    assert {r["theorem_id"] for r in rows} == {c.theorem_id for c in claims}
    assert all(r["verdict"] == r["expected"] for r in rows)
    refuted = [r for r in rows if r["verdict"] == "REFUTED"]
    assert {"war-bounds-original", "drp-upper-original"} <= {r["theorem_id"] for r in refuted}
    assert all(r["counterexample"] for r in refuted)
    # every PROVED claim was confirmed by cvc5; nothing else was (BOUNDED is no proof)
    proved = [r for r in rows if r["verdict"] == "PROVED"]
    assert proved and all(r["confirmed_by"]["status"] == "confirmed" for r in proved)
    assert all(r["confirmed_by"]["solver"] == "cvc5" for r in proved)
    assert all(r["confirmed_by"] is None for r in rows if r["verdict"] != "PROVED")
    # the claims over a symbolic size are proved for every size, and say how (issue 9)
    general = [
        r for r in proved if {"symbolic-n", "symbolic-exponent"} & set(tags[r["theorem_id"]])
    ]
    assert len(general) == 7
    assert {r["proof"]["method"] for r in general} <= {"sum-abstraction", "induction"}
    table = hms("check", env=stack_env, timeout=900)
    assert table.returncode == 0 and table.stdout.count("proof: ") >= 7, table.stdout


def test_check_and_prove_show_the_confirmation(worker, stack_env, tmp_path: Path) -> None:
    claims = [
        {
            "theorem_id": "tiny-true",
            "natural_language": "squares are non-negative",
            "formal_expression": "x * x ≥ 0",
            "assumptions": [],
            "variables": {"x": "ℝ"},
            "expected": "PROVED",
        },
        {
            "theorem_id": "tiny-false",
            "natural_language": "a false claim",
            "formal_expression": "x ≤ 1",
            "assumptions": ["h_pos: x > 0"],
            "variables": {"x": "ℝ"},
            "expected": "REFUTED",
        },
    ]
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(claims))
    done = hms("check", str(path), env={**stack_env, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {ln.split("│")[1].strip(): ln for ln in done.stdout.splitlines() if "tiny-" in ln}
    assert "PROVED ✓cvc5" in lines["tiny-true"]
    assert "REFUTED" in lines["tiny-false"] and "✓" not in lines["tiny-false"]
    proved = hms("prove", "∀ x : ℝ, x * x ≥ 0", env=stack_env)
    assert proved.returncode == 0, proved.stderr
    assert "confirmed by cvc5 1.4.2 in " in proved.stdout


def test_status_and_theorems(worker, stack_env) -> None:
    proved = hms("prove", "∀ x : ℝ, x * x ≥ 0", "--json", env=stack_env)
    task_id = json.loads(proved.stdout)["task_id"]
    shown = hms("status", task_id, "--json", env=stack_env)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["verdict"] == "PROVED"
    missing = hms("status", "no-such-task", env=stack_env)
    assert missing.returncode == 2
    listed = hms("theorems", "--json", env=stack_env)
    assert "war-bounds-original" in {c["theorem_id"] for c in json.loads(listed.stdout)}
