"""Dynamical isometry at init: delta-orthogonal vs Gaussian kernels on a deep tanh CNN.

Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018, "Dynamical Isometry and a Mean
Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks"
(ICML), section 2.4 and Fig. 2/4: with the delta-orthogonal kernel (an orthogonal matrix at
the spatial centre tap, zeros elsewhere) a tanh CNN on the critical line
(sigma_w^2 = 1, sigma_b -> 0) has an input-output Jacobian whose singular values stay
concentrated near 1 at any depth; with i.i.d. Gaussian kernels of the same variance
(N(0, 1/fan_in), fan_in = 9 C) the spectrum spreads out and its small singular values
collapse geometrically with depth.

The network is the ``cnn`` family's conv stack without its pooling head (input ->
conv1 tanh -> ... -> conv<depth> tanh, C channels, 3x3, padding 1, H x W spatial), so
the Jacobian is the square ``(C H W) x (C H W)`` map the paper studies. The spectrum is
:func:`initlab.probe.probe`'s (``jacobian=True``) at ``--inputs`` inputs of standard
Gaussian noise scaled by ``--input-std``.

    python benchmarks/evidence_delta_orthogonal.py                  # depth 100 and 200, C=8, 8x8
    python benchmarks/evidence_delta_orthogonal.py --depths 100 --channels 4

Prints, per scheme and depth: the singular values' min, median, max, the fraction within
[0.5, 1.5] (the "concentrated near 1" measure) and the condition number.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

import initlab
from initlab.engine.families import spec_from_dict


def conv_stack(depth: int, channels: int, size: int) -> nn.Module:
    """The ``cnn`` family's body: input -> (conv3x3 tanh) x depth, no pooling head."""
    model = spec_from_dict({"kind": "cnn", "depth": depth, "channels": channels, "activation": "tanh",
                            "input_shape": [channels, size, size]}).build()
    return nn.Sequential(*list(model.children())[:-3])  # drop gap, flatten, head


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depths", default="100,200")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--inputs", type=int, default=2, help="inputs at which the Jacobian is taken")
    ap.add_argument("--input-std", type=float, default=0.01,
                    help="noise scale: 0.01 starts at the critical fixed point q* ~ 0 (default)")
    ap.add_argument("--schemes", default="delta_orthogonal,normal_recipe,orthogonal")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(True)
    rows = []
    c, s = args.channels, args.size
    for depth in [int(d) for d in args.depths.split(",")]:
        x = args.input_std * torch.randn(args.inputs, c, s, s, generator=torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        result = initlab.probe(lambda: conv_stack(depth, c, s), x, args.schemes.split(","),
                               jacobian=True, jacobian_inputs=args.inputs, n_inputs=args.inputs)
        wall = time.perf_counter() - t0
        for sp in result.schemes:
            sv = torch.tensor(sp.jacobian_singular_values, dtype=torch.float64).flatten()
            rows.append({"depth": depth, "channels": c, "size": s, "scheme": sp.scheme,
                         "min": float(sv.min()), "median": float(sv.median()), "max": float(sv.max()),
                         "near_1": float(((sv > 0.5) & (sv < 1.5)).double().mean()),
                         "condition": float(sv.max() / sv.min()) if float(sv.min()) > 0 else float("inf"),
                         "wall_s": wall})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'depth':>5}  {'scheme':<18} {'min':>10} {'median':>10} {'max':>10} {'in [0.5,1.5]':>12} {'max/min':>10}")
    for r in rows:
        print(f"{r['depth']:>5}  {r['scheme']:<18} {r['min']:>10.3g} {r['median']:>10.3g} {r['max']:>10.3g} "
              f"{r['near_1']:>12.1%} {r['condition']:>10.3g}")
    print(f"Jacobian {c * s * s} x {c * s * s} at {args.inputs} inputs of N(0, {args.input_std}^2) noise")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
