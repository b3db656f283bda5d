"""Calibration grid: probe models at init under many schemes, then train them briefly.

Each record of the output (JSON lines, append-only) is one (model config, scheme,
optimizer): the probe's summary at init (:func:`initlab.probe.calibration.summarize`,
Gaussian inputs, the probe's default) and the test accuracy after the training budget for
each seed. ``benchmarks/fit_calibration.py`` fits the calibrated verdicts and score to it.

The grid (see :func:`model_grid`): MLPs of depth 2..50 and width 64..512 with relu, tanh,
gelu, selu and linear activations (one width per (activation, depth), drawn with a fixed
seed, mostly 64-256; 512 only where depth <= 3 so that a 50-layer width-512 net does not
eat the hour; a net above MAX_MLP_WEIGHTS weights is narrowed), the article's MLP, the ``cnn`` and ``resnet`` families with and without batch
normalization, x every applicable scheme (:func:`schemes_for`): the classics, LSUV, and the
structure-aware ones where the model has the structure (delta-orthogonal for convolutions;
Fixup, SkipInit, ZerO for residual nets). Training: the batched MLP engine or the generic
trainer, every scheme and seed of one model and optimizer in one group.

Resumable: a (config, optimizer) already in the output is skipped, so a crash loses at
most the group in flight; ``--budget-minutes`` stops starting new groups after that long.
The first line is the header (settings, torch version, machine); a sidecar
``<output>.meta.json`` gets the wall time and load when the run ends.

    python benchmarks/calibrate_probe.py                 # the full grid -> benchmarks/data/calibration_grid.jsonl
    python benchmarks/calibrate_probe.py --quick --out /tmp/q.jsonl   # a few tiny models, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import initlab
from initlab.engine.config import TrainConfig
from initlab.engine.convnets import CNNSpec, ResNetSpec
from initlab.engine.inputs import TrainData
from initlab.engine.models import MLPSpec, ModelSpec
from initlab.probe.calibration import OPTIMIZERS, summarize

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "data" / "calibration_grid.jsonl"

#: Schemes probed and trained on every model.
#: (The uniform twins of he/glorot/lecun_normal have the same variance, so the same probe
#: and, at init, the same trainability; one of each pair keeps the grid inside its hour.)
CLASSICS = ("he_normal", "glorot_normal", "lecun_normal", "orthogonal", "torch_default", "uniform_recipe",
            "zeros", "normal(std=0.01)", "normal(std=0.05)", "normal(std=1.0)", "lsuv")
#: The conv families train more slowly on a CPU: a subset of the classics.
CONV_CLASSICS = ("he_normal", "glorot_normal", "orthogonal", "torch_default", "zeros", "normal(std=0.01)",
                 "normal(std=1.0)", "lsuv")

#: The models that run first (see :func:`model_grid`): those the grid had done when the
#: order was set, then cheap ones spanning every family and activation, then a deep one;
#: the 50-layer tanh MLP last (a model ``initlab recommend`` must rank, added 2026-12-03).
PRIORITY = ("mlp-256x128-relu-d0.2", "mlp-128x128-relu-d0", "mlp-3x256-relu-d0", "mlp-5x128-relu-d0",
            "mlp-128x128-tanh-d0", "mlp-30x64-tanh-d0", "mlp-3x256-selu-d0", "cnn-4x8-relu-ds1.2",
            "resnet-2x4-none-ds1.2", "mlp-10x64-relu-d0", "mlp-5x64-tanh-d0", "mlp-5x128-gelu-d0",
            "mlp-5x64-linear-d0", "mlp-5x64-selu-d0", "cnn-10x8-relu-batchnorm-ds1.2", "mlp-3x256-gelu-d0",
            "mlp-20x64-relu-d0", "resnet-4x4-none-ds1.2", "mlp-3x128-linear-d0", "mlp-20x64-gelu-d0",
            "mlp-50x64-tanh-d0")

#: MLP weights above this get a narrower width (the grid must finish in about an hour on 2 cores).
MAX_MLP_WEIGHTS = 450_000

OPTIMIZER_SETTINGS: dict[str, dict[str, Any]] = {
    "adam": {"optimizer": "adam", "lr": 1e-3},
    "sgd": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9},
}


@dataclass(frozen=True)
class Settings:
    n_train: int = 4_000
    n_test: int = 2_000
    epochs: int = 1
    batch_size: int = 128
    seeds: tuple[int, ...] = (0, 1)
    probe_inputs: int = 256
    probe_seed: int = 0
    jacobian_inputs: int = 4
    dataset: str = "fashion-mnist"
    grid_seed: int = 2026

    def to_dict(self) -> dict[str, Any]:
        return {"n_train": self.n_train, "n_test": self.n_test, "epochs": self.epochs,
                "batch_size": self.batch_size, "seeds": list(self.seeds), "probe_inputs": self.probe_inputs,
                "probe_seed": self.probe_seed, "jacobian_inputs": self.jacobian_inputs, "dataset": self.dataset,
                "grid_seed": self.grid_seed,
                "optimizers": OPTIMIZER_SETTINGS, "probe": "initlab.probe on standard Gaussian inputs"}


QUICK = Settings(n_train=256, n_test=128, batch_size=64, seeds=(0, 1), probe_inputs=64)


def model_grid(seed: int = 2026, quick: bool = False) -> list[tuple[str, ModelSpec]]:
    """``(family, spec)`` of every model of the grid, in the order they run (families
    interleaved, the MLPs in a fixed random order, so a run cut short by its budget is still a
    spread of the grid)."""
    if quick:
        return [("mlp", MLPSpec(784, (32,) * 2, 10, "relu", 0.0)),
                ("mlp", MLPSpec(784, (32,) * 12, 10, "tanh", 0.0)),
                ("cnn", CNNSpec(depth=2, channels=4, downsample=(1,))),
                ("resnet", ResNetSpec(depth=1, width=4, downsample=(1,)))]
    rng = np.random.default_rng(seed)
    mlps: list[tuple[str, ModelSpec]] = [("mlp", MLPSpec())]  # the article's: 784-256-128-10 relu, dropout 0.2
    for act in ("relu", "tanh", "gelu", "selu", "linear"):
        for depth in (2, 3, 5, 10, 20, 30, 50):
            if depth <= 3:
                widths, p = (128, 256, 512), (0.35, 0.45, 0.2)
            elif depth <= 10:
                widths, p = (64, 128, 256), (0.4, 0.4, 0.2)
            else:
                widths, p = (64, 128), (0.75, 0.25)
            width = int(rng.choice(widths, p=p))
            while width > 64 and 784 * width + (depth - 1) * width * width > MAX_MLP_WEIGHTS:
                width //= 2  # keep the hour: the widest deep nets cost the most
            mlps.append(("mlp", MLPSpec(784, (width,) * depth, 10, act, 0.0)))
    mlps.insert(len(mlps) // 2, ("mlp", MLPSpec(784, (512,), 10, "relu", 0.0)))  # one wide, shallow net
    convs: list[tuple[str, ModelSpec]] = []
    for depth, norm, act in ((4, "none", "relu"), (10, "none", "relu"), (10, "batch", "relu"), (8, "none", "tanh")):
        convs.append(("cnn", CNNSpec(depth=depth, channels=8, activation=act, norm=norm, downsample=(1, 2))))
    for depth, norm in ((2, "none"), (4, "none"), (4, "batch"), (8, "none")):
        convs.append(("resnet", ResNetSpec(depth=depth, width=4, norm=norm, downsample=(1, 2))))
    # a fixed random order (the article's MLP first): a run cut short by its budget still
    # spreads over activations and depths
    head, rest = mlps[:1], mlps[1:]
    mlps = head + [rest[i] for i in rng.permutation(len(rest))]
    order: list[tuple[str, ModelSpec]] = []
    convs = [c for pair in zip(convs[:4], convs[4:]) for c in pair]  # cnn and resnet alternate
    step = 3
    while mlps or convs:
        order.extend(mlps[:step])
        del mlps[:step]
        if convs:
            order.append(convs.pop(0))
    # Under the load this grid meets (15-20 on 2 cores) a 30-layer group takes ~12 min, a
    # 5-layer one ~3: the cheap ones of every family and activation go first, so that the
    # hour covers each of them; the rest follow in the order above.
    first = {label: i for i, label in enumerate(PRIORITY)}
    return sorted(order, key=lambda fs: first.get(fs[1].label, len(first)))


def schemes_for(family: str, quick: bool = False) -> tuple[str, ...]:
    """The schemes of the grid that apply to a model of *family*."""
    if quick:
        base = ("he_normal", "glorot_normal", "zeros", "normal(std=0.01)", "lsuv")
        return base + (("delta_orthogonal",) if family == "cnn" else ("fixup",) if family == "resnet" else ())
    if family == "mlp":
        return CLASSICS
    if family == "cnn":
        return CONV_CLASSICS + ("delta_orthogonal",)
    return CONV_CLASSICS + ("fixup", "skipinit", "zero_init")


def load_data(settings: Settings, data_dir: str | None) -> TrainData:
    from initlab.data import load_dataset

    ds = load_dataset(settings.dataset, data_dir=data_dir, limit_train=settings.n_train,
                                   limit_val=settings.n_test, download=False)
    return TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y)


def _done(path: Path) -> set[tuple[str, str]]:
    done: set[tuple[str, str]] = set()
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "record" in d:
            done.add((d["record"]["config"], d["record"]["optimizer"]))
    return done


def _header(settings: Settings, quick: bool) -> dict[str, Any]:
    return {"header": {"script": "benchmarks/calibrate_probe.py", "quick": quick, "settings": settings.to_dict(),
                       "torch": torch.__version__, "initlab": getattr(initlab, "__version__", "?"),
                       "machine": {"platform": platform.platform(), "processor": platform.processor() or
                                   platform.machine(), "cpus": os.cpu_count(), "threads": torch.get_num_threads()},
                       "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "load_at_start": os.getloadavg()}}


def probe_config(spec: ModelSpec, schemes: Sequence[str], settings: Settings) -> dict[str, dict[str, Any]]:
    """The probe summary of every scheme on *spec*."""
    result = initlab.probe(spec, schemes=list(schemes), input_shape=tuple(spec.input_shape),
                           n_inputs=settings.probe_inputs, seed=settings.probe_seed, jacobian=True,
                           jacobian_inputs=settings.jacobian_inputs)
    return {s: summarize(sp, classes=spec.out_features) for s, sp in zip(schemes, result.schemes)}


def train_config(spec: ModelSpec, schemes: Sequence[str], optimizer: str, data: TrainData,
                 settings: Settings) -> dict[str, list[float]]:
    """Test accuracy per scheme (one per seed) after the training budget with *optimizer*."""
    from initlab.engine.batched import train
    from initlab.engine.generic import train_generic
    from initlab.schemes import get_scheme

    config = TrainConfig.from_dict({**OPTIMIZER_SETTINGS[optimizer], "epochs": settings.epochs,
                                    "batch_size": settings.batch_size, "log_every": 0, "probe_size": 0})
    models, seeds, keys = [], [], []
    for scheme in schemes:
        for seed in settings.seeds:
            model = spec.build(seed=seed)
            batch = spec.as_input(data.train_x[:256]) if get_scheme(scheme).requires_data else None
            initlab.apply(model, scheme, seed=seed, data=batch)
            models.append(model)
            seeds.append(seed)
            keys.append(scheme)
    if spec.fast_path:
        results = train(models, seeds, data, config)
    else:
        results = train_generic(models, seeds, data, config, input_shape=tuple(spec.input_shape), spec=spec)
    acc: dict[str, list[float]] = {s: [] for s in schemes}
    for key, res in zip(keys, results):
        a = res.final_val_acc
        acc[key].append(round(float(a), 5) if a == a else "nan")  # type: ignore[arg-type]
    return acc


def run(out: Path, settings: Settings, *, quick: bool, data_dir: str | None, budget_minutes: float,
        log=print, grid: Sequence[tuple[str, ModelSpec]] | None = None, data: TrainData | None = None,
        schemes: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the grid (or *grid*, with *schemes* on every model and *data* instead of the
    dataset: tests) into *out*, skipping the (config, optimizer) groups it holds already."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or not out.read_text().strip():
        out.write_text(json.dumps(_header(settings, quick)) + "\n")
    done = _done(out)
    data = data if data is not None else load_data(settings, data_dir)
    t_start = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    groups = 0
    for family, spec in (grid if grid is not None else model_grid(settings.grid_seed, quick)):
        todo = [opt for opt in OPTIMIZERS if (spec.label, opt) not in done]
        if not todo:
            continue
        if (time.perf_counter() - t_start) / 60 > budget_minutes:
            log(f"budget of {budget_minutes:g} min reached; stopping before {spec.label}")
            break
        names = list(schemes) if schemes is not None else schemes_for(family, quick)
        t0 = time.perf_counter()
        probes = probe_config(spec, names, settings)
        t_probe = time.perf_counter() - t0
        for opt in todo:
            t1 = time.perf_counter()
            acc = train_config(spec, names, opt, data, settings)
            t_train = time.perf_counter() - t1
            lines = []
            for s in names:
                lines.append(json.dumps({"record": {
                    "config": spec.label, "family": family, "spec": spec.to_dict(), "scheme": s, "optimizer": opt,
                    "acc": acc[s], "probe": probes[s], "train_seconds": round(t_train / len(names), 3),
                    "probe_seconds": round(t_probe / len(names), 3)}}))
            with out.open("a") as fh:  # one group at a time: a crash loses at most the group in flight
                fh.write("\n".join(lines) + "\n")
            groups += 1
            _write_meta(out, settings, quick, t_start, groups, run_id)
            log(f"{spec.label} {opt}: {len(names)} schemes x {len(settings.seeds)} seeds, probe {t_probe:.1f}s, "
                f"train {t_train:.1f}s, load {os.getloadavg()[0]:.2f}, elapsed {(time.perf_counter() - t_start) / 60:.1f} min")
    return _write_meta(out, settings, quick, t_start, groups, run_id, final=True)


def reprobe(out: Path, settings: Settings, *, log=print) -> dict[str, Any]:
    """Probe every model of the grid file *out* again with this initlab's probe (the
    trained accuracies stay: they depend on the scheme, seed and budget, not on the probe)
    and rewrite the file's probe summaries, e.g. to add a measurement the calibration reads.

    The measurements the old summaries had must come out as before (same seed and inputs):
    the largest change of a feature they already fed is logged and recorded in the header's
    ``reprobed`` entry. The new file is written beside the old and moved over it only when
    complete, so an interrupted run leaves the grid as it was.
    """
    from initlab.engine.families import spec_from_dict
    from initlab.probe.calibration import FEATURE_NAMES, features, read_grid

    if not out.is_file():
        raise SystemExit(f"no grid file {out}; run the grid first")
    header, records = read_grid(out)
    configs: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for rec in records:
        _, names = configs.setdefault(rec["config"], ({**rec["spec"], "kind": rec["family"]}, []))
        if rec["scheme"] not in names:
            names.append(rec["scheme"])
    t_start = time.perf_counter()
    probes: dict[tuple[str, str], dict[str, Any]] = {}
    for k, (label, (spec_d, names)) in enumerate(configs.items(), 1):
        t0 = time.perf_counter()
        probes.update({(label, s): v for s, v in probe_config(spec_from_dict(spec_d), names, settings).items()})
        log(f"[{k}/{len(configs)}] {label}: {len(names)} schemes, {time.perf_counter() - t0:.1f}s, "
            f"load {os.getloadavg()[0]:.2f}")
    drift = 0.0
    for rec in records:
        new = probes[(rec["config"], rec["scheme"])]
        had = [i for i, name in enumerate(FEATURE_NAMES) if name not in set(new) - set(rec["probe"])]
        drift = max(drift, float(np.max(np.abs(features(rec["probe"])[had] - features(new)[had]))))
        rec["probe"] = new
    wall = time.perf_counter() - t_start
    header.setdefault("reprobed", []).append({
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": round(wall, 1),
        "load": os.getloadavg(), "probe": {"jacobian": True, "jacobian_inputs": settings.jacobian_inputs},
        "max_feature_change": round(drift, 6), "torch": torch.__version__})
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("\n".join([json.dumps({"header": header})] + [json.dumps({"record": r}) for r in records]) + "\n")
    os.replace(tmp, out)
    log(f"re-probed {len(configs)} models ({len(records)} rows) in {wall:.0f} s; "
        f"largest change of an earlier feature: {drift:.3g}")
    return header["reprobed"][-1]


def _write_meta(out: Path, settings: Settings, quick: bool, t_start: float, groups: int, run_id: str,
                final: bool = False) -> dict[str, Any]:
    """The sidecar ``<out>.meta.json``: one entry per run (updated after every group, so a
    crashed run keeps its time), and the total wall time."""
    meta_path = out.with_suffix(out.suffix + ".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"runs": []}
    entry = {"run": run_id, "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "wall_seconds": round(time.perf_counter() - t_start, 1), "groups": groups, "finished": final,
             "load": os.getloadavg(), "torch": torch.__version__, "machine": _header(settings, quick)["header"]["machine"]}
    meta["runs"] = [r for r in meta["runs"] if r.get("run") != run_id] + [entry]
    meta["total_wall_seconds"] = round(sum(r["wall_seconds"] for r in meta["runs"]), 1)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true", help="tiny models and data (tests)")
    ap.add_argument("--data-dir", default=os.environ.get("INITLAB_DATA_DIR"))
    ap.add_argument("--budget-minutes", type=float, default=60.0, help="start no new model after this long")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--list", action="store_true", help="print the grid's models and exit")
    ap.add_argument("--reprobe", action="store_true",
                    help="probe the models of --out again and rewrite their probe summaries (accuracies kept)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.list:
        for family, spec in model_grid(quick=args.quick):
            print(family, spec.label, len(schemes_for(family, args.quick)))
        return 0
    settings = QUICK if args.quick else Settings()
    if args.reprobe:
        reprobe(args.out, settings, log=lambda m: print(m, flush=True))
        return 0
    run(args.out, settings, quick=args.quick, data_dir=args.data_dir, budget_minutes=args.budget_minutes,
        log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
