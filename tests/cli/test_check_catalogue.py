"""`hms check` on a catalogue with bad entries, end to end (subprocesses, real worker): one row
per entry, the bad ones with where and why, the others checked; exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.services
HMS = [sys.executable, "-m", "hms_celery.cli.main"]
LONG_ID = "an-unreadable-claim-with-a-long-identifier-that-an-80-column-table-would-cut"


def hms(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `hms` as a user does from a script: stdout is a pipe, no COLUMNS set."""
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [*HMS, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def entries(syntax_expected: str) -> list[dict[str, Any]]:
    return [
        {
            "theorem_id": LONG_ID,
            "formal_expression": "∀ x : ℝ,\n  (x + 1 ≤ x",
            "expected": syntax_expected,
        },
        {
            "theorem_id": "complex-square",
            "formal_expression": "z * z = z * z",
            "variables": {"z": "ℂ"},
            "expected": "UNSUPPORTED",
        },
        {
            # listed before the size its type mentions; false for n = 2, w = (1, 1)
            "theorem_id": "weights-out-of-order",
            "formal_expression": "∑ i, w i ≤ 1",
            "assumptions": ["h_w: ∀ i, 0 ≤ w i ∧ w i ≤ 1"],
            "variables": {"w": "Fin n → ℝ", "n": "ℕ"},
            "expected": "REFUTED",
        },
        {
            "theorem_id": "square-nonneg",
            "formal_expression": "x * x ≥ 0",
            "variables": {"x": "ℝ"},
            "expected": "PROVED",
        },
        {
            "theorem_id": "positive-at-most-one",
            "formal_expression": "x ≤ 1",
            "assumptions": ["h_pos: x > 0"],
            "variables": {"x": "ℝ"},
            "expected": "REFUTED",
        },
    ]


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return path


def test_bad_entries_are_rows_and_the_rest_is_checked(
    worker, stack_env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "mixed.json", {"theorems": entries("ERROR")})
    done = hms("check", str(path), "--json", env=stack_env)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)
    assert [r["theorem_id"] for r in rows] == [e["theorem_id"] for e in entries("ERROR")]
    syntax, cplx, ordered, true, false = rows

    assert syntax["verdict"] == "ERROR" and syntax["agrees"] is True
    assert (syntax["file"], syntax["index"]) == (str(path), 1)
    assert (syntax["field"], syntax["line"], syntax["column"]) == ("formal_expression", 2, 13)
    assert syntax["reason"].startswith("formal_expression 2:13: unexpected end of input")
    assert syntax["task_id"] is None  # never submitted

    assert cplx["verdict"] == "UNSUPPORTED" and cplx["agrees"] is True
    assert (cplx["field"], cplx["line"], cplx["column"]) == ("variables.z", 1, 1)
    assert "'ℂ'" in cplx["reason"] and cplx["task_id"] is None

    assert ordered["verdict"] == "REFUTED" and ordered["task_id"], ordered
    cex = ordered["counterexample"]
    weights = [Fraction(v) for v in cex["w"]]
    assert int(cex["n"]) == len(weights) and sum(weights) > 1
    assert all(0 <= v <= 1 for v in weights)

    assert true["verdict"] == "PROVED" and true["agrees"] is True
    assert false["verdict"] == "REFUTED" and Fraction(false["counterexample"]["x"]) > 1
    assert all(r["file"] == str(path) for r in rows)


def test_a_bad_entry_that_was_expected_to_hold_is_a_disagreement(
    worker, stack_env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "expects.json", entries("PROVED"))
    done = hms("check", str(path), env=stack_env)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # the table is printed whole to a pipe: full ids, full reasons, one row per entry
    row = next(ln for ln in lines if LONG_ID in ln)
    assert "ERROR" in row and "PROVED" in row
    assert "formal_expression 2:13: unexpected end of input; expected ')' or ':'" in row
    assert any(f"in {path}, entry #1" in ln for ln in lines)
    assert "│ ∀ x : ℝ, … " in row  # the statement column: its first line
    complex_row = next(ln for ln in lines if "complex-square" in ln)
    assert "UNSUPPORTED" in complex_row and "variables.z 1:1: unexpected identifier 'ℂ'" in (
        complex_row
    )
    for theorem_id, verdict in (("weights-out-of-order", "REFUTED"),
                                ("square-nonneg", "PROVED"),
                                ("positive-at-most-one", "REFUTED")):  # fmt: skip
        assert verdict in next(ln for ln in lines if theorem_id in ln), done.stdout
    assert "4/5 claims agree with their expected verdict" in done.stdout


def test_an_unreadable_file_exits_2_with_the_json_position(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"theorem_id": "a", "formal_expression": "True"},\n  oops\n]')
    done = hms("check", str(path), env=stack_env)
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())  # the error console wraps long lines
    assert f"{path}:3:3: not valid JSON: Expecting value" in message
    wrong_shape = write(tmp_path, "shape.json", {"items": []})
    done = hms("check", str(wrong_shape), env=stack_env)
    assert done.returncode == 2, done.stderr
    assert f"{wrong_shape}: expected a list of claims" in " ".join(done.stderr.split())


def test_theorems_lists_every_entry_with_the_bad_ones_explained(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "mixed.json", entries("ERROR"))
    listed = hms("theorems", str(path), "--json", env=stack_env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["theorem_id"] for r in rows] == [e["theorem_id"] for e in entries("ERROR")]
    assert rows[0]["verdict"] == "ERROR" and rows[0]["line"] == 2
    assert rows[1]["verdict"] == "UNSUPPORTED" and "'ℂ'" in rows[1]["reason"]
    table = hms("theorems", str(path), env=stack_env)
    assert table.returncode == 0 and "unexpected end of input" in table.stdout, table.stdout
