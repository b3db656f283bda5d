"""Card ``article``: the article initlab started from, "Effects of Weight Initialization
on Neural Networks" (a Keras MLP 784-256-128-10, ReLU, dropout 0.2, Adam, on
Fashion-MNIST, one run per initializer); its learning-curve figure of the seven
initializers: all-zeros stays at chance, all-ones and U[0,1] far behind, U[-0.5,0.5]
behind, the two fan-in "recipes" and the Keras default in the high 80s and
indistinguishable.

Setting: the ``seed`` preset (``initlab run``: the article's model, Adam lr 1e-3 with
Keras' epsilon, batch 128, 10 epochs, validated on the 10,000 test images), 3 seeds,
scaled down to the first 20,000 of the 60,000 training images: the full preset is 145 s on
the idle machine but took 1377 s on the 2 shared cores under load, over the card's
10-minute budget, and a third of the images is a third of the cost with the same 10
epochs (each recipe still sees 200,000 examples). The article gives curves, not a table,
so the card checks the ordering and the size of the gaps with the summary's 95% CIs and
Welch tests (:func:`initlab.study.summarize`). Quick: 1 seed, 2,000 training images,
500 validation images, 1 epoch: only "zeros at chance" is judged.
"""

from __future__ import annotations

from typing import Any, Mapping

from initlab.papers.card import Card, Check, Measured
from initlab.papers.context import CardContext

RECIPES = ("uniform_recipe", "normal_recipe", "keras_default")


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    from initlab.study import get_preset

    cfg = get_preset("seed").with_overrides(seeds=int(s["seeds"]), epochs=int(s["epochs"]))
    if s.get("limit_train"):
        from dataclasses import replace

        cfg = replace(cfg, limit_train=int(s["limit_train"]), limit_val=int(s["limit_val"]))
    run = ctx.study(cfg, "seed")
    rows = {r.scheme: r for r in run.summary.rows}
    acc = {k: r.val_acc for k, r in rows.items()}
    q = ctx.quick
    note = "quick: 1 epoch on 2,000 images, 1 seed: not judged" if q else ""
    best = max(acc[k] for k in RECIPES)
    worst_recipe = min(acc[k] for k in RECIPES)
    recipe_rows = [rows[k] for k in RECIPES]
    checks = [
        Check("zeros at chance", "zeros: final val accuracy within 1 point of 10%", f"{100 * acc['zeros']:.2f}%",
              abs(acc["zeros"] - 0.10) <= 0.01),
        Check("ones and U[0,1] far behind", "ones and uniform_0_1: mean val accuracy >= 10 points below the best "
              "of the recipes and the default", f"ones {100 * acc['ones']:.2f}%, U[0,1] {100 * acc['uniform_0_1']:.2f}%, "
              f"best {100 * best:.2f}%", None if q else max(acc["ones"], acc["uniform_0_1"]) <= best - 0.10, note),
        Check("U[-0.5,0.5] behind", "uniform_centered: mean val accuracy below each recipe's and the default's "
              "by >= 0.5 point", f"{100 * acc['uniform_centered']:.2f}% vs lowest recipe {100 * worst_recipe:.2f}%",
              None if q else acc["uniform_centered"] <= worst_recipe - 0.005, note),
        Check("recipes in the high 80s", "uniform_recipe, normal_recipe, keras_default: mean val accuracy in "
              "[85%, 92%]", ", ".join(f"{k} {100 * acc[k]:.2f}%" for k in RECIPES),
              None if q else all(0.85 <= acc[k] <= 0.92 for k in RECIPES), note),
        Check("recipes indistinguishable", "the three: means within 1 point of each other and none differs "
              "significantly from the best (Welch p > 0.05)",
              f"spread {100 * (best - worst_recipe):.2f} points; p vs best " +
              ", ".join(f"{r.scheme} {r.p_vs_best:.2g}" for r in recipe_rows if not r.is_best),
              None if q else (best - worst_recipe <= 0.01 and not any(r.significant for r in recipe_rows)), note),
    ]
    figures = []
    plt = ctx.pyplot()
    from initlab.report.plotting import scheme_colors

    colors = scheme_colors(list(cfg.schemes))
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for scheme in cfg.schemes:
        for i, c in enumerate(run.select(scheme=scheme)):
            ax.plot([e.epoch for e in c.epochs], [e.val_acc for e in c.epochs], "-", color=colors[scheme],
                    alpha=0.7, label=scheme if i == 0 else None)
    ax.set(xlabel="epoch", ylabel="val accuracy", title="the article's seven initializers", ylim=(0, 1))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    rel = ctx.figure(fig, "curves", "validation accuracy of the article's seven initializers, every seed")
    if rel:
        figures.append(rel)
    ours = ", ".join(f"{k} {100 * acc[k]:.1f}" for k in cfg.schemes) + " (% val acc)"
    values = {"summary": [r.to_dict() for r in run.summary.rows], "train_wall_s": run.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="article",
    title="Effects of weight initialization on neural networks (the article)",
    claim="On the article's MLP, all-zeros stays at chance, all-ones and U[0,1] are far behind, U[-0.5,0.5] is "
          "behind, and both fan-in recipes and the Keras default reach the high 80s, indistinguishable.",
    citation="'Effects of Weight Initialization on Neural Networks' (the article initlab reproduces; README)",
    figure="the article's learning-curve figure of the seven initializers",
    setting="784-256-128-10 ReLU MLP, dropout 0.2, Adam (Keras epsilon), Fashion-MNIST, 10 epochs",
    scaled_down="the seed preset as 'initlab run' runs it, 3 seeds (the article: one run each), on the first 20,000 "
                "of the 60,000 training images (the full set took 1377 s under load, over the 10-minute budget); "
                "quick: 1 seed, 2,000 images, 1 epoch (only zeros judged)",
    quantity="final validation accuracy per scheme (mean over seeds, 95% CI, Welch p vs best)",
    paper_value=None,
    criterion="zeros within 1 point of 10%; ones and U[0,1] >= 10 points below the best recipe; U[-0.5,0.5] >= 0.5 "
              "point below every recipe; recipes in [85%, 92%], within 1 point, none significantly different",
    full={"seeds": 3, "epochs": 10, "limit_train": 20000, "limit_val": 10000},
    quick={"seeds": 1, "epochs": 1, "limit_train": 2000, "limit_val": 500},
    measure=measure,
    order=1,
)
