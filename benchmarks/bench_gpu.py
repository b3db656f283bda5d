#!/usr/bin/env python
"""Benchmark the batched engines on one GPU: thousands of the article's MLP at once.

In one run on one device (``--device``, default ``cuda`` when there is one):

* ``engine``: the MLP engine, :func:`initlab.engine.train`, on K models at once (K
  different seeds, so K data orders and dropout streams, the worst case), full recording
  on, at each K of ``--models`` (default 1 10 100 1000 5000);
* ``generic``: the generic trainer, :func:`initlab.engine.generic.train_generic` with
  ``mode="vmap"``, at each K up to ``--generic-max`` (default 1000);
* ``vmap``: ``torch.func`` written the textbook way (``stack_module_state``,
  ``vmap(grad_and_value(loss), randomness="different")``, Adam in plain tensor ops,
  validation by a vmapped forward) at each K up to ``--vmap-max`` (default 5000);
* ``plain``: the textbook one-model loop (data resident on the device, ``randperm``
  batches, ``torch.optim.Adam``, ``loss.item()`` per step), one model;
* ``peak``: the device's float32 matmul rate, best of several ``torch.mm`` of
  ``--peak-size`` square matrices (TF32 off unless ``--precision tf32``), so that each
  engine's rate can be given as a fraction of what this GPU reaches.

Per configuration: seconds per model-epoch (one epoch's wall time, training and
validation on the 10k test set, divided by K), the peak device memory
(``torch.cuda.max_memory_allocated``), the achieved GFLOP/s of the model's matrix products
(counted as ``bench_engine.py`` counts them) and their fraction of ``peak``, the mean final
validation accuracy; for the engine also its speed-up over ``vmap`` and ``plain``.

``--precision``: ``fp32`` (default; the engine's numerics, TF32 off), ``tf32`` (TF32
matmuls: ``torch.backends.cuda.matmul.allow_tf32`` and cuDNN's, set for the run and
restored after). The engine has no bf16 path: its products write float32 buffers in place
(``out=``); ``--precision bf16`` is refused with that reason. Run the script twice, fp32
and tf32, to see TF32's effect on speed and on the final accuracy (printed per run).

Targets (issue "CUDA: thousands of models at once"): on an H100/H200-class GPU, K >= 1000
concurrently, at most 5 ms per model-epoch at K = 1000, faster than vmap at every K.

``--quick`` is a smoke test for any machine (CPU included): K = 1 and 4, 1,024 training
images, the figures extrapolated to nothing (they are the measured small-epoch ones).

Examples::

    python benchmarks/bench_gpu.py --data-dir ../shared/data                   # the GPU table
    python benchmarks/bench_gpu.py --precision tf32 --json > tf32.json
    python benchmarks/bench_gpu.py --quick --device cpu                        # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from initlab.data import load_dataset
from initlab.engine import MLPSpec, TrainConfig, TrainData, build_mlp, train
from initlab.engine.generic import train_generic

BATCH = 128


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


@contextlib.contextmanager
def precision(mode: str) -> Iterator[None]:
    """TF32 on for ``mode == "tf32"`` (matmul and cuDNN), off for ``fp32``; restored after."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    on = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def matmul_peak(device: torch.device, n: int, repeats: int = 10) -> float:
    """Best GFLOP/s of ``torch.mm`` on two ``n x n`` float32 matrices on *device*."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    sync(device)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def epoch_flops(spec: MLPSpec, n_train: int, n_val: int) -> int:
    """Matrix-product FLOPs of one model-epoch (as bench_engine.py counts them)."""
    w = spec.widths
    fwd = sum(2 * w[i] * w[i + 1] for i in range(len(w) - 1))
    dgrad = sum(2 * w[i] * w[i + 1] for i in range(1, len(w) - 1))
    return n_train * (2 * fwd + dgrad) + n_val * fwd


def make_models(k: int, spec: MLPSpec) -> list[nn.Module]:
    torch.manual_seed(1234)  # the init does not change the speed
    return [build_mlp(spec) for _ in range(k)]


def run_engine(data: TrainData, k: int, device: torch.device, spec: MLPSpec) -> tuple[float, float]:
    """Epoch 1's wall time (the engine's own record: training and validation, synchronized)
    and the mean final validation accuracy of K engine-trained models."""
    models = make_models(k, spec)
    res = train(models, list(range(k)), data, TrainConfig(epochs=1, device=str(device)))
    return res[0].epochs[1].wall_s, sum(r.final_val_acc for r in res) / k


def run_generic(data: TrainData, k: int, device: torch.device, spec: MLPSpec) -> tuple[float, float]:
    """As :func:`run_engine`, for the generic trainer (vmap mode)."""
    models = make_models(k, spec)
    res = train_generic(models, list(range(k)), data, TrainConfig(epochs=1, device=str(device)),
                        input_shape=(784,), mode="vmap")
    return res[0].epochs[1].wall_s, sum(r.final_val_acc for r in res) / k


def run_plain(data: TrainData, k: int, device: torch.device, spec: MLPSpec) -> tuple[float, float]:
    """One epoch of the textbook loop on one model (``k`` is ignored): seconds, accuracy."""
    model = make_models(1, spec)[0].to(device)
    x, y = data.train_x.reshape(-1, 784).to(device), data.train_y.to(device)
    xv, yv = data.val_x.reshape(-1, 784).to(device), data.val_y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    g = torch.Generator(device=device).manual_seed(0)
    sync(device)
    t = time.perf_counter()
    model.train()
    perm = torch.randperm(len(y), generator=g, device=device)
    running = 0.0
    for s in range(0, len(y), BATCH):
        idx = perm[s : s + BATCH]
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        running += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xv[s : s + 2048]).argmax(1) == yv[s : s + 2048]).sum())
                      for s in range(0, len(yv), 2048))
    sync(device)
    return time.perf_counter() - t, correct / len(yv)


def run_vmap(data: TrainData, k: int, device: torch.device, spec: MLPSpec) -> tuple[float, float]:
    """One epoch of textbook torch.func vmap on K models: seconds, mean accuracy."""
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    models = [m.to(device) for m in make_models(k, spec)]
    params, buffers = stack_module_state(models)
    params = {n: p.detach() for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    del models

    def loss_fn(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step_fn = vmap(grad_and_value(loss_fn), randomness="different")
    eval_fn = vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)), in_dims=(0, 0, None))
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
    x, y = data.train_x.reshape(-1, 784).to(device), data.train_y.to(device)
    xv, yv = data.val_x.reshape(-1, 784).to(device), data.val_y.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    sync(device)
    t0 = time.perf_counter()
    perms = torch.stack([torch.randperm(len(y), generator=g, device=device) for _ in range(k)])
    base.train()
    for t, s in enumerate(range(0, len(y), BATCH), start=1):
        idx = perms[:, s : s + BATCH]
        grads, _loss = step_fn(params, buffers, x[idx], y[idx])
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        for n, p in params.items():
            m[n].mul_(b1).add_(grads[n], alpha=1 - b1)
            v[n].mul_(b2).addcmul_(grads[n], grads[n], value=1 - b2)
            p.addcdiv_(m[n], v[n].sqrt().div_(math.sqrt(bc2)).add_(eps), value=-lr / bc1)
    base.eval()
    correct = torch.zeros(k, device=device)
    chunk = max(1, min(2048, (2**28) // (k * 256)))  # bound the [K, chunk, 256] activations
    with torch.no_grad():
        for s in range(0, len(yv), chunk):
            correct += (eval_fn(params, buffers, xv[s : s + chunk]).argmax(-1) == yv[s : s + chunk]).sum(1)
    acc = float(correct.mean()) / len(yv)
    sync(device)
    return time.perf_counter() - t0, acc


def measure(fn: Callable[..., tuple[float, float]], data: TrainData, k: int, device: torch.device,
            spec: MLPSpec) -> tuple[float, float, int | None]:
    """``(seconds, accuracy, peak device bytes)`` of one configuration."""
    reset_peak(device)
    secs, acc = fn(data, k, device, spec)
    return secs, acc, peak_bytes(device)


def row(name: str, k: int, seconds: float, acc: float, peak: int | None, flops: int, peak_gflops: float) -> dict:
    per = seconds / k
    gflops = flops / per / 1e9
    return {"trainer": name, "K": k, "s_per_model_epoch": per, "ms_per_model_epoch": 1e3 * per,
            "val_acc": acc, "peak_mem_gib": None if peak is None else peak / 2**30,
            "gflops": gflops, "fraction_of_peak": gflops / peak_gflops}


def guarded(fn: Callable[[], dict]) -> dict | None:
    """Run one configuration; an out-of-memory error is reported, not fatal."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - GPU only
        print(f"  out of memory: {str(exc).splitlines()[0]}", file=sys.stderr)
        torch.cuda.empty_cache()
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", type=int, nargs="+", default=[1, 10, 100, 1000, 5000])
    ap.add_argument("--generic-max", type=int, default=1000, help="largest K for the generic trainer")
    ap.add_argument("--vmap-max", type=int, default=5000, help="largest K for textbook vmap")
    ap.add_argument("--precision", default="fp32", help="fp32 (default) or tf32")
    ap.add_argument("--peak-size", type=int, default=8192)
    ap.add_argument("--limit-train", type=int, default=None, help="train on the first N images")
    ap.add_argument("--quick", action="store_true", help="K = 1 and 4 on 1,024 images: a smoke test")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.precision not in ("fp32", "tf32"):
        ap.error(f"--precision {args.precision!r} is not offered: use fp32 or tf32 (the engine's products "
                 "write float32 buffers in place, so it has no bf16 path)")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA device; use --device cpu")
    if args.quick:
        args.models, args.limit_train, args.peak_size = [1, 4], 1024, 512
    n_val = None if not args.limit_train else max(1, -(-args.limit_train // 6))
    ds = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False,
                      limit_train=args.limit_train, limit_val=n_val)
    data = TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y)
    spec = MLPSpec()
    flops = epoch_flops(spec, data.n_train, data.n_val)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows: list[dict] = []
    with precision(args.precision):
        peak = matmul_peak(device, args.peak_size)
        rows.append(row("plain", 1, *measure(run_plain, data, 1, device, spec), flops, peak))
        for k in args.models:
            for trainer, fn, limit in (("engine", run_engine, None), ("generic", run_generic, args.generic_max),
                                       ("vmap", run_vmap, args.vmap_max)):
                if limit is not None and k > limit:
                    continue
                print(f"{trainer} K={k} ...", file=sys.stderr, flush=True)
                r = guarded(lambda: row(trainer, k, *measure(fn, data, k, device, spec), flops, peak))
                if r is not None:
                    rows.append(r)
    plain = rows[0]["s_per_model_epoch"]
    for r in rows:
        if r["trainer"] == "engine":
            v = next((x for x in rows if x["trainer"] == "vmap" and x["K"] == r["K"]), None)
            r["speedup_vs_plain"] = plain / r["s_per_model_epoch"]
            r["speedup_vs_vmap"] = None if v is None else v["s_per_model_epoch"] / r["s_per_model_epoch"]
    meta = {"device": name, "precision": args.precision, "matmul_peak_gflops": peak, "n_train": data.n_train,
            "n_val": data.n_val, "torch": torch.__version__}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(f"{name}, {args.precision}, float32 mm peak {peak:.0f} GFLOP/s; {data.n_train} train / "
          f"{data.n_val} val images, batch {BATCH}")
    print(f"{'trainer':<8} {'K':>5} {'ms/model-epoch':>15} {'val acc':>8} {'peak GiB':>9} {'GFLOP/s':>9} "
          f"{'of peak':>8} {'vs plain':>9} {'vs vmap':>8}")
    for r in rows:
        mem = "-" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.2f}"
        vp = f"{r['speedup_vs_plain']:.1f}x" if "speedup_vs_plain" in r else ""
        vv = f"{r['speedup_vs_vmap']:.1f}x" if r.get("speedup_vs_vmap") else ""
        print(f"{r['trainer']:<8} {r['K']:>5} {r['ms_per_model_epoch']:>15.2f} {r['val_acc']:>8.4f} {mem:>9} "
              f"{r['gflops']:>9.0f} {r['fraction_of_peak']:>8.1%} {vp:>9} {vv:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
