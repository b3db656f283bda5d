"""Activation figures: per-layer mean, std and fraction of zeros on the probe batch, at
init and after training (lines by depth, one per scheme) and over training (one
layer x epoch heatmap per scheme, shared colour scale).

Statistics are the engine's post-activation ones (:class:`initlab.records.
ActivationStats`: after the nonlinearity; softmax for the output layer), averaged over
seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from initlab.report.plotting import Figure, colorbar_axes, grid_figure, pyplot, save_png
from initlab.report.types import CellData

__all__ = ["ACT_STATS", "activation_depth", "activation_evolution", "activation_layers"]

#: (stat key, label) of the statistics shown.
ACT_STATS: tuple[tuple[str, str], ...] = (
    ("post_mean", "activation mean"),
    ("post_std", "activation std"),
    ("post_frac_zero", "fraction of zeros"),
)


def activation_layers(cells: list[CellData]) -> list[int]:
    return sorted({a.layer for c in cells for a in c.activations})


def _matrix(cells: list[CellData], stat: str, layers: list[int], epochs: list[int]) -> np.ndarray:
    """``[layer, epoch]`` seed mean of ``stat`` (NaN where nothing was recorded)."""
    acc = np.zeros((len(layers), len(epochs)))
    n = np.zeros_like(acc)
    li = {layer: i for i, layer in enumerate(layers)}
    ei = {e: j for j, e in enumerate(epochs)}
    for c in cells:
        for a in c.activations:
            values = a.stats.get(stat)
            if values is None or a.layer not in li:
                continue
            for e, v in zip(a.epochs, values):
                if int(e) in ei and np.isfinite(v):
                    acc[li[a.layer], ei[int(e)]] += v
                    n[li[a.layer], ei[int(e)]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, acc / np.maximum(n, 1), np.nan)


def _last_epoch(cells: list[CellData]) -> int:
    return max((int(a.epochs.max()) for c in cells for a in c.activations if a.epochs.size), default=0)


def activation_depth(by_scheme: dict[str, list[CellData]], colors: dict, path: Path, title: str) -> Figure:
    """Rows: mean, std, fraction of zeros; columns: at init, after training; x: layer."""
    plt = pyplot()
    all_cells = [c for cells in by_scheme.values() for c in cells]
    layers = activation_layers(all_cells)
    fig, axes = plt.subplots(len(ACT_STATS), 2, figsize=(13, 8.5), sharex=True, squeeze=False)
    fig.subplots_adjust(left=0.07, right=1.0 - 2.1 / 13, bottom=0.07, top=0.92, wspace=0.18, hspace=0.12)
    for r, (stat, label) in enumerate(ACT_STATS):
        for col, final in enumerate((False, True)):
            ax = axes[r, col]
            values = []
            for scheme, cells in by_scheme.items():
                epoch = _last_epoch(cells) if final else 0
                y = _matrix(cells, stat, layers, [epoch])[:, 0] if layers else np.zeros(0)
                values.append(y)
                ax.plot(layers, y, "o-", ms=3, lw=1.3, color=colors[scheme], label=scheme)
            flat = np.concatenate(values) if values else np.zeros(0)
            pos = flat[np.isfinite(flat) & (flat > 0)]
            if stat == "post_std" and pos.size and pos.max() / pos.min() > 100:
                ax.set_yscale("log")  # zeros (dead layers) are left out of a log axis
                for line in ax.get_lines():
                    y = np.asarray(line.get_ydata(), dtype=float)
                    line.set_ydata(np.where(y > 0, y, np.nan))
            elif stat == "post_mean" and pos.size and pos.max() / np.median(pos) > 100:
                ax.set_yscale("symlog", linthresh=float(np.median(pos)))
            ax.set_ylabel(label, fontsize=9)
            ax.grid(alpha=0.3)
            if r == 0:
                ax.set_title("at init (epoch 0)" if not final else "after training", fontsize=11)
    for ax in axes[-1]:
        ax.set_xlabel("layer")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0, 1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(f"activation statistics by layer on the probe batch; {title}", fontsize=12)
    return save_png(fig, path, f"activation statistics by layer, {title}")


def activation_evolution(by_scheme: dict[str, list[CellData]], stat: str, path: Path, title: str) -> Figure:
    """One heatmap per scheme of ``stat`` for each layer (y) and epoch (x), on a colour
    scale shared by all panels: 0..1 for fractions, logarithmic for standard deviations
    and for non-negative means spanning more than two decades, linear otherwise."""
    plt = pyplot()
    from matplotlib.colors import LogNorm, Normalize

    label = dict(ACT_STATS).get(stat, stat)
    all_cells = [c for cells in by_scheme.values() for c in cells]
    layers = activation_layers(all_cells)
    epochs = sorted({int(e) for c in all_cells for a in c.activations for e in a.epochs})
    mats = {s: _matrix(cells, stat, layers, epochs) for s, cells in by_scheme.items()}
    flat = np.concatenate([m.ravel() for m in mats.values()]) if mats else np.zeros(0)
    flat = flat[np.isfinite(flat)]
    if stat.endswith("frac_zero") or stat == "dead_units":
        norm, cmap = Normalize(0.0, 1.0), "viridis"
    elif np.any(flat > 0) and (stat.endswith("std") or (
            flat.min() >= 0 and flat[flat > 0].max() / flat[flat > 0].min() > 100)):
        pos = flat[flat > 0]  # a std, or a non-negative mean spanning decades: log colours
        lo, hi = float(pos.min()), float(pos.max())
        norm, cmap = LogNorm(lo, hi if hi > lo else lo * 10), "viridis"
    else:
        lo, hi = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 1.0)
        norm, cmap = Normalize(lo, hi if hi > lo else lo + 1), "viridis"
    fig, axes = grid_figure(len(by_scheme), panel_width=2.5, panel_height=2.0, colorbar=True,
                            sharex=True, sharey=True)
    cmap = pyplot().get_cmap(cmap).with_extremes(bad="0.85")
    image = None
    for ax, (scheme, m) in zip(axes, mats.items()):
        data = np.where(m > 0, m, np.nan) if isinstance(norm, LogNorm) else m
        if layers and epochs:
            image = ax.imshow(data, aspect="auto", origin="lower", cmap=cmap, norm=norm,
                              interpolation="nearest",
                              extent=(epochs[0] - 0.5, epochs[-1] + 0.5, layers[0] - 0.5, layers[-1] + 0.5))
        ax.set_title(scheme, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
    if image is not None:
        fig.colorbar(image, cax=colorbar_axes(fig), label=label)
    fig.supxlabel("epoch", fontsize=9, y=0.005)
    fig.supylabel("layer", fontsize=9, x=0.003)
    fig.suptitle(f"{label} per layer over training (grey: zero or not recorded); {title}", fontsize=10)
    return save_png(fig, path, f"{label} per layer over training, {title}")
