#!/usr/bin/env python
"""Same-process A/B benchmark of the MLP fast path: driven by a study against a direct call.

Two ways of training the same K article MLPs (784-256-128-10, ReLU, dropout 0.2, Adam,
batch 128, validation on the 10k test set after every epoch, Fashion-MNIST), alternated
in one process, ``A B A B ...``, ``--repeat`` times each:

* ``A`` (``direct``): :func:`initlab.engine.train` called as ``benchmarks/bench_engine.py``
  calls it (its ``bench_engine`` function: K models with PyTorch's default init, K seeds,
  ``TrainConfig(epochs=E)``; no sink there, here one that only notes the time), on the
  data the study loads (:func:`initlab.data.load_dataset`, the same limits);
* ``B`` (``study``): the path of ``initlab run``: a :class:`~initlab.study.StudyConfig`
  of one scheme (``--scheme``) x K seeds on the article's MLP (one group of K cells),
  trained by :func:`~initlab.study.run_study` with
  :func:`~initlab.study.engine_train_group` into a fresh SQLite store (per epoch: every
  record, histogram and step record written to the store through
  :class:`~initlab.study.engine_sink.EngineSink`).

Two figures per run, seconds per model-epoch over epochs ``1..E`` (epoch 0 is the record
at init):

* ``epoch``: the engine's own epoch time, ``sum(EpochRecord.wall_s) / (K * E)``, which is
  what ``bench_engine.py`` reports (the steps, validation and recorders; for ``B`` read
  back from the store);
* ``end_to_end``: the wall time between the moments the last record of epoch ``e - 1``
  and of epoch ``e`` is delivered (``B``: stored, through ``run_study``'s ``on_record``;
  ``A``: handed to a sink that only takes the time), i.e. the epoch plus the study's
  writing of its records;
* ``cpu_end_to_end``: the same interval in the process's CPU time
  (``time.process_time``, all threads): with ``--threads 1`` the work done, which another
  job on a shared machine delays but does not add to, so its pairs scatter far less than
  wall times there.

The ratio ``B / A`` of each figure is summarized by the median over the pairs (pair ``i``
= the ``i``-th ``A`` and the ``i``-th ``B``, run next to each other, so that a slow
minute of a shared machine hits both) with a 95% bootstrap interval
(``scipy.stats.bootstrap``, BCa, of the median of the per-pair ratios), and by the ratio
of the medians.  The fast path is "within 5% of bench_engine.py" when the interval's
upper end is at most 1.05.

Examples::

    python benchmarks/bench_fastpath_ab.py --data-dir ../shared/data --repeat 5
    python benchmarks/bench_fastpath_ab.py --repeat 6 --epochs 2 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import make_models  # noqa: E402

from initlab.engine import MLPSpec, TrainConfig, train  # noqa: E402


class _Clock:
    """An engine sink that notes when each epoch's records are complete."""

    def __init__(self) -> None:
        self.ends: dict[int, float] = {}
        self.cpu_ends: dict[int, float] = {}

    def on_step(self, records) -> None:  # noqa: ANN001
        pass

    def on_diverged(self, event) -> None:  # noqa: ANN001
        pass

    def on_epoch(self, records) -> None:  # noqa: ANN001
        self.ends[records[0].epoch] = time.perf_counter()
        self.cpu_ends[records[0].epoch] = time.process_time()


def _per_model_epoch(ends: dict[int, float], k: int, epochs: int) -> float:
    return (ends[epochs] - ends[0]) / (k * epochs)


def run_direct(data, k: int, epochs: int) -> dict[str, float]:
    """``A``: bench_engine.py's call of the engine (plus a timing sink)."""
    models = make_models(MLPSpec(), k)
    clock = _Clock()
    res = train(models, list(range(k)), data, TrainConfig(epochs=epochs), sink=clock)
    return {"epoch": sum(e.wall_s for e in res[0].epochs[1:]) / (k * epochs),
            "end_to_end": _per_model_epoch(clock.ends, k, epochs),
            "cpu_end_to_end": _per_model_epoch(clock.cpu_ends, k, epochs)}


def load_slice(data_dir: str | None, limit_train: int | None, limit_val: int | None):
    """Fashion-MNIST (official test set as validation) as the study loads it, with its limits."""
    from initlab.data import load_dataset
    from initlab.engine import TrainData

    ds = load_dataset("fashion-mnist", data_dir=data_dir, validation="test", download=False,
                      limit_train=limit_train, limit_val=limit_val)
    return TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y), str(ds.folder)


def run_study_path(data_dir: str | None, k: int, epochs: int, scheme: str,
                   limit_train: int | None = None, limit_val: int | None = None) -> dict[str, float]:
    """``B``: ``initlab run``'s path, a one-group study into a fresh store."""
    from initlab.study import Store, StudyConfig, engine_train_group, run_study
    from initlab.study.presets import _ARTICLE_TRAIN

    config = StudyConfig(name="ab", schemes=(scheme,), seeds=tuple(range(k)), models=(MLPSpec(),),
                         datasets=("fashion-mnist",), validation="test", limit_train=limit_train,
                         limit_val=limit_val, train={**_ARTICLE_TRAIN, "epochs": epochs})
    stored: dict[int, list[float]] = {}
    cpu: dict[int, list[float]] = {}

    def on_record(cell, record) -> None:  # noqa: ANN001
        if hasattr(record, "val_acc"):
            stored.setdefault(record.epoch, []).append(time.perf_counter())
            cpu.setdefault(record.epoch, []).append(time.process_time())

    with tempfile.TemporaryDirectory(prefix="initlab-ab-") as tmp:
        with Store.create(Path(tmp) / "run") as store:
            run_study(config.expand(), store, engine_train_group(data_dir=data_dir, probe=False),
                      on_record=on_record)
            walls = [sum(r.wall_s for r in recs if r.epoch >= 1)
                     for recs in store.epoch_records().values()]
    if any(len(v) != k for v in stored.values()) or len(stored) != epochs + 1:
        raise RuntimeError(f"the study stored {({e: len(v) for e, v in stored.items()})} epoch records")
    ends = {e: max(v) for e, v in stored.items()}
    cpu_ends = {e: max(v) for e, v in cpu.items()}
    return {"epoch": walls[0] / (k * epochs), "end_to_end": _per_model_epoch(ends, k, epochs),
            "cpu_end_to_end": _per_model_epoch(cpu_ends, k, epochs)}


def ratio_summary(a: list[float], b: list[float]) -> dict[str, float]:
    """Median of the per-pair ratios ``b_i / a_i`` with its 95% BCa bootstrap interval
    (``scipy.stats.bootstrap``), and the ratio of the medians."""
    from scipy.stats import bootstrap

    r = np.asarray(b) / np.asarray(a)
    ci = bootstrap((r,), np.median, confidence_level=0.95, method="BCa", n_resamples=9999,
                   random_state=np.random.default_rng(0)).confidence_interval
    lo, hi = float(ci.low), float(ci.high)
    if not np.isfinite(lo) or not np.isfinite(hi):  # BCa degenerates on a few equal ratios
        ci = bootstrap((r,), np.median, confidence_level=0.95, method="percentile",
                       n_resamples=9999, random_state=np.random.default_rng(0)).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
    return {"median_ratio": float(np.median(r)), "ci95": [lo, hi],
            "ratio_of_medians": statistics.median(b) / statistics.median(a),
            "ratios": r.tolist()}


#: The figures each run gives (see the module docstring).
FIGURES = ("epoch", "end_to_end", "cpu_end_to_end")


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = ap.add_argument
    add("--data-dir", default=None, help="data root holding fashion-mnist/ (e.g. ../shared/data)")
    add("--models", type=int, default=7, help="K models (K seeds) per run (default 7)")
    add("--epochs", type=int, default=1, help="epochs per run (default 1)")
    add("--repeat", type=int, default=5, help="runs of each side, alternated (default 5)")
    add("--scheme", default="keras_default", help="the study's scheme (default keras_default)")
    add("--limit-train", type=int, default=None,
        help="both sides train on the first N images (the study's limit_train; default all 60k)")
    add("--limit-val", type=int, default=None, help="and validate on the first N (default all 10k)")
    add("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    add("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data, folder = load_slice(args.data_dir, args.limit_train, args.limit_val)
    source = f"Fashion-MNIST from {folder}, {data.n_train} train / {data.n_val} validation images"
    K, E = args.models, args.epochs
    lim = (args.limit_train, args.limit_val)

    def study() -> dict[str, float]:
        return run_study_path(args.data_dir, K, E, args.scheme, *lim)

    run_direct(data, K, 1)  # warm-up of both sides (first-call costs)
    run_study_path(args.data_dir, K, 1, args.scheme, *lim)
    runs: dict[str, list[dict[str, float]]] = {"direct": [], "study": []}
    loads = [_load()]
    for i in range(args.repeat):
        first, second = ("direct", "study") if i % 2 == 0 else ("study", "direct")
        for side in (first, second):  # A B, then B A: neither side always runs first
            r = run_direct(data, K, E) if side == "direct" else study()
            runs[side].append(r)
            if not args.json:
                print(f"pair {i + 1}: {side:6s} epoch {r['epoch']:.3f}  end-to-end {r['end_to_end']:.3f} "
                      f"s/model-epoch (load {_load()})", flush=True)
        loads.append(_load())
    out: dict = {"data": source, "torch": torch.__version__, "threads": torch.get_num_threads(),
                 "models": K, "epochs": E, "repeat": args.repeat, "scheme": args.scheme,
                 "load_avg_1_5_15": loads}
    for fig in FIGURES:
        a = [r[fig] for r in runs["direct"]]
        b = [r[fig] for r in runs["study"]]
        out[fig] = {"direct_s": a, "study_s": b, "direct_median": statistics.median(a),
                    "study_median": statistics.median(b), "study_over_direct": ratio_summary(a, b)}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"\n{source}; torch {out['torch']}, {out['threads']} threads, K={K}, {E} epoch(s), "
          f"{args.repeat} pairs; load average {loads[0]} -> {loads[-1]}")
    for fig in FIGURES:
        f = out[fig]
        s = f["study_over_direct"]
        verdict = "within 5%" if s["ci95"][1] <= 1.05 else "NOT shown within 5%"
        print(f"{fig:14s}: direct median {f['direct_median']:.3f}, study median {f['study_median']:.3f} "
              f"s/model-epoch; study/direct median of pair ratios {s['median_ratio']:.3f} "
              f"(95% CI {s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}), ratio of medians "
              f"{s['ratio_of_medians']:.3f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
