"""In-memory results of one study, as the report and the exports read them.

:class:`RunData` is a read-only snapshot of a run directory: the study's configuration and
run metadata plus one :class:`CellData` per trained model (a *cell*: one scheme, seed,
model and dataset). A cell holds the records the store gave back, of the types the
engine and the study wrote (:mod:`initlab.records`: :class:`~initlab.records.EpochRecord`
with its :class:`~initlab.records.ParamStats` and :class:`~initlab.records.ActivationStats`,
:class:`~initlab.records.StepRecord`, :class:`~initlab.records.Divergence`,
:class:`~initlab.records.CellStatus`; :class:`~initlab.study.init_records.InitRecord`);
nothing is renamed or re-parsed on the way. :class:`ParamSeries` and
:class:`ActivationSeries` are not records: they are column views over a cell's epoch
records (one tensor or layer across epochs, as arrays), computed from them for plotting.
Everything in :mod:`initlab.report` works on these types, so it can be tested on
synthetic data (:mod:`initlab.report.synthetic`).

Conventions follow the engine's records (:mod:`initlab.records`):

* ``epoch`` 0 is the state at initialization, ``1..E`` the state after that many epochs;
  missing values are NaN (e.g. the training loss at epoch 0, every metric after a
  divergence);
* layers are numbered ``1..L`` over the model's ``nn.Linear`` layers (``L`` = output layer);
* accuracies are fractions in ``[0, 1]``; standard deviations are population ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from initlab.records import (QUANTILE_LEVELS, CellStatus, Divergence, EpochRecord, ParamStats,
                             StepRecord)

if TYPE_CHECKING:
    from initlab.probe.result import ProbeResult
    from initlab.study.init_records import InitRecord

__all__ = [
    "METRICS",
    "ActivationSeries",
    "CellData",
    "ParamSeries",
    "RunData",
]

#: Per-epoch metrics of a cell (:class:`~initlab.records.EpochRecord` fields), in report order.
METRICS: tuple[str, ...] = ("train_loss", "val_loss", "train_acc", "val_acc")


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

    @classmethod
    def of(cls, rows: Sequence[tuple[int, ParamStats]], levels: tuple[float, ...] = QUANTILE_LEVELS
           ) -> ParamSeries:
        """The view of one tensor's ``(epoch, ParamStats)`` records, in epoch order."""
        rows = sorted(rows, key=lambda r: r[0])
        first = rows[0][1]
        quant = None
        if levels and all(len(p.quantiles) == len(levels) for _, p in rows):
            quant = [list(p.quantiles) for _, p in rows]
        return cls(
            layer=first.layer, param=first.param, name=first.name, numel=first.numel,
            epochs=[e for e, _ in rows],
            stats={s: [getattr(p, s) for _, p in rows] for s in _PARAM_STATS},
            quantile_levels=levels if quant else (), quantiles=quant,
            hist_edges=[list(p.hist_edges) for _, p in rows],
            hist_counts=[list(p.hist_counts) for _, p in rows],
        )


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


_PARAM_STATS = ("mean", "std", "min", "max", "frac_zero", "nonfinite")
_ACT_STATS = ("pre_mean", "pre_std", "post_mean", "post_std", "post_frac_zero", "dead_units")


@dataclass
class CellData:
    """Everything recorded for one model (one cell of the study grid): its identity and
    status, and the records the study wrote for it, as the store gave them back."""

    key: str
    scheme: str
    seed: int
    model: str
    dataset: str
    status: CellStatus
    wall_s: float = math.nan
    epochs_planned: int = 0
    #: one :class:`EpochRecord` per recorded epoch (0 = at init), in epoch order.
    epochs: tuple[EpochRecord, ...] = ()
    #: the windowed training loss and accuracy, by step.
    steps: tuple[StepRecord, ...] = ()
    divergence: Divergence | None = None
    #: apply's report and check's verdicts at init (``None``: none stored).
    init: InitRecord | None = None
    #: the levels of :attr:`ParamStats.quantiles`.
    quantile_levels: tuple[float, ...] = QUANTILE_LEVELS
    #: the cell's own settings (the study layer's ``Cell.to_dict()``), for exports.
    config: dict[str, Any] = field(default_factory=dict)
    #: its values on the study's train axes (:func:`initlab.study.axes.setting_label`),
    #: e.g. ``"lr=0.01"``; ``""`` in a study without them.
    setting: str = ""

    @property
    def group_label(self) -> str:
        """The comparison group this cell belongs to, with its dataset: the model's label,
        and the train setting when the study has train axes (``mlp-... | lr=0.01``)."""
        return f"{self.model} | {self.setting}" if self.setting else self.model

    def __post_init__(self) -> None:
        self.status = CellStatus.parse(self.status)
        self.epochs = tuple(sorted(self.epochs, key=lambda r: r.epoch))
        self.steps = tuple(sorted(self.steps, key=lambda r: r.step))

    @cached_property
    def metrics(self) -> dict[str, np.ndarray]:
        """``epoch`` (ints) and each of :data:`METRICS` (floats, NaN where missing) over
        :attr:`epochs`, as aligned arrays."""
        out: dict[str, np.ndarray] = {"epoch": np.asarray([r.epoch for r in self.epochs], dtype=int)}
        for name in METRICS:
            out[name] = np.asarray([getattr(r, name) for r in self.epochs], dtype=float)
        return out

    @cached_property
    def params(self) -> list[ParamSeries]:
        """One :class:`ParamSeries` view per parameter tensor, by layer (weight first)."""
        rows: dict[tuple[int, str, str], list[tuple[int, ParamStats]]] = {}
        for r in self.epochs:
            for p in r.params:
                rows.setdefault((p.layer, p.param, p.name), []).append((r.epoch, p))
        order = sorted(rows, key=lambda k: (k[0], k[1] != "weight", k[1], k[2]))
        return [ParamSeries.of(rows[k], self.quantile_levels) for k in order]

    @cached_property
    def activations(self) -> list[ActivationSeries]:
        """One :class:`ActivationSeries` view per layer, by layer."""
        rows: dict[int, list[tuple[int, Any]]] = {}
        for r in self.epochs:
            for a in r.activations:
                rows.setdefault(a.layer, []).append((r.epoch, a))
        return [ActivationSeries(layer, [e for e, _ in rows[layer]],
                                 {s: [getattr(a, s) for _, a in rows[layer]] for s in _ACT_STATS})
                for layer in sorted(rows)]

    @property
    def finished(self) -> bool:
        """Whether the cell's results are final (done or diverged)."""
        return self.status.final

    @property
    def last_epoch(self) -> int:
        """The last epoch with a recorded metric row (-1 if none)."""
        return max((r.epoch for r in self.epochs), default=-1)

    def metric(self, name: str, epoch: int) -> float:
        for r in self.epochs:
            if r.epoch == epoch:
                return float(getattr(r, name))
        return math.nan

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
    probe (:class:`~initlab.probe.result.ProbeResult`) the study recorded for it at init,
    ``probe_errors`` such a group to the line saying why its probe failed.
    """

    run_dir: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    cells: list[CellData] = field(default_factory=list)
    probes: dict[tuple[str, str], ProbeResult] = field(default_factory=dict)
    probe_errors: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """True when some cells have not finished (an interrupted or running study)."""
        return any(not c.finished for c in self.cells)

    def status_counts(self) -> dict[CellStatus, int]:
        """The number of cells of each status (every status present, in enum order)."""
        counts = dict.fromkeys(CellStatus, 0)
        for c in self.cells:
            counts[c.status] += 1
        return counts

    def schemes(self) -> list[str]:
        """Scheme names in study order (first appearance)."""
        return list(dict.fromkeys(c.scheme for c in self.cells))

    def groups(self) -> list[tuple[str, str]]:
        """The ``(group label, dataset)`` pairs (:attr:`CellData.group_label`: the model,
        and the train setting where the study has train axes), in study order. Cells of
        one group differ only in scheme and seed, so they are compared with each other."""
        return list(dict.fromkeys((c.group_label, c.dataset) for c in self.cells))

    def model_of(self, group: str) -> str:
        """The model label of a group label of :meth:`groups`."""
        return next((c.model for c in self.cells if c.group_label == group), group)

    def cells_of(self, model: str, dataset: str, scheme: str | None = None,
                 finished_only: bool = True) -> list[CellData]:
        """The cells of the group ``(model, dataset)`` (*model*: a group label of
        :meth:`groups`, which is the model's label in a study without train axes)."""
        return [
            c for c in self.cells
            if c.group_label == model and c.dataset == dataset
            and (scheme is None or c.scheme == scheme)
            and (c.finished or not finished_only)
        ]
