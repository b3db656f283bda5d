"""Card ``saxe2014``: Saxe, McClelland & Ganguli (2014), "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks", ICLR; Fig. 6 / Sec. 4-5 (with the
learning rate optimized per depth, the time to a training criterion grows with depth under
scaled Gaussian init and stays flat under random orthogonal init) and Sec. 5 (the product
of Gaussian matrices scaled to preserve the norm on average has singular values spread
over orders of magnitude, growing with depth; a product of orthogonal matrices has every
singular value 1: dynamical isometry).

Setting: deep linear nets (``kind = "linear"``: no activation, no bias) of width 128 (the
paper: 1000 on MNIST) trained with plain SGD (as the paper) on 10,000 Fashion-MNIST images
for 3 epochs, batch 128, at depths 2, 8 and 32 Linear layers and learning rates 0.01, 0.03
and 0.1, one best per depth (the fewest steps to the criterion), 2 seeds. Learning time is
the first logged step (every 10) at which the windowed training loss is below 0.7.
Scaled Gaussian is ``lecun_normal`` (variance 1/N). The spectra of products use square
256 x 256 layers initialized by ``initlab.apply`` and multiplied in float64. Quick: the
spectra in full, training at depths 2 and 8, one learning rate, 1 seed, 2,000 images, not
judged.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from initlab.papers.card import Card, Check, Measured, spread
from initlab.papers.context import CardContext

ORTH, GAUSS = "orthogonal", "lecun_normal"
THRESHOLD = 0.7


def _product_svs(scheme: str, depth: int, width: int, seed: int = 0) -> np.ndarray:
    import initlab
    from initlab.engine.models import LinearSpec

    model = LinearSpec(depth=depth, width=width, in_features=width, out_features=width).build(seed=seed)
    initlab.apply(model, scheme, seed=seed)
    p = torch.eye(width, dtype=torch.float64)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            p = m.weight.detach().to(torch.float64) @ p
    return torch.linalg.svdvals(p).numpy()


def _time_to(steps: list[Any], threshold: float) -> float:
    for st in steps:
        if math.isfinite(st.loss) and st.loss < threshold:
            return float(st.step)
    return math.inf


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    from initlab.engine.models import LinearSpec
    from initlab.study import StudyConfig

    prod_depths = [int(d) for d in s["product_depths"]]
    pw = int(s["product_width"])
    svs = {k: [_product_svs(k, d, pw) for d in prod_depths] for k in (ORTH, GAUSS)}
    logstd = {k: [float(np.std(np.log10(v))) for v in vs] for k, vs in svs.items()}
    orth_err = max(float(np.max(np.abs(v - 1.0))) for v in svs[ORTH])
    checks = [
        Check("orthogonal products are isometries", "every singular value of a product of orthogonal layers "
              "within 1e-4 of 1 at every depth (float32 weights, each orthogonal to ~1e-7, multiplied in float64)",
              f"max |s - 1| = {orth_err:.2g}", orth_err <= 1e-4),
        Check("Gaussian products spread", "std of log10 singular values of a Gaussian product increases with "
              f"depth ({', '.join(map(str, prod_depths))}) and exceeds 0.5 decade at the deepest",
              ", ".join(f"{d}: {v:.3f}" for d, v in zip(prod_depths, logstd[GAUSS])),
              all(a < b for a, b in zip(logstd[GAUSS], logstd[GAUSS][1:])) and logstd[GAUSS][-1] > 0.5),
    ]
    depths = [int(d) for d in s["depths"]]
    lrs = [float(v) for v in s["lrs"]]
    models = tuple(LinearSpec(depth=d, width=int(s["width"])) for d in depths)
    cfg = StudyConfig(name="saxe2014", schemes=(ORTH, GAUSS), seeds=tuple(range(int(s["seeds"]))), models=models,
                      limit_train=int(s["limit_train"]), limit_val=500,
                      train={"epochs": int(s["epochs"]), "optimizer": "sgd", "lr": lrs if len(lrs) > 1 else lrs[0],
                             "batch_size": 128, "log_every": 10, "probe_size": 0, "hist_bins": 8})
    run = ctx.study(cfg, "train")
    best: dict[str, list[float]] = {ORTH: [], GAUSS: []}
    best_lr: dict[str, list[float]] = {ORTH: [], GAUSS: []}
    table: dict[str, dict[str, Any]] = {}
    for spec, d in zip(models, depths):
        for k in (ORTH, GAUSS):
            times = {}
            for lr in lrs:
                cells = [c for c in run.select(scheme=k, model=spec.label) if float(c.train["lr"]) == lr]
                times[lr] = float(np.mean([_time_to(c.steps, THRESHOLD) for c in cells]))
            lr_best = min(times, key=lambda v: times[v])
            best[k].append(times[lr_best])
            best_lr[k].append(lr_best)
            table[f"{k}/depth{d}"] = {str(lr): t for lr, t in times.items()}
    growth = {k: best[k][-1] / best[k][0] if best[k][0] > 0 else math.inf for k in (ORTH, GAUSS)}
    note = "quick: 1 seed, few steps, not judged" if ctx.quick else ""
    checks += [
        Check("orthogonal: learning time flat in depth", f"orthogonal: best learning time at depth {depths[-1]} "
              f"<= 2x that at depth {depths[0]}",
              f"{', '.join(f'{d}: {t:g}' for d, t in zip(depths, best[ORTH]))} steps (x{growth[ORTH]:.2g})",
              None if ctx.quick else growth[ORTH] <= 2.0, note),
        Check("Gaussian: learning time grows", f"scaled Gaussian: best learning time at depth {depths[-1]} >= 2x "
              f"that at depth {depths[0]} (never reaching the criterion counts as infinite)",
              f"{', '.join(f'{d}: {t:g}' for d, t in zip(depths, best[GAUSS]))} steps (x{growth[GAUSS]:.2g})",
              None if ctx.quick else growth[GAUSS] >= 2.0, note),
    ]
    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, lab in ((ORTH, "orthogonal"), (GAUSS, "scaled Gaussian")):
        axes[0].plot(prod_depths, logstd[k], "o-", label=lab)
        finite = [(d, t) for d, t in zip(depths, best[k]) if math.isfinite(t)]
        axes[1].plot([d for d, _ in finite], [t for _, t in finite], "o-", label=lab)
    axes[0].set(xscale="log", xlabel="layers in the product", ylabel="std of log10 s", title="singular values of W_L...W_1")
    axes[1].set(xscale="log", xlabel="depth", ylabel=f"steps to loss < {THRESHOLD}", title="learning time (best lr)")
    axes[0].set_xticks(prod_depths, [str(d) for d in prod_depths])
    axes[1].set_xticks(depths, [str(d) for d in depths])
    for ax in axes:
        ax.minorticks_off()
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    rel = ctx.figure(fig, "depth", "Saxe et al.: spectra of products and learning time vs depth")
    if rel:
        figures.append(rel)
    ours = (f"log-sv std at {prod_depths[-1]}: Gaussian {logstd[GAUSS][-1]:.2f}, orthogonal {logstd[ORTH][-1]:.1e}; "
            f"time {depths[0]}->{depths[-1]}: orthogonal x{growth[ORTH]:.2g}, Gaussian x{growth[GAUSS]:.2g}")
    values = {"product_depths": prod_depths, "log10_sv_std": logstd, "orthogonal_max_err": orth_err,
              "depths": depths, "lrs": lrs, "best_time": best, "best_lr": best_lr, "times": table,
              "growth": growth, "train_wall_s": run.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="saxe2014",
    title="Exact solutions of learning in deep linear networks",
    claim="With the learning rate tuned per depth, deep linear nets learn in a time independent of depth under "
          "orthogonal init and growing with depth under scaled Gaussian init, whose products' singular values spread.",
    citation="Saxe, McClelland & Ganguli (2014), Exact solutions to the nonlinear dynamics of learning in deep "
             "linear neural networks, ICLR",
    figure="Fig. 6, Sec. 5",
    setting="deep linear nets, plain SGD, learning rate optimized per depth",
    scaled_down="width 128, depths 2/8/32, 3 learning rates, 10,000 Fashion-MNIST images for 3 epochs, 2 seeds "
                "(paper: width 1000 on MNIST, depth to 100); quick: depths 2/8, 1 lr, 1 seed (not judged)",
    quantity="std of log10 singular values of products; steps to windowed train loss < 0.7 at the best lr",
    paper_value=None,
    criterion="orthogonal products: |s-1| <= 1e-4; Gaussian log-sv std increasing, > 0.5 at depth 64; learning "
              "time depth 32 / depth 2: orthogonal <= 2, Gaussian >= 2",
    full={"product_width": 256, "product_depths": [1, 4, 16, 64], "depths": [2, 8, 32], "lrs": [0.01, 0.03, 0.1], "width": 128,
          "seeds": 2, "limit_train": 10000, "epochs": 3},
    quick={"product_width": 128, "product_depths": [1, 4, 16, 64], "depths": [2, 8], "lrs": [0.03], "width": 32, "seeds": 1,
           "limit_train": 2000, "epochs": 1},
    measure=measure,
    order=4,
)
