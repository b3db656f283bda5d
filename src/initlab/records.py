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

Besides the engine's records this module holds the engine-free facts every layer above
shares: :class:`CellStatus` (the state of one cell of a study) and :class:`SchemeSummary`
(one row of the per-scheme summary; its math is :mod:`initlab.study.summary`). Every
record has ``to_dict()`` and its inverse ``from_dict()``:
``type(r).from_dict(r.to_dict())`` equals ``r`` field by field (NaN reads back as NaN),
which is how the study's store writes and reads them. ``from_dict`` ignores keys it does
not know and gives defaulted fields their default when the key is missing, so a newer
record's dict reads on an older initlab and the other way round.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from initlab.errors import InitlabError

__all__ = [
    "QUANTILE_LEVELS",
    "ParamStats",
    "ActivationStats",
    "EpochRecord",
    "StepRecord",
    "Divergence",
    "CellStatus",
    "SchemeSummary",
]

#: Quantile levels of :attr:`ParamStats.quantiles`, in this order.
QUANTILE_LEVELS: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

_NAN = float("nan")


_R = TypeVar("_R", bound="_Record")


class _Record:
    #: Fields holding a tuple of nested records, and the record type of their items.
    _NESTED: ClassVar[dict[str, type[_Record]]] = {}

    def to_dict(self) -> dict[str, Any]:
        """A dict of plain values (nested records become dicts, tuples become lists).
        (``asdict`` without its per-leaf ``deepcopy``: a deep-preset epoch record, 42
        tensors with histograms, converts about 10x faster; benchmarks/bench_executor.py.)"""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[_R], d: dict[str, Any]) -> _R:
        """The record :meth:`to_dict` wrote (lists become tuples again, nested records
        their types). Unknown keys are ignored; a missing key of a field without default
        is a one-line :class:`~initlab.errors.InitlabError`."""
        if not isinstance(d, dict):
            raise InitlabError(f"a {cls.__name__} is read from a dict, got {type(d).__name__}; "
                               f"give what {cls.__name__}.to_dict() wrote")
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in d:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise InitlabError(f"a {cls.__name__} needs {f.name!r}, which the dict lacks; "
                                       f"give what {cls.__name__}.to_dict() wrote")
                continue
            v = d[f.name]
            nested = cls._NESTED.get(f.name)
            if nested is not None:
                v = tuple(x if isinstance(x, nested) else nested.from_dict(x) for x in v)
            elif isinstance(v, list):
                v = tuple(v)
            kwargs[f.name] = v
        return cls(**kwargs)

    def same(self, other: Any) -> bool:
        """Equality with NaN equal to NaN (``==`` on records with NaN fields is False):
        the same type and the same :meth:`to_dict`."""
        return type(other) is type(self) and _same(self.to_dict(), other.to_dict())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (bool, dict, list)) or isinstance(b, (bool, dict, list)):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _plain(x: Any) -> Any:
    if isinstance(x, (int, float, str)) or x is None:
        return x
    if isinstance(x, _Record):
        return x.to_dict()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _plain(asdict(x))
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

    _NESTED: ClassVar[dict[str, type[_Record]]] = {"params": ParamStats, "activations": ActivationStats}


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




class CellStatus(StrEnum):
    """The state of one cell (one model) of a study, as the store records it.

    ``pending`` (not started), ``running`` (started, not finished: interrupted if no
    process is training it), ``done``, ``diverged`` (finished; :data:`FINAL`) and
    ``failed`` (its group raised; trained again on resume). A :class:`StrEnum`: a status
    equals its text (``CellStatus.DONE == "done"``) and prints as it.
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DIVERGED = "diverged"
    FAILED = "failed"

    #: The statuses of finished cells, whose results are final (kept on resume).
    FINAL: ClassVar[tuple[CellStatus, ...]]

    @property
    def final(self) -> bool:
        """Whether a cell with this status has finished (done or diverged)."""
        return self in CellStatus.FINAL

    @classmethod
    def parse(cls, text: Any) -> CellStatus:
        """The status named *text*, or a one-line error listing the statuses."""
        try:
            return cls(text)
        except ValueError:
            raise InitlabError(f"unknown cell status {text!r}; statuses are "
                               f"{', '.join(s.value for s in cls)}") from None


CellStatus.FINAL = (CellStatus.DONE, CellStatus.DIVERGED)


@dataclass(frozen=True)
class SchemeSummary(_Record):
    """One row of the per-scheme summary of a comparison group (one dataset, model and
    train setting: ``setting`` names the values of the study's train axes, e.g.
    ``"lr=0.01"``, and is ``""`` in a study without them):
    what ``initlab summary``, the report and the exports show. The math and the
    definitions are :mod:`initlab.study.summary` (the only place that computes it).

    * ``planned`` / ``finished`` / ``done`` / ``n``: cells of the scheme in the study /
      done or diverged / done / done with at least one trained epoch; ``diverged``;
    * ``val_acc +- val_acc_ci``, ``val_loss +- val_loss_ci``: final validation metrics,
      mean and confidence half-width over the done seeds (NaN where undefined);
    * ``epochs_to``: mean first epoch reaching the accuracy threshold over the ``reached``
      finished seeds that did (NaN: none did);
    * ``best_epoch`` / ``best_acc``: the epoch maximizing the seed-mean validation
      accuracy (``None``: no trained epoch) and that mean;
    * ``final_accs``: the sample behind ``val_acc``;
    * ``is_best``, ``p_vs_best``, ``significant``: the comparison with the group's best
      scheme (Welch's t-test).
    """

    dataset: str
    model: str
    scheme: str
    planned: int
    finished: int
    done: int
    n: int
    diverged: int
    val_acc: float
    val_acc_ci: float
    val_loss: float
    val_loss_ci: float
    epochs_to: float
    reached: int
    best_epoch: int | None
    best_acc: float
    final_accs: tuple[float, ...] = ()
    is_best: bool = False
    p_vs_best: float = _NAN
    significant: bool = False
    setting: str = ""

    @property
    def unfinished(self) -> int:
        """Cells of the scheme not finished yet (pending, running or failed)."""
        return self.planned - self.finished
