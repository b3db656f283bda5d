"""Conformance figure: realized / expected weight std at init, scheme x layer.

Colour is :math:`\\log_2(s/\\sigma)` on a diverging scale clipped at +-1 (half to double the
expected std); entries :func:`initlab.check` flagged at init (:mod:`initlab.report.conformance`)
carry a cross, entries with no expected std (data-dependent schemes, checked on their
output variance instead) or a zero one (constant laws) are grey and marked ``data`` or ``0``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from initlab.report.conformance import ConformanceCell
from initlab.report.plotting import Figure, pyplot, save_png

__all__ = ["conformance_figure"]


def conformance_figure(table: dict[str, dict[int, ConformanceCell]], path: Path, title: str) -> Figure:
    plt = pyplot()
    from matplotlib.colors import TwoSlopeNorm

    schemes = list(table)
    layers = sorted({layer for rows in table.values() for layer in rows})
    mat = np.full((len(schemes), len(layers)), np.nan)
    for i, s in enumerate(schemes):
        for j, layer in enumerate(layers):
            c = table[s].get(layer)
            if c is not None and math.isfinite(c.ratio) and c.ratio > 0:
                mat[i, j] = np.log2(c.ratio)
    width = min(18.0, max(7.0, 3.0 + 0.42 * len(layers)))
    height = 1.2 + 0.34 * len(schemes)
    label_in = 0.35 + 0.062 * max((len(s) for s in schemes), default=4)  # y tick labels, 8 pt
    width += label_in
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(left=label_in / width, right=0.98, bottom=0.55 / height, top=1.0 - 0.4 / height)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.88")
    im = ax.imshow(np.clip(mat, -1, 1), cmap=cmap, norm=TwoSlopeNorm(0.0, -1.0, 1.0), aspect="auto",
                   interpolation="nearest")
    for i, s in enumerate(schemes):
        for j, layer in enumerate(layers):
            c = table[s].get(layer)
            if c is None:
                continue
            if c.flagged:
                ax.text(j, i, "x", ha="center", va="center", fontsize=9, fontweight="bold", color="k")
            elif not math.isfinite(c.expected_std):
                ax.text(j, i, "data", ha="center", va="center", fontsize=6, color="0.35")
            elif not (c.expected_std > 0):
                ax.text(j, i, "0", ha="center", va="center", fontsize=7, color="0.35")
    ax.set_xticks(range(len(layers)), [str(x) for x in layers], fontsize=8)
    ax.set_yticks(range(len(schemes)), schemes, fontsize=8)
    ax.set_xlabel("layer")
    fig.colorbar(im, ax=ax, label="log2(realized / expected std)", shrink=0.9, pad=0.01)
    ax.set_title(f"realized / expected weight std at init (x: initlab.check flagged it); {title}", fontsize=10)
    return save_png(fig, path, f"conformance heatmap, {title}")
