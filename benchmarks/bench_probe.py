"""Benchmark: probe a deep MLP under ten schemes.

Target (issue): a 100-layer, width-256 ReLU MLP, 10 schemes, 512 Gaussian inputs in at most
5 s on 2 CPU cores. The timed call is one full ``initlab.probe`` in a process that has
already run a tiny warm-up probe (so imports and torch's lazy kernel set-up are excluded);
``--repeat`` times it several times and reports the best and the median (and, per scheme,
its best time). On a shared machine other processes inflate single runs; use ``--repeat``.

    python benchmarks/bench_probe.py            # human-readable
    python benchmarks/bench_probe.py --json     # one JSON object
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from initlab.engine.models import MLPSpec
from initlab.probe import probe

SCHEMES = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "orthogonal",
           "torch_default", "keras_default", "zeros", "ones")
BUDGET_S = 5.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=100, help="hidden layers (default 100)")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--n-inputs", type=int, default=512)
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    schemes = [s for s in args.schemes.split(",") if s]
    spec = MLPSpec(784, (args.width,) * args.depth, 10, args.activation, 0.0)
    probe(MLPSpec(784, (args.width,) * 2, 10, args.activation, 0.0), schemes=schemes, n_inputs=64)  # warm-up

    times, per_scheme = [], {}
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        result = probe(spec, schemes=schemes, n_inputs=args.n_inputs)
        times.append(time.perf_counter() - t0)
        for s in result:
            per_scheme[s.scheme] = round(min(s.seconds, per_scheme.get(s.scheme, float("inf"))), 4)
    out = {
        "benchmark": "probe", "depth": args.depth, "width": args.width, "activation": args.activation,
        "n_inputs": args.n_inputs, "schemes": len(schemes), "threads": torch.get_num_threads(),
        "seconds": round(min(times), 4), "seconds_median": round(statistics.median(times), 4),
        "per_scheme_seconds": per_scheme, "budget_seconds": BUDGET_S, "within_budget": min(times) <= BUDGET_S,
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"probe: {args.depth}x{args.width} {args.activation} MLP, {len(schemes)} schemes, "
              f"{args.n_inputs} inputs, {out['threads']} threads: {out['seconds']:.2f} s "
              f"(budget {BUDGET_S:g} s: {'ok' if out['within_budget'] else 'OVER'})")
        for name, sec in per_scheme.items():
            print(f"  {name:<16} {sec:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
