"""``hms ga`` (run, status, list, cancel, plot) and ``hms strategies`` (list, show, promote)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hms_celery import client
from hms_celery.cli.options import JsonOpt
from hms_celery.cli.output import err, fold, out, print_table
from hms_celery.errors import InputError

ga_cli = typer.Typer(help="Genetic strategy search: evolve Z3 strategies.", no_args_is_help=True)
strategies_cli = typer.Typer(
    help="Prover strategies: named, promoted per family, evolved.", invoke_without_command=True
)


@ga_cli.command("run")
def ga_run(
    family: Annotated[str, typer.Option("--family", "-f", help="Theorem family to train on.")],
    population: Annotated[int | None, typer.Option("--population", "-p")] = None,
    generations: Annotated[int | None, typer.Option("--generations", "-g")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s")] = 0,
    rlimit: Annotated[int | None, typer.Option(help="Z3 rlimit per evaluation.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall cap per evaluation (s).")] = None,
    auto_promote: Annotated[
        bool | None,
        typer.Option("--auto-promote/--no-auto-promote", help="Default: HMS_GA_AUTO_PROMOTE."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow until done.")] = True,
    wait_timeout: Annotated[float | None, typer.Option(help="Give up waiting after (s).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a GA run on the worker pool (queue ``ga``) and show its progress."""
    run_id = client.start_ga_run(
        family,
        population=population,
        generations=generations,
        seed=seed,
        rlimit=rlimit,
        timeout=timeout,
        auto_promote=auto_promote,
    )
    if not wait:
        out.print(json.dumps({"run_id": run_id}) if as_json else run_id, highlight=False)
        return
    if not as_json:
        out.print(f"GA run [bold]{run_id}[/bold] on family {family!r}", highlight=False)
    try:
        run = client.wait_for_ga_run(
            run_id, timeout=wait_timeout, on_progress=None if as_json else _print_progress
        )
    except TimeoutError as exc:  # the run goes on: say how to follow it
        err.print(Text(f"{exc}; follow it with `hms ga status {run_id} --watch`"))
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(data=_public(run))
        return
    _print_summary(run)
    if run["status"] != "DONE":
        raise typer.Exit(1)


@ga_cli.command("status")
def ga_status(
    run_id: str,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until done.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A run's progress: generations scored, fitness per generation, best genome."""
    if watch and not as_json:
        from rich.live import Live

        with Live(_run_table(client.query_ga_run(run_id)), console=out) as live:
            while True:
                run = client.query_ga_run(run_id)
                live.update(_run_table(run))
                if run["status"] != "RUNNING":
                    break
                time.sleep(0.5)
        _print_summary(run)
        return
    run = client.query_ga_run(run_id)
    if as_json:
        out.print_json(data=_public(run))
        return
    print_table(_run_table(run))
    _print_summary(run)


@ga_cli.command("list")
def ga_list(
    family: Annotated[str | None, typer.Option("--family", "-f")] = None, as_json: JsonOpt = False
) -> None:
    """GA runs, newest first."""
    runs = client.list_ga_runs(family)
    if as_json:
        out.print_json(data=runs)
        return
    table = Table(
        "run", "family", "status", "trigger", "generations scored", "seed", "best", "promotion"
    )
    for run in runs:
        best = run["best_fitness"] or {}
        table.add_row(
            run["id"],
            Text(run["family"]),
            run["status"],
            run["trigger"],
            f"{scored_generations(run)}/{run['generations']}",
            str(run["seed"]),
            _fitness_text(best) if best else "-",
            run["promotion"],
        )
    print_table(table)


def scored_generations(run: Mapping[str, Any]) -> int:
    """How many generations of ``run`` (a run row) are scored.  ``current_generation`` is the
    generation being evaluated: all before it are scored, and it is itself scored only when
    the run ended DONE (the last scoring ends the run instead of starting another)."""
    return run["current_generation"] + (1 if run["status"] == "DONE" else 0)


@ga_cli.command("cancel")
def ga_cancel(run_id: str) -> None:
    """Stop a running GA run."""
    if client.cancel_ga_run(run_id):
        out.print(f"cancelled {run_id}")
    else:
        raise InputError(f"GA run {run_id} is not running")


@ga_cli.command("plot")
def ga_plot(
    run_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Image file.")] = Path(
        "fitness.png"
    ),
) -> None:
    """Plot per generation the instances solved and PAR-2 (log axis) against the baselines."""
    from hms_celery.genetic.plot import plot_run

    try:
        path = plot_run(client.query_ga_run(run_id), output)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out.print(f"wrote {path}", highlight=False)


# ----------------------------------------------------------------------------- strategies
@strategies_cli.callback()
def strategies_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Named strategies and the strategy promoted for each family."""
    if ctx.invoked_subcommand is not None:
        return
    from hms_celery.verification.strategy import Strategy

    data = client.list_strategies()
    if as_json:
        out.print_json(data=data)
        return
    table = Table("name / family", "kind", "strategy", "from run", "promoted")
    for name, strategy in data["named"].items():
        table.add_row(name, "named", Strategy.from_json(strategy).describe(), "", "")
    for row in data["families"]:
        table.add_row(
            row["family"],
            "family",
            Strategy.from_json(row["strategy"]).describe(),
            row["run_id"] or "",
            f"{row['promoted_at']} by {row['promoted_by']}",
        )
    print_table(table)


@strategies_cli.command("show")
def strategies_show(name: str) -> None:
    """One strategy (a name, a family or a GA run id) as JSON."""
    out.print_json(data=client.show_strategy(name))


@strategies_cli.command("promote")
def strategies_promote(
    run_id: str,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Promote even a winner that was judged not better than the current."
        ),
    ] = False,
) -> None:
    """Approve a finished run's winner as its family's strategy (refused, with the reason,
    when the winner was judged not better than the family's current strategy)."""
    from hms_celery.verification.strategy import Strategy

    done = client.promote_strategy(run_id, force=force)
    out.print(
        f"family {done['family']!r} now uses {done['strategy']['name']}: "
        f"{Strategy.from_json(done['strategy']).describe()}",
        highlight=False,
    )


# ----------------------------------------------------------------------------- output
def _public(run: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "training"}


def _fitness_text(f: dict[str, Any]) -> str:
    """Solved count, PAR-2 in Z3 rlimit units (what is ranked on) and PAR-2 in seconds (an
    unsolved instance costs 2 × the wall cap: a PAR-2 figure, not the time it took)."""
    return (
        f"{f['solved']}/{f['n']} solved, PAR-2 {f['par2']:,.0f} rlimit, PAR-2 (s) {f['par2_s']:.2f}"
    )


def _print_progress(run: Mapping[str, Any]) -> None:
    done = run["progress"]["scored"]
    gens = [g for g in run["generation_records"] if g["best"] is not None]
    if not gens:
        out.print(f"  generation 0 evaluating ({run['training'] and len(run['training'])} "
                  "training instances)…", highlight=False)  # fmt: skip
        return
    g = gens[-1]
    out.print(
        f"  generation {g['number']} scored ({done}/{run['generations']}): "
        f"best {g['best']:.3f}  mean {g['mean']:.3f}  diversity {g['diversity']:.2f}  "
        f"({_fitness_text(g['best_fitness'])})",
        highlight=False,
    )


def _run_table(run: Mapping[str, Any]) -> Table:
    from hms_celery.verification.strategy import Strategy

    table = Table(
        "gen", "status", "best solved", "best PAR-2 (rlimit)", "best PAR-2 (s)",
        "fitness best", "mean", "worst", "diversity", "new evals", "best genome",
        title=f"GA run {run['id']} · {run['family']} · {run['status']}",
    )  # fmt: skip
    for g in run["generation_records"]:
        genome = g.get("best_genome")
        best = g.get("best_fitness")
        table.add_row(
            str(g["number"]),
            g["status"],
            f"{best['solved']}/{best['n']}" if best else "-",
            f"{best['par2']:,.0f}" if best else "-",
            f"{best['par2_s']:.2f}" if best else "-",
            *(f"{g[k]:.3f}" if g[k] is not None else "-" for k in ("best", "mean", "worst")),
            f"{g['diversity']:.2f}" if g["diversity"] is not None else "-",
            str(g["evaluations"]),
            Strategy.from_json(genome).describe() if genome else "-",
        )
    return fold(table)


def _print_summary(run: Mapping[str, Any]) -> None:
    from hms_celery.verification.strategy import Strategy

    out.print(f"status: {run['status']}" + (f" ({run['error']})" if run["error"] else ""))
    for name, base in (run.get("baselines") or {}).items():
        if base.get("fitness"):
            out.print(f"  baseline {name}: {_fitness_text(base['fitness'])}", highlight=False)
    if run["best_genome"]:
        out.print(
            f"  best: {_fitness_text(run['best_fitness'])}\n"
            f"        {Strategy.from_json(run['best_genome']).describe()}",
            highlight=False,
        )
    out.print(f"  promotion: {run['promotion']}", highlight=False)
