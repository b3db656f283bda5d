#!/usr/bin/env python
"""Benchmark the generic batched trainer against a plain loop and textbook torch.func vmap.

In one run, K models (default 7, each its own seed), batch 128, Adam, validation after
every epoch, Fashion-MNIST (``initlab.data.load_dataset`` from ``--data-dir``), on two
architectures:

* ``cnn``: the ``cnn`` family with 6 conv layers x 32 channels (3x3, stride 1, ReLU,
  global average pool, linear head): ``spec_from_dict({"kind": "cnn", "depth": 6,
  "channels": 32})`` (a hand-built equal ``nn.Sequential`` where the families are missing);
* ``mlp``: the article's MLP (784-256-128-10, ReLU, dropout 0.2);

and four trainers:

* ``generic``: :func:`initlab.engine.generic.train_generic` (``--mode``, default ``auto``),
  full recording on (histograms, activation statistics, step losses);
* ``plain``: the textbook loop, one model after the other: ``DataLoader(TensorDataset,
  batch_size=128, shuffle=True)``, the ``nn.Module`` (with ``nn.Dropout``),
  ``torch.optim.Adam``, ``loss.item()`` per step, a validation pass (batches of 128) per
  epoch; measured on ``--plain-models`` models (its time per model does not depend on K);
* ``vmap``: torch.func written the textbook way: ``stack_module_state``,
  ``vmap(grad_and_value(loss), randomness="different")`` over the K models' own batches,
  Adam on the stacked tensors in plain tensor ops, validation by a vmapped forward;
* ``fast`` (MLP only): the hand-tuned MLP engine, :func:`initlab.engine.train`, measured as
  ``benchmarks/bench_engine.py`` measures it (its ``bench_engine`` function).

Figures are seconds per model-epoch (epoch wall time, validation included, divided by the
models trained together).  ``--limit-train N`` trains on the first N images (and validates
on ``ceil(N/6)``, the full set's 60k:10k ratio) and reports the time extrapolated to the
full 60k/10k epoch: each trainer's training steps are timed apart from its end-of-epoch
work (validation; for the engines also the recorders, whose cost is that of their epoch-0
record), the steps scaled by ``60000 / N`` and the end-of-epoch work by ``10000 / n_val``.
Both are linear in the samples, except the recorders' fixed part (the probe batch of 512,
the histograms), which this scales up too: the extrapolation overstates the recording
trainers (generic, fast) a little.  The output says which figures are extrapolated and
keeps the measured ones (``measured_s_per_model_epoch``).

Examples::

    python benchmarks/bench_trainer.py --data-dir ../shared/data --limit-train 2560
    python benchmarks/bench_trainer.py --models 7 --archs cnn --json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from initlab.data import load_dataset
from initlab.engine import MLPSpec, TrainConfig, TrainData, build_mlp, train
from initlab.engine.generic import train_generic

FULL_TRAIN, FULL_VAL = 60000, 10000


def cnn_maker():
    """The 6 x 32 ``cnn`` family model (or a hand-built equal), and its label."""
    try:
        from initlab.engine.families import spec_from_dict

        spec = spec_from_dict({"kind": "cnn", "depth": 6, "channels": 32})
        return spec.build, f"{spec.label} (engine.families)", tuple(spec.input_shape)
    except ImportError:
        def build() -> nn.Module:
            layers: list[nn.Module] = []
            c = 1
            for _ in range(6):
                layers += [nn.Conv2d(c, 32, 3, padding=1), nn.ReLU()]
                c = 32
            return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
        return build, "cnn-6x32-relu (hand-built)", (1, 28, 28)


def make_models(build, k: int) -> list[nn.Module]:
    torch.manual_seed(1234)  # the init does not change the speed
    return [build() for _ in range(k)]


def bench_generic(build, shape, data: TrainData, k: int, epochs: int, mode: str) -> dict:
    models = make_models(build, k)
    logs: list[str] = []
    res = train_generic(models, list(range(k)), data, TrainConfig(epochs=epochs), input_shape=shape,
                        mode=mode, log=logs.append)
    return _split(res, k, epochs) | {"log": logs, "val_acc": sum(r.final_val_acc for r in res) / k}


def _split(res, k: int, epochs: int) -> dict:
    """Seconds per model-epoch from the engine's epoch records, as bench_engine.py measures
    them (``sum(wall_s of epochs 1..) / (K * epochs)``), split into the steps and the
    end-of-epoch work (validation and recording, the cost of the epoch-0 record)."""
    wall = sum(e.wall_s for e in res[0].epochs[1:]) / (k * epochs)
    end = res[0].epochs[0].wall_s / k
    return {"train_s": max(wall - end, 0.0), "val_s": end}


def bench_fast(data: TrainData, k: int, epochs: int) -> dict:
    """The MLP fast path, measured as ``bench_engine.bench_engine`` does (same call, same
    figure), with the split of :func:`_split`."""
    torch.manual_seed(1234)
    models = [build_mlp(MLPSpec()) for _ in range(k)]
    res = train(models, list(range(k)), data, TrainConfig(epochs=epochs))
    return _split(res, k, epochs) | {"val_acc": sum(r.final_val_acc for r in res) / k}


def bench_plain(build, shape, data: TrainData, n_models: int, epochs: int) -> dict:
    from torch.utils.data import DataLoader, TensorDataset

    x, y = data.train_x.reshape(-1, *shape), data.train_y
    xv, yv = data.val_x.reshape(-1, *shape), data.val_y
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=128)
    loss_fn = nn.CrossEntropyLoss()
    times, vals, accs = [], [], []
    for model in make_models(build, n_models):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        for _ in range(epochs):
            t = time.perf_counter()
            model.train()
            running = 0.0
            for xb, yb in loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                running += loss.item() * len(yb)
            t_val = time.perf_counter()
            model.eval()
            correct = 0
            with torch.no_grad():
                for xb, yb in val_loader:
                    correct += int((model(xb).argmax(1) == yb).sum())
            times.append(t_val - t)
            vals.append(time.perf_counter() - t_val)
        accs.append(correct / len(yv))
    return {"train_s": sum(times) / len(times), "val_s": sum(vals) / len(vals),
            "val_acc": sum(accs) / len(accs)}


def bench_vmap(build, shape, data: TrainData, k: int, epochs: int, chunk: int = 500) -> dict:
    """torch.func the textbook way (see the module docstring)."""
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    models = make_models(build, k)
    params, buffers = stack_module_state(models)
    params = {n: p.detach() for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step_fn = vmap(grad_and_value(loss_fn), in_dims=(0, 0, 0, 0), randomness="different")

    def logits_fn(p, b, xb):
        return functional_call(base, (p, b), (xb,))

    eval_fn = vmap(logits_fn, in_dims=(0, 0, None))
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
    x, y = data.train_x.reshape(-1, *shape), data.train_y
    xv, yv = data.val_x.reshape(-1, *shape), data.val_y
    N, B = len(y), 128
    g = torch.Generator().manual_seed(0)
    t_step, times, vals = 0, [], []
    for _ in range(epochs):
        t = time.perf_counter()
        base.train()
        perms = torch.stack([torch.randperm(N, generator=g) for _ in range(k)])
        running = torch.zeros(k)
        for s in range(0, N, B):
            idx = perms[:, s : s + B]
            grads, loss = step_fn(params, buffers, x[idx], y[idx])
            running += loss.detach() * idx.shape[1]
            t_step += 1
            bc1, bc2 = 1 - b1**t_step, 1 - b2**t_step
            for n, p in params.items():
                m[n].mul_(b1).add_(grads[n], alpha=1 - b1)
                v[n].mul_(b2).addcmul_(grads[n], grads[n], value=1 - b2)
                p.addcdiv_(m[n], v[n].sqrt().div_(math.sqrt(bc2)).add_(eps), value=-lr / bc1)
        running.tolist()
        t_val = time.perf_counter()
        base.eval()
        correct = torch.zeros(k)
        with torch.no_grad():
            for s in range(0, len(yv), chunk):
                correct += (eval_fn(params, buffers, xv[s : s + chunk]).argmax(-1) == yv[s : s + chunk]).sum(1)
        times.append(t_val - t)
        vals.append(time.perf_counter() - t_val)
    return {"train_s": sum(times) / (len(times) * k), "val_s": sum(vals) / (len(vals) * k),
            "val_acc": float(correct.mean()) / len(yv)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--data-dir", default=None, help="data root holding fashion-mnist/ (e.g. ../shared/data)")
    add("--models", type=int, default=7, help="K, models trained together (default 7)")
    add("--epochs", type=int, default=1, help="epochs per run (default 1)")
    add("--limit-train", type=int, default=None,
        help="CNN: train on the first N images (validation ceil(N/6)); figures extrapolated to 60k")
    add("--mlp-limit-train", type=int, default=None,
        help="the same for the MLP (default: the full 60k, no extrapolation)")
    add("--archs", nargs="+", default=["cnn", "mlp"], choices=["cnn", "mlp"])
    add("--trainers", nargs="+", default=["generic", "plain", "vmap", "fast"],
        choices=["generic", "plain", "vmap", "fast"])
    add("--mode", default="auto", choices=["auto", "vmap", "each"], help="train_generic's mode")
    add("--plain-models", type=int, default=1, help="models the plain loop trains (default 1)")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    def load(limit: int | None) -> tuple[TrainData, str]:
        ds = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False, limit_train=limit,
                          limit_val=None if limit is None else -(-limit // 6))
        return TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y), str(ds.folder)

    slices = {"cnn": load(args.limit_train), "mlp": load(args.mlp_limit_train)}
    K = args.models
    out: dict = {"data": f"Fashion-MNIST from {slices['cnn'][1]}", "threads": torch.get_num_threads(),
                 "torch": torch.__version__, "models": K, "epochs": args.epochs, "archs": {}}
    for arch in args.archs:
        data = slices[arch][0]
        limited = data.n_train < FULL_TRAIN
        scale = FULL_TRAIN / data.n_train if limited else 1.0
        val_scale = FULL_VAL / data.n_val if limited else 1.0
        if arch == "cnn":
            build, label, shape = cnn_maker()
        else:
            build, label, shape = (lambda: build_mlp(MLPSpec())), "mlp-256x128-relu-d0.2 (article)", (1, 28, 28)
        figs: dict = {"model": label, "n_train": data.n_train, "n_val": data.n_val,
                      "extrapolated_to_60k": limited}
        for trainer in args.trainers:
            if trainer == "fast" and arch != "mlp":
                continue
            if trainer == "generic":
                r = bench_generic(build, shape, data, K, args.epochs, args.mode)
            elif trainer == "plain":
                r = bench_plain(build, shape, data, args.plain_models, args.epochs)
            elif trainer == "vmap":
                r = bench_vmap(build, shape, data, K, args.epochs)
            else:
                r = bench_fast(data, K, args.epochs)
            r["measured_s_per_model_epoch"] = r["train_s"] + r["val_s"]
            r["s_per_model_epoch"] = r["train_s"] * scale + r["val_s"] * val_scale
            figs[trainer] = r
            if not args.json:
                print(f"{arch} {trainer}: {r['s_per_model_epoch']:.3f} s/model-epoch"
                      f"{' (extrapolated)' if scale != 1 else ''}", flush=True)
        base = figs.get("plain", {}).get("s_per_model_epoch")
        if base:
            figs["speedup_vs_plain"] = {t: base / figs[t]["s_per_model_epoch"]
                                        for t in ("generic", "vmap", "fast") if t in figs}
        if "generic" in figs and "fast" in figs:
            figs["generic_over_fast"] = figs["generic"]["s_per_model_epoch"] / figs["fast"]["s_per_model_epoch"]
        out["archs"][arch] = figs
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"\n{out['data']}; torch {out['torch']}, {out['threads']} threads, K={K}, "
          f"{args.epochs} epoch(s)")
    for arch, figs in out["archs"].items():
        note = " -- EXTRAPOLATED to the 60k/10k epoch (see --help)" if figs["extrapolated_to_60k"] else ""
        print(f"{arch}: {figs['model']}, measured on {figs['n_train']} train / {figs['n_val']} val{note}")
        for t in ("generic", "plain", "vmap", "fast"):
            if t in figs:
                sp = figs.get("speedup_vs_plain", {}).get(t)
                extra = f"  {sp:.2f}x vs plain" if sp else ""
                print(f"  {t:8s} {figs[t]['s_per_model_epoch']:8.3f} s/model-epoch{extra}"
                      f"  (val acc {figs[t]['val_acc']:.3f})")
        if "generic" in figs and figs["generic"]["log"]:
            print(f"  generic log: {figs['generic']['log'][0]}")
        if "generic_over_fast" in figs:
            print(f"  generic / fast path: {figs['generic_over_fast']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
