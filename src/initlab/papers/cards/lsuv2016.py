"""Card ``lsuv2016``: Mishkin & Matas (2016), "All you need is a good init", ICLR;
Algorithm 1 (LSUV: orthonormal pre-init, then per layer ``W /= sqrt(Var(B))`` until
``|Var(B) - 1| < Tol_var`` or ``T_max`` iterations; Tol_var = 0.1, T_max = 10) and Table 2 /
Fig. 3 (thin deep FitNets train under LSUV at least as well as under orthogonal and He /
MSRA init).

Setting: a thin deep fully connected ReLU net, 16 hidden layers of width 64 (the paper:
FitNet-4 and deeper convolutional nets on CIFAR-10), SGD lr 0.01 with momentum 0.9,
10,000 Fashion-MNIST images (2,000 validation), 3 epochs, 3 seeds; LSUV is fitted on the
first 256 training images (the study's rule). The convergence check reads
``InitReport.lsuv`` of ``initlab.apply`` on that same batch. Quick: the convergence check
in full, training on 1,000 images for 1 epoch with 1 seed, not judged.
"""

from __future__ import annotations

from typing import Any, Mapping

from initlab.papers.card import Card, Check, Measured, spread
from initlab.papers.context import CardContext

SCHEMES = ("lsuv", "orthogonal", "he_normal")


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    import initlab
    from initlab.data import load_dataset
    from initlab.engine.models import MLPSpec
    from initlab.study import StudyConfig

    spec = MLPSpec(784, (int(s["width"]),) * int(s["depth"]), 10, "relu", 0.0)
    data = load_dataset("fashion-mnist", data_dir=ctx.data_dir, limit_train=256, limit_val=16, download=False)
    model = spec.build(seed=0)
    report = initlab.apply(model, "lsuv", seed=0, data=spec.as_input(data.train.x[:256]))
    steps = report.lsuv
    worst = max(abs(st.out_var - 1.0) for st in steps)
    iters = max(st.iterations for st in steps)
    checks = [Check("LSUV converges", "every layer: |Var(output) - 1| < 0.1 within T_max = 10 iterations",
                    f"{len(steps)} layers, worst |Var-1| = {worst:.3g}, at most {iters} iterations",
                    all(st.converged for st in steps) and worst < 0.1 and iters <= 10)]
    cfg = StudyConfig(name="lsuv2016", schemes=SCHEMES, seeds=tuple(range(int(s["seeds"]))), models=(spec,),
                      limit_train=int(s["limit_train"]), limit_val=int(s["limit_val"]),
                      train={"epochs": int(s["epochs"]), "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
                             "probe_size": 0})
    run = ctx.study(cfg, "train")
    acc = {k: spread([c.final.val_acc for c in run.select(scheme=k) if c.final is not None]) for k in SCHEMES}
    best_other = max(acc["orthogonal"].mean, acc["he_normal"].mean)
    ok = acc["lsuv"].mean >= best_other - 0.01
    checks.append(Check("LSUV trains as well", "final val accuracy: LSUV's mean >= the better of orthogonal "
                        "and He minus 1 point", ", ".join(f"{k} {acc[k]}" for k in SCHEMES),
                        None if ctx.quick else ok, "quick: too small to judge" if ctx.quick else ""))
    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].bar(range(1, len(steps) + 1), [st.out_var for st in steps], color="tab:green")
    axes[0].axhspan(0.9, 1.1, color="gray", alpha=0.2)
    axes[0].set(xlabel="layer", ylabel="Var(output) after LSUV", title="LSUV: unit variance per layer")
    colors = {"lsuv": "tab:green", "orthogonal": "tab:blue", "he_normal": "tab:red"}
    for k in SCHEMES:
        for i, c in enumerate(run.select(scheme=k)):
            axes[1].plot([e.epoch for e in c.epochs], [e.val_acc for e in c.epochs], "o-", color=colors[k],
                         alpha=0.6, label=k if i == 0 else None)
    axes[1].set(xlabel="epoch", ylabel="val accuracy", title=f"{spec.label}, SGD")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    rel = ctx.figure(fig, "lsuv", "LSUV per-layer variance and the deep thin net's validation accuracy")
    if rel:
        figures.append(rel)
    ours = (f"worst |Var-1| {worst:.2g} in <= {iters} it; val acc " +
            ", ".join(f"{k} {100 * acc[k].mean:.1f}" for k in SCHEMES))
    values = {"lsuv_steps": [vars(st) for st in steps], "val_acc": {k: vars(v) for k, v in acc.items()},
              "train_wall_s": run.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="lsuv2016",
    title="All you need is a good init (LSUV)",
    claim="LSUV brings every layer's output variance to 1 within T_max iterations and trains a thin deep net at "
          "least as well as orthogonal and He init.",
    citation="Mishkin & Matas (2016), All you need is a good init, ICLR",
    figure="Algorithm 1, Table 2, Fig. 3",
    setting="thin deep ReLU net, SGD with momentum; LSUV with Tol_var 0.1, T_max 10",
    scaled_down="16 fully connected layers of width 64 on 10,000 Fashion-MNIST images, 3 epochs, 3 seeds (paper: "
                "FitNets on CIFAR-10); quick: 1,000 images, 1 epoch, 1 seed (training not judged)",
    quantity="per-layer |Var - 1| and iterations after LSUV; final validation accuracy",
    paper_value=None,
    criterion="every layer |Var - 1| < 0.1 within 10 iterations; LSUV mean val acc >= max(orthogonal, He) - 1 point",
    full={"width": 64, "depth": 16, "seeds": 3, "limit_train": 10000, "limit_val": 2000, "epochs": 3},
    quick={"width": 64, "depth": 16, "seeds": 1, "limit_train": 1000, "limit_val": 500, "epochs": 1},
    measure=measure,
    order=7,
)
