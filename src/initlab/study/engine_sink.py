"""Adapter from the batched engine's :class:`initlab.engine.results.Sink` protocol to a
study's :class:`~initlab.study.executor.StoreSink`.

The engine reports per model index (``record.model``: the position of the model in the
list it trains, which must be the group's cell order). Mapping, per model:

* ``on_step(records)``: buffered, then written with the next epoch (one transaction per
  epoch and model) as ``steps`` rows ``step, epoch, loss, acc`` (+ ``steps``, ``samples``);
* ``on_epoch(records)``: an ``epochs`` row (``train_loss``, ``train_acc``, ``val_loss``,
  ``val_acc``, ``wall`` = the epoch's ``wall_s`` for the whole batch, plus ``step``,
  ``batch_models`` and ``diverged`` as extras), one ``layer_stats`` row per layer
  ``{"weight": {...}, "bias": {...}, "activation": {...}}`` and one ``histograms`` row
  per parameter tensor (``kind`` = ``"weight"``/``"bias"``);
* ``on_diverged(event)``: a ``diverged`` event with the event's fields; the cell ends
  with status ``diverged`` and ``diverged_epoch``/``diverged_step`` set.

Records are read through ``to_dict()``, so the adapter relies on field names, not on the
engine's classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from initlab.study.executor import StoreSink

__all__ = ["EngineSink", "epoch_rows"]

_METRICS = {"train_loss": "train_loss", "train_acc": "train_acc", "val_loss": "val_loss",
            "val_acc": "val_acc", "wall_s": "wall"}
_PARAM_STATS = ("numel", "mean", "std", "min", "max", "frac_zero", "nonfinite", "quantiles")


def _as_dict(record: Any) -> dict[str, Any]:
    return dict(record.to_dict() if hasattr(record, "to_dict") else record)


def epoch_rows(record: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """``(metrics, layers, histograms)`` of an engine epoch record for
    :meth:`StoreSink.epoch`."""
    d = _as_dict(record)
    metrics = {ours: d[theirs] for theirs, ours in _METRICS.items() if theirs in d}
    for extra in ("step", "batch_models", "diverged"):
        if extra in d:
            metrics[extra] = d[extra]
    layers: dict[int, dict[str, Any]] = {}
    histograms: list[dict[str, Any]] = []
    for p in d.get("params", ()):
        entry = layers.setdefault(int(p["layer"]), {"name": f"layer{int(p['layer'])}"})
        entry[str(p["param"])] = {k: p[k] for k in _PARAM_STATS if k in p}
        entry[str(p["param"])]["tensor"] = p.get("name")
        histograms.append({"layer": int(p["layer"]), "kind": str(p["param"]), "name": str(p.get("name", "")),
                           "edges": list(p["hist_edges"]), "counts": list(p["hist_counts"])})
    for a in d.get("activations", ()):
        entry = layers.setdefault(int(a["layer"]), {"name": f"layer{int(a['layer'])}"})
        entry["activation"] = {k: v for k, v in a.items() if k != "layer"}
    layer_list = [{"layer": idx, **entry} for idx, entry in sorted(layers.items())]
    return metrics, layer_list, histograms


class EngineSink:
    """Implements the engine's ``Sink`` protocol (``on_step``, ``on_epoch``,
    ``on_diverged``) on top of a :class:`StoreSink`."""

    def __init__(self, sink: StoreSink) -> None:
        self.sink = sink
        self._steps: dict[int, list[dict[str, Any]]] = {}
        self._quantiles_saved = False

    def on_step(self, records: Sequence[Any]) -> None:
        for r in records:
            d = _as_dict(r)
            model = int(d.pop("model"))
            if "accuracy" in d:
                d["acc"] = d.pop("accuracy")
            self._steps.setdefault(model, []).append(d)

    def on_epoch(self, records: Sequence[Any]) -> None:
        if records and not self._quantiles_saved:
            self._save_quantile_levels()
        for r in records:
            d = _as_dict(r)
            model = int(d["model"])
            metrics, layers, histograms = epoch_rows(d)
            self.sink.epoch(model, int(d["epoch"]), metrics, layers=layers, histograms=histograms,
                            steps=self._steps.pop(model, []))

    def on_diverged(self, event: Any) -> None:
        d = _as_dict(event)
        # buffered steps stay buffered: the engine still sends the divergence epoch's record
        self.sink.diverged(int(d["model"]), epoch=d.get("epoch"), step=d.get("step"), detail=d)

    def flush(self) -> None:
        """Write step records not yet followed by an epoch record (call after training)."""
        for model in sorted(self._steps):
            steps = self._steps.pop(model)
            if steps:
                self.sink.steps(model, steps)

    def _save_quantile_levels(self) -> None:
        try:
            from initlab.records import QUANTILE_LEVELS
        except ImportError:  # pragma: no cover - the engine is part of the package
            return
        if self.sink.store.get_meta("quantile_levels") is None:
            self.sink.meta("quantile_levels", list(QUANTILE_LEVELS))
        self._quantiles_saved = True
