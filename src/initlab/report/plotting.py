"""Matplotlib plumbing shared by the report's figures: the Agg backend, one colour per
scheme, small-multiple grids and PNG output.

matplotlib is imported lazily (inside :func:`pyplot`), and the non-interactive ``Agg``
backend is selected there, so importing :mod:`initlab.report` never touches a display.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DPI", "Figure", "colorbar_axes", "grid_figure", "grid_shape", "load_png", "png_size", "pyplot",
           "save_png", "scheme_colors"]

#: Resolution of the PNG figures (pixels per inch): small files, sharp enough on screen.
DPI = 80


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (selected before pyplot is imported)."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def scheme_colors(schemes: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """A distinct colour per scheme, stable across all figures of a report: ``tab10`` for
    up to 10 schemes, ``tab20`` up to 20, evenly spaced hues beyond."""
    plt = pyplot()
    n = len(schemes)
    if n <= 10:
        cmap = plt.get_cmap("tab10")
        return {s: cmap(i) for i, s in enumerate(schemes)}
    if n <= 20:
        cmap = plt.get_cmap("tab20")
        # pairs of tab20 are light/dark of one hue: take the dark ones first
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))
        return {s: cmap(order[i]) for i, s in enumerate(schemes)}
    cmap = plt.get_cmap("hsv")
    return {s: cmap(i / n) for i, s in enumerate(schemes)}


def grid_shape(n: int, max_cols: int = 6) -> tuple[int, int]:
    """``(rows, cols)`` of a small-multiple grid for ``n`` panels, at most ``max_cols``
    wide and as square as possible otherwise."""
    if n <= 0:
        return 1, 1
    cols = min(max_cols, max(1, math.ceil(math.sqrt(n))))
    if n <= max_cols and n <= 4:
        cols = n
    return math.ceil(n / cols), cols


def grid_figure(n: int, *, panel_width: float = 2.7, panel_height: float = 1.9, max_cols: int = 6,
                min_width: float = 8.0, colorbar: bool = False, sharex: bool = False,
                sharey: bool = False) -> tuple[Any, list[Any]]:
    """A small-multiple figure of ``n`` panels (unused grid cells hidden) with fixed
    margins in inches: no layout engine, whose solver would dominate the drawing time of
    many small panels. With ``colorbar`` the right inch is kept free for
    :func:`colorbar_axes`. Returns ``(figure, panels)``."""
    plt = pyplot()
    rows, cols = grid_shape(n, max_cols)
    height = panel_height * rows + 0.9
    width = max(panel_width * cols, min_width) + (1.0 if colorbar else 0.0)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, sharex=sharex, sharey=sharey)
    fig.subplots_adjust(left=0.5 / width, right=1.0 - (1.1 if colorbar else 0.15) / width,
                        bottom=0.5 / height, top=1.0 - 0.55 / height, wspace=0.18, hspace=0.55)
    for j in range(n, rows * cols):
        axes[j // cols, j % cols].axis("off")
    return fig, [axes[i // cols, i % cols] for i in range(n)]


def colorbar_axes(fig: Any) -> Any:
    """Axes for a colour bar in the right margin kept by ``grid_figure(colorbar=True)``."""
    w = fig.get_figwidth()
    return fig.add_axes((1.0 - 0.95 / w, 0.2, 0.12 / w, 0.6))


@dataclass
class Figure:
    """A rendered figure: where its PNG was written, the PNG bytes (for inlining), its
    alt text and size in pixels."""

    path: Path
    png: bytes
    alt: str
    width: int
    height: int


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of PNG ``data`` from its IHDR chunk (``(0, 0)`` if not a PNG)."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def load_png(path: Path, alt: str) -> Figure:
    """A :class:`Figure` for a PNG file written by someone else (e.g. the probe)."""
    data = path.read_bytes()
    return Figure(path, data, alt, *png_size(data))


def save_png(fig: Any, path: Path, alt: str, *, close: bool = True) -> Figure:
    """Render ``fig`` to PNG at :data:`DPI`, write it to ``path``, close it (unless not
    ``close``: a figure redrawn with new data)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    width, height = (int(round(v * DPI)) for v in fig.get_size_inches())
    if close:
        plt.close(fig)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Figure(path, data, alt, width, height)
