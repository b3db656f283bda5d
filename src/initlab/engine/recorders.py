"""Snapshots of K stacked models: parameter statistics/histograms and probe activations.

Computed once per epoch (never per step), for all K models at once: parameters on a CPU
copy with numpy (an O(n) ``partition`` for the quantiles, ``numpy.histogram`` for the
histograms), activations with a few torch reductions per layer on the device.  Together
they cost about 1-2% of an epoch of the article's MLP.
"""

from __future__ import annotations

import numpy as np
import torch

from initlab.engine.functional import eval_forward
from initlab.records import QUANTILE_LEVELS, ActivationStats, ParamStats
from initlab.engine.stack import ParamStack

__all__ = ["param_stats", "activation_stats"]

def _quantiles(x: np.ndarray) -> np.ndarray:
    """``[K, Q]`` quantiles of the rows of ``x [K, n]`` at :data:`QUANTILE_LEVELS` with linear
    interpolation (the default of ``numpy.quantile`` and ``torch.quantile``), by one
    ``numpy.partition`` (O(n)) instead of a sort."""
    n = x.shape[1]
    pos = np.asarray(QUANTILE_LEVELS) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    part = np.partition(x, np.unique(np.concatenate([lo, hi])), axis=1)
    a, b = part[:, lo].astype(np.float64), part[:, hi].astype(np.float64)
    return a + (b - a) * (pos - lo)


def _rows_stats(x: np.ndarray, bins: int) -> list[dict]:
    """Statistics of each row of ``x [K, n]`` (float32; finite entries only) as dicts."""
    K, n = x.shape
    finite = np.isfinite(x)
    if finite.all():
        rows, nonfinite = [x], [0] * K
    else:
        rows = [r[f].reshape(1, -1) for r, f in zip(x, finite)]
        nonfinite = (n - finite.sum(1)).tolist()
    out: list[dict] = []
    nan = float("nan")
    for block in rows:
        if block.shape[1] == 0:
            out.append(dict(mean=nan, std=nan, min=nan, max=nan, frac_zero=0.0,
                            quantiles=[nan] * len(QUANTILE_LEVELS), edges=[], counts=[]))
            continue
        mean = block.mean(1, dtype=np.float64)
        std = block.std(1, dtype=np.float64)
        lo, hi = block.min(1), block.max(1)
        zeros = np.count_nonzero(block == 0, axis=1)
        quant = _quantiles(block)
        for j, row in enumerate(block):
            # in float64: float32 cannot split a range of a few ulps (weights ~1 +- 1e-7) into bins
            counts, edges = np.histogram(row.astype(np.float64), bins=bins)
            out.append(dict(
                mean=float(mean[j]), std=float(std[j]), min=float(lo[j]), max=float(hi[j]),
                frac_zero=float(zeros[j]) / n, quantiles=quant[j].tolist(),
                edges=edges.tolist(), counts=counts.tolist(),
            ))
    for d, bad in zip(out, nonfinite):
        d["nonfinite"] = int(bad)
    return out


@torch.no_grad()
def param_stats(stack: ParamStack, bins: int = 40) -> list[tuple[ParamStats, ...]]:
    """For each of the K models, :class:`ParamStats` of every weight and bias (layer order,
    weight before bias)."""
    per_model: list[list[ParamStats]] = [[] for _ in range(stack.K)]
    for l in range(stack.n_layers):
        w_name, b_name = stack.names[l]
        for kind, t, name in (("weight", stack.W[l], w_name), ("bias", stack.b[l], b_name)):
            flat = t.detach().reshape(stack.K, -1).to("cpu", torch.float32).numpy()
            for k, d in enumerate(_rows_stats(flat, bins)):
                per_model[k].append(
                    ParamStats(
                        layer=l + 1, param=kind, name=name, numel=flat.shape[1],
                        mean=d["mean"], std=d["std"], min=d["min"], max=d["max"],
                        frac_zero=d["frac_zero"], nonfinite=d["nonfinite"],
                        quantiles=tuple(d["quantiles"]), hist_edges=tuple(d["edges"]),
                        hist_counts=tuple(int(c) for c in d["counts"]),
                    )
                )
    return [tuple(p) for p in per_model]


@torch.no_grad()
def activation_stats(stack: ParamStack, probe: torch.Tensor) -> list[tuple[ActivationStats, ...]]:
    """For each of the K models, :class:`ActivationStats` of every layer on ``probe [P, F]``
    (eval mode).  Empty tuples when the probe is empty."""
    if probe.shape[0] == 0:
        return [() for _ in range(stack.K)]
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []
    eval_forward(stack, probe, capture=captured)
    rows: list[list[list[float]]] = []
    for z, a in captured:  # [K, P, units], float32
        zv, zm = torch.var_mean(z.flatten(1), 1, correction=0)
        av, am = torch.var_mean(a.flatten(1), 1, correction=0)
        zero = a == 0
        frac_zero = zero.flatten(1).sum(1, dtype=torch.float64) / zero[0].numel()
        dead = zero.all(1).sum(1, dtype=torch.float64) / zero.shape[2]
        rows.append(torch.stack([zm.double(), zv.double().sqrt(), am.double(), av.double().sqrt(),
                                 frac_zero, dead]).T.tolist())
    return [
        tuple(ActivationStats(l + 1, *rows[l][k]) for l in range(len(rows)))
        for k in range(stack.K)
    ]
