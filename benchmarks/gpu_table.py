#!/usr/bin/env python
"""The README's GPU table from ``bench_gpu.py --out`` JSON files: one Markdown table of
every row, then the targets checked and each precision's effect on the final accuracy.

    python benchmarks/gpu_table.py bench_fp32.json bench_tf32.json bench_bf16.json > table.md

Targets (on an H100/H200-class GPU): K >= 1000 trained concurrently, at most 5 ms per
model-epoch at K = 1000 (train + validation), the engine faster than torch.func vmap at
every K of the same run.

Accuracy: for each precision other than fp32, the engine's (eager step) final validation
accuracies of the same K models (same initializations and seeds in every run) against
fp32's, paired: the mean difference and a paired t-test (``scipy.stats.ttest_rel``; the
p-value is left out when scipy is missing).
"""

from __future__ import annotations

import json
import statistics
import sys
from typing import Any

TARGET_MS = 5.0


def load(paths: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    metas, rows, skipped = [], [], []
    for p in paths:
        try:
            with open(p) as f:
                d = json.load(f)
        except (OSError, ValueError) as exc:
            skipped.append(f"{p}: unreadable ({exc})")
            continue
        metas.append(d["meta"])
        rows += d["rows"]
        skipped += d.get("skipped", [])
    return metas, rows, skipped


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| trainer | step | precision | K | ms / model-epoch | epoch 1 (ms / model) | val acc (mean ± sd) "
           "| peak GiB | of mm peak | vs vmap | vs plain |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['trainer']} | {r['step']} | {r['precision']} | {r['K']} | {r['ms_per_model_epoch']:.3f} "
                   f"| {r['first_epoch_ms_per_model']:.3f} | {r['val_acc']:.4f} ± {r['val_acc_sd']:.4f} "
                   f"| {fmt(r['peak_mem_gib'], '.2f')} | {r['fraction_of_peak']:.1%} "
                   f"| {fmt(r.get('speedup_vs_vmap'), '.1f')}{'x' if r.get('speedup_vs_vmap') else ''} "
                   f"| {fmt(r.get('speedup_vs_plain'), '.1f')}{'x' if r.get('speedup_vs_plain') else ''} |")
    return out


def targets(rows: list[dict[str, Any]]) -> list[str]:
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    engine = [r for r in fp32 if r["trainer"] == "engine"]
    lines = []
    biggest = max((r["K"] for r in engine), default=0)
    lines.append(f"- models trained concurrently: {biggest} (target >= 1000): {'met' if biggest >= 1000 else 'not met'}")
    at_1000 = [r for r in engine if r["K"] == 1000]
    if at_1000:
        best = min(at_1000, key=lambda r: r["ms_per_model_epoch"])
        ok = best["ms_per_model_epoch"] <= TARGET_MS
        lines.append(f"- ms per model-epoch at K = 1000: {best['ms_per_model_epoch']:.3f} ({best['step']}; target "
                     f"<= {TARGET_MS}): {'met' if ok else 'not met'}")
    else:
        lines.append("- ms per model-epoch at K = 1000: not measured")
    worse = []
    compared = 0
    for v in (r for r in fp32 if r["trainer"] == "vmap"):
        mine = [r for r in engine if r["K"] == v["K"]]
        if not mine:
            continue
        compared += 1
        best = min(mine, key=lambda r: r["ms_per_model_epoch"])
        if best["ms_per_model_epoch"] >= v["ms_per_model_epoch"]:
            worse.append(f"K={v['K']}")
    if compared:
        lines.append(f"- faster than vmap at every K ({compared} compared): "
                     + ("met" if not worse else f"not met at {', '.join(worse)}"))
    return lines


def accuracy_effect(rows: list[dict[str, Any]]) -> list[str]:
    try:
        from scipy.stats import ttest_rel
    except ImportError:  # the GPU image has scipy; elsewhere the means alone
        ttest_rel = None
    base = {r["K"]: r for r in rows if r["trainer"] == "engine" and r["step"] == "eager" and r["precision"] == "fp32"}
    lines = []
    for r in rows:
        if r["trainer"] != "engine" or r["step"] != "eager" or r["precision"] == "fp32" or r["K"] not in base:
            continue
        a, b = r.get("val_accs"), base[r["K"]].get("val_accs")
        if not a or not b or len(a) != len(b):
            continue
        diff = [x - y for x, y in zip(a, b)]
        mean = statistics.fmean(diff)
        sd = statistics.stdev(diff) if len(diff) > 1 else 0.0
        test = ""
        if ttest_rel is not None and len(diff) > 1 and sd > 0:
            test = f", paired t-test p = {ttest_rel(a, b).pvalue:.3g}"
        lines.append(f"- {r['precision']} - fp32 at K = {r['K']}: mean final val acc {r['val_acc']:.4f} vs "
                     f"{base[r['K']]['val_acc']:.4f}, paired difference {mean:+.4f} (sd {sd:.4f}, n {len(diff)}{test})")
    return lines or ["- no precision other than fp32 measured beside it"]


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: gpu_table.py BENCH.json [BENCH.json ...]", file=sys.stderr)
        return 2
    metas, rows, skipped = load(paths)
    if not metas:
        print("no benchmark figures: " + "; ".join(skipped))
        return 1
    m = metas[0]
    peaks = ", ".join(f"{x['precision']}: {x['peak_dtype']} mm peak {x['matmul_peak_gflops']:.4g} GFLOP/s"
                      for x in dict((x["precision"], x) for x in metas).values())
    print(f"Measured on {m['device']} (torch {m['torch']}, {m['cpus']} CPUs, load {fmt(m.get('load'), '.2f')}); "
          f"{m['n_train']} training / {m['n_val']} validation images, batch 128, the article's MLP; engine and "
          f"generic figures from the last of {m['epochs']} epochs. {peaks}.\n")
    print("\n".join(table(rows)))
    print("\nTargets:\n" + "\n".join(targets(rows)))
    print("\nPrecision and final accuracy (the same models and seeds):\n" + "\n".join(accuracy_effect(rows)))
    if skipped:
        print("\nNot measured: " + "; ".join(skipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
