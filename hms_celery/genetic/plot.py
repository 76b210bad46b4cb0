"""Fitness-per-generation plots of a GA run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hms_celery.genetic.fitness import Fitness


def plot_run(run: dict[str, Any], path: Path) -> Path:
    """Draw best/mean/worst fitness per scored generation of ``run`` (a
    :func:`hms_celery.client.query_ga_run` result) beside its baselines (Z3 default, the
    family's previous strategy); writes ``path`` (PNG, SVG or PDF by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [g for g in run["generation_records"] if g["best"] is not None]
    if not gens:
        raise ValueError(f"GA run {run['id']} has no scored generation yet")
    x = [g["number"] for g in gens]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(x, [g["best"] for g in gens], marker="o", label="best")
    ax.plot(x, [g["mean"] for g in gens], linestyle="--", label="mean")
    ax.plot(x, [g["worst"] for g in gens], linestyle=":", label="worst")
    styles = {"z3-default": ("tab:red", "Z3 default"), "current": ("tab:gray", "previous")}
    for name, base in (run.get("baselines") or {}).items():
        if base.get("fitness"):
            color, label = styles.get(name, ("tab:purple", name))
            value = Fitness.from_json(base["fitness"]).scalar()
            ax.axhline(value, color=color, linewidth=1, label=f"{label} ({value:.3f})")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (solved − PAR-2 / penalty)")
    ax.set_title(
        f"GA run {run['id'][:8]} · family {run['family']} · "
        f"pop {run['population_size']} · seed {run['seed']}"
    )
    ax.set_xticks(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
