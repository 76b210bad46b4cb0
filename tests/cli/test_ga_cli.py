"""`hms ga` and `hms strategies` end to end (subprocesses, real workers and services)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hms_celery.genetic.genome import genome_key
from hms_celery.verification.strategy import Strategy
from tests.cli.test_cli import hms

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_ga_run_status_plot_and_promote(ga_worker, stack_env, tmp_path: Path) -> None:
    done = hms(
        "ga", "run", "--family", "war-abs", "--population", "4", "--generations", "2",
        "--seed", "3", "--rlimit", "100000", "--timeout", "2", "--no-auto-promote",
        env=stack_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "generation 1 scored (2/2)" in done.stdout, done.stdout
    # Z3's plain solver needs ~318k rlimit units at n = 3 and more above: none fits in 100k.
    assert "baseline z3-default: 0/4 solved" in done.stdout, done.stdout
    assert "PAR-2 (s) " in done.stdout and " rlimit, " in done.stdout  # PAR-2, not wall time
    run_id = done.stdout.split("GA run ", 1)[1].split()[0]

    status = hms("ga", "status", run_id, "--json", env=stack_env)
    assert status.returncode == 0, status.stderr
    run = json.loads(status.stdout)
    assert run["status"] == "DONE" and run["family"] == "war-abs"
    assert [g["number"] for g in run["generation_records"]] == [0, 1]
    assert run["best_fitness"]["solved"] > run["baselines"]["z3-default"]["fitness"]["solved"]
    table = hms("ga", "status", run_id, env=stack_env)
    best = Strategy.from_json(run["best_genome"]).describe()
    assert best in table.stdout, table.stdout

    image = tmp_path / "fitness.png"
    plotted = hms("ga", "plot", run_id, "-o", str(image), env=stack_env)
    assert plotted.returncode == 0, plotted.stderr
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    listed = hms("ga", "list", "--json", env=stack_env)
    assert run_id in {r["id"] for r in json.loads(listed.stdout)}
    row = next(ln for ln in hms("ga", "list", env=stack_env).stdout.splitlines() if run_id in ln)
    assert "│ 2/2 " in row, row  # both generations scored

    promoted = hms("strategies", "promote", run_id, env=stack_env)
    if run["promotion"] == "not-better":  # as with this seed: the default strategy's PAR-2 wins
        assert promoted.returncode == 2 and "judged not better" in promoted.stderr
        promoted = hms("strategies", "promote", run_id, "--force", env=stack_env)
    assert promoted.returncode == 0, promoted.stderr
    assert f"family 'war-abs' now uses ga-war-abs-{run_id[:8]}" in promoted.stdout
    shown = json.loads(hms("strategies", "show", "war-abs", env=stack_env).stdout)
    assert shown["run_id"] == run_id
    assert genome_key(shown["strategy"]) == genome_key(run["best_genome"])
    strategies = json.loads(hms("strategies", "--json", env=stack_env).stdout)
    assert "z3-default" in strategies["named"]
    assert "war-abs" in {row["family"] for row in strategies["families"]}


def test_ga_bad_input_exits_2(stack_env) -> None:
    unknown = hms("ga", "run", "--family", "no-such", env=stack_env)
    assert unknown.returncode == 2 and "war-abs" in unknown.stderr, unknown.stderr
    missing = hms("ga", "status", "no-such-run", env=stack_env)
    assert missing.returncode == 2 and "no-such-run" in missing.stderr
    shown = hms("strategies", "show", "no-such-strategy", env=stack_env)
    assert shown.returncode == 2 and "no-such-strategy" in shown.stderr
