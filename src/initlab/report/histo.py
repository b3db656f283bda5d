"""Histogram arithmetic: moving recorded histograms onto a common grid.

The engine records each weight histogram with its own edges (equal-width bins spanning
that snapshot's ``[min, max]``), so histograms of different epochs or seeds cannot be
added bin by bin. :func:`rebin` moves counts onto new edges assuming the entries are
spread uniformly within each original bin: with the cumulative count
:math:`C(x) = \\sum_{j: e_{j+1} \\le x} c_j + c_i \\frac{x - e_i}{e_{i+1} - e_i}` for
:math:`e_i \\le x < e_{i+1}`, the count of a new bin :math:`[a, b)` is
:math:`C(b) - C(a)`. Totals are preserved for new edges that cover the old range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["common_edges", "occupied", "pooled", "rebin"]


def rebin(edges: np.ndarray, counts: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Counts of ``(edges, counts)`` redistributed over ``new_edges`` (see module doc).

    A zero-width bin (``edges[i] == edges[i+1]``, e.g. a constant tensor whose edges were
    clipped to its ``[min, max]``) is a point mass: its count goes to the new bin
    ``[a, b)`` holding it (the last new bin also holds its right edge).
    """
    edges = np.asarray(edges, dtype=float)
    counts = np.asarray(counts, dtype=float)
    new_edges = np.asarray(new_edges, dtype=float)
    if counts.size == 0 or edges.size != counts.size + 1 or new_edges.size < 2:
        return np.zeros(max(new_edges.size - 1, 0))
    left, right = edges[:-1], edges[1:]
    width = right - left
    x = new_edges[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(width > 0, np.clip((x - left) / np.where(width > 0, width, 1.0), 0.0, 1.0),
                        (x > left).astype(float))
    frac[-1] = np.where(width > 0, frac[-1], (new_edges[-1] >= left).astype(float))
    return np.diff(frac @ counts)


def occupied(edges: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """``(lo, hi)``: the left edge of the first and the right edge of the last non-empty
    bin. For a constant tensor, recorded with padded edges ``[v - 0.5, v + 0.5]``, this is
    the one bin holding ``v`` rather than the padding."""
    nz = np.flatnonzero(np.asarray(counts) > 0)
    if nz.size == 0:
        return float(edges[0]), float(edges[-1])
    return float(edges[nz[0]]), float(edges[nz[-1] + 1])


def common_edges(hists: Sequence[tuple[np.ndarray, np.ndarray]], bins: int) -> np.ndarray:
    """``bins + 1`` equal-width edges spanning the :func:`occupied` range of every
    histogram (a unit-wide range around the value when that range is one point)."""
    spans = [occupied(e, c) for e, c in hists]
    lo = min(a for a, _ in spans)
    hi = max(b for _, b in spans)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError("histogram edges must be finite")
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def pooled(hists: Sequence[tuple[np.ndarray, np.ndarray]], edges: np.ndarray) -> np.ndarray:
    """The sum of ``hists`` rebinned onto ``edges``."""
    total = np.zeros(len(edges) - 1)
    for e, c in hists:
        total += rebin(e, c, edges)
    return total
