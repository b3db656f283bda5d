"""Card ``pennington2017``: Pennington, Schoenholz & Ganguli (2017), "Resurrecting the
sigmoid in deep learning through dynamical isometry: theory and practice", NeurIPS;
Fig. 1 (singular-value densities of the input-output Jacobian at depth) and Sec. 3 (ReLU:
the variance of the spectrum of ``J J^T`` grows with depth even with orthogonal weights).

Setting: a fully connected net at initialization, no training. The paper uses width
1000 and ``sigma_b^2 > 0`` with ``q* = 1/64``; here width 400 (quick: 64), zero biases
(the scheme library draws zero biases) and ``sigma_w^2 = 1`` (orthogonal gain 1 vs
``lecun_normal``), the critical point of tanh at ``sigma_b^2 = 0``, with inputs of std
1/4 so that ``q`` starts near the paper's small ``q*``. ReLU uses its critical
``sigma_w^2 = 2`` (orthogonal, gain sqrt(2)) at depths 10, 30 and 100. The spectrum is the
probe's (``initlab.probe(..., jacobian=True)``, ``torch.func.jacrev``) at a few inputs.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from initlab.papers.card import Card, Check, Measured
from initlab.papers.context import CardContext

TANH_SCHEMES = ("orthogonal", "lecun_normal")
RELU_SCHEME = "orthogonal(gain=sqrt(2))"


def _spectrum(width: int, depth: int, activation: str, scheme: str, inputs: int, seed: int = 0) -> np.ndarray:
    import initlab
    from initlab.engine.models import MLPSpec

    spec = MLPSpec(width, (width,) * (depth - 1), width, activation, 0.0)
    x = 0.25 * torch.randn(inputs, width, generator=torch.Generator().manual_seed(seed + 1))
    r = initlab.probe(spec, x, [scheme], jacobian=True, jacobian_inputs=inputs, n_inputs=max(inputs, 2), seed=seed)
    return np.asarray(r.schemes[0].jacobian_singular_values, dtype=float).ravel()


def _spread(sv: np.ndarray) -> float:
    """Decades between the 10th and 90th percentile of the singular values."""
    logs = np.log10(np.maximum(sv, 1e-300))
    return float(np.percentile(logs, 90) - np.percentile(logs, 10))


def _rel_var(sv: np.ndarray) -> float:
    """``Var(lambda) / E[lambda]^2`` of the eigenvalues ``lambda = s^2`` of ``J J^T``."""
    lam = sv**2
    return float(np.var(lam) / np.mean(lam) ** 2)


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    w, depth, k = int(s["width"]), int(s["depth"]), int(s["inputs"])
    tanh = {sch: _spectrum(w, depth, "tanh", sch, k) for sch in TANH_SCHEMES}
    relu_depths = [int(d) for d in s["relu_depths"]]
    relu = {d: _spectrum(w, d, "relu", RELU_SCHEME, k) for d in relu_depths}
    so, sg = _spread(tanh["orthogonal"]), _spread(tanh["lecun_normal"])
    med = float(np.median(tanh["orthogonal"]))
    rv = [_rel_var(relu[d]) for d in relu_depths]
    checks = [
        Check("orthogonal tanh concentrated", "orthogonal tanh at depth %d: 10-90%% spread of the singular "
              "values <= 0.5 decade and median in [0.1, 10]" % depth,
              f"spread {so:.3f} decades, median {med:.3g}", so <= 0.5 and 0.1 <= med <= 10),
        Check("Gaussian tanh spread", "Gaussian (lecun_normal) tanh at the same depth: spread >= 2 decades",
              f"spread {sg:.3f} decades", sg >= 2.0),
        Check("ReLU variance grows with depth", "orthogonal ReLU: Var(s^2)/E[s^2]^2 increases with depth "
              f"({', '.join(map(str, relu_depths))}) and the deepest is >= 3x the shallowest",
              ", ".join(f"L={d}: {v:.3g}" for d, v in zip(relu_depths, rv)),
              all(a < b for a, b in zip(rv, rv[1:])) and rv[-1] >= 3 * rv[0]),
    ]
    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, sv in [("tanh, orthogonal", tanh["orthogonal"]), ("tanh, Gaussian", tanh["lecun_normal"]),
                     (f"ReLU, orthogonal (L={relu_depths[-1]})", relu[relu_depths[-1]])]:
        axes[0].hist(np.log10(np.maximum(sv, 1e-30)), bins=40, alpha=0.55, label=name)
    axes[0].set(xlabel="log10 singular value of J", ylabel="count", title=f"Jacobian spectrum, depth {depth}")
    axes[0].legend(fontsize=8)
    axes[1].plot(relu_depths, rv, "o-")
    axes[1].set(xscale="log", yscale="log", xlabel="depth L", ylabel="Var(s^2) / E[s^2]^2",
                title="orthogonal ReLU: spectrum widens with depth")
    fig.tight_layout()
    rel = ctx.figure(fig, "spectra", "Jacobian singular values: orthogonal tanh concentrated, Gaussian tanh and ReLU spread")
    if rel:
        figures.append(rel)
    ours = (f"tanh L={depth}: orthogonal spread {so:.2f} dec (median {med:.2g}), Gaussian {sg:.2f} dec; "
            f"ReLU var {rv[0]:.3g} -> {rv[-1]:.3g}")
    values = {"orthogonal_spread": so, "gaussian_spread": sg, "orthogonal_median": med,
              "relu_depths": relu_depths, "relu_rel_var": rv}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="pennington2017",
    title="Resurrecting the sigmoid: dynamical isometry",
    claim="At depth 100 an orthogonal tanh net at criticality has an input-output Jacobian whose singular "
          "values concentrate around 1 (dynamical isometry), a Gaussian one does not, and ReLU cannot: its "
          "spectrum widens with depth even with orthogonal weights.",
    citation="Pennington, Schoenholz & Ganguli (2017), Resurrecting the sigmoid in deep learning through "
             "dynamical isometry, NeurIPS",
    figure="Fig. 1 (spectral densities), Sec. 3 (ReLU)",
    setting="fully connected nets at init, sigma_w^2 = 1 tanh (orthogonal vs Gaussian), sigma_w^2 = 2 ReLU",
    scaled_down="width 400 (paper 1000; quick 64), zero biases instead of sigma_b^2 > 0, inputs of std 1/4, "
                "the spectrum at 8 inputs (quick 2): fits in seconds",
    quantity="10-90% spread (decades) of the singular values of J; Var(s^2)/E[s^2]^2 for ReLU vs depth",
    paper_value=None,
    criterion="orthogonal tanh spread <= 0.5 decade with median in [0.1, 10]; Gaussian tanh spread >= 2 decades; "
              "ReLU relative variance increasing in depth, deepest >= 3x shallowest",
    full={"width": 400, "depth": 100, "inputs": 8, "relu_depths": [10, 30, 100]},
    quick={"width": 64, "depth": 100, "inputs": 2, "relu_depths": [10, 30, 100]},
    measure=measure,
    order=6,
    needs_data=False,
)
