"""Card ``xiao2018``: Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington (2018),
"Dynamical Isometry and a Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla
Convolutional Neural Networks", ICML; Sec. 2.4 (the delta-orthogonal kernel: an
orthogonal matrix at the spatial centre tap, zeros elsewhere) and Fig. 2 / Fig. 4 (on the
critical line ``sigma_w^2 = 1``, ``sigma_b -> 0``, a tanh CNN with delta-orthogonal kernels
keeps the singular values of its input-output Jacobian concentrated near 1 at any depth;
with i.i.d. Gaussian kernels of the same variance the spectrum spreads out and its small
singular values collapse geometrically with depth).

Setting: a vanilla tanh CNN at initialization, no training: the ``cnn`` family's conv stack
without its pooling head (input -> (conv3x3 tanh) x depth, C channels, padding 1, zero
biases, as ``benchmarks/evidence_delta_orthogonal.py`` builds it), so the Jacobian is the
square ``(C H W) x (C H W)`` map the paper studies. Gaussian is ``normal_recipe``
(``N(0, 1/fan_in)``, ``fan_in = 9 C``, i.e. ``sigma_w^2 = 1``). Inputs are N(0, 0.01^2)
noise: the critical fixed point ``q* ~ 0`` of ``sigma_b = 0`` (with unit-variance inputs
the first layers saturate and isometry does not hold, as the paper says too). The weights
are drawn by :func:`initlab.apply` (seed 0) and the Jacobian is the chain-rule product of
the layers' dense matrices, in float64 (:func:`jacobian`; the probe's ``torch.func.jacrev``
gives the same matrix in float32, whose rounding floor of about 1e-9 hides the Gaussian
net's smallest singular values, and runs the 100-layer backward under vmap far slower on
the CPU), at 2 inputs.

Training (the paper's Fig. 1, scaled down): the ``cnn`` family itself (conv stack, global
average pooling, linear head) at depth 100, 8 channels, tanh, zero biases, the first two
layers downsampling by stride 2 (28x28 -> 14x14 -> 7x7, so 98 of the 100 layers run at 7x7),
trained on Fashion-MNIST through the study engine under delta-orthogonal and Gaussian
(``normal_recipe``), 2 seeds each: SGD with momentum 0.9, lr 0.01 (the paper trains with
SGD; momentum and this rate are the he2015 card's), batch 64, 6,400 training images for
3 epochs (300 steps), 1,000 validation images. The criterion was written before the
full-size run: delta-orthogonal trains (no seed diverges, mean final train loss <= 0.75
ln 10 = 1.73, mean validation accuracy >= 40%), Gaussian does not (every seed diverges or
ends with train loss >= 0.9 ln 10 = 2.07 and validation accuracy <= 20%).

Scaled down: the paper goes to 10,000 layers with 256+ channels on 32x32 images, trained
for many epochs; here depths 100 and 200 with 8 channels at 4x4 for the spectra (a 128 x
128 Jacobian; the README's evidence uses 8x8), and the 100-layer, 8-channel net above for
300 SGD steps, a few minutes on 2 CPU cores. (Until 2026-12-02 the card checked the spectra
only.) Quick: spectra at depth 100 only, 4 channels at 4x4 (64 x 64), 1 input; training 1
seed, 256 images, 1 epoch, not judged.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

import math

from initlab.papers.card import Card, Check, Measured, Spread, spread
from initlab.papers.context import CardContext

DELTA, GAUSS = "delta_orthogonal", "normal_recipe"
NEAR = (0.5, 1.5)
LN10 = math.log(10.0)
LABELS = {DELTA: "delta-orthogonal", GAUSS: "Gaussian"}


def conv_stack(depth: int, channels: int, size: int) -> torch.nn.Module:
    """The ``cnn`` family's body: input -> (conv3x3 tanh) x depth, no pooling head."""
    from initlab.engine.families import spec_from_dict

    model = spec_from_dict({"kind": "cnn", "depth": depth, "channels": channels, "activation": "tanh",
                            "input_shape": [channels, size, size]}).build()
    return torch.nn.Sequential(*list(model.children())[:-3])  # drop gap, flatten, head


def conv_matrix(layer: torch.nn.Conv2d, shape: tuple[int, int, int]) -> torch.Tensor:
    """The convolution (without its bias) as a dense ``(C' H' W') x (C H W)`` float64 matrix:
    the layer applied to every basis image. Each output of a basis image is one weight (or
    0), so the float32 convolution builds the matrix exactly."""
    import torch.nn.functional as F

    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=layer.weight.dtype).reshape(n, *shape)
    with torch.no_grad():
        cols = F.conv2d(basis, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    return cols.reshape(n, -1).T.double()


def jacobian(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input-output Jacobian ``d out / d x`` of the conv stack at one input ``x`` (C, H, W),
    a ``(C H W) x (C H W)`` float64 matrix, by the chain rule layer by layer: ``h = M a + b``
    at a convolution (``M`` its dense matrix, :func:`conv_matrix`), ``J <- M J``; ``a =
    tanh(h)``, ``J <- diag(1 - tanh(h)^2) J`` at a tanh. Exact (the product
    ``torch.func.jacfwd`` computes) and, in float64, keeps the smallest singular values
    above the rounding floor."""
    shape = tuple(x.shape)
    a = x.reshape(-1).double()
    jac = torch.eye(a.numel(), dtype=torch.float64)
    h = a
    for layer in model:
        if isinstance(layer, torch.nn.Conv2d):
            m = conv_matrix(layer, shape)  # type: ignore[arg-type]
            bias = layer.bias.detach().double().repeat_interleave(m.shape[0] // layer.out_channels) \
                if layer.bias is not None else 0.0
            h = m @ a + bias
            jac = m @ jac
            a = h
        elif isinstance(layer, torch.nn.Tanh):
            jac = (1.0 - torch.tanh(h) ** 2)[:, None] * jac
            a = torch.tanh(h)
    return jac


def _spectra(depth: int, channels: int, size: int, inputs: int) -> dict[str, np.ndarray]:
    import initlab

    x = 0.01 * torch.randn(inputs, channels, size, size, generator=torch.Generator().manual_seed(0))
    out = {}
    for scheme in (DELTA, GAUSS):
        model = conv_stack(depth, channels, size)
        initlab.apply(model, scheme, seed=0)
        sv = [torch.linalg.svdvals(jacobian(model, xi)).numpy() for xi in x]
        out[scheme] = np.concatenate(sv)
    return out


def _near(sv: np.ndarray) -> float:
    return float(np.mean((sv > NEAR[0]) & (sv < NEAR[1])))


def _spread(sv: np.ndarray) -> float:
    """Decades between the 10th and 90th percentile of the singular values."""
    logs = np.log10(np.maximum(sv, 1e-300))
    return float(np.percentile(logs, 90) - np.percentile(logs, 10))


def _final(cell: Any) -> tuple[float, float]:
    """The last epoch's (train loss, validation accuracy); (inf, 0.1) for a diverged model."""
    eps = [e for e in cell.epochs if e.epoch >= 1]
    if str(cell.status) == "diverged" or not eps or not math.isfinite(eps[-1].train_loss):
        return math.inf, 0.1
    return float(eps[-1].train_loss), float(eps[-1].val_acc)


def _spread_inf(values: list[float]) -> Spread:
    """:func:`spread`, with an infinite mean (NaN std) when any seed diverged."""
    if all(math.isfinite(v) for v in values):
        return spread(values)
    return Spread(math.inf, math.nan, len(values))


def _train(s: Mapping[str, Any], ctx: CardContext) -> tuple[list[Check], dict[str, Any], Any]:
    """Train the ``train_depth``-layer tanh CNN under both inits (module docstring)."""
    from initlab.engine.convnets import CNNSpec
    from initlab.study import StudyConfig

    model = CNNSpec(depth=int(s["train_depth"]), channels=int(s["train_channels"]), activation="tanh",
                    downsample=tuple(int(d) for d in s["downsample"]), bias=False)
    cfg = StudyConfig(name="xiao2018", schemes=(DELTA, GAUSS), seeds=tuple(range(int(s["seeds"]))),
                      models=(model,), limit_train=int(s["limit_train"]), limit_val=int(s["limit_val"]),
                      train={"epochs": int(s["epochs"]), "optimizer": "sgd", "lr": float(s["lr"]), "momentum": 0.9,
                             "batch_size": int(s["batch_size"]), "probe_size": 0, "log_every": 5})
    run = ctx.study(cfg, "train")
    loss: dict[str, list[float]] = {DELTA: [], GAUSS: []}
    acc: dict[str, list[float]] = {DELTA: [], GAUSS: []}
    diverged = {DELTA: 0, GAUSS: 0}
    for c in run.cells:
        fl, fa = _final(c)
        loss[c.scheme].append(fl)
        acc[c.scheme].append(fa)
        diverged[c.scheme] += str(c.status) == "diverged"
    fl_s = {k: _spread_inf(v) for k, v in loss.items()}
    fa_s = {k: spread(v) for k, v in acc.items()}
    n = len(cfg.seeds)
    q = ctx.quick
    note = "quick: 1 epoch on 256 images is too short to judge training" if q else ""

    def fmt(k: str) -> str:
        return (f"train loss {fl_s[k]}, val acc {100 * fa_s[k].mean:.1f}% +- {100 * fa_s[k].std:.1f}"
                + (f" ({diverged[k]} of {n} diverged)" if diverged[k] else ""))

    d_ok = diverged[DELTA] == 0 and fl_s[DELTA].mean <= 0.75 * LN10 and fa_s[DELTA].mean >= 0.40
    g_ok = all((not math.isfinite(fl)) or (fl >= 0.9 * LN10 and fa <= 0.20) for fl, fa in zip(loss[GAUSS], acc[GAUSS]))
    checks = [
        Check(f"{model.depth} layers: delta-orthogonal trains",
              f"depth {model.depth}, delta-orthogonal: no seed diverges, mean final train loss <= 0.75 ln 10 = 1.73 "
              "and mean validation accuracy >= 40%", fmt(DELTA), None if q else d_ok, note),
        Check(f"{model.depth} layers: Gaussian does not train",
              f"depth {model.depth}, Gaussian N(0, 1/fan_in): every seed diverges or ends with train loss >= 0.9 "
              "ln 10 = 2.07 and validation accuracy <= 20%", fmt(GAUSS), None if q else g_ok, note),
    ]
    plt = ctx.pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 3.4))
    for k, color in ((DELTA, "tab:red"), (GAUSS, "tab:blue")):
        for i, c in enumerate(run.select(scheme=k)):
            steps = [st for st in c.steps if math.isfinite(st.loss)]
            ax.plot([st.step for st in steps], [st.loss for st in steps], "-", color=color, alpha=0.7,
                    label=LABELS[k] if i == 0 else None)
    ax.axhline(LN10, color="gray", ls=":", lw=1)
    ax.set(xlabel="step", ylabel="train loss", ylim=(0, 3.0),
           title=f"{model.label}: {model.depth} tanh conv layers, SGD")
    ax.legend(fontsize=8)
    fig.tight_layout()
    values = {"model": model.label, "final_train_loss": loss, "final_val_acc": acc, "diverged": diverged,
              "train_loss_spread": {k: vars(v) for k, v in fl_s.items()},
              "val_acc_spread": {k: vars(v) for k, v in fa_s.items()}, "train_wall_s": run.wall_s}
    return checks, values, fig


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    depths = [int(d) for d in s["depths"]]
    c, size, k = int(s["channels"]), int(s["size"]), int(s["inputs"])
    spectra = {d: _spectra(d, c, size, k) for d in depths}
    stats = {d: {sch: {"near_1": _near(sv), "spread": _spread(sv), "median": float(np.median(sv)),
                       "min": float(sv.min()), "max": float(sv.max())} for sch, sv in sp.items()}
             for d, sp in spectra.items()}
    dl = ", ".join(map(str, depths))
    dd = [stats[d][DELTA] for d in depths]
    gg = [stats[d][GAUSS] for d in depths]
    checks = [
        Check("delta-orthogonal concentrated near 1",
              f"delta-orthogonal, depth {dl}: >= 90% of the singular values in (0.5, 1.5), median in [0.8, 1.2] "
              "and 10-90% spread <= 0.2 decade",
              "; ".join(f"L={d}: {100 * x['near_1']:.1f}% in (0.5, 1.5), median {x['median']:.3f}, spread "
                        f"{x['spread']:.3f} dec" for d, x in zip(depths, dd)),
              all(x["near_1"] >= 0.9 and 0.8 <= x["median"] <= 1.2 and x["spread"] <= 0.2 for x in dd)),
        Check("Gaussian spread out",
              f"Gaussian N(0, 1/fan_in), same depths: <= 10% of the singular values in (0.5, 1.5) and 10-90% "
              "spread >= 2 decades",
              "; ".join(f"L={d}: {100 * x['near_1']:.1f}% in (0.5, 1.5), spread {x['spread']:.2f} dec, median "
                        f"{x['median']:.2g}" for d, x in zip(depths, gg)),
              all(x["near_1"] <= 0.1 and x["spread"] >= 2.0 for x in gg)),
    ]
    if len(depths) > 1:
        checks.append(Check(
            "Gaussian collapses with depth",
            f"Gaussian: the median singular value falls with depth ({dl}) by >= 10x from the shallowest to the deepest",
            ", ".join(f"L={d}: {x['median']:.3g}" for d, x in zip(depths, gg)),
            gg[-1]["median"] * 10 <= gg[0]["median"]))
    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, len(depths), figsize=(4.6 * len(depths), 3.3), squeeze=False)
    for ax, d in zip(axes[0], depths):
        logs = {sch: np.log10(np.maximum(spectra[d][sch], 1e-300)) for sch in (DELTA, GAUSS)}
        lo = min(float(v.min()) for v in logs.values())
        bins = np.linspace(min(lo, -1.0) - 0.5, 0.5, 61)  # shared bins: delta-orthogonal's mass is one tall bar
        for sch, label, color in ((DELTA, "delta-orthogonal", "tab:red"), (GAUSS, "Gaussian", "tab:blue")):
            ax.hist(logs[sch], bins=bins, alpha=0.6, color=color, label=label)
        ax.axvline(0.0, color="gray", ls=":", lw=1)
        ax.set(xlabel="log10 singular value of J", ylabel="count",
               title=f"tanh CNN, depth {d}, {c} ch at {size}x{size}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    rel = ctx.figure(fig, "spectra", "Jacobian singular values of deep tanh CNNs: delta-orthogonal vs Gaussian")
    if rel:
        figures.append(rel)
    train_checks, train_values, train_fig = _train(s, ctx)
    checks += train_checks
    rel = ctx.figure(train_fig, "train_loss", "train loss of a 100-layer tanh CNN under delta-orthogonal and Gaussian")
    if rel:
        figures.append(rel)
    tl, ta = train_values["train_loss_spread"], train_values["val_acc_spread"]
    ours = "; ".join(f"L={d}: delta-orth {100 * stats[d][DELTA]['near_1']:.0f}% in (0.5,1.5) (median "
                     f"{stats[d][DELTA]['median']:.3f}), Gaussian {100 * stats[d][GAUSS]['near_1']:.0f}% (median "
                     f"{stats[d][GAUSS]['median']:.2g})" for d in depths)
    ours += (f"; trained L={s['train_depth']}: loss {tl[DELTA]['mean']:.3g} vs {tl[GAUSS]['mean']:.3g}, val acc "
             f"{100 * ta[DELTA]['mean']:.1f}% vs {100 * ta[GAUSS]['mean']:.1f}% (delta-orth vs Gaussian)")
    values = {"stats": {str(d): v for d, v in stats.items()}, "jacobian_size": c * size * size,
              "training": train_values}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="xiao2018",
    title="Dynamical isometry of CNNs: the delta-orthogonal kernel",
    claim="On the critical line, a vanilla tanh CNN of 100+ layers with delta-orthogonal kernels has input-output "
          "Jacobian singular values concentrated near 1 and trains, while Gaussian kernels of the same variance "
          "spread them over many decades, collapsing with depth, and the net does not train.",
    citation="Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington (2018), Dynamical Isometry and a Mean Field Theory "
             "of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks, ICML",
    figure="Sec. 2.4, Fig. 2 and Fig. 4 (Jacobian spectra), Fig. 1 (training very deep tanh CNNs)",
    setting="tanh conv stack (3x3, padding 1, zero biases) at init, sigma_w^2 = 1, inputs at q* ~ 0 (std 0.01); "
            "a 100-layer tanh CNN trained with SGD on Fashion-MNIST",
    scaled_down="spectra: depths 100 and 200, 8 channels at 4x4 (a 128 x 128 Jacobian) at 2 inputs (paper: up to "
                "10,000 layers, wide); training: depth 100, 8 channels, stride 2 at layers 1 and 2 (7x7 after), "
                "6,400 images, 3 epochs at batch 64 (300 SGD steps), 2 seeds; quick: spectra at depth 100, 4 "
                "channels, 1 input; training 256 images, 1 epoch, 1 seed (not judged)",
    quantity="fraction of Jacobian singular values in (0.5, 1.5), their median and 10-90% spread (decades); final "
             "train loss and validation accuracy after training, mean and std over seeds",
    paper_value=None,
    criterion="delta-orthogonal: >= 90% in (0.5, 1.5), median in [0.8, 1.2], spread <= 0.2 decade at every depth; "
              "Gaussian: <= 10% in (0.5, 1.5), spread >= 2 decades, median falling >= 10x from depth 100 to 200; "
              "trained at depth 100: delta-orthogonal no divergence, mean train loss <= 1.73, val acc >= 40%; "
              "Gaussian every seed diverged or train loss >= 2.07 and val acc <= 20%",
    full={"depths": [100, 200], "channels": 8, "size": 4, "inputs": 2,
          "train_depth": 100, "train_channels": 8, "downsample": [1, 2], "limit_train": 6400, "limit_val": 1000,
          "epochs": 3, "batch_size": 64, "lr": 0.01, "seeds": 2},
    quick={"depths": [100], "channels": 4, "size": 4, "inputs": 1,
           "train_depth": 100, "train_channels": 8, "downsample": [1, 2], "limit_train": 256, "limit_val": 256,
           "epochs": 1, "batch_size": 64, "lr": 0.01, "seeds": 1},
    measure=measure,
    order=8,
)
