"""Card ``glorot2010``: Glorot & Bengio (2010), "Understanding the difficulty of training
deep feedforward neural networks", AISTATS; Fig. 6 (activation values per layer at init,
tanh), Fig. 7 (back-propagated gradients per layer at init), Sec. 4.2.1 (the average
singular value of the layer Jacobians ``J_i = dz^{i+1}/dz^i``: 0.5 under the standard
init, 0.8 under the normalized one) and Fig. 2 (a sigmoid net's top hidden layer is driven
to saturation at 0 early in training).

Setting: 5 tanh hidden layers of 1000 units as in the paper (quick: 200) at init, under the
"standard" ``U(+-1/sqrt(n))`` (``uniform_recipe``) and the normalized
``U(+-sqrt(6/(n_in+n_out)))`` (``glorot_uniform``). Activations and gradients come from the
probe (``initlab.probe``) on standard Gaussian inputs (the paper used Shapeset images).
Sigmoid: 4 hidden layers of 256 (paper: 1000) under the standard init, SGD lr 0.1 batch 32
on 10,000 Fashion-MNIST images (paper: Shapeset, batch 10) for 2 epochs, 2 seeds; the top
hidden layer's mean activation is recorded on 512 validation images after each epoch
(the paper plots it continuously over 100 epochs).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from initlab.papers.card import Card, Check, Measured, spread
from initlab.papers.context import CardContext

STANDARD, NORMALIZED = "uniform_recipe", "glorot_uniform"


def _layer_jacobian_svs(width: int, depth: int, scheme: str, inputs: int, seed: int = 0) -> list[float]:
    """Mean singular value of each ``dz^{i+1}/dz^i = diag(tanh'(a^{i+1})) W^{i+1}`` (hidden
    layers 2..depth), averaged over *inputs* Gaussian inputs."""
    import initlab
    from initlab.engine.models import MLPSpec

    model = MLPSpec(784, (width,) * depth, 10, "tanh", 0.0).build(seed=seed)
    initlab.apply(model, scheme, seed=seed)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)][:depth]
    x = torch.randn(inputs, 784, generator=torch.Generator().manual_seed(seed + 7))
    out: list[float] = []
    with torch.no_grad():
        z = torch.tanh(linears[0](x))
        for lin in linears[1:]:
            a = lin(z)
            d = 1.0 - torch.tanh(a) ** 2  # tanh'
            svs = [torch.linalg.svdvals(d[i, :, None] * lin.weight).mean().item() for i in range(inputs)]
            out.append(float(np.mean(svs)))
            z = torch.tanh(a)
    return out


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    import initlab
    from initlab.engine.models import MLPSpec
    from initlab.study import StudyConfig

    width, depth = int(s["width"]), 5
    spec = MLPSpec(784, (width,) * depth, 10, "tanh", 0.0)
    probe = initlab.probe(spec, None, [STANDARD, NORMALIZED], n_inputs=int(s["inputs"]), jacobian=False)
    act, grad = {}, {}
    for sp in probe:
        hidden = sp.layers[:depth]
        act[sp.scheme] = [lp.post_std for lp in hidden]
        grad[sp.scheme] = [lp.grad_norm for lp in hidden]
    act_ratio = {k: v[-1] / v[0] for k, v in act.items()}
    grad_ratio = {k: v[0] / v[-1] for k, v in grad.items()}
    jac = {k: float(np.mean(_layer_jacobian_svs(width, depth, k, int(s["jacobian_inputs"]))))
           for k in (STANDARD, NORMALIZED)}
    checks = [
        Check("activations shrink (standard)", "standard init: std of layer-5 tanh outputs / layer 1 < 0.5",
              f"{act_ratio[STANDARD]:.3g}", act_ratio[STANDARD] < 0.5),
        Check("activations kept (normalized)", "normalized init: that ratio > 0.7",
              f"{act_ratio[NORMALIZED]:.3g}", act_ratio[NORMALIZED] > 0.7),
        Check("gradients shrink toward the input (standard)",
              "standard init: ||dL/dz|| at layer 1 / at layer 5 < 0.5",
              f"{grad_ratio[STANDARD]:.3g}", grad_ratio[STANDARD] < 0.5),
        Check("gradients kept (normalized)", "normalized init: that ratio in [0.6, 1.6]",
              f"{grad_ratio[NORMALIZED]:.3g}", 0.6 <= grad_ratio[NORMALIZED] <= 1.6),
        Check("Jacobian singular values", "mean singular value of the layer Jacobians: standard 0.5 +- 0.1, "
              "normalized 0.8 +- 0.1 (paper: 0.5, 0.8)",
              f"standard {jac[STANDARD]:.3f}, normalized {jac[NORMALIZED]:.3f}",
              abs(jac[STANDARD] - 0.5) <= 0.1 and abs(jac[NORMALIZED] - 0.8) <= 0.1),
    ]
    values: dict[str, Any] = {"activation_std": act, "gradient_norm": grad, "activation_ratio": act_ratio,
                              "gradient_ratio": grad_ratio, "jacobian_mean_sv": jac}

    # the sigmoid top layer during training
    sig = MLPSpec(784, (int(s["sig_width"]),) * 4, 10, "sigmoid", 0.0)
    cfg = StudyConfig(name="glorot2010-sigmoid", schemes=(STANDARD,), seeds=tuple(range(int(s["seeds"]))),
                      models=(sig,), limit_train=int(s["limit_train"]), limit_val=512,
                      train={"epochs": int(s["epochs"]), "optimizer": "sgd", "lr": 0.1, "batch_size": 32,
                             "probe_size": 512})
    run = ctx.study(cfg, "sigmoid")
    tops = [[e.activations[-2].post_mean for e in c.epochs] for c in run.cells]
    init_top = spread([t[0] for t in tops])
    min_top = spread([min(t[1:]) for t in tops])
    judged = None if ctx.quick else min_top.mean <= 0.1
    checks.append(Check("sigmoid top layer saturates", "standard init, sigmoid: the top hidden layer's mean "
                        "activation (about 0.5 at init) falls to <= 0.1 at an epoch end (mean over seeds)",
                        f"init {init_top}, lowest epoch-end {min_top}", judged,
                        "quick: too few steps to judge" if judged is None else ""))
    values.update(sigmoid_top_mean=tops, sigmoid_init=init_top.mean, sigmoid_min=min_top.mean,
                  sigmoid_min_std=min_top.std)

    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    layers = list(range(1, depth + 1))
    for k, lab in ((STANDARD, "standard U(+-1/sqrt n)"), (NORMALIZED, "normalized (Glorot)")):
        axes[0].plot(layers, act[k], "o-", label=lab)
        axes[1].plot(layers, grad[k], "o-", label=lab)
    axes[0].set(xlabel="hidden layer", ylabel="std of tanh output", title="activations at init")
    axes[1].set(xlabel="hidden layer", ylabel="||dL/dz||", yscale="log", title="back-propagated gradients")
    axes[0].legend(fontsize=8)
    for t in tops:
        axes[2].plot(range(len(t)), t, "o-", color="tab:red", alpha=0.7)
    axes[2].set(xlabel="epoch", ylabel="mean activation", ylim=(0, 1), title="sigmoid: top hidden layer")
    fig.tight_layout()
    rel = ctx.figure(fig, "layers", "Glorot & Bengio: activations, gradients and the sigmoid top layer")
    if rel:
        figures.append(rel)
    ours = (f"act 5/1: {act_ratio[STANDARD]:.2f} vs {act_ratio[NORMALIZED]:.2f}; grad 1/5: "
            f"{grad_ratio[STANDARD]:.2f} vs {grad_ratio[NORMALIZED]:.2f}; mean sv {jac[STANDARD]:.2f} vs "
            f"{jac[NORMALIZED]:.2f}; sigmoid top {init_top.mean:.2f} -> {min_top.mean:.2f}")
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="glorot2010",
    title="Understanding the difficulty of training deep feedforward networks",
    claim="Under U(+-1/sqrt(n)) the activations and back-propagated gradients of a 5-layer tanh net shrink "
          "across layers and its layer Jacobians have mean singular value about 0.5 (0.8 under the normalized "
          "init, which keeps both); a sigmoid net's top layer saturates at 0 early in training.",
    citation="Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural "
             "networks, AISTATS",
    figure="Fig. 6, Fig. 7, Sec. 4.2.1, Fig. 2",
    setting="5 tanh hidden layers, standard vs normalized init, at init; sigmoid 4 hidden layers, SGD",
    scaled_down="width 1000 as in the paper for the tanh net (quick: the Jacobian at 1 input); Gaussian inputs instead of Shapeset; "
                "sigmoid net width 256, 10,000 Fashion-MNIST images, 2 epochs, 2 seeds (quick: 1,000 images, "
                "1 epoch, 1 seed, not judged)",
    quantity="per-layer activation std and ||dL/dz|| ratios, mean singular value of the layer Jacobians, "
             "the sigmoid top layer's mean activation",
    paper_value="mean sv 0.5 (standard) vs 0.8 (normalized); top sigmoid layer ~0",
    criterion="activation ratio < 0.5 vs > 0.7; gradient ratio < 0.5 vs in [0.6, 1.6]; mean sv 0.5 +- 0.1 and "
              "0.8 +- 0.1; sigmoid top mean <= 0.1 at an epoch end",
    full={"width": 1000, "inputs": 512, "jacobian_inputs": 16, "sig_width": 256, "seeds": 2,
          "limit_train": 10000, "epochs": 2},
    quick={"width": 1000, "inputs": 256, "jacobian_inputs": 1, "sig_width": 64, "seeds": 1,
           "limit_train": 1000, "epochs": 1},
    measure=measure,
    order=3,
)
