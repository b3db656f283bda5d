"""What one call of the engine returns (:class:`TrainResult`) and the :class:`Sink` protocol
that receives the records (:mod:`initlab.records`) while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

from initlab.engine.config import TrainConfig
from initlab.records import Divergence, EpochRecord, StepRecord

__all__ = ["TrainResult", "Sink", "NullSink"]

_NAN = float("nan")


@dataclass
class TrainResult:
    """Everything recorded for one model, plus its final parameters.

    ``epochs[0]`` is the record at init; ``epochs[e]`` the one after epoch ``e`` (the list is
    shorter if the model diverged).  ``final_state`` is a ``state_dict`` for a model
    built by ``build_mlp(spec)`` (CPU float32 tensors): the trained parameters, or the
    last finite ones of a diverged model.
    """

    model: int
    seed: int
    spec: Any  # the model's spec (e.g. an MLPSpec)
    config: TrainConfig
    epochs: list[EpochRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    divergence: Divergence | None = None
    final_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.divergence is not None

    def history(self) -> dict[str, list[float]]:
        """Keras-style ``History.history``: ``loss``, ``accuracy``, ``val_loss``,
        ``val_accuracy``, one entry per trained epoch (NaN from the divergence epoch on)."""
        h: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
        by_epoch = {r.epoch: r for r in self.epochs}
        for e in range(1, self.config.epochs + 1):
            r = by_epoch.get(e)
            h["loss"].append(r.train_loss if r else _NAN)
            h["accuracy"].append(r.train_acc if r else _NAN)
            h["val_loss"].append(r.val_loss if r else _NAN)
            h["val_accuracy"].append(r.val_acc if r else _NAN)
        return h

    @property
    def final_val_acc(self) -> float:
        """Validation accuracy after the last epoch (NaN if the model diverged)."""
        if self.diverged or not self.epochs:
            return _NAN
        return self.epochs[-1].val_acc


@runtime_checkable
class Sink(Protocol):
    """Receives records while training runs (e.g. the study's SQLite store).

    Calls happen on the training thread, in order: ``on_epoch`` for epoch 0, then per
    epoch any ``on_step``/``on_diverged`` calls followed by that epoch's ``on_epoch``.
    Sinks should be quick; subclass :class:`NullSink` to implement only some methods.
    """

    def on_step(self, records: Sequence[StepRecord]) -> None:
        """One record per live model at each logging point."""

    def on_epoch(self, records: Sequence[EpochRecord]) -> None:
        """One record per model still recorded, after each epoch (and at init)."""

    def on_diverged(self, event: Divergence) -> None:
        """A model diverged (reported at the next logging point or epoch end)."""


class NullSink:
    """A :class:`Sink` that ignores everything; subclass it and override what you need."""

    def on_step(self, records: Sequence[StepRecord]) -> None:
        pass

    def on_epoch(self, records: Sequence[EpochRecord]) -> None:
        pass

    def on_diverged(self, event: Divergence) -> None:
        pass

