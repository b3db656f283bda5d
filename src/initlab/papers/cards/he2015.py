"""Card ``he2015``: He, Zhang, Ren & Sun (2015), "Delving deep into rectifiers: surpassing
human-level performance on ImageNet classification", ICCV; Sec. 2.2-2.3 and Fig. 3 (a
30-layer plain ReLU net: Xavier init stalls, the paper's init converges), Fig. 2 (22
layers: both converge, theirs starts reducing the error earlier), and the text of Sec. 2.3
(with Xavier the std of the last layer's response is ``1/2^{L/2}`` of the first's, about
2^-15 at L = 30; with theirs it is about 1).

Setting: a plain fully connected ReLU net (the paper: a VGG-style conv net on ImageNet),
zero biases, no dropout, SGD lr 0.01 with momentum 0.9, 10,000 Fashion-MNIST training
images (2,000 validation) for 3 epochs, 3 seeds, depths 30 and 22 (hidden layers; plus the
output layer). Xavier is ``glorot_normal``, He ``he_normal``. The std ratio at init comes
from the probe on Gaussian inputs at width 256. The trained nets are width 128 (they were
256 until that took 640 s on the 2 shared cores under load, over the 10-minute budget;
halving the width cuts the cost per image to about 0.27x and keeps the number of steps,
which is what decides whether a deep net starts to train). Quick: the probe in full, then
width 32, 1 seed, 1,000 images, 1 epoch, whose training checks are not judged.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from initlab.papers.card import Card, Check, Measured, spread
from initlab.papers.context import CardContext

XAVIER, HE = "glorot_normal", "he_normal"
LN10 = math.log(10.0)


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    import initlab
    from initlab.engine.models import MLPSpec
    from initlab.study import StudyConfig

    width = int(s["width"])
    deep, shallow = int(s["deep"]), int(s["shallow"])
    spec30 = MLPSpec(784, (width,) * deep, 10, "relu", 0.0)
    probe = initlab.probe(spec30, None, [XAVIER, HE], n_inputs=512, jacobian=False)
    ratio = {sp.scheme: sp.layers[-1].pre_std / sp.layers[0].pre_std for sp in probe}
    lx = math.log2(ratio[XAVIER])
    checks = [
        Check("Xavier std ratio at init", f"Xavier, depth {deep}: log2(std of the last layer's pre-activation / "
              "the first's) in [-16.5, -13.5] (paper: about -15)", f"2^{lx:.2f}", -16.5 <= lx <= -13.5),
        Check("He std ratio at init", "He: that ratio in [0.5, 2] (paper: about 1)", f"{ratio[HE]:.3f}",
              0.5 <= ratio[HE] <= 2.0),
    ]
    tw = int(s["train_width"])
    models = (MLPSpec(784, (tw,) * deep, 10, "relu", 0.0), MLPSpec(784, (tw,) * shallow, 10, "relu", 0.0))
    cfg = StudyConfig(name="he2015", schemes=(XAVIER, HE), seeds=tuple(range(int(s["seeds"]))), models=models,
                      limit_train=int(s["limit_train"]), limit_val=int(s["limit_val"]),
                      train={"epochs": int(s["epochs"]), "optimizer": "sgd", "lr": 0.01, "momentum": 0.9,
                             "probe_size": 0})
    run = ctx.study(cfg, "train")
    curves: dict[tuple[str, str], list[list[float]]] = {}
    for c in run.cells:
        curves.setdefault((c.model, c.scheme), []).append([e.train_loss for e in c.epochs if e.epoch >= 1])
    m30, m22 = models[0].label, models[1].label
    final = {k: spread([v[-1] if v else math.nan for v in vs]) for k, vs in curves.items()}
    first = {k: spread([v[0] if v else math.nan for v in vs]) for k, vs in curves.items()}
    q = ctx.quick

    def judged(ok: bool) -> bool | None:
        return None if q else ok

    note = "quick: 1 epoch of a width-32 net on 1,000 images is too small to judge" if q else ""
    fx, fh = final[(m30, XAVIER)], final[(m30, HE)]
    checks += [
        Check(f"{deep} layers: Xavier stalls", f"depth {deep}, Xavier: final train loss >= 2.0 (ln 10 = 2.303)",
              str(fx), judged(fx.mean >= 2.0), note),
        Check(f"{deep} layers: He trains", f"depth {deep}, He: final train loss <= 1.0", str(fh),
              judged(fh.mean <= 1.0), note),
    ]
    sx, sh = final[(m22, XAVIER)], final[(m22, HE)]
    ex, eh = first[(m22, XAVIER)], first[(m22, HE)]
    checks += [
        Check(f"{shallow} layers: both train", f"depth {shallow}: both final train losses <= 0.75 ln 10 = 1.73",
              f"Xavier {sx}, He {sh}", judged(sx.mean <= 0.75 * LN10 and sh.mean <= 0.75 * LN10), note),
        Check(f"{shallow} layers: He earlier", f"depth {shallow}: He's train loss after epoch 1 < Xavier's",
              f"He {eh}, Xavier {ex}", judged(eh.mean < ex.mean), note),
    ]
    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, m, d in ((axes[0], m30, deep), (axes[1], m22, shallow)):
        for scheme, color in ((XAVIER, "tab:blue"), (HE, "tab:red")):
            for i, v in enumerate(curves.get((m, scheme), [])):
                ax.plot(range(1, len(v) + 1), v, "o-", color=color, alpha=0.6,
                        label=("Xavier" if scheme == XAVIER else "He") if i == 0 else None)
        ax.axhline(LN10, color="gray", ls=":", lw=1)
        ax.set(title=f"{d} ReLU layers, SGD", xlabel="epoch", ylabel="train loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    rel = ctx.figure(fig, "train_loss", "He et al.: train loss of deep plain ReLU nets under Xavier and He")
    if rel:
        figures.append(rel)
    ours = (f"std ratio 2^{lx:.1f} vs {ratio[HE]:.2f}; L={deep} loss {fx.mean:.2f} vs {fh.mean:.2f}; "
            f"L={shallow} {sx.mean:.2f} vs {sh.mean:.2f} (Xavier vs He)")
    values = {"std_ratio": ratio, "log2_xavier_ratio": lx,
              "final_train_loss": {f"{m}/{k}": vars(v) for (m, k), v in final.items()},
              "epoch1_train_loss": {f"{m}/{k}": vars(v) for (m, k), v in first.items()},
              "curves": {f"{m}/{k}": v for (m, k), v in curves.items()}, "train_wall_s": run.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="he2015",
    title="Delving deep into rectifiers",
    claim="A 30-layer plain ReLU net stalls under Xavier init and trains under He's, whose last-layer response "
          "keeps the first's scale (Xavier's is about 2^-15 of it); at 22 layers both train, He's earlier.",
    citation="He, Zhang, Ren & Sun (2015), Delving deep into rectifiers, ICCV",
    figure="Fig. 3 and Fig. 2, Sec. 2.3",
    setting="plain ReLU nets, zero biases, SGD with momentum 0.9",
    scaled_down="fully connected, width 256 at init (the std ratio) and 128 in training, on 10,000 Fashion-MNIST "
                "images for 3 epochs, 3 seeds (paper: conv nets on ImageNet; the trained width was halved from 256 to "
                "fit the 10-minute budget on 2 shared cores); quick: width 32, 1,000 images, 1 epoch, 1 seed "
                "(training not judged)",
    quantity="std ratio last/first layer at init; final and epoch-1 train loss",
    paper_value="std ratio ~2^-15 (Xavier) vs ~1 (He); 30 layers: Xavier stalls, He converges",
    criterion="log2 Xavier ratio in [-16.5, -13.5]; He ratio in [0.5, 2]; depth 30: Xavier loss >= 2.0, He <= 1.0; "
              "depth 22: both <= 1.73 and He's epoch-1 loss below Xavier's",
    full={"width": 256, "train_width": 128, "deep": 30, "shallow": 22, "seeds": 3, "limit_train": 10000, "limit_val": 2000,
          "epochs": 3},
    quick={"width": 256, "train_width": 32, "deep": 30, "shallow": 22, "seeds": 1, "limit_train": 1000, "limit_val": 500,
           "epochs": 1},
    measure=measure,
    order=2,
)
