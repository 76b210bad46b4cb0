"""`hms ga list|status|plot` and `hms strategies promote` on runs recorded in the real store
(PostgreSQL) through the store's own functions, so each outcome — a winner judged not better,
generations scored — is set exactly; through the installed console script."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from hms_celery.genetic import engine, promotion
from hms_celery.genetic.fitness import Fitness
from hms_celery.store import ga as store
from hms_celery.verification.strategy import NAMED_STRATEGIES
from tests.cli.test_usage import hms

pytestmark = pytest.mark.services

RLIMIT = 100_000
SMT, NLSAT = NAMED_STRATEGIES["smt"].to_json(), NAMED_STRATEGIES["nlsat"].to_json()


def _fitness(solved: int, par2: float, n: int = 4) -> Fitness:
    return Fitness(solved=solved, par2=par2, par2_s=par2 / RLIMIT, time_s=0.5, size=2, n=n,
                   rlimit=RLIMIT)  # fmt: skip


def finished_run(*, best: Fitness, current: Fitness, generations: int = 2) -> dict[str, str]:
    """A DONE run of a new family whose winner scored ``best`` against the family's
    ``current`` strategy, settled as HMS settles it (no automatic promotion)."""
    run_id, family = str(uuid.uuid4()), f"fam{uuid.uuid4().hex[:6]}"
    store.create_run(
        {
            "id": run_id, "family": family, "trigger": "cli",
            "training": [{"id": f"{family}-{i}", "request": {}, "expected": None}
                         for i in range(best.n)],
            "population_size": 2, "generations": generations, "seed": 1, "rlimit": RLIMIT,
            "timeout": 2.0, "config": {"auto_promote": False},
        },
        actor="test",
    )  # fmt: skip
    population = [SMT, NLSAT]
    store.ensure_generation(run_id, 0, population)
    worse = _fitness(max(best.solved - 1, 0), 8 * RLIMIT)
    for number in range(generations):
        last = number + 1 == generations
        scores = [best if last else worse, worse]
        store.record_scores(
            run_id,
            number,
            figures=engine.figures(population, scores),
            next_population=None if last else population,
            run_updates={
                "best_genome": SMT,
                "best_fitness": scores[0].to_json(),
                "baselines": {
                    "z3-default": {"fitness": _fitness(0, 8 * RLIMIT).to_json()},
                    "current": {"fitness": current.to_json()},
                },
            },
            actor="test",
        )
    settled = promotion.settle(store.get_run(run_id), actor="test")
    return {"id": run_id, "family": family, "promotion": settled}


def test_promote_refuses_a_winner_judged_not_better_unless_forced(stack_env) -> None:
    run = finished_run(best=_fitness(2, 500_000), current=_fitness(3, 300_000))
    assert run["promotion"] == "not-better"
    refused = hms("strategies", "promote", run["id"], env=stack_env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    why = refused.stderr
    assert "judged not better" in why and run["id"] in why and "--force" in why, why
    assert "winner: 2/4 solved, PAR-2 500,000" in why and "current: 3/4 solved" in why, why
    assert store.family_strategy(run["family"]) is None  # nothing was promoted
    forced = hms("strategies", "promote", run["id"], "--force", env=stack_env)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"family {run['family']!r} now uses ga-{run['family']}-" in forced.stdout
    assert store.family_strategy(run["family"])["name"].startswith(f"ga-{run['family']}-")


def test_promote_accepts_a_better_winner(stack_env) -> None:
    run = finished_run(best=_fitness(4, 200_000), current=_fitness(4, 300_000))
    assert run["promotion"] == "pending"  # better on PAR-2, equal on solved: waits for a person
    done = hms("strategies", "promote", run["id"], env=stack_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert store.get_run(run["id"])["promotion"] == "promoted"


def test_list_counts_scored_generations_and_outputs_label_par2(stack_env) -> None:
    run = finished_run(best=_fitness(3, 400_000), current=_fitness(1, 700_000), generations=3)
    listed = hms("ga", "list", "--family", run["family"], env=stack_env)
    assert listed.returncode == 0, listed.stderr
    row = next(ln for ln in listed.stdout.splitlines() if run["id"] in ln)
    assert "│ 3/3 " in row, listed.stdout  # every generation of a DONE run is scored
    assert "PAR-2 (s) 4.00" in row and "PAR-2 400,000 rlimit" in row, row
    status = hms("ga", "status", run["id"], env=stack_env)
    assert status.returncode == 0, status.stderr
    assert "best PAR-2 (rlimit)" in status.stdout and "best PAR-2 (s)" in status.stdout
    assert re.search(r"baseline current: 1/4 solved, PAR-2 700,000 rlimit, PAR-2 \(s\) 7\.00",
                     status.stdout), status.stdout  # fmt: skip
    assert "time" not in status.stdout.lower()  # PAR-2 seconds are no wall time


def test_list_counts_a_running_run_without_its_current_generation(stack_env) -> None:
    run_id, family = str(uuid.uuid4()), f"fam{uuid.uuid4().hex[:6]}"
    store.create_run(
        {"id": run_id, "family": family, "trigger": "cli", "training": [], "population_size": 2,
         "generations": 5, "seed": 1, "rlimit": RLIMIT, "timeout": 2.0, "config": {}},
        actor="test",
    )  # fmt: skip
    try:
        store.ensure_generation(run_id, 0, [SMT, NLSAT])
        scores = [_fitness(1, 500_000), _fitness(0, 800_000)]
        store.record_scores(run_id, 0, figures=engine.figures([SMT, NLSAT], scores),
                            next_population=[SMT, NLSAT], run_updates={}, actor="test")  # fmt: skip
        listed = json.loads(hms("ga", "list", "--family", family, "--json", env=stack_env).stdout)
        assert listed[0]["current_generation"] == 1
        table = hms("ga", "list", "--family", family, env=stack_env).stdout
        assert "│ 1/5 " in table, table  # generation 1 is being evaluated, not scored
    finally:  # no supervisor of a later test may try to carry this run on
        store.cancel_run(run_id, actor="test")


def test_plot_shows_solved_and_par2_on_a_log_axis(stack_env, tmp_path: Path) -> None:
    import matplotlib

    from hms_celery import client
    from hms_celery.genetic.plot import plot_run

    run = finished_run(best=_fitness(3, 150_000), current=_fitness(3, 600_000))
    image = tmp_path / "fitness.png"
    done = hms("ga", "plot", run["id"], "-o", str(image), env=stack_env)
    assert done.returncode == 0, done.stderr
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG
    svg = plot_run(client.query_ga_run(run["id"]), tmp_path / "fitness.svg").read_text()
    for label in ("instances solved (of 4)", "PAR-2 (Z3 rlimit units, log)", "previous (3/4)",
                  "previous (600,000)", "Z3 default (0/4)"):  # fmt: skip
        assert label in svg, label
    assert "10^{5}" in svg or "10^{6}" in svg  # log-axis ticks
