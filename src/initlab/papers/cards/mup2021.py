"""Card ``mup2021``: Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao
(2022, arXiv 2021), "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer"; Fig. 3 (an MLP trained with SGD on CIFAR-10: training loss
against log2 learning rate for widths 256 to 8192; under the standard parametrization the
optimal learning rate shifts with width, under muP it stays put and wider is always
better) and Fig. 1 (the same for Transformers with Adam).

Setting: the ``mlp`` family with 2 hidden ReLU layers of width w (784 -> w -> w -> 10, no
dropout), plain SGD (no momentum), batch 64, on Fashion-MNIST; SP is ``he_normal`` with
one learning rate for every parameter; muP is ``mup(base_width=W0)`` (TP5 Table 3 relative
to the narrowest width W0: zero readout; SGD learning rate x m for the input weights and
the biases, x 1 hidden, x 1/m readout, m = w / W0), trained with those per-parameter
learning rates (:mod:`initlab.schemes.mup`). The quantity is the last epoch's mean train
loss, averaged over seeds, on a grid of learning rates 2^k; a diverged model counts as
infinite loss. The optimum of a width is the grid point of lowest loss.

Scaled down: widths 32, 128 and 512 (paper: 256 to 8192; the same 16x range as 256 to
4096), 2,048 Fashion-MNIST training images for 2 epochs (64 steps; paper: CIFAR-10 for 20
epochs), learning rates 2^-6 to 2^1 in steps of one octave, 2 seeds: 96 models, to fit
the card's 10 minutes on 2 CPU cores (widths 64 to 1024 and 9 learning rates took over 8
minutes for less than half the grid on the shared machine under load). The paper's figure gives curves, not numbers: the card checks the direction
and size of the effect. Quick: widths 32 and 128, learning rates 2^-5 to 2^1 in steps of
two octaves, 1 seed, 512 images, 1 epoch (8 steps): only muP's optimum staying put is
judged at that size; SP's shift and "wider is better" are not.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from initlab.papers.card import Card, Check, Measured, spread
from initlab.papers.context import CardContext

SP = "he_normal"


def _mup(base: int) -> str:
    return f"mup(base_width={base})"


def _loss(cell: Any) -> float:
    """The last epoch's mean train loss; ``inf`` when the model diverged."""
    if str(cell.status) == "diverged" or not cell.epochs:
        return math.inf
    v = cell.epochs[-1].train_loss
    return float(v) if v is not None and math.isfinite(v) else math.inf


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    from initlab.engine.models import MLPSpec
    from initlab.study import StudyConfig

    widths = [int(w) for w in s["widths"]]
    log2_lrs = [int(k) for k in s["log2_lrs"]]
    mup = _mup(widths[0])
    models = tuple(MLPSpec(784, (w, w), 10, "relu", 0.0) for w in widths)
    cfg = StudyConfig(name="mup2021", schemes=(SP, mup), seeds=tuple(range(int(s["seeds"]))), models=models,
                      limit_train=int(s["limit_train"]), limit_val=int(s["limit_val"]),
                      train={"epochs": int(s["epochs"]), "optimizer": "sgd", "batch_size": 64,
                             "lr": [2.0 ** k for k in log2_lrs], "probe_size": 0})
    run = ctx.study(cfg, "lr_sweep")
    label = {m.label: w for m, w in zip(models, widths)}
    scheme_key = {SP: "SP", cfg.schemes[1]: "muP"}
    loss: dict[tuple[str, int, int], list[float]] = {}
    for c in run.cells:
        k = round(math.log2(float(c.train["lr"])))
        loss.setdefault((scheme_key[c.scheme], label[c.model], k), []).append(_loss(c))
    mean = {key: (spread(v).mean if all(math.isfinite(x) for x in v) else math.inf) for key, v in loss.items()}
    best: dict[tuple[str, int], tuple[int, float]] = {}
    for p in ("SP", "muP"):
        for w in widths:
            k = min(log2_lrs, key=lambda kk: (mean[(p, w, kk)], kk))
            best[(p, w)] = (k, mean[(p, w, k)])
    w0, w1 = widths[0], widths[-1]
    shift = {p: best[(p, w1)][0] - best[(p, w0)][0] for p in ("SP", "muP")}
    octaves = math.log2(w1 / w0)
    step = log2_lrs[1] - log2_lrs[0] if len(log2_lrs) > 1 else 1

    def opt(p: str) -> str:
        return ", ".join(f"w={w}: 2^{best[(p, w)][0]} (loss {best[(p, w)][1]:.3f})" for w in widths)

    q = ctx.quick
    checks = [
        Check("muP: the optimum stays", f"muP: log2 of the best lr moves by at most one grid step ({step}) from "
              f"width {w0} to {w1}", f"shift {shift['muP']:+d}; {opt('muP')}", abs(shift["muP"]) <= step),
        Check("SP: the optimum shifts", f"SP: the best lr at width {w1} is at least 4x below that at width {w0} "
              "(log2 shift <= -2)", f"shift {shift['SP']:+d}; {opt('SP')}", None if q else shift["SP"] <= -2,
              "quick: in 8 steps no learning rate of the grid is unstable yet, so SP's optimum cannot move" if q
              else ""),
        Check("muP: wider is better", f"muP: the best loss at width {w1} <= that at width {w0} + 0.02",
              f"{best[('muP', w1)][1]:.4f} vs {best[('muP', w0)][1]:.4f}",
              None if q else best[("muP", w1)][1] <= best[("muP", w0)][1] + 0.02,
              "quick: 8 steps are too few for the widths' losses to order" if q else ""),
    ]
    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    cmap = plt.get_cmap("viridis")
    finite = [v for v in mean.values() if math.isfinite(v)]
    top = min(max(finite) if finite else 3.0, 3.0)
    for ax, p in zip(axes, ("SP", "muP")):
        for i, w in enumerate(widths):
            ys = [mean[(p, w, k)] if math.isfinite(mean[(p, w, k)]) else math.nan for k in log2_lrs]
            color = cmap(i / max(1, len(widths) - 1))
            ax.plot(log2_lrs, ys, "o-", color=color, label=f"width {w}")
            ax.plot([best[(p, w)][0]], [best[(p, w)][1]], "*", ms=12, color=color)
        ax.set(xlabel="log2 learning rate", title=f"{p}: train loss after {int(s['epochs'])} epoch(s), SGD",
               ylim=(0, top * 1.05))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("train loss (last epoch)")
    fig.tight_layout()
    rel = ctx.figure(fig, "lr_transfer", "train loss against log2 learning rate for several widths, SP and muP")
    if rel:
        figures.append(rel)
    ours = (f"best log2 lr at widths {', '.join(map(str, widths))}: SP "
            f"{', '.join(str(best[('SP', w)][0]) for w in widths)} (shift {shift['SP']:+d}), muP "
            f"{', '.join(str(best[('muP', w)][0]) for w in widths)} (shift {shift['muP']:+d}); muP best loss "
            f"{best[('muP', w0)][1]:.3f} -> {best[('muP', w1)][1]:.3f}")
    values = {"widths": widths, "log2_lrs": log2_lrs, "width_octaves": octaves,
              "mean_train_loss": {f"{p}/w{w}/lr2^{k}": mean[(p, w, k)] for (p, w, k) in mean},
              "per_seed_train_loss": {f"{p}/w{w}/lr2^{k}": v for (p, w, k), v in loss.items()},
              "best_log2_lr": {f"{p}/w{w}": best[(p, w)][0] for (p, w) in best},
              "best_loss": {f"{p}/w{w}": best[(p, w)][1] for (p, w) in best},
              "shift": shift, "train_wall_s": run.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="mup2021",
    title="Tensor Programs V: muP transfers the learning rate across width",
    claim="Under muP the best learning rate of an MLP stays put as its width grows (and wider is better), while "
          "under the standard parametrization it shifts.",
    citation="Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao (2022), Tensor Programs V: "
             "Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer, arXiv:2203.03466",
    figure="Fig. 3 (MLP, SGD: training loss vs log2 learning rate across widths, SP vs muP); Fig. 1",
    setting="784 -> w -> w -> 10 ReLU MLP, plain SGD, batch 64, Fashion-MNIST; SP = he_normal, muP = "
            "mup(base_width = narrowest width) with its per-parameter learning rates",
    scaled_down="widths 32, 128, 512 (paper 256..8192), 2,048 images for 2 epochs = 64 steps (paper: CIFAR-10, 20 "
                "epochs), lr 2^-6..2^1 by octaves, 2 seeds; quick: widths 32, 128, lr 2^-5..2^1 by 2 octaves, 512 "
                "images, 1 epoch, 1 seed (only muP's shift judged)",
    quantity="last-epoch train loss (mean over seeds; diverged = inf) per width and learning rate; the best lr's "
             "log2 shift from the narrowest to the widest width",
    paper_value=None,
    criterion="muP: best-lr shift within one grid step; SP: best lr at the widest width >= 4x below the narrowest's; "
              "muP: widest best loss <= narrowest's + 0.02",
    full={"widths": [32, 128, 512], "log2_lrs": list(range(-6, 2)), "seeds": 2, "limit_train": 2048,
          "limit_val": 512, "epochs": 2},
    quick={"widths": [32, 128], "log2_lrs": [-5, -3, -1, 1], "seeds": 1, "limit_train": 512, "limit_val": 128,
           "epochs": 1},
    measure=measure,
    order=10,
)
