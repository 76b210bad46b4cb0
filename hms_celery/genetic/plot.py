"""Fitness-per-generation plots of a GA run (matplotlib's Agg backend: no display needed).

A run ranks genomes by instances solved, then by PAR-2 in Z3 rlimit units, and promotes a
winner that beats the family's strategy in that order.  The plot shows both figures side by
side: the solved count per generation, and PAR-2 on a log axis — where the differences that
decide promotion (often between strategies that solve the same instances) are visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Colour and label of each baseline a run measures.
BASELINES = {"z3-default": ("tab:red", "Z3 default"), "current": ("tab:gray", "previous")}


def plot_run(run: Mapping[str, Any], path: Path) -> Path:
    """Draw, per scored generation of ``run`` (a :func:`hms_celery.client.query_ga_run`
    result), the best genome's solved count and PAR-2 (log axis, with the population's
    range) beside its baselines (Z3 default, the family's previous strategy); writes
    ``path`` (PNG, SVG or PDF by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [g for g in run["generation_records"] if g.get("best_fitness")]
    if not gens:
        raise ValueError(f"GA run {run['id']} has no scored generation yet")
    x = [g["number"] for g in gens]
    n = gens[0]["best_fitness"]["n"]
    fig, (solved_ax, par2_ax) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)

    solved_ax.plot(x, [g["best_fitness"]["solved"] for g in gens], marker="o", label="best")
    solved_ax.plot(
        x, [_mean([f["solved"] for f in g["fitness"]]) for g in gens], "--", label="mean"
    )
    solved_ax.set_ylim(-0.3, n + 0.3)
    solved_ax.set_ylabel(f"instances solved (of {n})")

    par2_ax.plot(x, [_positive(g["best_fitness"]["par2"]) for g in gens], marker="o",
                 label="best genome")  # fmt: skip
    low = [_positive(min(f["par2"] for f in g["fitness"])) for g in gens]
    high = [_positive(max(f["par2"] for f in g["fitness"])) for g in gens]
    par2_ax.fill_between(x, low, high, alpha=0.15, label="population range")
    par2_ax.set_yscale("log")
    par2_ax.set_ylabel("PAR-2 (Z3 rlimit units, log)")

    for name, base in (run.get("baselines") or {}).items():
        fitness = base.get("fitness")
        if not fitness:
            continue
        color, label = BASELINES.get(name, ("tab:purple", name))
        solved_ax.axhline(fitness["solved"], color=color, linewidth=1,
                          label=f"{label} ({fitness['solved']}/{fitness['n']})")  # fmt: skip
        par2_ax.axhline(_positive(fitness["par2"]), color=color, linewidth=1,
                        label=f"{label} ({fitness['par2']:,.0f})")  # fmt: skip

    for ax in (solved_ax, par2_ax):
        ax.set_xlabel("generation")
        ax.set_xticks(x)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    solved_ax.set_title("solved (ranked first)")
    par2_ax.set_title("PAR-2 (ranked next: lower is better)")
    fig.suptitle(
        f"GA run {run['id'][:8]} · family {run['family']} · "
        f"pop {run['population_size']} · seed {run['seed']} · rlimit {run['rlimit']:,}"
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _positive(value: float) -> float:
    """A PAR-2 value drawable on a log axis (a genome that used no budget at all: 1)."""
    return max(float(value), 1.0)
