"""In-memory results of one study, as the report and the exports read them.

:class:`RunData` is a read-only snapshot of a run directory: the study's configuration and
run metadata plus one :class:`CellData` per trained model (a *cell*: one scheme, seed,
model and dataset). Only :mod:`initlab.report.rundata` knows how the SQLite store lays
these out; everything else in :mod:`initlab.report` works on these types, so it can be
tested on synthetic data (:mod:`initlab.report.synthetic`).

Conventions follow the engine's records (:mod:`initlab.records`):

* ``epoch`` 0 is the state at initialization, ``1..E`` the state after that many epochs;
  missing values are NaN (e.g. the training loss at epoch 0, every metric after a
  divergence);
* layers are numbered ``1..L`` over the model's ``nn.Linear`` layers (``L`` = output layer);
* accuracies are fractions in ``[0, 1]``; standard deviations are population ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from initlab.errors import InitlabError

__all__ = [
    "METRICS",
    "FINISHED",
    "STATUSES",
    "ActivationSeries",
    "CellData",
    "InitRecord",
    "ParamSeries",
    "RunData",
]

#: Per-epoch metrics of a cell, in report order.
METRICS: tuple[str, ...] = ("train_loss", "val_loss", "train_acc", "val_acc")

#: Cell statuses, in the order the report lists them.
STATUSES: tuple[str, ...] = ("done", "diverged", "running", "failed", "pending")

#: Statuses of cells whose results are final.
FINISHED: tuple[str, ...] = ("done", "diverged")


def _f64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)



def _stat_at(stats: dict[str, np.ndarray], epochs: np.ndarray, name: str, epoch: int) -> float:
    """``stats[name]`` at ``epoch`` (NaN if not recorded)."""
    values = stats.get(name)
    idx = np.flatnonzero(epochs == epoch)
    if values is None or idx.size == 0:
        return math.nan
    return float(values[idx[0]])


@dataclass
class ParamSeries:
    """One parameter tensor (a layer's ``weight`` or ``bias``) over the recorded epochs.

    ``stats`` maps ``mean``, ``std``, ``min``, ``max``, ``frac_zero`` (any subset) to arrays
    aligned with ``epochs``. ``quantiles`` is ``[len(epochs), len(quantile_levels)]`` or
    ``None``. ``hist_edges[i]`` / ``hist_counts[i]`` are the histogram of ``epochs[i]``
    (``len(counts) + 1`` edges; different epochs have different edges; an empty array
    where no histogram was recorded).
    """

    layer: int
    param: str
    name: str = ""
    numel: int = 0
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    quantile_levels: tuple[float, ...] = ()
    quantiles: np.ndarray | None = None
    hist_edges: list[np.ndarray] = field(default_factory=list)
    hist_counts: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.epochs = np.asarray(self.epochs, dtype=int).reshape(-1)
        self.stats = {k: _f64(v) for k, v in self.stats.items()}
        self.hist_edges = [_f64(e) for e in self.hist_edges]
        self.hist_counts = [_f64(c) for c in self.hist_counts]
        if self.quantiles is not None:
            q = np.asarray(self.quantiles, dtype=float)
            # [epochs, levels]; a cell without epochs (pending) has an empty table
            self.quantiles = q.reshape(len(self.epochs), -1) if q.size else q.reshape(len(self.epochs), 0)

    def histogram(self, epoch: int, *, tight: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        """``(edges, counts)`` at ``epoch``, or ``None`` if none was recorded.

        With ``tight`` the edges are clipped to the recorded ``[min, max]`` of that epoch:
        the engine pads a constant tensor's edges to ``[v - 0.5, v + 0.5]``, and clipping
        turns that back into a point mass at ``v`` (zero-width bins).
        """
        idx = np.flatnonzero(self.epochs == epoch)
        if idx.size == 0 or idx[0] >= len(self.hist_counts):
            return None
        i = int(idx[0])
        edges, counts = self.hist_edges[i], self.hist_counts[i]
        if counts.size == 0 or edges.size != counts.size + 1:
            return None
        if tight and "min" in self.stats and "max" in self.stats:
            lo, hi = float(self.stats["min"][i]), float(self.stats["max"][i])
            if math.isfinite(lo) and math.isfinite(hi) and lo <= hi:
                edges = np.clip(edges, lo, hi)
        return edges, counts

    def stat(self, name: str, epoch: int) -> float:
        """The statistic ``name`` at ``epoch`` (NaN if not recorded)."""
        return _stat_at(self.stats, self.epochs, name, epoch)


@dataclass
class ActivationSeries:
    """Activation statistics of one layer on the probe batch over the recorded epochs.

    ``stats`` maps any of ``pre_mean``, ``pre_std``, ``post_mean``, ``post_std``,
    ``post_frac_zero``, ``dead_units`` to arrays aligned with ``epochs``.
    """

    layer: int
    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.epochs = np.asarray(self.epochs, dtype=int).reshape(-1)
        self.stats = {k: _f64(v) for k, v in self.stats.items()}

    def stat(self, name: str, epoch: int) -> float:
        return _stat_at(self.stats, self.epochs, name, epoch)


@dataclass
class InitRecord:
    """What the initializer did to one weight: its expected and realized moments.

    ``expected_std`` is NaN for data-dependent schemes (LSUV), whose law is not known a
    priori. ``numel`` (0 if unknown) and ``family`` (``""`` if unknown) size the tolerance
    of the conformance check (:mod:`initlab.report.conformance`).
    """

    layer: int
    name: str
    expected_std: float
    realized_std: float
    expected_mean: float = math.nan
    realized_mean: float = math.nan
    numel: int = 0
    family: str = ""
    shape: tuple[int, ...] = ()


@dataclass
class CellData:
    """Everything recorded for one model (one cell of the study grid)."""

    key: str
    scheme: str
    seed: int
    model: str
    dataset: str
    status: str
    wall_s: float = math.nan
    epochs_planned: int = 0
    #: ``epoch`` (ints) and each of :data:`METRICS` (floats, NaN where missing), aligned.
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    #: ``step``, ``loss`` (and optionally ``accuracy``): the windowed training loss.
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    params: list[ParamSeries] = field(default_factory=list)
    activations: list[ActivationSeries] = field(default_factory=list)
    init: list[InitRecord] = field(default_factory=list)
    #: e.g. ``{"epoch": 2, "step": 731, "reason": "loss"}`` for a diverged cell.
    divergence: dict[str, Any] | None = None
    #: the cell's own settings (the study layer's ``Cell.to_dict()``), for exports.
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = dict(self.metrics)
        epochs = np.asarray(m.pop("epoch", np.zeros(0)), dtype=int).reshape(-1)
        fixed: dict[str, np.ndarray] = {"epoch": epochs}
        for name in METRICS:
            v = _f64(m.pop(name, np.full(epochs.size, np.nan)))
            if v.size != epochs.size:
                raise InitlabError(f"cell {self.key}: metric {name} has {v.size} values for {epochs.size} "
                                   f"epochs; give one value per epoch (NaN where missing)")
            fixed[name] = v
        for name, v in m.items():  # extra metrics are kept as they are
            fixed[name] = _f64(v)
        self.metrics = fixed
        self.steps = {k: (np.asarray(v, dtype=int) if k == "step" else _f64(v)) for k, v in self.steps.items()}

    @property
    def finished(self) -> bool:
        """Whether the cell's results are final (done or diverged)."""
        return self.status in FINISHED

    @property
    def last_epoch(self) -> int:
        """The last epoch with a recorded metric row (-1 if none)."""
        e = self.metrics["epoch"]
        return int(e.max()) if e.size else -1

    def metric(self, name: str, epoch: int) -> float:
        idx = np.flatnonzero(self.metrics["epoch"] == epoch)
        return float(self.metrics[name][idx[0]]) if idx.size else math.nan

    def weights(self) -> list[ParamSeries]:
        """The ``weight`` parameters, by layer."""
        return sorted((p for p in self.params if p.param == "weight"), key=lambda p: p.layer)

    def param(self, layer: int, param: str = "weight") -> ParamSeries | None:
        for p in self.params:
            if p.layer == layer and p.param == param:
                return p
        return None

    def activation(self, layer: int) -> ActivationSeries | None:
        for a in self.activations:
            if a.layer == layer:
                return a
        return None


@dataclass
class RunData:
    """A study's results: configuration, run metadata and cells (in study order).

    ``meta`` holds what the runner recorded about the run (``device``, ``versions``,
    ``wall_s``, ``started``, ``finished``, ...); ``config`` the study configuration.
    ``probes`` maps a ``(model, dataset)`` group (:meth:`groups`) to the signal-propagation
    probe the study recorded for it at init (a ``ProbeResult.to_dict()`` dict, or the
    result itself), ``probe_errors`` such a group to the line saying why its probe failed.
    ``probe`` is a single probe of the whole study (the layout before per-group probes).
    """

    run_dir: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    cells: list[CellData] = field(default_factory=list)
    probe: Any = None
    probes: dict[tuple[str, str], Any] = field(default_factory=dict)
    probe_errors: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """True when some cells have not finished (an interrupted or running study)."""
        return any(not c.finished for c in self.cells)

    def status_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for c in self.cells:
            counts[c.status] = counts.get(c.status, 0) + 1
        return counts

    def schemes(self) -> list[str]:
        """Scheme names in study order (first appearance)."""
        return list(dict.fromkeys(c.scheme for c in self.cells))

    def groups(self) -> list[tuple[str, str]]:
        """The ``(model, dataset)`` pairs, in study order. Cells of one group differ only
        in scheme and seed, so they are compared with each other."""
        return list(dict.fromkeys((c.model, c.dataset) for c in self.cells))

    def cells_of(self, model: str, dataset: str, scheme: str | None = None,
                 finished_only: bool = True) -> list[CellData]:
        return [
            c for c in self.cells
            if c.model == model and c.dataset == dataset
            and (scheme is None or c.scheme == scheme)
            and (c.finished or not finished_only)
        ]
