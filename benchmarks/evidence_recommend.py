"""Evidence for ``initlab recommend``: does the top-ranked scheme train as well as the best one?

For each model below, ``initlab.recommend`` probes every applicable scheme at init and
ranks them by the calibrated score; then *every* candidate is trained (``top`` = all of
them) in one batched study -- with the budget the shipped calibration was fitted for (its
grid's epochs and numbers of Fashion-MNIST training and test images), three seeds --
and the top-ranked scheme is compared with the best trained one. It *holds* when the
top-ranked scheme's mean final accuracy is within the seed-to-seed spread of the best's
(:func:`initlab.recommender.within_spread`: at most the larger standard deviation over
seeds below the best mean).

Models (the issue's list): the article's MLP (784-256-128-10 ReLU, dropout 0.2), a
30-layer ReLU MLP and a 50-layer tanh MLP (width 256, no dropout), a plain CNN (8 conv
layers of 16 channels, stride 2 at layers 1 and 2) and a ResNet without normalization (8
basic blocks of 16 channels, stride 2 at blocks 1 and 2).

    nice .venv/bin/python benchmarks/evidence_recommend.py --out runs/evidence_recommend
    nice .venv/bin/python benchmarks/evidence_recommend.py --quick          # seconds: tiny models

Each model's study goes to ``OUT/<model>-<optimizer>/`` (resumable: a rerun continues);
the table goes to ``OUT/evidence_recommend.json`` (``--table``) and is printed as Markdown.
The ranking depends only on the probe and the shipped calibration, the training only on
the budget: with a refitted calibration, ``--table new.json`` re-ranks every model and
reuses the trained studies.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import initlab
from initlab.engine.convnets import CNNSpec, ResNetSpec
from initlab.engine.models import MLPSpec
from initlab.probe.calibration import load_calibration
from initlab.recommender import candidate_schemes, within_spread

MODELS = {
    "article-mlp": MLPSpec(),
    "mlp-30-relu": MLPSpec(784, (256,) * 30, 10, "relu", 0.0),
    "mlp-50-tanh": MLPSpec(784, (256,) * 50, 10, "tanh", 0.0),
    "cnn-8x16": CNNSpec(depth=8, channels=16, downsample=(1, 2)),
    "resnet-8x16-nonorm": ResNetSpec(depth=8, width=16, norm="none", downsample=(1, 2)),
}
QUICK_MODELS = {
    "article-mlp": MLPSpec(784, (32, 16), 10, "relu", 0.2),
    "mlp-30-relu": MLPSpec(784, (16,) * 30, 10, "relu", 0.0),
    "mlp-50-tanh": MLPSpec(784, (16,) * 50, 10, "tanh", 0.0),
    "cnn-8x16": CNNSpec(depth=3, channels=4, downsample=(1, 2)),
    "resnet-8x16-nonorm": ResNetSpec(depth=2, width=4, norm="none", downsample=(1, 2)),
}


def evidence(name: str, spec, *, optimizer: str, epochs: int, seeds: int, limit: int, limit_val: int,
             out: Path, data_dir: str | None) -> dict:
    """Recommend for *spec*, train every candidate, and compare the top-ranked with the best."""
    n = len(candidate_schemes(spec.build())[0])
    t0 = time.perf_counter()
    rec = initlab.recommend(spec, "fashion-mnist", optimizer=optimizer, confirm_epochs=epochs, top=n, seeds=seeds,
                            limit=limit, limit_val=limit_val, data_dir=data_dir, out=out / f"{name}-{optimizer}",
                            log=lambda line: print(f"  {name}: {line}", file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    top, best = rec.best, rec.best_trained()
    assert top.trained is not None and best is not None and best.trained is not None
    by_acc = sorted((c for c in rec.candidates if c.trained is not None and c.trained.accuracies),
                    key=lambda c: -c.trained.mean)  # type: ignore[union-attr]
    return {
        "model": name, "label": rec.model, "optimizer": optimizer, "schemes": len(rec.candidates),
        "top_ranked": top.scheme, "top_score": top.score, "top_verdict": top.prediction.verdict,
        "top_acc": top.trained.mean, "top_sd": top.trained.spread,
        "best_trained": best.scheme, "best_acc": best.trained.mean, "best_sd": best.trained.spread,
        "best_rank": rec.schemes.index(best.scheme) + 1,
        "top_trained_rank": next(i for i, c in enumerate(by_acc, 1) if c.scheme == top.scheme),
        "holds": within_spread(top.trained, best.trained), "wall_s": round(wall, 1),
        "ranking": [{"scheme": c.scheme, "score": c.score, "verdict": c.prediction.verdict,
                     "acc": c.trained.mean if c.trained else None, "sd": c.trained.spread if c.trained else None}
                    for c in rec.candidates],
    }


def spearman(row: dict) -> float:
    """Spearman's rank correlation (scipy.stats.spearmanr) of the score and the trained mean
    accuracy over one model's schemes (a scheme whose every seed diverged has no accuracy
    and is left out)."""
    import math

    from scipy.stats import spearmanr

    pairs = [(c["score"], c["acc"]) for c in row["ranking"] if c["acc"] is not None and math.isfinite(c["acc"])]
    return float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic)


def markdown(rows: list[dict]) -> str:
    head = ("| model | optimizer | schemes | top-ranked (score) | its accuracy | best trained | its accuracy "
            "| best's rank | Spearman | holds |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['model']} | {r['optimizer']} | {r['schemes']} | {r['top_ranked']} ({r['top_score']:.3g}) "
                     f"| {r['top_acc'] * 100:.1f} ± {r['top_sd'] * 100:.1f}% | {r['best_trained']} "
                     f"| {r['best_acc'] * 100:.1f} ± {r['best_sd'] * 100:.1f}% | {r['best_rank']} "
                     f"| {spearman(r):.2f} | {'yes' if r['holds'] else '**no**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/evidence_recommend")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--optimizers", default="adam", help="comma-separated: adam, sgd")
    budget = load_calibration().budget  # the budget the score predicts for
    p.add_argument("--epochs", type=int, default=budget["epochs"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--limit", type=int, default=budget["n_train"])
    p.add_argument("--limit-val", type=int, default=budget["n_test"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--quick", action="store_true", help="tiny models on 512/256 images, 2 seeds")
    p.add_argument("--table", default="evidence_recommend.json",
                   help="the results file in OUT (its models are skipped; a new name re-ranks every model, "
                        "resuming the trained studies: only the probe and the ranking run again)")
    args = p.parse_args(argv)
    models = QUICK_MODELS if args.quick else MODELS
    if args.quick:
        args.limit, args.limit_val, args.seeds = 512, 256, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / args.table
    done = json.loads(results_path.read_text())["rows"] if results_path.is_file() else []
    rows = [r for r in done]
    t0 = time.perf_counter()
    for opt in args.optimizers.split(","):
        for name in args.models.split(","):
            if any(r["model"] == name and r["optimizer"] == opt for r in rows):
                continue
            row = evidence(name, models[name], optimizer=opt, epochs=args.epochs, seeds=args.seeds,
                           limit=args.limit, limit_val=args.limit_val, out=out, data_dir=args.data_dir)
            rows.append(row)
            print(f"{name} {opt}: top {row['top_ranked']} {row['top_acc']:.4f} vs best {row['best_trained']} "
                  f"{row['best_acc']:.4f} -> {'holds' if row['holds'] else 'FAILS'} ({row['wall_s']} s)", flush=True)
            results_path.write_text(json.dumps({
                "calibration": {k: v for k, v in __import__("initlab.probe.calibration", fromlist=["x"])
                                .load_calibration().grid.items() if k in ("rows", "sha256", "file")},
                "settings": {"epochs": args.epochs, "seeds": args.seeds, "limit": args.limit,
                             "limit_val": args.limit_val, "quick": args.quick},
                "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                            "torch": __import__("torch").__version__, "load": os.getloadavg()},
                "rows": rows}, indent=1))
    print(markdown(rows))
    print(f"total {time.perf_counter() - t0:.0f} s this run; load average {os.getloadavg()}")
    return 0 if all(r["holds"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
