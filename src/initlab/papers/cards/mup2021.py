"""Card ``mup2021``: Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao
(2022, arXiv 2021), "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer"; section 4 and Figure 5, the coordinate check (the standard
deviation of the coordinates of ``x_t - x_0``, each layer's change from initialization
after t = 1..4 Adam steps, against width: under the standard parametrization it grows with
width, under muP it stays flat), as microsoft/mup's ``coord_check`` plots it.

Setting: initlab's own coordinate check (:func:`initlab.probe.coordcheck.coordcheck`, the
code of ``initlab coordcheck``; no second implementation) on the ``cnn`` family (3 conv
layers of w channels at 28x28, global average pooling, a Linear head), Adam at lr 1e-3
(microsoft/mup ``get_coord_data``'s default), 4 steps of batch 64 drawn from the first
4,096 Fashion-MNIST training images, activations measured on a fixed batch of 256 images,
3 seeds averaged; SP is ``he_normal`` with one learning rate, muP is
``mup(base_width=16)`` (TP5 Table 3 relative to the narrowest width: zero readout, Adam
learning rate x1 input weights and biases, x1/m hidden weights and readout).

Scaled down: widths 16, 32, 64 channels (the issue's 2^7..2^12 are for the MLP; 2^12
channels at 28x28 is far beyond 2 CPU cores, and 16..128 took 2,492 s on a loaded
machine), a CNN instead of the paper's Transformer, 4 steps. Why not the ``mlp`` family at
2^7..2^12: there the input layer (fan_in 784, width-independent) changes by the same
amount at every width and its change is carried into the hidden layers, so SP's hidden
slopes stay below 0.4 at the narrower widths (+0.22 / +0.27 at step 4, measured earlier
on a loaded machine); the check is judged where each hidden layer's own update dominates.

Pass criterion: ``initlab coordcheck``'s rule, fixed before any measurement
(:data:`~initlab.probe.coordcheck.STABLE_SLOPE`, :data:`~initlab.probe.coordcheck.GROWTH_SLOPE`):
slope of log std(x_t - x_0) against log width per layer at the last step; muP stable when
every |slope| <= 0.2; SP blows up when the output's and some hidden layer's slope >= 0.4;
the check separates when both hold. Quick: widths 16 and 32, 1 seed, 4 steps, 1,024
images, judged by the same rule (a slope from two widths and one seed: a smoke test of
the direction, not the full card's evidence).

The card used to judge learning-rate transfer (Fig. 3: the best SGD learning rate of an
MLP across widths); that sweep (96 models) does not fit beside the coordinate check in the
card's budget and is not the claim issue 13 names for this card, so it was dropped.
"""

from __future__ import annotations

from typing import Any, Mapping

from initlab.papers.card import Card, Check, Measured
from initlab.papers.context import CardContext

SP = "he_normal"
FAMILY = "cnn"


def measure(s: Mapping[str, Any], ctx: CardContext) -> Measured:
    from initlab.data import load_dataset
    from initlab.probe.coordcheck import GROWTH_SLOPE, STABLE_SLOPE, coordcheck

    widths = [int(w) for w in s["widths"]]
    ds = load_dataset("fashion-mnist", data_dir=ctx.data_dir, limit_train=int(s["n_train"]), limit_val=1,
                      download=False)
    r = coordcheck(FAMILY, widths, steps=int(s["steps"]), lr=1e-3, optimizer="adam", seeds=int(s["seeds"]),
                   batch_size=64, depth=3, base=SP, data=(ds.train.x, ds.train.y), data_name="fashion-mnist")
    note = "quick: two widths, one seed" if ctx.quick else ""

    def slopes(p: str) -> str:
        return ", ".join(f"{n} ({place}) {r.slopes[p][n]:+.2f}" for n, place in r.layers)

    checks = [
        Check("muP: stable", f"muP: every layer's slope of log std(x_t - x_0) vs log width at step {r.steps} "
              f"has |slope| <= {STABLE_SLOPE}", slopes("mup"), r.stable("mup"), note),
        Check("SP: blows up", f"SP: the output's slope and some hidden layer's slope >= {GROWTH_SLOPE} at step "
              f"{r.steps}", slopes("sp"), r.blows_up("sp"), note),
    ]
    figures = []
    rel = ctx.figure(r.figure(), "coordcheck", f"coordinate check, {FAMILY} widths {widths[0]}..{widths[-1]}: "
                     "std(x_t - x_0) per layer against width, SP and muP, Adam lr 1e-3")
    if rel:
        figures.append(rel)

    def worst(p: str) -> str:
        n, v = max(r.slopes[p].items(), key=lambda kv: abs(kv[1]))
        return f"{n} {v:+.2f}"

    out = [r.slopes["sp"][n] for n, place in r.layers if place == "output"]
    ours = (f"{FAMILY} widths {','.join(map(str, widths))}, step {r.steps}: SP output slope "
            f"{', '.join(f'{v:+.2f}' for v in out)}, largest SP slope {worst('sp')}; muP largest |slope| "
            f"{worst('mup')}: {'separates' if r.separates else 'does not separate'}")
    values = {"coordcheck": r.to_dict(), "separates": r.separates, "wall_s": r.wall_s}
    return Measured(checks, ours, values, figures)


CARD = Card(
    name="mup2021",
    title="Tensor Programs V: the coordinate check separates SP from muP",
    claim="Under the standard parametrization the change of every hidden and output layer's activations by "
          "training grows with width; under muP it stays Theta(1) (the coordinate check).",
    citation="Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao (2022), Tensor Programs V: "
             "Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer, arXiv:2203.03466",
    figure="Section 4, Fig. 5 (coordinate check: std of the coordinates of x_t - x_0 against width, t = 1..4, "
           "SP vs muP)",
    setting="initlab coordcheck on the cnn family (3 conv layers of w channels, GAP, head), Adam lr 1e-3, 4 steps "
            "of batch 64 from 4,096 Fashion-MNIST images, measured on 256 fixed images, 3 seeds; SP = he_normal, "
            "muP = mup(base_width = narrowest width)",
    scaled_down="widths 16, 32, 64 channels (issue: 2^7..2^12 for the MLP; paper: a Transformer), 4 steps; the "
                "mlp family at 2^7..2^12 is not used (its input layer's width-independent change dominates the "
                "hidden layers'); quick: widths 16, 32, 1 seed, 4 steps, 1,024 images, same rule",
    quantity="slope of log std(x_t - x_0) against log width, per layer, at the last step",
    paper_value=None,
    criterion="initlab coordcheck's rule: muP every |slope| <= 0.2; SP output slope and some hidden slope >= 0.4; "
              "both = separates",
    full={"widths": [16, 32, 64], "steps": 4, "seeds": 3, "n_train": 4096},
    quick={"widths": [16, 32], "steps": 4, "seeds": 1, "n_train": 1024},
    measure=measure,
    order=10,
)
