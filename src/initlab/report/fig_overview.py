"""The compact overview of a grid: the final metric per scheme along each axis of the study.

* :func:`axis_heatmap`: for one axis of the grid (a model key such as ``depth``, a train
  setting such as ``lr``, the model or the dataset), a heatmap of the mean final
  validation accuracy with one row per scheme and one column per value of the axis: the
  mean over every finished seed of that scheme at that value (``done`` cells; a diverged
  one has no final accuracy and is counted in the cell's note), so the other axes of the
  grid are averaged over. Each cell is annotated with the percentage and the number of
  models behind it.
* :func:`final_strip`: per comparison group, the final validation accuracy of every seed
  of every scheme (points) over a box of its quartiles (matplotlib's ``boxplot``: box from
  the first to the third quartile, the median inside, whiskers to the furthest point
  within 1.5 IQR): how far the seeds spread, not only their mean.

The axes come from the study's cells (:func:`initlab.study.axes.study_axes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from initlab.report.plotting import Figure, grid_figure, pyplot, save_png
from initlab.report.summary import final_metric
from initlab.report.types import CellData

__all__ = ["axis_heatmap", "final_strip", "heatmap_table"]


def _value_text(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ",".join(_value_text(x) for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def heatmap_table(cells: Sequence[CellData], schemes: Sequence[str], values: Sequence[Any],
                  value_of: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, done, diverged)``, each ``[schemes, values]``: the mean final validation
    accuracy of the done cells of each scheme at each axis value (NaN where none), how
    many models it averages, and how many diverged there."""
    mean = np.full((len(schemes), len(values)), np.nan)
    done = np.zeros_like(mean, dtype=int)
    diverged = np.zeros_like(mean, dtype=int)
    col = {v: j for j, v in enumerate(values)}
    row = {s: i for i, s in enumerate(schemes)}
    sums = np.zeros_like(mean)
    for c in cells:
        i, j = row.get(c.scheme), col.get(value_of(c))
        if i is None or j is None:
            continue
        if c.status == "diverged":
            diverged[i, j] += 1
        elif c.status == "done":
            acc = final_metric(c, "val_acc")
            if math.isfinite(acc):
                sums[i, j] += acc
                done[i, j] += 1
    np.divide(sums, done, out=mean, where=done > 0)
    return mean, done, diverged


def axis_heatmap(cells: Sequence[CellData], schemes: Sequence[str], axis_label: str,
                 values: Sequence[Any], value_of: Any, path: Path) -> Figure:
    """The heatmap of the module docstring for one axis (*value_of(cell)* gives a cell's
    value on it)."""
    plt = pyplot()
    mean, done, diverged = heatmap_table(cells, schemes, values, value_of)
    width = min(max(6.5, 2.8 + 1.1 * len(values)), 16.0)
    height = 1.7 + 0.5 * len(schemes)
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=2.6 / width, right=1.0 - 0.3 / width, bottom=0.8 / height,
                        top=1.0 - 0.6 / height)
    shown = np.ma.masked_invalid(mean * 100)
    ax.imshow(shown, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(values)), [_value_text(v) for v in values], fontsize=8)
    ax.set_yticks(range(len(schemes)), list(schemes), fontsize=8)
    ax.set_xlabel(axis_label, fontsize=9)
    for i in range(len(schemes)):
        for j in range(len(values)):
            note = f"{mean[i, j] * 100:.1f}" if done[i, j] else "–"
            note += f"\nn={done[i, j]}" + (f", {diverged[i, j]} div" if diverged[i, j] else "")
            light = not done[i, j] or mean[i, j] < 0.6
            ax.text(j, i, note, ha="center", va="center", fontsize=7, color="white" if light else "black")
    ax.set_title(f"final val acc % by scheme x {axis_label}\n(mean over seeds and the grid's other axes)",
                 fontsize=9)
    return save_png(fig, path, f"final validation accuracy by scheme and {axis_label}")


def final_strip(groups: Sequence[tuple[str, dict[str, list[CellData]]]], colors: dict,
                path: Path) -> Figure:
    """The strip-and-box plot of the module docstring, one panel per group
    ``(title, {scheme: cells})``."""
    fig, panels = grid_figure(len(groups), panel_width=max(3.2, 0.55 * max(len(b) for _, b in groups)),
                              panel_height=2.6, max_cols=3)
    rng = np.random.default_rng(0)  # the jitter of the points only
    for ax, (title, by_scheme) in zip(panels, groups):
        schemes = list(by_scheme)
        data = []
        for k, s in enumerate(schemes):
            accs = [final_metric(c, "val_acc") * 100 for c in by_scheme[s] if c.status == "done"]
            accs = [a for a in accs if math.isfinite(a)]
            data.append(accs)
            if accs:
                x = k + 1 + rng.uniform(-0.12, 0.12, len(accs))
                ax.plot(x, accs, "o", ms=3.5, color=colors.get(s), alpha=0.85, zorder=3)
        if any(data):
            ax.boxplot([d if d else [np.nan] for d in data], positions=range(1, len(schemes) + 1),
                       widths=0.5, showfliers=False, medianprops={"color": "black"})
        ax.set_xticks(range(1, len(schemes) + 1), schemes, rotation=30, ha="right", fontsize=7)
        ax.set_xlim(0.4, len(schemes) + 0.6)
        ax.set_ylabel("final val acc %", fontsize=8)
        ax.set_title(title, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.subplots_adjust(bottom=min(0.45, 1.3 / fig.get_figheight()))
    return save_png(fig, path, "final validation accuracy of every seed, per scheme and group")
