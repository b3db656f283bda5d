"""Learning-curve figures: loss and accuracy against epoch, one colour per scheme.

Each scheme is drawn as the mean over its seeds (NaN-ignoring, so a diverged seed drops
out from its divergence on) with a band from the lowest to the highest seed. A loss
panel switches to a log axis when its values span more than two orders of magnitude
(the article's all-ones and U[0,1] models start with losses in the thousands).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from initlab.report.plotting import Figure, grid_figure, pyplot, save_png
from initlab.report.summary import mean_curve
from initlab.report.types import CellData
from initlab.study import summary as core

__all__ = ["learning_curves", "accuracy_small_multiples", "needs_log", "step_curve"]

_TITLES = {"train_loss": "training loss", "val_loss": "validation loss",
           "train_acc": "training accuracy", "val_acc": "validation accuracy"}

#: max/min ratio of positive values above which a loss axis becomes logarithmic.
LOG_SPAN = 100.0


def needs_log(values: list[np.ndarray]) -> bool:
    """Whether positive ``values`` span more than :data:`LOG_SPAN` (max / min)."""
    flat = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values]) if values else np.zeros(0)
    pos = flat[np.isfinite(flat) & (flat > 0)]
    return bool(pos.size and pos.max() / pos.min() > LOG_SPAN)


def step_curve(cells: list[CellData]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, mean, lo, hi)`` of the windowed training loss over ``cells``: the same
    NaN-ignoring mean and min/max band as the epoch curves
    (:func:`initlab.study.summary.mean_curve`), over optimizer steps."""
    return core.mean_curve(([s.step for s in c.steps], [s.loss for s in c.steps]) for c in cells)


def _band(ax, x, mean, lo, hi, color, label=None) -> None:
    if x.size == 0:
        return
    if x.size == 1:
        ax.plot(x, mean, "o", color=color, label=label, ms=4)
    else:
        ax.plot(x, mean, color=color, lw=1.6, label=label)
    if np.any(hi > lo):
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)


def learning_curves(by_scheme: dict[str, list[CellData]], colors: dict, path: Path,
                    title: str) -> Figure:
    """Training/validation loss and accuracy per epoch plus the step-level training loss:
    a 2 x 3 grid whose last panel is the legend."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.6))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.07, top=0.92, wspace=0.2, hspace=0.3)
    panels = {"train_loss": axes[0, 0], "val_loss": axes[0, 1], "train_acc": axes[1, 0],
              "val_acc": axes[1, 1]}
    for metric, ax in panels.items():
        drawn = []
        for scheme, cells in by_scheme.items():
            x, mean, lo, hi = mean_curve(cells, metric)
            _band(ax, x, mean, lo, hi, colors[scheme])
            drawn.extend([lo, hi])
        if metric.endswith("loss") and needs_log(drawn):
            ax.set_yscale("log")
        ax.set_title(_TITLES[metric], fontsize=11)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax = axes[0, 2]
    drawn = []
    for scheme, cells in by_scheme.items():
        x, mean, lo, hi = step_curve(cells)
        _band(ax, x, mean, lo, hi, colors[scheme])
        drawn.extend([lo, hi])
    if needs_log(drawn):
        ax.set_yscale("log")
    ax.set_title("training loss per logging window", fontsize=11)
    ax.set_xlabel("optimizer step")
    ax.grid(alpha=0.3)
    leg = axes[1, 2]
    leg.axis("off")
    handles = []
    for scheme, cells in by_scheme.items():
        div = sum(c.status == "diverged" for c in cells)
        label = f"{scheme} ({len(cells)} seed{'s' if len(cells) != 1 else ''}"
        label += f", {div} diverged)" if div else ")"
        (h,) = leg.plot([], [], color=colors[scheme], lw=3, label=label)
        handles.append(h)
    leg.legend(handles=handles, loc="upper left", frameon=False, fontsize=9,
               ncol=1 if len(handles) <= 14 else 2, title="line: mean over seeds\nband: min-max")
    fig.suptitle(title, fontsize=12)
    return save_png(fig, path, f"learning curves, {title}")


def accuracy_small_multiples(by_scheme: dict[str, list[CellData]], colors: dict, path: Path,
                             title: str, metric: str = "val_acc") -> Figure:
    """One panel per scheme: its mean curve and seed band in colour, every other scheme's
    mean in light grey behind it (shared axes), so 10+ schemes stay legible."""
    fig, axes = grid_figure(len(by_scheme), panel_width=2.6, panel_height=2.0, sharex=True, sharey=True)
    curves = {s: mean_curve(c, metric) for s, c in by_scheme.items()}
    for ax, (scheme, (x, mean, lo, hi)) in zip(axes, curves.items()):
        for other, (xo, mo, _, _) in curves.items():
            if other != scheme and xo.size:
                ax.plot(xo, mo, color="0.82", lw=0.9)
        _band(ax, x, mean, lo, hi, colors[scheme])
        ax.set_title(scheme, fontsize=9, color=colors[scheme])
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.supxlabel("epoch", fontsize=9, y=0.005)
    fig.suptitle(f"{_TITLES[metric]} per scheme; grey: the others ({title})", fontsize=10)
    return save_png(fig, path, f"{_TITLES[metric]} small multiples, {title}")
