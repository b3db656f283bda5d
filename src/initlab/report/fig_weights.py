"""Weight figures: per-layer std by depth, per-layer histograms at init vs after training,
and the distribution of each layer's weights over epochs (TensorBoard-style).

Histograms are pooled over a scheme's seeds: each seed's histogram is moved onto common
edges (:func:`initlab.report.histo.rebin`) and the counts are added. In the init-vs-final
panels both histograms are scaled to a peak of 1, so a point mass at init (zeros, ones)
does not flatten the trained distribution. In the over-epochs heatmaps each epoch's row
is scaled to a peak of 1 and shown with a square-root colour scale, so tails stay
visible; the x range is the union of the occupied ranges over epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from initlab.report.histo import common_edges, pooled
from initlab.report.plotting import Figure, colorbar_axes, grid_figure, pyplot, save_png
from initlab.report.types import CellData

__all__ = ["LayerEvolution", "LayerHistograms", "layer_figures", "layers_of", "std_by_depth"]

_BINS = 48


def layers_of(cells: list[CellData]) -> list[int]:
    """Weight layers recorded in any of ``cells``, in order."""
    return sorted({p.layer for c in cells for p in c.params if p.param == "weight"})


def _hists(cells: list[CellData], layer: int, epoch: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Histograms of ``layer`` at ``epoch`` (``None``: each cell's last epoch)."""
    out = []
    for c in cells:
        p = c.param(layer, "weight")
        if p is None or p.epochs.size == 0:
            continue
        h = p.histogram(int(p.epochs.max()) if epoch is None else epoch)
        if h is not None and np.all(np.isfinite(h[0])):
            out.append(h)
    return out


def _stat_by_depth(cells: list[CellData], layers: list[int], stat: str, final: bool) -> np.ndarray:
    rows = []
    for c in cells:
        row = []
        for layer in layers:
            p = c.param(layer, "weight")
            if p is None or p.epochs.size == 0:
                row.append(np.nan)
            else:
                row.append(p.stat(stat, int(p.epochs.max()) if final else 0))
        rows.append(row)
    a = np.asarray(rows, dtype=float)
    if a.size == 0:
        return np.full(len(layers), np.nan)
    a[~np.isfinite(a)] = np.nan
    with np.errstate(all="ignore"):
        return np.nanmean(a, axis=0) if np.any(~np.isnan(a)) else np.full(len(layers), np.nan)


def std_by_depth(by_scheme: dict[str, list[CellData]], colors: dict, path: Path, title: str) -> Figure:
    """Weight std per layer at init and after training, one line per scheme (seed mean)."""
    plt = pyplot()
    layers = layers_of([c for cells in by_scheme.values() for c in cells])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
    fig.subplots_adjust(left=0.06, right=1.0 - 2.1 / 13, bottom=0.12, top=0.86, wspace=0.06)
    any_pos = False
    for ax, final, label in ((axes[0], False, "at init (epoch 0)"), (axes[1], True, "after training")):
        for scheme, cells in by_scheme.items():
            y = _stat_by_depth(cells, layers, "std", final)
            any_pos |= bool(np.any(y > 0))
            ax.plot(layers, y, "o-", ms=3, lw=1.3, color=colors[scheme], label=scheme)
        ax.set_title(f"weight std by layer, {label}", fontsize=11)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if any_pos:
        axes[0].set_yscale("symlog", linthresh=1e-4)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.suptitle(title, fontsize=12)
    return save_png(fig, path, f"weight std by layer, {title}")


class _LayerGrid:
    """A small-multiple figure, one panel per scheme, built once and redrawn per layer.

    Building axes, titles and the layout dominates matplotlib's cost, so the grid is laid
    out once (fixed margins, no layout engine) and each layer only replaces the data of
    its artists before :func:`save_png` renders it.
    """

    def __init__(self, schemes: list[str], colors: dict, panel_height: float, *,
                 sharey: bool = False, colorbar: bool = False) -> None:
        from matplotlib.ticker import MaxNLocator

        self.fig, self.axes = grid_figure(len(schemes), panel_height=panel_height, colorbar=colorbar,
                                          sharey=sharey)
        self.notes = []
        for ax, scheme in zip(self.axes, schemes):
            ax.set_title(scheme, fontsize=9, color=colors[scheme])
            ax.tick_params(labelsize=7, pad=1.5)
            ax.xaxis.set_major_locator(MaxNLocator(3))
            self.notes.append(ax.text(0.5, 0.5, "no histogram", ha="center", va="center",
                                      transform=ax.transAxes, fontsize=8, visible=False))
        self.suptitle = self.fig.suptitle("", fontsize=11)
        self.colorbar = colorbar

    def close(self) -> None:
        pyplot().close(self.fig)

    def save(self, path: Path, alt: str) -> Figure:
        return save_png(self.fig, path, alt, close=False)


class LayerHistograms(_LayerGrid):
    """One panel per scheme: a layer's weight histogram at init (grey, filled) and after
    training (scheme colour), pooled over seeds, each scaled to a peak of 1."""

    def __init__(self, by_scheme: dict[str, list[CellData]], colors: dict, title: str) -> None:
        super().__init__(list(by_scheme), colors, 1.9)
        self.by_scheme, self.title = by_scheme, title
        self.init_steps, self.final_steps = [], []
        for ax, scheme in zip(self.axes, by_scheme):
            ax.set_yticks([])
            ax.set_ylim(0, 1.08)
            self.init_steps.append(ax.stairs([0.0], [0.0, 1.0], color="0.55", fill=True, alpha=0.45, lw=0.8))
            self.final_steps.append(ax.stairs([0.0], [0.0, 1.0], color=colors[scheme], fill=False, lw=1.4))

    def draw(self, layer: int, path: Path) -> Figure:
        for i, cells in enumerate(self.by_scheme.values()):
            ax = self.axes[i]
            h0, h1 = _hists(cells, layer, 0), _hists(cells, layer, None)
            self.notes[i].set_visible(not (h0 or h1))
            edges = common_edges(h0 + h1, _BINS) if (h0 or h1) else np.array([0.0, 1.0])
            for hs, artist in ((h0, self.init_steps[i]), (h1, self.final_steps[i])):
                counts = pooled(hs, edges) if hs else np.zeros(len(edges) - 1)
                peak = counts.max()
                artist.set_data(counts / peak if peak > 0 else counts, edges)
                artist.set_visible(bool(hs))
            ax.set_xlim(edges[0], edges[-1])
        self.suptitle.set_text(f"layer {layer} weights: at init (grey) vs after training (colour); {self.title}")
        return self.save(path, f"layer {layer} weight histograms, {self.title}")


class LayerEvolution(_LayerGrid):
    """One heatmap per scheme: a layer's weight distribution (x) per epoch (y, init at the
    bottom), pooled over seeds, rows scaled to a peak of 1, square-root colours."""

    def __init__(self, by_scheme: dict[str, list[CellData]], colors: dict, title: str) -> None:
        super().__init__(list(by_scheme), colors, 1.9, sharey=True, colorbar=True)
        from matplotlib.colors import PowerNorm
        from matplotlib.ticker import MaxNLocator

        self.by_scheme, self.title = by_scheme, title
        norm = PowerNorm(0.5, vmin=0.0, vmax=1.0)
        self.images = [ax.imshow(np.zeros((1, 1)), aspect="auto", origin="lower", cmap="magma", norm=norm,
                                 interpolation="nearest") for ax in self.axes]
        self.axes[0].yaxis.set_major_locator(MaxNLocator(5, integer=True))
        cb = self.fig.colorbar(self.images[0], cax=colorbar_axes(self.fig))
        cb.set_label("fraction of peak", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        self.fig.supylabel("epoch", fontsize=9, x=0.003)

    def draw(self, layer: int, path: Path) -> Figure:
        for i, cells in enumerate(self.by_scheme.values()):
            ax, image = self.axes[i], self.images[i]
            epochs = sorted({int(e) for c in cells for p in [c.param(layer, "weight")] if p is not None
                             for e in p.epochs})
            per_epoch = {e: h for e in epochs if (h := _hists(cells, layer, e))}
            self.notes[i].set_visible(not per_epoch)
            image.set_visible(bool(per_epoch))
            if not per_epoch:
                continue
            edges = common_edges([h for hs in per_epoch.values() for h in hs], _BINS)
            ep = sorted(per_epoch)
            mat = np.zeros((ep[-1] - ep[0] + 1, len(edges) - 1))
            for e in ep:
                counts = pooled(per_epoch[e], edges)
                mat[e - ep[0]] = counts / counts.max() if counts.max() > 0 else counts
            image.set_data(mat)
            extent = (edges[0], edges[-1], ep[0] - 0.5, ep[-1] + 0.5)
            image.set_extent(extent)
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
        self.suptitle.set_text(f"layer {layer} weight distribution over epochs; {self.title}")
        return self.save(path, f"layer {layer} weight distribution over epochs, {self.title}")


def layer_figures(by_scheme: dict[str, list[CellData]], layers: list[int], colors: dict,
                  paths: Callable[[str, int], Path], title: str) -> dict[int, tuple[Figure, Figure]]:
    """``{layer: (histograms, evolution)}`` for every layer; ``paths(kind, layer)`` names the
    PNG files (``kind`` is ``"hist"`` or ``"epochs"``)."""
    hist, evo = LayerHistograms(by_scheme, colors, title), LayerEvolution(by_scheme, colors, title)
    try:
        return {layer: (hist.draw(layer, paths("hist", layer)), evo.draw(layer, paths("epochs", layer)))
                for layer in layers}
    finally:
        hist.close()
        evo.close()
