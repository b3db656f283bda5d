#!/usr/bin/env python
"""Benchmark the batched training engine against a plain one-model-at-a-time loop.

Trains the article's MLP (784-256-128-10, ReLU, dropout 0.2, Adam, batch 128, validation on
the 10k test set after every epoch) two ways in the same process:

* ``engine``: :func:`initlab.engine.train` on K models at once (full recording on:
  histograms, activation statistics, step losses);
* ``plain``: the textbook PyTorch loop, one model after the other:
  ``DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)``, ``nn.Sequential`` with
  ``nn.Dropout``, ``torch.optim.Adam``, ``loss.item()`` per step, and a validation pass
  (``model.eval()``, batches of 128) after every epoch;

and reports seconds per model-epoch (epoch wall time, including validation, divided by the
number of models), the speed-up, and how much of this machine's sgemm peak the engine
reaches.

Engine configurations are ``K`` (K models with K different seeds: K data orders and
dropout streams, the worst case) or ``K/S`` (K models on S seeds, as a study groups its
cells: the ``seed`` preset trains 7 schemes x 3 seeds = ``21/3``; models sharing a seed
share one data stream, gathered and hashed once per step).

The *floor* of a configuration is what the engine's unavoidable work costs on this
machine, measured in the same run with the engine's own kernels: the matrix products of
one training step of the K models (forward with bias, weight and input gradients; batch
128, from :func:`initlab.engine.functional.bmm`) and one fused Adam update of their
parameters, times the steps of an epoch, plus the validation pass
(:func:`initlab.engine.functional.evaluate`), per model.  Everything else the engine does
(gather, dropout, activations, loss, divergence check, recording, Python) is the
difference between its time and the floor.  The peak is measured in the same run (best of several ``torch.mm`` of
``--peak-size`` square matrices).  FLOPs of one model-epoch count the matrix products
exactly (``2*m*n*k`` each; bias adds and elementwise work are not counted)::

    forward   per sample: sum_l 2 * in_l * out_l                      (all layers)
    backward  per sample: sum_l 2 * in_l * out_l  (weight gradients)
                        + sum_{l>=2} 2 * in_l * out_l  (input gradients, not layer 1)
    epoch = N_train * (forward + backward) + N_val * forward

Data: real Fashion-MNIST from ``--data-dir`` or ``$INITLAB_DATA_DIR`` (the four gzip IDX
files, directly there or in a ``fashion-mnist/`` subfolder), else random data of the same
shape (the output says which; speed does not depend on it).

Examples::

    python benchmarks/bench_engine.py                      # 7, 7/1 and 21/3; 1 epoch, 3 repeats
    python benchmarks/bench_engine.py --models 7 21 --epochs 2 --json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from initlab.engine import MLPSpec, TrainConfig, TrainData, build_mlp, train
from initlab.engine.adam import StackedAdam
from initlab.engine.functional import bmm, evaluate
from initlab.engine.stack import ParamStack

FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "val_x": "t10k-images-idx3-ubyte.gz",
    "val_y": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): big-endian header, magic ``0x000008nn`` (uint8 data, nn dims)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_data(data_dir: str | None) -> tuple[TrainData, str]:
    """Fashion-MNIST as the article prepares it (pixels / 255), or random stand-ins."""
    for root in [d for d in (data_dir, os.environ.get("INITLAB_DATA_DIR")) if d]:
        for folder in (Path(root), Path(root) / "fashion-mnist", Path(root) / "fashion_mnist"):
            if all((folder / f).is_file() for f in FILES.values()):
                a = {k: read_idx(folder / f) for k, f in FILES.items()}
                data = TrainData(
                    torch.from_numpy(a["train_x"].astype(np.float32) / 255.0),
                    torch.from_numpy(a["train_y"].astype(np.int64)),
                    torch.from_numpy(a["val_x"].astype(np.float32) / 255.0),
                    torch.from_numpy(a["val_y"].astype(np.int64)),
                )
                return data, f"Fashion-MNIST from {folder}"
    g = torch.Generator().manual_seed(0)
    data = TrainData(
        torch.rand(60000, 28, 28, generator=g),
        torch.randint(0, 10, (60000,), generator=g),
        torch.rand(10000, 28, 28, generator=g),
        torch.randint(0, 10, (10000,), generator=g),
    )
    return data, "random data of Fashion-MNIST's shape (no IDX files found)"


def model_epoch_flops(spec: MLPSpec, n_train: int, n_val: int) -> dict[str, int]:
    w = spec.widths
    fwd = sum(2 * w[i] * w[i + 1] for i in range(len(w) - 1))
    wgrad = fwd
    dgrad = sum(2 * w[i] * w[i + 1] for i in range(1, len(w) - 1))
    train_f = n_train * (fwd + wgrad + dgrad)
    val_f = n_val * fwd
    return {"forward_per_sample": fwd, "train": train_f, "val": val_f, "total": train_f + val_f}


def sgemm_peak(n: int, repeats: int = 5) -> float:
    """Best GFLOP/s of ``torch.mm`` on two random ``n x n`` float32 matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def make_models(spec: MLPSpec, k: int) -> list[nn.Sequential]:
    """K models with PyTorch's default init, seeded (the init does not change the speed)."""
    torch.manual_seed(1234)
    return [build_mlp(spec) for _ in range(k)]


def parse_config(text: str) -> tuple[int, int]:
    """``"K"`` -> ``(K, K)``; ``"K/S"`` -> ``(K, S)`` (K models on S seeds)."""
    try:
        k, _, s = text.partition("/")
        K, S = int(k), int(s or k)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad engine configuration {text!r}; use K or K/S") from None
    if not 1 <= S <= K:
        raise argparse.ArgumentTypeError(f"bad engine configuration {text!r}; need 1 <= S <= K")
    return K, S


def best_time(fn, reps: int, rounds: int = 3) -> float:
    """Best over *rounds* of the mean time of *reps* calls of *fn* (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t) / reps)
    return best


def engine_floor(spec: MLPSpec, data: TrainData, k: int, batch: int = 128) -> dict[str, float]:
    """Seconds per model-epoch of the engine's unavoidable work (see the module docstring):
    ``gemm`` (training products), ``adam``, ``val`` and their sum ``floor``."""
    stack = ParamStack.from_models(make_models(spec, k), torch.device("cpu"), spec)
    w = spec.widths
    L = len(w) - 1
    g = torch.Generator().manual_seed(0)
    acts = [torch.rand(k, batch, n, generator=g) for n in w]  # layer inputs / outputs
    outs = [torch.empty(k, batch, n) for n in w]
    deltas = [torch.randn(k, batch, n, generator=g) for n in w]
    grads = [torch.empty_like(p) for p in stack.params()]

    def products() -> None:
        for l in range(L):  # forward
            bmm(acts[l], stack.W[l].transpose(1, 2), outs[l + 1], stack.b[l])
        for l in range(L - 1, -1, -1):  # weight and input gradients
            bmm(deltas[l + 1].transpose(1, 2), acts[l], grads[2 * l])
            if l > 0:
                bmm(deltas[l + 1], stack.W[l], outs[l])

    adam = StackedAdam(stack.params(), grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    frozen = torch.zeros(k)
    for gr in grads:
        gr.normal_(generator=g).mul_(1e-3)
    steps = -(-data.n_train // batch)
    xv = data.val_x.reshape(data.n_val, -1).float().contiguous()
    t_gemm = best_time(products, 20) * steps / k
    t_adam = best_time(lambda: adam.step(frozen), 20) * steps / k
    t_val = best_time(lambda: evaluate(stack, xv, data.val_y), 1) / k
    return {"gemm": t_gemm, "adam": t_adam, "val": t_val, "floor": t_gemm + t_adam + t_val}


def bench_engine(
    spec: MLPSpec, data: TrainData, k: int, epochs: int, n_seeds: int | None = None
) -> dict[str, float]:
    models = make_models(spec, k)
    seeds = [i % (n_seeds or k) for i in range(k)]
    t = time.perf_counter()
    results = train(models, seeds, data, TrainConfig(epochs=epochs))
    total = time.perf_counter() - t
    epoch_wall = sum(e.wall_s for e in results[0].epochs[1:])
    return {
        "s_per_model_epoch": epoch_wall / (k * epochs),
        "setup_and_init_s": total - epoch_wall,
        "final_val_acc_mean": float(np.mean([r.final_val_acc for r in results])),
    }


def bench_plain(spec: MLPSpec, data: TrainData, n_models: int, epochs: int) -> dict[str, float]:
    """The plain loop; returns seconds per model-epoch (epoch loop + validation)."""
    from torch.utils.data import DataLoader, TensorDataset

    x, y = data.train_x.reshape(data.n_train, -1), data.train_y
    xv, yv = data.val_x.reshape(data.n_val, -1), data.val_y
    train_loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=128)
    loss_fn = nn.CrossEntropyLoss()
    epoch_times: list[float] = []
    acc = []
    for model in make_models(spec, n_models):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        for _ in range(epochs):
            t = time.perf_counter()
            model.train()
            running = 0.0
            for xb, yb in train_loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                running += loss.item() * len(yb)
            model.eval()
            correct = 0
            with torch.no_grad():
                for xb, yb in val_loader:
                    correct += int((model(xb).argmax(1) == yb).sum())
            epoch_times.append(time.perf_counter() - t)
        acc.append(correct / data.n_val)
    return {
        "s_per_model_epoch": sum(epoch_times) / len(epoch_times),
        "final_val_acc_mean": float(np.mean(acc)),
    }


def summarize(values: list[float], higher_is_better: bool = False) -> dict[str, float]:
    best = max(values) if higher_is_better else min(values)
    return {"best": best, "median": statistics.median(values), "all": values}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add(
        "--models", type=parse_config, nargs="+", default=[(7, 7), (7, 1), (21, 3)],
        metavar="K[/S]", help="engine configurations: K models on S seeds (default 7 7/1 21/3)",
    )
    add("--epochs", type=int, default=1, help="epochs per run (default 1)")
    add("--plain-models", type=int, default=1, help="models of the plain loop per repeat")
    add("--repeat", type=int, default=3, help="repeats of each measurement (best and median)")
    add("--data-dir", default=None, help="folder with the Fashion-MNIST IDX files")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--peak-size", type=int, default=2048, help="matrix size of the sgemm peak measurement")
    add("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    spec = MLPSpec()
    data, source = load_data(args.data_dir)
    flops = model_epoch_flops(spec, data.n_train, data.n_val)
    def label(ks: tuple[int, int]) -> str:
        return str(ks[0]) if ks[0] == ks[1] else f"{ks[0]}/{ks[1]}"

    configs = list(dict.fromkeys(args.models))
    peaks, engine, plain = [], {label(c): [] for c in configs}, []
    floors: dict[int, list[dict[str, float]]] = {k: [] for k, _ in configs}
    for _ in range(args.repeat):
        peaks.append(sgemm_peak(args.peak_size))
        for k in floors:
            floors[k].append(engine_floor(spec, data, k))
        for k, n_seeds in configs:
            engine[label((k, n_seeds))].append(bench_engine(spec, data, k, args.epochs, n_seeds))
        plain.append(bench_plain(spec, data, args.plain_models, args.epochs))
    peak = max(peaks)
    plain_s = summarize([p["s_per_model_epoch"] for p in plain])
    out = {
        "data": source,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "epochs": args.epochs,
        "repeat": args.repeat,
        "flops_per_model_epoch": flops,
        "sgemm_peak_gflops": summarize(peaks, higher_is_better=True),
        "plain": {"s_per_model_epoch": plain_s, "val_acc": plain[-1]["final_val_acc_mean"]},
        "engine": {},
    }
    for (k, n_seeds), (name, runs) in zip(configs, engine.items()):
        s = summarize([r["s_per_model_epoch"] for r in runs])
        floor = {part: min(f[part] for f in floors[k]) for part in floors[k][0]}
        out["engine"][name] = {
            "models": k,
            "seeds": n_seeds,
            "floor_s_per_model_epoch": floor,
            "fraction_of_floor": {
                "best": floor["floor"] / s["best"],
                "median": floor["floor"] / s["median"],
            },
            "s_per_model_epoch": s,
            "speedup_vs_plain": {
                "best": plain_s["best"] / s["best"],
                "median": plain_s["median"] / s["median"],
            },
            "fraction_of_sgemm_peak": {
                "best": flops["total"] / s["best"] / 1e9 / peak,
                "median": flops["total"] / s["median"] / 1e9 / peak,
            },
            "setup_and_init_s": statistics.median(r["setup_and_init_s"] for r in runs),
            "val_acc": runs[-1]["final_val_acc_mean"],
        }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"data: {source}")
    print(
        f"torch {torch.__version__}, {out['threads']} threads, "
        f"{args.epochs} epoch(s), {args.repeat} repeat(s)"
    )
    print(
        f"FLOPs per model-epoch: {flops['total'] / 1e9:.3f} GFLOP "
        f"(train {flops['train'] / 1e9:.3f} = {data.n_train} x {flops['train'] // data.n_train}, "
        f"val {flops['val'] / 1e9:.3f} = {data.n_val} x {flops['forward_per_sample']})"
    )
    print(f"sgemm peak ({args.peak_size}^3 torch.mm): best {peak:.1f} GFLOP/s")
    print(f"plain loop: {plain_s['best']:.3f} s/model-epoch best, {plain_s['median']:.3f} median")
    for k, e in out["engine"].items():
        s, sp, fr = e["s_per_model_epoch"], e["speedup_vs_plain"], e["fraction_of_sgemm_peak"]
        print(
            f"engine, {e['models']} models on {e['seeds']} seed(s): {s['best']:.3f} s/model-epoch "
            f"best, {s['median']:.3f} median; "
            f"{sp['best']:.2f}x / {sp['median']:.2f}x vs plain; "
            f"{100 * fr['best']:.1f}% / {100 * fr['median']:.1f}% of sgemm peak "
            f"(setup + init snapshot {e['setup_and_init_s']:.2f} s)"
        )
        f = e["floor_s_per_model_epoch"]
        print(
            f"  floor (products {f['gemm']:.3f} + Adam {f['adam']:.3f} + validation "
            f"{f['val']:.3f}) = {f['floor']:.3f} s/model-epoch: the engine runs at "
            f"{100 * e['fraction_of_floor']['best']:.0f}% / "
            f"{100 * e['fraction_of_floor']['median']:.0f}% of its floor"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
