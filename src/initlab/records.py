"""The records initlab produces: one type per fact, from the engine to the store to the report.

All records are frozen dataclasses of plain Python numbers, strings and tuples, so a store
can persist them field by field (``to_dict()`` gives JSON/SQLite-ready dicts; tuples become
lists).  Conventions shared by all records:

* ``model`` is the index of the model in the list given to :func:`initlab.engine.train`
  (``0`` for :func:`initlab.engine.train_one`).
* ``epoch`` is ``0`` for the state at initialization (before any step) and ``1..epochs``
  for the state after that many epochs.
* ``step`` counts optimizer steps since the start of training (1-based for the step that
  was taken; ``0`` at init).  An epoch has ``ceil(N / batch_size)`` steps.
* Missing values are ``float("nan")`` (never ``None``), e.g. the training loss at epoch 0.
* Layers are numbered ``1..L`` over the ``nn.Linear`` layers of the MLP: ``1..L-1`` are the
  hidden layers, ``L`` is the output layer.

The records one run produces, per model: one :class:`EpochRecord` per epoch (including
epoch 0) until the model diverges (the epoch in which it diverges still gets a record, with
``diverged=True`` and NaN metrics), one :class:`StepRecord` every ``log_every`` steps while
it is alive, and at most one :class:`Divergence`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "QUANTILE_LEVELS",
    "ParamStats",
    "ActivationStats",
    "EpochRecord",
    "StepRecord",
    "Divergence",
]

#: Quantile levels of :attr:`ParamStats.quantiles`, in this order.
QUANTILE_LEVELS: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

_NAN = float("nan")


class _Record:
    def to_dict(self) -> dict[str, Any]:
        """A dict of plain values (nested records become dicts, tuples become lists)."""
        return _plain(asdict(self))  # type: ignore[call-overload]


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


@dataclass(frozen=True)
class ParamStats(_Record):
    """Summary statistics and a histogram of one parameter tensor of one model.

    Statistics are over the finite entries; ``nonfinite`` counts the others (always 0 for a
    model that the engine trained, since a model is frozen before non-finite values
    can enter its parameters; it can be > 0 at epoch 0 if the initialization itself
    produced NaN/inf).  ``std`` is the population standard deviation
    ``sqrt(mean((w - mean(w))^2))``.  ``quantiles[i]`` is the ``QUANTILE_LEVELS[i]``
    quantile with linear interpolation (the default of ``numpy.quantile`` and
    ``torch.quantile``).

    The histogram is ``numpy.histogram(values, bins)``: ``len(hist_counts)`` equal-width
    bins whose ``len(hist_counts) + 1`` edges span ``[min, max]`` of this snapshot
    (``[min - 0.5, max + 0.5]`` when all finite entries are equal); bin ``i`` is
    ``[edges[i], edges[i+1])`` and the last bin includes ``max``.  Histograms of
    different epochs therefore have different edges; plot them with their own edges.
    """

    layer: int
    param: str  # "weight" or "bias"
    name: str  # key in the model's state_dict, e.g. "1.weight"
    numel: int
    mean: float
    std: float
    min: float
    max: float
    frac_zero: float  # fraction of entries exactly 0.0
    nonfinite: int
    quantiles: tuple[float, ...]
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]


@dataclass(frozen=True)
class ActivationStats(_Record):
    """Per-layer activation statistics of one model on the fixed probe batch (eval mode:
    no dropout).  Over all probe samples and units of the layer:

    * ``pre_mean``, ``pre_std``: of the pre-activation ``z = a_prev @ W.T + b``;
    * ``post_mean``, ``post_std``: of the activation ``act(z)`` (softmax for the output
      layer, as in the article's Keras model);
    * ``post_frac_zero``: fraction of activations exactly 0 (dead ReLUs at this input);
    * ``dead_units``: fraction of the layer's units whose activation is exactly 0 for
      every probe sample.

    Standard deviations are population ones.
    """

    layer: int
    pre_mean: float
    pre_std: float
    post_mean: float
    post_std: float
    post_frac_zero: float
    dead_units: float
    #: the module's name in the model (``named_modules()``), e.g. ``"features.3"``; empty in
    #: the MLP fast path's records, whose layers are numbered only
    name: str = ""


@dataclass(frozen=True)
class EpochRecord(_Record):
    """The state of one model at the end of an epoch (``epoch=0``: at initialization).

    * ``train_loss``, ``train_acc``: Keras' running figures for the epoch: the
      sample-weighted mean of the per-batch losses (and the fraction of correct
      predictions) over all of the epoch's batches, each computed with the weights at that
      step and with dropout active.  NaN at epoch 0.
    * ``val_loss``, ``val_acc``: on the whole validation set with the end-of-epoch weights
      in eval mode (no dropout), like Keras' ``val_loss``/``val_accuracy``.  At epoch 0
      they are those of the initial weights (Keras does not report these).
    * ``wall_s``: wall-clock seconds of this epoch (training steps, validation and
      recording) for the whole batch of ``batch_models`` models trained together, so the
      per-model cost is ``wall_s / batch_models``.  For epoch 0: the time of the initial
      evaluation and recording.
    * ``diverged``: True in the record of the epoch in which the model diverged; that
      record's metrics are NaN and its ``params`` describe the frozen (last finite)
      parameters.  No records follow it.
    """

    model: int
    epoch: int
    step: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    wall_s: float
    batch_models: int
    diverged: bool
    params: tuple[ParamStats, ...] = ()
    activations: tuple[ActivationStats, ...] = ()


@dataclass(frozen=True)
class StepRecord(_Record):
    """Training loss/accuracy of one model over a window of steps ``(step - steps, step]``:
    the sample-weighted means over the window's ``samples`` training samples (dropout on,
    weights as at each step).  Windows end at multiples of ``log_every`` (counted over
    the whole run) and at the last step, and may span an epoch boundary; ``epoch`` is the
    (1-based) epoch of the window's last step.
    """

    model: int
    epoch: int
    step: int
    steps: int
    samples: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class Divergence(_Record):
    """A model stopped training at optimizer step ``step`` (global, 1-based; the
    ``epoch_step``-th step of epoch ``epoch``) because that step's training loss
    (``reason="loss"``) or, with a finite loss, its gradient (``reason="gradient"``) was
    not finite.  That step's update was not applied: the model keeps the parameters it had
    before it (its last finite values) and is not trained any further.
    """

    model: int
    epoch: int
    step: int
    epoch_step: int
    loss: float
    reason: str


