#!/usr/bin/env python
"""Benchmark the driver of a distributed study: its store throughput, and the ``ray``
executor's overhead over ``local`` on the ``smoke`` preset.

1. **Store throughput** (what bounds the driver, the only writer): epoch records of the
   ``deep`` preset's size (its MLP: 20 hidden layers of 256 + the output layer, so 42
   parameter tensors with their statistics and histograms, 21 activation records, and the
   10 step records an epoch of 60k images at batch 128 and ``log_every=50`` writes), taken
   from a real record of the deep model (one engine epoch on a few random images), written
   into a fresh store (WAL, synchronous=NORMAL, one transaction per epoch record, as a
   study writes them):

   * ``direct``: ``Store.record_epoch`` of the record objects (the local executor's path);
   * ``events``: the ray driver's path: each record as the event a worker sends
     (``to_dict``, pickled as Ray ships it; made before the clock starts), unpickled,
     decoded (``from_dict``) and written by ``apply_event``.

   It prints records/s (wall and per CPU-second: the machine may be shared), ms per record
   and the bytes each record adds to the store.

2. **Overhead of ray over local** on ``smoke`` (2 schemes x 1 seed, 1 epoch, 2000/500
   images): ``run_study`` with the local engine, then with :class:`RayExecutor` on an
   embedded ``ray.init(num_cpus=2)``, 1 CPU per task: the time to start Ray, a first run
   (cold: two new workers import torch and initlab and read the data) and then the best of
   3 warm runs, for one group of 2 (the default) and 2 groups of 1 (``--max-group 1``: 2
   tasks in parallel); local's figures are the best of 3 after a warm-up run.

Examples::

    INITLAB_DATA_DIR=../shared/data nice -n 5 .venv/bin/python benchmarks/bench_executor.py
    .venv/bin/python benchmarks/bench_executor.py --records 363 --skip-ray --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch


def deep_record() -> tuple[object, list[object]]:
    """One real epoch record of the ``deep`` preset's model and its 10 step records."""
    from initlab.engine.inputs import TrainData
    from initlab.records import StepRecord
    from initlab.study import get_preset
    from initlab.study.local import engine_train_group

    config = get_preset("deep")
    cell = dataclasses.replace(config, schemes=("he_normal",), seeds=(0,), train={**config.train, "epochs": 1}
                               ).expand().cells[0]
    g = torch.Generator().manual_seed(0)
    data = TrainData(torch.rand(256, 28, 28, generator=g), torch.randint(0, 10, (256,), generator=g),
                     torch.rand(128, 28, 28, generator=g), torch.randint(0, 10, (128,), generator=g))
    got: list = []

    class Capture:
        cells = (cell,)

        class store:  # noqa: N801 - what the trainer reads from a store
            @staticmethod
            def get_meta(key, default=None):
                return default

        def init(self, *a):
            pass

        def meta(self, *a):
            pass

        def epoch(self, i, record, steps=()):
            got.append(record)

        def steps(self, *a):
            pass

    engine_train_group(loader=lambda c: data, probe=False)([cell], Capture())
    record = got[-1]
    n_steps = -(-60000 // 128) // 50  # full epochs: 469 steps, a window of 50 -> 9 + the last
    steps = [StepRecord(0, 1, 50 * (k + 1), 50, 128, 0.5, 0.8) for k in range(n_steps + 1)]
    return record, steps


def bench_store(n_records: int) -> dict:
    from initlab.study import Store, StudyConfig
    from initlab.study.events import apply_event
    from initlab.study.executor import StoreSink

    record, steps = deep_record()
    n_cells = -(-n_records // 11)  # 11 epoch records per cell (epoch 0..10)
    study = StudyConfig(name="bench", schemes=("zeros",), seeds=n_cells, train={"epochs": 10}).expand()
    out = {"record": {"params": len(record.params), "activations": len(record.activations),
                      "steps": len(steps), "hist_bins": len(record.params[0].hist_counts)}}
    for mode in ("direct", "events"):
        with tempfile.TemporaryDirectory() as tmp:
            with Store.create(tmp) as store:
                store.attach(study)
                keys = [c.key for c in study.cells]
                store.mark_running(keys)
                sink = StoreSink(store, study.cells)
                work = []  # what arrives: the records (direct) or the pickled events (as Ray ships them)
                for k in range(n_cells):
                    for e in range(11):
                        if len(work) == n_records:
                            break
                        rec = dataclasses.replace(record, model=k, epoch=e)
                        st = [dataclasses.replace(s, model=k, epoch=e, step=s.step + 500 * e) for s in steps] if e else []
                        if mode == "direct":
                            work.append((keys[k], rec, st))
                        else:
                            work.append(pickle.dumps({"kind": "epoch", "cell": k, "record": rec.to_dict(),
                                                      "steps": [s.to_dict() for s in st]}))
                t0, c0 = time.perf_counter(), time.process_time()
                for item in work:
                    if mode == "direct":
                        store.record_epoch(*item)
                    else:
                        apply_event(sink, pickle.loads(item))
                dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                n = len(work)
                event_bytes = sum(len(w) for w in work) / n if mode == "events" else None
                store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = Path(tmp, "initlab.sqlite").stat().st_size
        out[mode] = {"records": n, "seconds": dt, "cpu_seconds": cpu, "records_per_s": n / dt,
                     "records_per_cpu_s": n / cpu, "ms_per_record": 1e3 * dt / n,
                     "bytes_per_record": size / n, "event_bytes": event_bytes}
    return out


def bench_ray(data_dir: str | None, repeat: int = 3) -> dict:
    import ray

    from initlab.study import Store, get_preset, run_study
    from initlab.study.local import engine_train_group
    from initlab.study.ray_executor import RayExecutor

    study = get_preset("smoke").expand()
    out: dict = {}

    def timed(name: str | None, repeat: int = 1, **kw) -> None:
        best = float("inf")
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp, Store.create(tmp) as store:
                t0 = time.perf_counter()
                result = run_study(study, store, **kw)
                best = min(best, time.perf_counter() - t0)
                assert result.complete, result
        if name is not None:
            out[name] = best

    local = engine_train_group(data_dir=data_dir)
    timed(None, train_group=local)  # warm-up: the data read and decompressed, torch's first calls
    timed("local_1_group", repeat, train_group=local)
    timed("local_2_groups", repeat, train_group=local, max_group_size=1)
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out["ray_init"] = time.perf_counter() - t0
    try:
        executor = RayExecutor(data_dir=data_dir)  # 1 CPU (1 torch thread) per task, as local under OMP_NUM_THREADS=1
        timed("ray_2_groups_cold", executor=executor, max_group_size=1)  # 2 new workers import torch, initlab
        timed("ray_1_group_warm", repeat, executor=executor)
        timed("ray_2_groups_warm", repeat, executor=executor, max_group_size=1)
    finally:
        ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=363, help="epoch records to write (default 363: the deep "
                                                             "preset's 33 cells x 11)")
    ap.add_argument("--data-dir", default=os.environ.get("INITLAB_DATA_DIR"))
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    res = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0],
                       "load_avg_start": os.getloadavg()}}
    res["store"] = bench_store(args.records)
    if not args.skip_ray:
        res["ray"] = bench_ray(args.data_dir)
    res["machine"]["load_avg_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(res, indent=2))
        return
    r = res["store"]["record"]
    print(f"deep-preset epoch record: {r['params']} parameter tensors ({r['hist_bins']}-bin histograms), "
          f"{r['activations']} activation records, {r['steps']} step records")
    for mode in ("direct", "events"):
        s = res["store"][mode]
        print(f"store {mode:6s}: {s['records_per_s']:7.1f} epoch records/s wall, {s['records_per_cpu_s']:7.1f} per "
              f"CPU-s ({s['ms_per_record']:.2f} ms each, "
              f"{s['bytes_per_record'] / 1024:.1f} KiB each in the store"
              + (f", {s['event_bytes'] / 1024:.1f} KiB pickled event" if s["event_bytes"] else "")
              + f"), {s['records']} records")
    if "ray" in res:
        for k, v in res["ray"].items():
            print(f"smoke {k:18s} {v:6.2f} s")
    print(f"load average {res['machine']['load_avg_start']} -> {res['machine']['load_avg_end']}")


if __name__ == "__main__":
    main()
