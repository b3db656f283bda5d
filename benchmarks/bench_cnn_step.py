#!/usr/bin/env python
"""One training step of the 6 x 32 ``cnn``: the plain loop against the generic trainer's
one-by-one mode, with and without its worker threads, interleaved.

Per repetition, in rotated order, on the same batch of 128 Fashion-MNIST images:

* ``plain``: ``nn.Module`` forward, ``F.cross_entropy``, ``backward``, ``torch.optim.Adam``
  step, ``loss.item()`` (NCHW, torch's threads);
* ``generic1``: one step of :class:`initlab.engine.generic._GenericStep` for K models
  (default 7, 7 data streams) with ``workers=1``: one model after the other on all threads,
  channels_last;
* ``generic``: the same with the default workers (``torch.get_num_threads()`` models side
  by side on worker threads of one intra-op thread each, :mod:`initlab.engine.threads`);

the generic figures divided by K (seconds per model-step).  It prints each one's median
and each ratio as the median of the per-repetition ratios with a 95% bootstrap interval
(``scipy.stats.bootstrap``, percentile), and the load average after every repetition.
The steps only: validation and recording are ``bench_trainer.py``'s.

Example::

    python benchmarks/bench_cnn_step.py --data-dir ../shared/data --repeat 6
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from initlab.data import load_dataset
from initlab.engine import TrainConfig, TrainData
from initlab.engine.families import spec_from_dict
from initlab.engine.generic import _GenericRun


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--models", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=6)
    args = ap.parse_args(argv)
    from scipy.stats import bootstrap

    spec = spec_from_dict({"kind": "cnn", "depth": 6, "channels": 32})
    K, B = args.models, 128
    ds = load_dataset("fashion-mnist", data_dir=args.data_dir, download=False, limit_train=1280, limit_val=512)
    data = TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y)
    models = [spec.build(seed=i) for i in range(K)]
    x, y = data.train_x[:B].reshape(B, 1, 28, 28).float(), data.train_y[:B].long()
    net = copy.deepcopy(models[0])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    def plain() -> None:
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        loss.item()

    runs = {w: _GenericRun(models, list(range(K)), data, TrainConfig(epochs=1), (1, 28, 28), None, "auto",
                           None, None, None, w) for w in (1, None)}
    idx = torch.stack([torch.randperm(1280)[:B] for _ in range(K)])
    keys, row = torch.zeros(K, dtype=torch.int64), torch.zeros(3, K)
    for r in runs.values():
        r.stepper(idx, keys, row)  # warm-up
    plain()
    res: dict[str, list[float]] = {"plain": [], "generic1": [], "generic": []}
    loads = [_load()]
    order0 = [("plain", None), ("generic1", 1), ("generic", None)]
    for rep in range(args.repeat):
        for name, w in order0[rep % 3:] + order0[: rep % 3]:
            t = time.perf_counter()
            if name == "plain":
                plain()
                res[name].append(time.perf_counter() - t)
            else:
                runs[w].stepper(idx, keys, row)
                res[name].append((time.perf_counter() - t) / K)
        loads.append(_load())
        print(rep + 1, {k: round(v[-1], 3) for k, v in res.items()}, "load", loads[-1], flush=True)
    for r in runs.values():
        r.stepper.close()
    for k, v in res.items():
        print(f"{k:8s} median {statistics.median(v):.3f} s per model-step")
    for a, b in (("plain", "generic"), ("plain", "generic1"), ("generic1", "generic")):
        r = np.asarray(res[a]) / np.asarray(res[b])
        ci = bootstrap((r,), np.median, method="percentile", n_resamples=9999,
                       random_state=np.random.default_rng(0)).confidence_interval
        print(f"{a}/{b}: median {np.median(r):.2f} (95% CI {ci.low:.2f}-{ci.high:.2f})")
    print("load average (1 min) after each repetition:", " ".join(loads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
