#!/usr/bin/env python
"""Benchmark the batched engines on one GPU: thousands of the article's MLP at once.

In one run on one device (``--device``, default ``cuda`` when there is one), for the
trainers of ``--trainers`` (default all four):

* ``engine``: the MLP engine, :func:`initlab.engine.train`, on K models at once (K
  different seeds, so K data orders and dropout streams, the worst case), full recording
  on, at each K of ``--models`` (default 1 10 100 1000 5000), once per step mode of
  ``--steps`` (``eager``; ``cuda-graphs``: each step one graph replay; ``compile``:
  torch.compile of the step, up to ``--compile-max`` models, as each K compiles anew;
  default ``eager cuda-graphs`` on CUDA, ``eager`` on the CPU), and once per
  ``--engine-configs MODE/ADAM`` (a step mode with the engine's Adam: ``foreach`` updates
  all K models in a few kernels, where the fused kernel is launched once per model on
  CUDA, so that it can skip a frozen model without a host sync);
* ``generic``: the generic trainer, :func:`initlab.engine.generic.train_generic` with
  ``mode="vmap"``, at each K up to ``--generic-max`` (default 1000);
* ``vmap``: ``torch.func`` written the textbook way (``stack_module_state``,
  ``vmap(grad_and_value(loss), randomness="different")``, Adam in plain tensor ops,
  validation by a vmapped forward) at each K up to ``--vmap-max`` (default 5000);
* ``plain``: the textbook one-model loop (data resident on the device, ``randperm``
  batches, ``torch.optim.Adam``, ``loss.item()`` per step), one model;
* ``peak``: the device's matmul rate in the run's precision, best of several ``torch.mm``
  of ``--peak-size`` square matrices (float32 with TF32 off for fp32, on for tf32;
  bfloat16 for bf16), so that each trainer's rate is a fraction of what this GPU reaches.

The engine and the generic trainer train ``--epochs`` epochs (default 2) and the figure is
the last epoch's (the engine's own record: training and validation, synchronized), so that
a compilation or graph capture in epoch 1 is not counted (``first_epoch_ms`` shows epoch 1);
vmap and plain run one epoch after the plain loop warmed the device up.

Per configuration: ms per model-epoch (the epoch's wall time / K), the peak device memory
(``torch.cuda.max_memory_allocated``), the achieved GFLOP/s of the model's matrix products
(counted as ``bench_engine.py`` counts them) and their fraction of ``peak``, the mean and
the standard deviation of the K final validation accuracies; for the engine also its
speed-up over ``vmap`` (same K) and ``plain``.

``--precision``: ``fp32`` (default; the engine's numerics, TF32 off), ``tf32`` (TF32
matmuls, CUDA only) or ``bf16`` (the engine's bfloat16 products with float32 master
weights and Adam state, ``TrainConfig.precision``; ``torch.autocast`` to bfloat16 for
vmap and plain). Run it once per precision: the final accuracies of the same K models
(same seeds, same initializations) then show each precision's effect on accuracy.

Targets (on an H100/H200-class GPU): K >= 1000 concurrently, at most 5 ms per model-epoch
at K = 1000, faster than vmap at every K.

``--budget-s`` skips the configurations left once that many seconds have passed (they are
listed as skipped); ``--out FILE`` rewrites FILE with the JSON after every configuration,
so a run cut short keeps what it measured (each row also lists the K accuracies,
``val_accs``, for paired comparisons across precisions: ``gpu_table.py``). ``--quick`` is a smoke test for any machine
(CPU included): K = 1 and 4, 1,024 training images, 1 epoch, a small peak matmul.

Examples::

    python benchmarks/bench_gpu.py --data-dir ../shared/data                   # the GPU table
    python benchmarks/bench_gpu.py --precision bf16 --models 1000 --out bf16.json
    python benchmarks/bench_gpu.py --quick --device cpu                        # smoke test
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from initlab.data import load_dataset
from initlab.engine import MLPSpec, TrainConfig, TrainData, build_mlp, train
from initlab.engine.generic import train_generic
from initlab.engine.precision import PRECISIONS, check_precision, precision_mode
from initlab.engine.step import STEP_MODES
from initlab.errors import InitlabError

BATCH = 128
TRAINERS = ("engine", "generic", "vmap", "plain")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int | None:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None


def autocast(precision: str, device: torch.device) -> Any:
    """bfloat16 autocast for the textbook loops under ``bf16`` (TF32 is set by
    :func:`precision_mode` around the whole run)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def matmul_peak(device: torch.device, n: int, precision: str, repeats: int = 10) -> float:
    """Best GFLOP/s of ``torch.mm`` on two ``n x n`` matrices on *device*, in bfloat16 for
    ``bf16``, else float32 (TF32 as :func:`precision_mode` set it)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
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
    torch.manual_seed(1234)  # the same K initializations in every run (and precision)
    return [build_mlp(spec) for _ in range(k)]


class Run:
    """What one configuration measured: the timed epoch's seconds, epoch 1's seconds and
    the K final validation accuracies."""

    def __init__(self, seconds: float, first: float, accs: list[float], note: str = "") -> None:
        self.seconds, self.first, self.accs, self.note = seconds, first, accs, note


def _from_results(res: list, caught: list) -> Run:
    last = res[0].epochs[-1].wall_s
    first = res[0].epochs[1].wall_s
    notes = sorted({str(w.message) for w in caught if "fell back" in str(w.message)})
    return Run(last, first, [r.final_val_acc for r in res], "; ".join(notes))


def run_engine(data: TrainData, k: int, device: torch.device, spec: MLPSpec, precision: str,
               epochs: int, step: str = "eager") -> Run:
    """*step* is a step mode, or ``MODE/ADAM`` with the engine's Adam implementation
    (``auto``, ``fused``, ``foreach``)."""
    mode, _, adam = step.partition("/")
    models = make_models(k, spec)
    cfg = TrainConfig(epochs=epochs, device=str(device), precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(models, list(range(k)), data, cfg, step=mode, adam=adam or "auto")
    return _from_results(res, caught)


def run_generic(data: TrainData, k: int, device: torch.device, spec: MLPSpec, precision: str,
                epochs: int, step: str = "eager") -> Run:
    models = make_models(k, spec)
    cfg = TrainConfig(epochs=epochs, device=str(device), precision=precision)
    res = train_generic(models, list(range(k)), data, cfg, input_shape=(784,), mode="vmap")
    return _from_results(res, [])


def run_plain(data: TrainData, k: int, device: torch.device, spec: MLPSpec, precision: str,
              epochs: int, step: str = "eager") -> Run:
    """One epoch of the textbook loop on one model (``k`` is ignored)."""
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
        with autocast(precision, device):
            loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        running += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xv[s : s + 2048]).argmax(1) == yv[s : s + 2048]).sum())
                      for s in range(0, len(yv), 2048))
    sync(device)
    secs = time.perf_counter() - t
    return Run(secs, secs, [correct / len(yv)])


def run_vmap(data: TrainData, k: int, device: torch.device, spec: MLPSpec, precision: str,
             epochs: int, step: str = "eager") -> Run:
    """One epoch of textbook torch.func vmap on K models."""
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    models = [m.to(device) for m in make_models(k, spec)]
    params, buffers = stack_module_state(models)
    params = {n: p.detach() for n, p in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    del models

    def loss_fn(p, b, xb, yb):
        with autocast(precision, device):
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
            gr = grads[n].float()
            m[n].mul_(b1).add_(gr, alpha=1 - b1)
            v[n].mul_(b2).addcmul_(gr, gr, value=1 - b2)
            p.addcdiv_(m[n], v[n].sqrt().div_(math.sqrt(bc2)).add_(eps), value=-lr / bc1)
    base.eval()
    correct = torch.zeros(k, device=device)
    chunk = max(1, min(2048, (2**28) // (k * 256)))  # bound the [K, chunk, 256] activations
    with torch.no_grad():
        for s in range(0, len(yv), chunk):
            correct += (eval_fn(params, buffers, xv[s : s + chunk]).argmax(-1) == yv[s : s + chunk]).sum(1)
    accs = (correct / len(yv)).tolist()
    sync(device)
    secs = time.perf_counter() - t0
    return Run(secs, secs, accs)


RUNNERS: dict[str, Callable[..., Run]] = {"engine": run_engine, "generic": run_generic, "vmap": run_vmap,
                                          "plain": run_plain}


def make_row(trainer: str, step: str, k: int, run: Run, peak: int | None, flops: int,
             peak_gflops: float, precision: str) -> dict:
    per = run.seconds / k
    gflops = flops / per / 1e9
    sd = statistics.stdev(run.accs) if len(run.accs) > 1 else 0.0
    return {"trainer": trainer, "step": step, "precision": precision, "K": k,
            "ms_per_model_epoch": 1e3 * per, "first_epoch_ms_per_model": 1e3 * run.first / k,
            "val_acc": statistics.fmean(run.accs), "val_acc_sd": sd,
            "peak_mem_gib": None if peak is None else peak / 2**30,
            "gflops": gflops, "fraction_of_peak": gflops / peak_gflops, "note": run.note,
            "val_accs": run.accs}


def guarded(fn: Callable[[], dict]) -> dict | str:
    """Run one configuration; an out-of-memory error is reported (as a string), not fatal."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - GPU only
        torch.cuda.empty_cache()
        return f"out of memory: {str(exc).splitlines()[0]}"


def plan(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """The configurations ``(trainer, step, K)`` in the order they run: plain first (it
    warms the device up), then each K for every trainer."""
    todo: list[tuple[str, str, int]] = []
    if "plain" in args.trainers:
        todo.append(("plain", "eager", 1))
    for k in args.models:
        if "engine" in args.trainers:
            for step in args.steps + args.engine_configs:
                if step.startswith("compile") and k > args.compile_max:
                    continue
                todo.append(("engine", step, k))
        if "generic" in args.trainers and k <= args.generic_max:
            todo.append(("generic", "eager", k))
        if "vmap" in args.trainers and k <= args.vmap_max:
            todo.append(("vmap", "eager", k))
    return todo


def add_speedups(rows: list[dict]) -> None:
    plain = next((r for r in rows if r["trainer"] == "plain"), None)
    for r in rows:
        if r["trainer"] != "engine":
            continue
        v = next((x for x in rows if x["trainer"] == "vmap" and x["K"] == r["K"]), None)
        r["speedup_vs_plain"] = None if plain is None else plain["ms_per_model_epoch"] / r["ms_per_model_epoch"]
        r["speedup_vs_vmap"] = None if v is None else v["ms_per_model_epoch"] / r["ms_per_model_epoch"]


def render(report: dict) -> str:
    m = report["meta"]
    lines = [f"{m['device']}, {m['precision']}, {m['peak_dtype']} mm peak {m['matmul_peak_gflops']:.0f} GFLOP/s; "
             f"{m['n_train']} train / {m['n_val']} val images, batch {BATCH}, engine figures from epoch "
             f"{m['epochs']} of {m['epochs']}",
             f"{'trainer':<8} {'step':<11} {'K':>5} {'ms/model-epoch':>15} {'epoch 1':>9} {'val acc':>15} "
             f"{'peak GiB':>9} {'of peak':>8} {'vs plain':>9} {'vs vmap':>8}"]
    for r in report["rows"]:
        mem = "-" if r["peak_mem_gib"] is None else f"{r['peak_mem_gib']:.2f}"
        vp = f"{r['speedup_vs_plain']:.1f}x" if r.get("speedup_vs_plain") else ""
        vv = f"{r['speedup_vs_vmap']:.1f}x" if r.get("speedup_vs_vmap") else ""
        acc = f"{r['val_acc']:.4f}+-{r['val_acc_sd']:.4f}"
        lines.append(f"{r['trainer']:<8} {r['step']:<11} {r['K']:>5} {r['ms_per_model_epoch']:>15.3f} "
                     f"{r['first_epoch_ms_per_model']:>9.3f} {acc:>15} {mem:>9} {r['fraction_of_peak']:>8.1%} "
                     f"{vp:>9} {vv:>8}" + (f"  ({r['note']})" if r["note"] else ""))
    for s in report["skipped"]:
        lines.append(f"skipped: {s}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", type=int, nargs="+", default=[1, 10, 100, 1000, 5000])
    ap.add_argument("--trainers", nargs="+", choices=TRAINERS, default=list(TRAINERS))
    ap.add_argument("--steps", nargs="+", choices=STEP_MODES, default=None,
                    help="the engine's step modes (default: eager cuda-graphs on CUDA, eager on the CPU)")
    ap.add_argument("--engine-configs", nargs="+", default=[], metavar="MODE/ADAM",
                    help="more engine configurations: a step mode and the engine's Adam (auto, fused, "
                         "foreach), e.g. eager/foreach cuda-graphs/foreach")
    ap.add_argument("--compile-max", type=int, default=1000, help="largest K for --steps compile")
    ap.add_argument("--compile-backend", default="inductor",
                    help="torch.compile backend of --steps compile (aot_eager: the trace alone, for smoke tests)")
    ap.add_argument("--generic-max", type=int, default=1000, help="largest K for the generic trainer")
    ap.add_argument("--vmap-max", type=int, default=5000, help="largest K for textbook vmap")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the engine and generic runs (the last is timed)")
    ap.add_argument("--precision", default="fp32", choices=PRECISIONS)
    ap.add_argument("--peak-size", type=int, default=8192)
    ap.add_argument("--limit-train", type=int, default=None, help="train on the first N images")
    ap.add_argument("--budget-s", type=float, default=None, help="skip what is left after this many seconds")
    ap.add_argument("--out", default=None, help="rewrite this JSON file after every configuration")
    ap.add_argument("--quick", action="store_true", help="K = 1 and 4 on 1,024 images, 1 epoch: a smoke test")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA device; use --device cpu")
    try:
        check_precision(args.precision, device)
    except InitlabError as exc:
        ap.error(str(exc))
    if args.compile_backend != "inductor":
        from initlab.engine import step as engine_step

        engine_step.COMPILE_BACKEND = args.compile_backend
    if args.steps is None:
        args.steps = ["eager", "cuda-graphs"] if device.type == "cuda" else ["eager"]
    for c in args.engine_configs:
        mode, _, adam = c.partition("/")
        if mode not in STEP_MODES or adam not in ("auto", "fused", "foreach"):
            ap.error(f"--engine-configs {c!r}: give MODE/ADAM, MODE one of {', '.join(STEP_MODES)}, "
                     "ADAM one of auto, fused, foreach")
    if args.quick:
        args.models, args.limit_train, args.peak_size, args.epochs = [1, 4], 1024, 512, 1
    t_start = time.perf_counter()
    n_val = None if not args.limit_train else max(1, -(-args.limit_train // 6))
    ds = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False,
                      limit_train=args.limit_train, limit_val=n_val)
    data = TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y)
    spec = MLPSpec()
    flops = epoch_flops(spec, data.n_train, data.n_val)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    report: dict[str, Any] = {"rows": [], "skipped": []}
    with precision_mode(args.precision, device):
        peak = matmul_peak(device, args.peak_size, args.precision)
        report["meta"] = {"device": name, "precision": args.precision, "matmul_peak_gflops": peak,
                          "peak_dtype": "bfloat16" if args.precision == "bf16" else "float32",
                          "n_train": data.n_train, "n_val": data.n_val, "epochs": args.epochs,
                          "torch": torch.__version__, "cpus": os.cpu_count(),
                          "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        for trainer, step, k in plan(args):
            what = f"{trainer} {step} K={k}"
            if args.budget_s is not None and time.perf_counter() - t_start > args.budget_s:
                report["skipped"].append(f"{what} (budget of {args.budget_s:.0f} s spent)")
                continue
            print(f"{what} ...", file=sys.stderr, flush=True)
            fn = RUNNERS[trainer]

            def one() -> dict:
                reset_peak(device)
                run = fn(data, k, device, spec, args.precision, args.epochs, step)
                return make_row(trainer, step, k, run, peak_bytes(device), flops, peak, args.precision)

            r = guarded(one)
            if isinstance(r, str):
                report["skipped"].append(f"{what} ({r})")
            else:
                report["rows"].append(r)
            add_speedups(report["rows"])
            if args.out:
                tmp = f"{args.out}.tmp"
                with open(tmp, "w") as f:
                    json.dump(report, f, indent=2)
                os.replace(tmp, args.out)
    report["meta"]["wall_s"] = time.perf_counter() - t_start
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
