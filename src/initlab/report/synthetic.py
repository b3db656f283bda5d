"""Synthetic :class:`~initlab.report.types.RunData` for tests, benchmarks and demos.

:func:`synthetic_run` fabricates a study with the shape of a real one (schemes x seeds,
``L`` layers, ``E`` epochs, weight histograms, activation statistics, init records)
without training anything. The numbers are plausible, not meaningful: per scheme a fixed
"quality" in ``(0, 1)`` sets how fast the validation accuracy approaches its ceiling, and
weights are Gaussian with a scheme-dependent initial std that widens during training.
Everything is drawn from ``numpy.random.default_rng(seed)``, so equal arguments give
equal data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from initlab.apply import InitReport, LayerRecord
from initlab.check import CheckReport, CheckRow
from initlab.records import ActivationStats, Divergence, EpochRecord, ParamStats, StepRecord
from initlab.report.types import CellData, RunData
from initlab.study.init_records import InitRecord

__all__ = ["synthetic_run"]

_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_Z = np.array([-2.326, -1.645, -0.674, 0.0, 0.674, 1.645, 2.326])  # standard normal quantiles


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _gauss_hist(mean: float, std: float, numel: int, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts of ``numel`` N(mean, std^2) draws over ``[mean - 3.5 std, mean + 3.5 std]``
    (a constant tensor, ``std == 0``, gets numpy's ``[v - 0.5, v + 0.5]`` edges)."""
    if std <= 0:
        edges = np.linspace(mean - 0.5, mean + 0.5, bins + 1)
        counts = np.zeros(bins)
        counts[min(bins - 1, bins // 2)] = numel
        return edges, counts
    edges = np.linspace(mean - 3.5 * std, mean + 3.5 * std, bins + 1)
    cdf = _norm_cdf((edges - mean) / std)
    counts = np.round(np.diff(cdf) * numel)
    return edges, counts


def synthetic_run(
    run_dir: str | Path = "synthetic-run",
    *,
    schemes: Sequence[str] = ("zeros", "uniform_recipe", "he_normal"),
    seeds: Sequence[int] = (0, 1),
    widths: Sequence[int] = (784, 64, 32, 10),
    epochs: int = 3,
    hist_bins: int = 20,
    statuses: dict[tuple[str, int], str] | None = None,
    model: str = "mlp-synthetic",
    dataset: str = "fashion-mnist",
    seed: int = 0,
) -> RunData:
    """A fabricated study of ``len(schemes) * len(seeds)`` cells.

    ``widths`` are the layer widths including input and output (``L = len(widths) - 1``
    layers). ``statuses`` overrides the status of chosen ``(scheme, seed)`` cells
    (default ``done``): ``diverged`` cells stop after epoch 1 with NaN metrics,
    ``running`` cells stop after epoch 1, ``pending`` cells have no data. The first scheme
    is initialized with zeros (std 0), so constant tensors are covered.
    """
    rng = np.random.default_rng(seed)
    statuses = dict(statuses or {})
    n_layers = len(widths) - 1
    cells: list[CellData] = []
    for si, scheme in enumerate(schemes):
        quality = 0.35 + 0.6 * (si + 1) / (len(schemes) + 1)
        init_std_scale = 0.0 if si == 0 else 0.5 + si / max(1, len(schemes) - 1)
        for s in seeds:
            status = statuses.get((scheme, s), "done")
            last = {"done": epochs, "diverged": 1, "running": 1, "pending": -1}[status]
            ep = np.arange(0, last + 1)
            noise = rng.normal(0, 0.01, ep.size)
            val_acc = 0.1 + (quality - 0.1) * (1 - np.exp(-1.5 * ep)) + noise * (ep > 0)
            val_loss = 2.3 * np.exp(-quality * ep) + 0.2 + np.abs(noise)
            if si == 1:  # a scheme whose loss starts in the thousands
                val_loss = val_loss * np.where(ep == 0, 2000.0, 1.0)
            train_acc = np.where(ep == 0, np.nan, val_acc + 0.02)
            train_loss = np.where(ep == 0, np.nan, val_loss * 0.9)
            if status == "diverged" and ep.size:
                val_acc[-1] = val_loss[-1] = train_acc[-1] = train_loss[-1] = np.nan
            n_steps = max(0, last) * 4
            step_no = np.arange(1, n_steps + 1)
            step_loss = 2.3 * np.exp(-quality * step_no / 4) + 0.2
            steps = tuple(StepRecord(0, int((k - 1) // 4) + 1, int(10 * k), 10, 320, float(v), math.nan)
                          for k, v in zip(step_no, step_loss))
            per_epoch: list[list[ParamStats]] = [[] for _ in ep]
            acts: list[list[ActivationStats]] = [[] for _ in ep]
            layer_records: list[LayerRecord] = []
            check_rows: list[CheckRow] = []
            for layer in range(1, n_layers + 1):
                fan_in, fan_out = widths[layer - 1], widths[layer]
                numel = fan_in * fan_out
                expected = init_std_scale / math.sqrt(fan_in)
                realized = expected * (1 + rng.normal(0, 1) / math.sqrt(2 * numel))
                if layer == n_layers and si == len(schemes) - 1:
                    realized = 1.5 * expected  # one non-conforming layer
                name = f"{2 * layer - 1}.weight"
                layer_records.append(LayerRecord(name, "Linear", (fan_out, fan_in), 1, fan_in, fan_out,
                                                 "normal", 0.0, expected, 0.0, realized, "zeros"))
                z_var = ((realized**2 - expected**2) / (expected**2 * math.sqrt(2 / numel))
                         if expected > 0 else 0.0)
                ok = abs(z_var) <= 5.0 if expected > 0 else realized == 0.0
                check_rows.append(CheckRow(name, (fan_out, fan_in), "normal", 0.0, 0.0, expected, realized,
                                           0.0, z_var, 0.01, 0.5, ok,
                                           "" if ok else f"std {realized:.4g} vs expected {expected:.4g}"))
                stds = realized + 0.02 * np.sqrt(ep) / math.sqrt(fan_in) * 10
                means = rng.normal(0, 0.001, ep.size) * (ep > 0)
                bstd = 0.01 * np.sqrt(ep)
                post_std = init_std_scale ** layer * (1 + 0.1 * ep)
                pre_means = rng.normal(0, 0.01, ep.size)
                frac = np.clip(0.5 + 0.02 * layer - 0.01 * ep, 0, 1) if si else np.ones(ep.size)
                for i in range(ep.size):
                    m, sd = float(means[i]), float(stds[i])
                    edges, counts = _gauss_hist(m, sd, numel, hist_bins)
                    per_epoch[i].append(ParamStats(
                        layer, "weight", name, numel, m, sd, m - 4 * sd, m + 4 * sd, float(sd == 0), 0,
                        tuple(float(q) for q in m + sd * _Z), tuple(map(float, edges)),
                        tuple(int(c) for c in counts)))
                    bedges, bcounts = _gauss_hist(0.0, float(bstd[i]), fan_out, hist_bins)
                    per_epoch[i].append(ParamStats(
                        layer, "bias", f"{2 * layer - 1}.bias", fan_out, 0.0, float(bstd[i]),
                        -4 * float(bstd[i]), 4 * float(bstd[i]), float(bstd[i] == 0), 0,
                        (0.0,) * len(_QUANTILES), tuple(map(float, bedges)), tuple(int(c) for c in bcounts)))
                    acts[i].append(ActivationStats(layer, float(pre_means[i]), float(post_std[i] * 1.4),
                                                   float(post_std[i] * 0.4), float(post_std[i]),
                                                   float(frac[i]), 0.0))
            records = tuple(EpochRecord(
                0, int(e), int(e) * 4, float(train_loss[i]), float(train_acc[i]), float(val_loss[i]),
                float(val_acc[i]), 1.5, len(schemes) * len(seeds), status == "diverged" and i == ep.size - 1,
                tuple(per_epoch[i]), tuple(acts[i])) for i, e in enumerate(ep))
            report = InitReport(scheme, int(s), layers=layer_records)
            init = InitRecord(report, CheckReport(scheme, 5.0, layers=check_rows))
            cells.append(CellData(
                key=f"{si:02d}{s:02d}" + "0" * 12, scheme=scheme, seed=int(s), model=model,
                dataset=dataset, status=status, wall_s=1.5 * max(0, last), epochs_planned=epochs,
                epochs=records, steps=steps, init=init, quantile_levels=_QUANTILES,
                divergence=Divergence(0, 1, 7, 7, math.nan, "loss") if status == "diverged" else None,
                config={"scheme": scheme, "seed": int(s), "dataset": dataset,
                        "model": {"hidden": list(widths[1:-1])}, "train": {"epochs": epochs}},
            ))
    config = {"name": "synthetic", "schemes": list(schemes), "seeds": list(seeds),
              "train": {"epochs": epochs, "hist_bins": hist_bins}}
    meta = {"device": "cpu", "versions": {"initlab": "0.1.0", "numpy": np.__version__},
            "wall_s": float(sum(c.wall_s for c in cells))}
    return RunData(Path(run_dir), "synthetic", config, meta, cells)
