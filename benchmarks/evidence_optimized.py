"""GradInit and MetaInit repair a badly scaled network: the loss after the first SGD steps.

A ReLU MLP on Fashion-MNIST (784 -> 256 x depth -> 10, no normalization) is drawn from a badly
scaled Gaussian, N(0, std^2) with std far above He's sqrt(2/256) = 0.088 (the signal explodes)
or far below it (it vanishes). The same draw is then (a) trained as is, (b) rescaled by
GradInit and (c) by MetaInit on the first 256 training images and their labels, and trained
the same way: plain SGD, batch 128, the same batches in the same order. Printed per run: the
fit's time and objective before/after, then the training loss (a running mean of the batch
losses) after 10, 50 and 200 steps and the validation accuracy after 200 steps.

    INITLAB_DATA_DIR=../shared/data python benchmarks/evidence_optimized.py
    python benchmarks/evidence_optimized.py --depth 8 --stds 0.3,0.01 --steps 200 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

import initlab
from initlab.data import load_dataset


def mlp(depth: int, width: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(784, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor,
          steps: int, lr: float, seed: int) -> dict[str, float]:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g)
    out: dict[str, float] = {}
    window: list[float] = []
    for step in range(1, steps + 1):
        idx = order[(step - 1) * 128 % len(x):][:128]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        window = (window + [loss.item()])[-10:]
        if step in (10, 50, steps):
            out[f"loss@{step}"] = sum(window) / len(window)
    with torch.no_grad():
        acc = (model(xv).argmax(1) == yv).double().mean().item()
    out[f"val_acc@{steps}"] = acc if all(math.isfinite(v) for v in out.values()) else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--stds", default="0.3,0.01")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gradinit", default="gradinit(lr=0.01)", help="GradInit's spec (base= is added)")
    ap.add_argument("--metainit", default="metainit", help="MetaInit's spec (base= is added)")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    ds = load_dataset("fashion-mnist", standardize=True, limit_train=20000, limit_val=5000)
    x, y, xv, yv = ds.x_train.float(), ds.y_train.long(), ds.x_val.float(), ds.y_val.long()
    batch = (x[:256], y[:256])
    rows = []
    for std in (float(s) for s in args.stds.split(",")):
        base = f"normal(std={std})"
        for label, spec in (("base", base), ("gradinit", args.gradinit), ("metainit", args.metainit)):
            if spec != base:
                spec = spec[:-1] + f", base='{base}')" if spec.endswith(")") else f"{spec}(base='{base}')"
            model = mlp(args.depth, args.width)
            t0 = time.perf_counter()
            report = initlab.apply(model, spec, seed=args.seed, data=batch if spec != base else None)
            fit_s = time.perf_counter() - t0
            row = {"std": std, "init": label, "spec": spec, "fit_s": round(fit_s, 2)}
            o = report.optimized
            if o is not None:
                row.update(iterations=o.iterations, objective_before=o.objective_before,
                           objective_after=o.objective_after, loss_at_init=o.loss_before, loss_after_fit=o.loss_after,
                           scales_min=min(o.scales), scales_max=max(o.scales))
            row.update(train(model, x, y, xv, yv, args.steps, args.lr, args.seed))
            rows.append(row)
            print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
