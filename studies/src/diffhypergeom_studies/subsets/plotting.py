"""The figure of the k-subset task benchmark: per task, the test metric against training time
(or steps), the mean over seeds with a band of one standard deviation, per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from diffhypergeom_studies.validation.common import pyplot, save_figure

__all__ = ["STYLES", "plot_task"]

# line style per family: the library solid, the peers dashed, the controls dotted
STYLES = {"library": "-", "peer": "--", "control": ":"}


def plot_task(name: str, task: dict[str, Any], unit: str, path: Path) -> str:
    """Write ``path`` (PNG) for one task's summary (``study.summarise_task``); return its
    file name."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colours = plt.get_cmap("tab10")
    for i, (method, m) in enumerate(task["methods"].items()):
        x = np.asarray(m["marks"], dtype=float)
        mean = np.asarray(m["curve_mean"], dtype=float)
        sd = np.asarray(m["curve_sd"], dtype=float)
        colour = colours(i % 10)
        ax.plot(x, mean, STYLES.get(m["family"], "-"), color=colour, marker="o", markersize=3,
                label=f"{method} ({m['family']})")
        if len(m["final"]) > 1:
            ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.12, linewidth=0)
    ax.set_xlabel("training time (s, evaluation excluded)" if unit == "seconds"
                  else "training steps")
    better = "higher" if task["higher_is_better"] else "lower"
    ax.set_ylabel(f"{task['metric_label']} ({better} is better)", fontsize=8)
    seeds = max(len(m["final"]) for m in task["methods"].values())
    ax.set_title(f"{task['title']}\nmean over {seeds} seed(s), band: ± 1 sd", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return path.name
