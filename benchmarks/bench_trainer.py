#!/usr/bin/env python
"""Benchmark the generic batched trainer against a plain loop and textbook torch.func vmap.

In one run, K models (default 7, each its own seed), batch 128, Adam, validation after
every epoch, Fashion-MNIST (``initlab.data.load_dataset`` from ``--data-dir``), on two
architectures:

* ``cnn``: the ``cnn`` family with 6 conv layers x 32 channels (3x3, stride 1, ReLU,
  global average pool, linear head): ``spec_from_dict({"kind": "cnn", "depth": 6,
  "channels": 32})`` (a hand-built equal ``nn.Sequential`` where the families are missing);
* ``mlp``: the article's MLP (784-256-128-10, ReLU, dropout 0.2);

and five trainers:

* ``generic``: :func:`initlab.engine.generic.train_generic` (``--mode``, default ``auto``),
  full recording on (histograms, activation statistics, step losses); on the CPU its
  one-by-one mode (which ``auto`` picks for conv nets) trains ``torch.get_num_threads()``
  models side by side on worker threads of one intra-op thread each
  (:mod:`initlab.engine.threads`);
* ``generic1``: the same with ``workers=1``: one model after the other on all threads
  (the trainer before the worker threads), to measure their gain in the same run;
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
on ``max(ceil(N/6), 512)``: the full set's 60k:10k ratio, and at least the recorders'
probe of 512 images) and reports the time extrapolated to the full 60k/10k epoch: each
trainer's training steps, validation pass and (generic) recorders are timed apart, the
steps scaled by ``60000 / N``, the validation by ``10000 / n_val``, and the recorders
(activation statistics on the 512-image probe, parameter statistics and histograms: a
fixed cost per epoch) taken as measured.  For the MLP fast path (``--mlp-limit-train``)
the recorders are part of its end-of-epoch time, which is scaled with the validation (an
overstatement).  The output says which figures are extrapolated and keeps the measured
ones (``measured_s_per_model_epoch``).

``--repeat R`` runs R rounds, each of every trainer once (the order rotated from round to
round), and reports each trainer's median over the rounds and each ratio as the median
of its per-round ratios with a 95% bootstrap interval (``scipy.stats.bootstrap``): on a
machine shared with other work, a ratio of two runs made minutes apart says more than
either time.  The load average (``/proc/loadavg``) before each round is in the JSON.

Examples::

    python benchmarks/bench_trainer.py --data-dir ../shared/data --limit-train 2560
    python benchmarks/bench_trainer.py --data-dir ../shared/data --archs cnn --limit-train 640 \
        --trainers generic generic1 plain --repeat 5
    python benchmarks/bench_trainer.py --models 7 --archs cnn --json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from initlab.data import load_dataset
from initlab.engine import MLPSpec, TrainConfig, TrainData, build_mlp, train
from initlab.engine.generic import _GenericRun, _param_stats

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


class _TimedRun(_GenericRun):
    """:func:`train_generic`'s run, with its end-of-epoch work timed in parts: the
    validation pass (``val``) apart from the recorders (``rec``: activation statistics on
    the probe, parameter statistics and histograms)."""

    def _measure(self):  # noqa: ANN202
        t0 = time.perf_counter()
        v_loss, v_acc = self._validate()
        t1 = time.perf_counter()
        acts = self._activations()
        pstats = _param_stats(self.model, self.stack, self.config.hist_bins)
        self.parts.append((t1 - t0, time.perf_counter() - t1))
        return v_loss, v_acc, pstats, acts


def bench_generic(build, shape, data: TrainData, k: int, epochs: int, mode: str,
                  workers: int | None = None) -> dict:
    """The generic trainer (``workers``: its one-by-one mode's worker threads; ``1`` trains
    one model after the other on all threads).  ``train_s`` are its steps, ``val_s`` its
    validation pass and ``rec_s`` its recorders, per model-epoch."""
    models = make_models(build, k)
    logs: list[str] = []
    run = _TimedRun(models, list(range(k)), data, TrainConfig(epochs=epochs), shape, None, mode,
                    logs.append, None, None, workers)
    run.parts = []
    res = run.run()
    wall = sum(e.wall_s for e in res[0].epochs[1:]) / (k * epochs)
    val = sum(v for v, _ in run.parts[1:]) / (k * epochs)
    rec = sum(r for _, r in run.parts[1:]) / (k * epochs)
    return {"train_s": max(wall - val - rec, 0.0), "val_s": val, "rec_s": rec, "log": logs,
            "val_acc": sum(r.final_val_acc for r in res) / k}


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


TRAINERS = ("generic", "generic1", "plain", "vmap", "fast")


def conv_shapes(build, shape) -> list[tuple[tuple[int, ...], nn.Conv2d]]:
    """``(input shape per sample, module)`` of every ``nn.Conv2d`` of the model, in call order."""
    model = build()
    seen: list = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append((tuple(a[0].shape[1:]), m)))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return seen


def conv_floor(build, shape, batch: int = 128, reps: int = 3) -> dict:
    """The convolutions alone, per model-epoch (60k training samples, 10k validation): each
    conv layer's forward, weight gradient and (but the first layer) input gradient at batch
    *batch* in channels_last, best of *reps*, run two ways: one model at a time on all
    threads, and ``torch.get_num_threads()`` models side by side on one thread each (as the
    generic trainer's worker threads do); with the FLOPs counted from the shapes
    (``2 * out_positions * c_out * c_in * kh * kw / groups`` per pass)."""
    import threading

    layers = conv_shapes(build, shape)
    flops_fwd = 0
    for (c, h, w), m in layers:
        ho = (h + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
        wo = (w + 2 * m.padding[1] - m.kernel_size[1]) // m.stride[1] + 1
        flops_fwd += 2 * ho * wo * m.out_channels * c * m.kernel_size[0] * m.kernel_size[1] // m.groups
    (c0, h0, w0), m0 = layers[0]
    ho = (h0 + 2 * m0.padding[0] - m0.kernel_size[0]) // m0.stride[0] + 1
    wo = (w0 + 2 * m0.padding[1] - m0.kernel_size[1]) // m0.stride[1] + 1
    flops_first = 2 * ho * wo * m0.out_channels * c0 * m0.kernel_size[0] * m0.kernel_size[1]
    train_flops = 3 * flops_fwd - flops_first  # forward, weight and input gradients (not layer 1's)
    cl = torch.channels_last

    def make():
        g = torch.Generator().manual_seed(0)
        out = []
        for i, ((c, h, w), m) in enumerate(layers):
            x = torch.randn(batch, c, h, w, generator=g).contiguous(memory_format=cl).requires_grad_(i > 0)
            wt = m.weight.detach().clone().contiguous(memory_format=cl).requires_grad_()
            out.append((x, wt, m))
        return out

    def one_step(ts) -> None:
        for x, wt, m in ts:
            y = torch.nn.functional.conv2d(x, wt, None, m.stride, m.padding, m.dilation, m.groups)
            torch.autograd.grad(y, [x, wt] if x.requires_grad else [wt], torch.ones_like(y))

    def best(fn) -> float:
        fn()
        b = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            b = min(b, time.perf_counter() - t)
        return b

    ts = make()
    t_seq = best(lambda: one_step(ts))  # one model's step, all threads
    n = torch.get_num_threads()
    per_model_par = None
    if n >= 2:
        before = n
        sets = [make() for _ in range(n)]

        def par() -> None:
            def run(i: int) -> None:
                torch.set_num_threads(1)
                one_step(sets[i])
            th = [threading.Thread(target=run, args=(i,)) for i in range(n)]
            for t in th:
                t.start()
            for t in th:
                t.join()
            torch.set_num_threads(before)

        per_model_par = best(par) / n
    steps = -(-FULL_TRAIN // batch)
    val_frac = FULL_VAL * flops_fwd / (steps * batch * train_flops)  # validation ~ forward only
    out = {"train_gflop_per_sample": train_flops / 1e9, "fwd_gflop_per_sample": flops_fwd / 1e9,
           "gflop_per_model_epoch": (FULL_TRAIN * train_flops + FULL_VAL * flops_fwd) / 1e9,
           "one_at_a_time": {"s_per_step": t_seq, "gflops": batch * train_flops / t_seq / 1e9,
                             "floor_s_per_model_epoch": t_seq * steps * (1 + val_frac)}}
    if per_model_par is not None:
        out["side_by_side"] = {"s_per_step_per_model": per_model_par,
                               "gflops": batch * train_flops / per_model_par / 1e9,
                               "floor_s_per_model_epoch": per_model_par * steps * (1 + val_frac)}
    return out


def sgemm_gflops(n: int = 2048, reps: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def ratio_ci(num: list[float], den: list[float]) -> dict:
    """Median over rounds of ``num_i / den_i`` with a 95% bootstrap interval of that median
    (``scipy.stats.bootstrap``, percentile method; ``None`` with fewer than 3 rounds)."""
    import numpy as np

    r = np.asarray(num) / np.asarray(den)
    out: dict = {"median": float(np.median(r)), "per_round": r.tolist(), "ci95": None}
    if len(r) >= 3 and np.ptp(r) > 0:
        from scipy.stats import bootstrap

        ci = bootstrap((r,), np.median, confidence_level=0.95, method="percentile", n_resamples=9999,
                       random_state=np.random.default_rng(0)).confidence_interval
        out["ci95"] = [float(ci.low), float(ci.high)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--data-dir", default=None, help="data root holding fashion-mnist/ (e.g. ../shared/data)")
    add("--models", type=int, default=7, help="K, models trained together (default 7)")
    add("--epochs", type=int, default=1, help="epochs per run (default 1)")
    add("--limit-train", type=int, default=None,
        help="CNN: train on the first N images (validation max(ceil(N/6), 512)); figures extrapolated to 60k")
    add("--mlp-limit-train", type=int, default=None,
        help="the same for the MLP (default: the full 60k, no extrapolation)")
    add("--archs", nargs="+", default=["cnn", "mlp"], choices=["cnn", "mlp"])
    add("--trainers", nargs="+", default=list(TRAINERS), choices=list(TRAINERS))
    add("--mode", default="auto", choices=["auto", "vmap", "each"], help="train_generic's mode")
    add("--repeat", type=int, default=1, help="rounds; each runs every trainer, in rotated order (default 1)")
    add("--plain-models", type=int, default=1, help="models the plain loop trains per round (default 1)")
    add("--floor", action="store_true",
        help="CNN: also time its convolutions alone and torch.mm's peak in every round (conv_floor)")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    probe = TrainConfig().probe_size

    def load(limit: int | None) -> tuple[TrainData, str]:
        n_val = None if limit is None else max(-(-limit // 6), probe)
        ds = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False, limit_train=limit,
                          limit_val=n_val)
        return TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y), str(ds.folder)

    slices = {"cnn": load(args.limit_train), "mlp": load(args.mlp_limit_train)}
    K = args.models
    out: dict = {"data": f"Fashion-MNIST from {slices['cnn'][1]}", "threads": torch.get_num_threads(),
                 "torch": torch.__version__, "models": K, "epochs": args.epochs, "rounds": args.repeat,
                 "load_avg_1_5_15": [_load()], "archs": {}}
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
                      "extrapolated_to_60k": limited, "rounds": []}
        trainers = [t for t in args.trainers if not (t == "fast" and arch != "mlp")]
        for rnd in range(args.repeat):
            k0 = rnd % len(trainers)
            order = trainers[k0:] + trainers[:k0]  # rotated: no trainer always runs first
            row: dict = {"load_before": _load()}
            if arch == "cnn" and args.floor:
                row["conv_floor"] = conv_floor(build, shape)
                row["sgemm_gflops"] = sgemm_gflops()
                if not args.json:
                    f = row["conv_floor"]
                    side = f.get("side_by_side", {})
                    print(f"cnn round {rnd + 1} conv floor: {f['one_at_a_time']['floor_s_per_model_epoch']:.1f} "
                          f"s/model-epoch one at a time ({f['one_at_a_time']['gflops']:.0f} GFLOP/s), "
                          f"{side.get('floor_s_per_model_epoch', float('nan')):.1f} side by side "
                          f"({side.get('gflops', float('nan')):.0f} GFLOP/s); sgemm {row['sgemm_gflops']:.0f} "
                          f"GFLOP/s", flush=True)
            for trainer in order:
                if trainer in ("generic", "generic1"):
                    r = bench_generic(build, shape, data, K, args.epochs, args.mode,
                                      workers=1 if trainer == "generic1" else None)
                elif trainer == "plain":
                    r = bench_plain(build, shape, data, args.plain_models, args.epochs)
                elif trainer == "vmap":
                    r = bench_vmap(build, shape, data, K, args.epochs)
                else:
                    r = bench_fast(data, K, args.epochs)
                rec = r.get("rec_s", 0.0)
                r["measured_s_per_model_epoch"] = r["train_s"] + r["val_s"] + rec
                # steps and validation scale with the samples; the recorders (a fixed probe
                # of probe_size images, the parameters) are measured at their full size
                r["s_per_model_epoch"] = r["train_s"] * scale + r["val_s"] * val_scale + rec
                row[trainer] = r
                if not args.json:
                    print(f"{arch} round {rnd + 1} {trainer}: {r['s_per_model_epoch']:.3f} s/model-epoch"
                          f"{' (extrapolated)' if scale != 1 else ''} (load {_load()})", flush=True)
            figs["rounds"].append(row)
        runs = figs["rounds"]
        med = {t: statistics.median(r[t]["s_per_model_epoch"] for r in runs) for t in trainers}
        figs["median_s_per_model_epoch"] = med
        for t in trainers:
            figs[t] = runs[-1][t] | {"s_per_model_epoch": med[t]}
        if "plain" in trainers:
            figs["speedup_vs_plain"] = {
                t: ratio_ci([r["plain"]["s_per_model_epoch"] for r in runs],
                            [r[t]["s_per_model_epoch"] for r in runs])
                for t in trainers if t != "plain"}
        if "generic" in trainers and "generic1" in trainers:
            figs["generic1_over_generic"] = ratio_ci([r["generic1"]["s_per_model_epoch"] for r in runs],
                                                     [r["generic"]["s_per_model_epoch"] for r in runs])
        if "generic" in trainers and "fast" in trainers:
            figs["generic_over_fast"] = ratio_ci([r["generic"]["s_per_model_epoch"] for r in runs],
                                                 [r["fast"]["s_per_model_epoch"] for r in runs])
        out["archs"][arch] = figs
    out["load_avg_1_5_15"].append(_load())
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"\n{out['data']}; torch {out['torch']}, {out['threads']} threads, K={K}, "
          f"{args.epochs} epoch(s), {args.repeat} round(s); load average {out['load_avg_1_5_15'][0]} "
          f"-> {out['load_avg_1_5_15'][-1]}")

    def ci(d: dict) -> str:
        return f" (95% CI {d['ci95'][0]:.2f}-{d['ci95'][1]:.2f})" if d["ci95"] else ""

    for arch, figs in out["archs"].items():
        note = " -- EXTRAPOLATED to the 60k/10k epoch (see --help)" if figs["extrapolated_to_60k"] else ""
        print(f"{arch}: {figs['model']}, measured on {figs['n_train']} train / {figs['n_val']} val{note}")
        for t in TRAINERS:
            if t in figs:
                sp = figs.get("speedup_vs_plain", {}).get(t)
                extra = f"  {sp['median']:.2f}x vs plain{ci(sp)}" if sp else ""
                print(f"  {t:8s} {figs[t]['s_per_model_epoch']:8.3f} s/model-epoch (median){extra}"
                      f"  (val acc {figs[t]['val_acc']:.3f})")
        if "generic" in figs and figs["generic"]["log"]:
            print(f"  generic log: {figs['generic']['log'][0]}")
        if "generic1_over_generic" in figs:
            d = figs["generic1_over_generic"]
            print(f"  generic1 / generic (worker threads' gain): {d['median']:.2f}{ci(d)}")
        if "generic_over_fast" in figs:
            d = figs["generic_over_fast"]
            print(f"  generic / fast path: {d['median']:.2f}{ci(d)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
