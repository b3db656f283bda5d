"""Card ``schoenholz2017``: Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017), "Deep
information propagation", ICLR; Fig. 1 (the order-to-chaos phase diagram of tanh nets:
at ``sigma_b^2 = 0.05`` the critical line is at ``sigma_w^2`` about 1.76), Fig. 3 (the
measured depth scale ``xi_c`` of the correlation between two inputs agrees with the
mean-field ``xi_c = -1 / ln chi_c``) and Fig. 5 (networks train only up to depths of about
``6 xi_c``).

Setting and scaling: (1) the critical point from :func:`initlab.probe.critical_sigma_w2`.
(2) The correlation of two inputs (``c_0 = 0.2`` in the ordered phase, ``(1 + c*)/2`` in the
chaotic one, both at the fixed-point length ``q*``)
propagated through random tanh nets of width 1000 (the paper: 1000), averaged over 8 nets,
at ``sigma_b^2 = 0.05`` and ``sigma_w^2`` in {1.2, 1.5} (ordered) and {2.5, 4.0} (chaotic);
``xi`` is fitted as the slope of ``log|c_l - c*|`` over the layers where ``|c_l - c*|``
is below ``0.3 |c_0 - c*|`` and above the finite-width noise ``max(1e-3, 3/sqrt(width
nets pairs))`` (16 input pairs per net); ``c*`` is the mean-field fixed point.
(3) Trainability: a (``sigma_w^2``, depth) grid of width-128 tanh
MLPs trained with Adam (lr 1e-3) for 2 epochs on 10,000 Fashion-MNIST images, 1 seed
(the paper: SGD/RMSProp for thousands of steps on MNIST, depths to 300); **biases are
zero** here (the scheme library draws zero biases; ``variance_scaling`` sets
``sigma_w^2``), so the grid's theory is taken at ``sigma_b^2 = 0``. A cell "trains" when
its final validation accuracy is >= 50%. Quick: (1) in full, (2) at width 300 with 4
nets, (3) two cells on 1,000 images for 1 epoch, not judged.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from initlab.papers.card import Card, Check, Measured
from initlab.papers.context import CardContext

SB2 = 0.05


def _correlations(sw2: float, sb2: float, width: int, depth: int, nets: int, c0: float, q0: float,
                  pairs: int = 16, seed: int = 0) -> np.ndarray:
    """Mean over *nets* random tanh nets and *pairs* input pairs per net of the correlation
    ``c_l`` of two pre-activations that start at length ``q0`` and correlation ``c0``."""
    g = torch.Generator().manual_seed(seed)
    out = np.zeros(depth + 1)
    for _ in range(nets):
        z1 = torch.randn(pairs, width, generator=g)
        z2 = torch.randn(pairs, width, generator=g)
        a = z1 * math.sqrt(q0)
        b = (c0 * z1 + math.sqrt(1 - c0 * c0) * z2) * math.sqrt(q0)
        cs = []
        for _layer in range(depth + 1):
            c = (a * b).sum(1) / torch.sqrt((a * a).sum(1) * (b * b).sum(1))
            cs.append(float(c.mean()))
            w = torch.randn(width, width, generator=g) * math.sqrt(sw2 / width)
            bias = torch.randn(width, generator=g) * math.sqrt(sb2)
            a = torch.tanh(a) @ w.T + bias
            b = torch.tanh(b) @ w.T + bias
        out += np.asarray(cs)
    return out / nets


def _fit_xi(cs: np.ndarray, c_star: float, floor: float) -> float:
    d = np.abs(cs - c_star)
    hi = 0.3 * d[0]
    idx = [i for i in range(len(d)) if floor < d[i] < hi]
    if len(idx) < 3:
        return math.nan
    slope = np.polyfit(idx, np.log(d[idx]), 1)[0]
    return -1.0 / slope if slope < 0 else math.inf


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    from initlab.engine.models import MLPSpec
    from initlab.probe import critical_sigma_w2, mean_field
    from initlab.study import StudyConfig

    crit = critical_sigma_w2("tanh", SB2)
    checks = [Check("critical line", "critical sigma_w^2 at sigma_b^2 = 0.05 within 0.05 of 1.76",
                    f"{crit:.4f}", abs(crit - 1.76) <= 0.05)]
    xis = {}
    for sw2 in s["xi_sigma_w2"]:
        mf = mean_field("tanh", float(sw2), SB2)
        c0 = 0.2 if mf.c_star > 0.6 else (1.0 + mf.c_star) / 2  # start far from the fixed point
        cs = _correlations(float(sw2), SB2, int(s["width"]), int(s["xi_depth"]), int(s["nets"]), c0, mf.q_star)
        floor = max(1e-3, 3.0 / math.sqrt(int(s["width"]) * int(s["nets"]) * 16))  # finite-width noise
        c_inf = mf.c_star
        xis[float(sw2)] = {"theory": mf.xi_c, "measured": _fit_xi(cs, c_inf, floor), "c_star": mf.c_star,
                           "c_inf": c_inf,
                           "phase": mf.phase, "c": cs.tolist()}
    rel_err = {k: abs(v["measured"] - v["theory"]) / v["theory"] for k, v in xis.items()}
    checks.append(Check("correlation depth scale", "measured xi_c within 25% of the mean-field xi_c at every "
                        "sigma_w^2", ", ".join(f"{k:g}: {v['measured']:.2f} vs {v['theory']:.2f}" for k, v in xis.items()),
                        all(e <= 0.25 for e in rel_err.values())))

    sws = [float(v) for v in s["grid_sigma_w2"]]
    depths = [int(d) for d in s["grid_depths"]]
    schemes = tuple(f"variance_scaling(scale={v:g}, distribution=normal)" for v in sws)
    models = tuple(MLPSpec(784, (int(s["grid_width"]),) * d, 10, "tanh", 0.0) for d in depths)
    cfg = StudyConfig(name="schoenholz2017", schemes=schemes, seeds=(0,), models=models,
                      limit_train=int(s["limit_train"]), limit_val=1000,
                      train={"epochs": int(s["epochs"]), "probe_size": 0, "hist_bins": 8})
    run = ctx.study(cfg, "grid")
    xi0 = {v: mean_field("tanh", v, 0.0).xi_c for v in sws}
    grid, agree = [], 0
    for spec, d in zip(models, depths):
        for sch, v in zip(cfg.schemes, sws):
            cell = run.select(scheme=sch, model=spec.label)[0]
            acc = cell.final.val_acc if cell.final is not None else math.nan
            predicted = d <= 6 * xi0[v]
            trained = bool(acc >= 0.5)
            agree += predicted == trained
            grid.append({"sigma_w2": v, "depth": d, "val_acc": acc, "six_xi": 6 * xi0[v], "predicted": predicted,
                         "trained": trained})
    frac = agree / len(grid)
    checks.append(Check("trainable depth ~ 6 xi_c", "on the (sigma_w^2, depth) grid, 'trains' (val acc >= 50%) "
                        "agrees with 'depth <= 6 xi_c' in >= 75% of the cells", f"{agree} of {len(grid)} cells agree",
                        None if ctx.quick else frac >= 0.75, "quick: 1 epoch on 1,000 images, not judged"
                        if ctx.quick else ""))

    figures = []
    plt = ctx.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for k, v in xis.items():
        d = np.abs(np.asarray(v["c"]) - v["c_inf"])
        axes[0].semilogy(np.maximum(d, 1e-8), label=f"sw2={k:g} ({v['phase']}; xi {v['measured']:.1f} vs {v['theory']:.1f})")
    axes[0].set(xlabel="layer", ylabel="|c_l - c*|", title="correlation decay, sigma_b^2=0.05", ylim=(1e-5, 1))
    axes[0].legend(fontsize=7)
    accs = np.array([[next(g["val_acc"] for g in grid if g["depth"] == d and g["sigma_w2"] == v) for v in sws]
                     for d in depths])
    im = axes[1].imshow(accs, origin="lower", aspect="auto", vmin=0.1, vmax=0.9, cmap="viridis")
    axes[1].set_xticks(range(len(sws)), [f"{v:g}" for v in sws])
    axes[1].set_yticks(range(len(depths)), [str(d) for d in depths])
    for j, v in enumerate(sws):
        six = 6 * xi0[v]
        axes[1].text(j, len(depths) - 0.6, f"6xi={six:.0f}" if math.isfinite(six) else "6xi=inf", ha="center",
                     fontsize=7, color="white")
    axes[1].set(xlabel="sigma_w^2 (sigma_b^2 = 0)", ylabel="depth", title="final val accuracy")
    fig.colorbar(im, ax=axes[1])
    fig.tight_layout()
    rel = ctx.figure(fig, "chaos", "Schoenholz et al.: correlation decay vs theory and the trainability grid")
    if rel:
        figures.append(rel)
    ours = (f"critical {crit:.3f}; xi max rel. error {max(rel_err.values()):.0%}; grid {agree}/{len(grid)} agree")
    values = {"critical_sigma_w2": crit, "xi": {str(k): v for k, v in xis.items()}, "xi_rel_err": rel_err,
              "grid": grid, "train_wall_s": run.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="schoenholz2017",
    title="Deep information propagation",
    claim="tanh nets have an order-to-chaos transition (at sigma_b^2 = 0.05, sigma_w^2 about 1.76), the "
          "correlation of two inputs decays over the depth scale xi_c that mean-field theory predicts, and nets "
          "train only to depths of about 6 xi_c.",
    citation="Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017), Deep information propagation, ICLR",
    figure="Fig. 1, Fig. 3, Fig. 5",
    setting="random tanh nets at init (mean field); a (sigma_w^2, depth) trainability grid",
    scaled_down="correlations at width 1000, 8 nets x 16 input pairs, depth 60; grid of width-128 nets, depths 8/24/64, 2 epochs of "
                "Adam on 10,000 Fashion-MNIST images, 1 seed, zero biases (paper: depths to 300, thousands of steps, "
                "sigma_b^2 > 0); quick: width 300, 4 nets, 2 grid cells (grid not judged)",
    quantity="critical sigma_w^2; fitted vs mean-field xi_c; agreement of trainability with depth <= 6 xi_c",
    paper_value="critical sigma_w^2 ~ 1.76 at sigma_b^2 = 0.05; trainable depth ~ 6 xi_c",
    criterion="|critical - 1.76| <= 0.05; measured xi_c within 25% of theory; >= 75% of grid cells agree with "
              "depth <= 6 xi_c",
    full={"xi_sigma_w2": [1.2, 1.5, 2.5, 4.0], "width": 1000, "nets": 8, "xi_depth": 60,
          "grid_sigma_w2": [0.6, 1.0, 2.0, 4.0], "grid_depths": [8, 24, 64], "grid_width": 128,
          "limit_train": 10000, "epochs": 2},
    quick={"xi_sigma_w2": [1.2, 4.0], "width": 300, "nets": 4, "xi_depth": 40,
           "grid_sigma_w2": [0.6, 1.0], "grid_depths": [8], "grid_width": 32, "limit_train": 1000, "epochs": 1},
    measure=measure,
    order=5,
)
