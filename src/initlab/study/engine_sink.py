"""Adapter from the batched engine's :class:`initlab.engine.results.Sink` protocol to a
study's :class:`~initlab.study.executor.StoreSink`.

The engine reports per model index (``record.model``: the position of the model in the
list it trains, which must be the group's cell order). The records themselves
(:mod:`initlab.records`) go to the store unchanged, under their own field names:

* ``on_step(records)``: each :class:`~initlab.records.StepRecord` is buffered, then
  written with its model's next epoch record (one transaction per epoch and model);
* ``on_epoch(records)``: each :class:`~initlab.records.EpochRecord` (metrics, the
  :class:`~initlab.records.ParamStats` of every tensor with its histogram, the
  :class:`~initlab.records.ActivationStats` of every layer) with the buffered steps;
* ``on_diverged(event)``: the :class:`~initlab.records.Divergence`; the cell ends with
  status ``diverged``.
"""

from __future__ import annotations

from collections.abc import Sequence

from initlab.records import QUANTILE_LEVELS, Divergence, EpochRecord, StepRecord
from initlab.study.executor import StoreSink

__all__ = ["EngineSink"]


class EngineSink:
    """Implements the engine's ``Sink`` protocol (``on_step``, ``on_epoch``,
    ``on_diverged``) on top of a :class:`StoreSink`."""

    def __init__(self, sink: StoreSink) -> None:
        self.sink = sink
        self._steps: dict[int, list[StepRecord]] = {}
        self._quantiles_saved = False

    def on_step(self, records: Sequence[StepRecord]) -> None:
        for r in records:
            self._steps.setdefault(r.model, []).append(r)

    def on_epoch(self, records: Sequence[EpochRecord]) -> None:
        if records and not self._quantiles_saved:
            self._save_quantile_levels()
        for r in records:
            self.sink.epoch(r.model, r, steps=self._steps.pop(r.model, []))

    def on_diverged(self, event: Divergence) -> None:
        # buffered steps stay buffered: the engine still sends the divergence epoch's record
        self.sink.diverged(event.model, event)

    def flush(self) -> None:
        """Write step records not yet followed by an epoch record (call after training)."""
        for model in sorted(self._steps):
            steps = self._steps.pop(model)
            if steps:
                self.sink.steps(model, steps)

    def _save_quantile_levels(self) -> None:
        """The levels of :attr:`ParamStats.quantiles`, in the store's meta (once per run)."""
        if self.sink.store.get_meta("quantile_levels") is None:
            self.sink.meta("quantile_levels", list(QUANTILE_LEVELS))
        self._quantiles_saved = True
