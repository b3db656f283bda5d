"""Train groups of cells on this machine with the batched engine.

:func:`engine_train_group` returns a ``train_group`` for :func:`~initlab.study.run_study`:
for one group (same dataset, model spec and training settings), it

1. loads the data once (:func:`initlab.data.load_dataset`, cached across groups);
2. records a signal-propagation probe of the group's model at init (:mod:`~initlab.study.init_records`), unless
   ``probe=False``;
3. builds one ``spec.build()`` per cell (its model family, :mod:`initlab.engine.families`;
   under the cell's seed, so that what a scheme leaves alone is reproducible) and
   initializes it with
   ``initlab.apply(model, cell.scheme, seed=cell.seed, data=...)`` (data-dependent schemes
   such as LSUV get the first ``lsuv_batch`` training images), storing each
   :class:`~initlab.apply.InitReport` as the cell's init records;
4. trains them together, streaming records through
   :class:`~initlab.study.engine_sink.EngineSink`: an MLP the hand-tuned engine handles
   (``spec.fast_path``) with :func:`initlab.engine.batched.train`, any other model with
   the generic trainer :func:`initlab.engine.generic.train_generic` (vmap over the K
   models, or one by one where vmap cannot express the model). Either way the per-model
   seed is the cell's seed, which also fixes its data order and dropout masks.

The same seed therefore gives the same data order across schemes (a paired comparison).

The probe and init records: :mod:`initlab.study.init_records`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from initlab.errors import InitlabError
from initlab.study.cell import Cell
from initlab.study.engine_sink import EngineSink
from initlab.study.executor import StoreSink, TrainGroup
from initlab.study.init_records import init_record, record_probe

__all__ = ["check_data", "check_memory", "engine_train_group",
           "load_train_data"]



def load_train_data(cell: Cell, data_dir: str | os.PathLike[str] | None = None) -> Any:
    """The engine's ``TrainData`` for a cell's dataset, validation mode and limits."""
    from initlab.data import load_dataset
    from initlab.engine.inputs import TrainData

    ds = load_dataset(cell.dataset, data_dir=data_dir, validation=cell.validation,
                      limit_train=cell.limit_train, limit_val=cell.limit_val)
    return TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y)


def check_data(cells: Sequence[Cell], data_dir: str | os.PathLike[str] | None = None,
               *, download: bool = True) -> None:
    """Fail fast, before anything is written, when the cells' data cannot be loaded or
    their models do not fit it: each dataset is loaded once with one example per split
    (files found or fetched, checksums and headers checked), and every model must take
    its images (``spec.check_fits``: an MLP their pixel count as ``in_features``, a conv
    net their shape) and have an output per class."""
    from initlab.data import load_dataset

    loaded: dict[tuple[str, Any], Any] = {}
    for cell in cells:
        where = (cell.dataset, cell.validation)
        if where not in loaded:
            loaded[where] = load_dataset(cell.dataset, data_dir=data_dir, validation=cell.validation,
                                         limit_train=1, limit_val=1, download=download)
        ds = loaded[where]
        cell.model_spec.check_fits(tuple(ds.train.x[0].shape), len(ds.classes))


def check_memory(cells: Sequence[Cell], device: str = "cpu", max_group_size: int | None = None) -> None:
    """Fail fast when a group of cells that trains together needs more memory than the
    device has (:func:`initlab.engine.memory.training_bytes`, a lower bound, against
    :func:`~initlab.engine.memory.device_bytes`), naming the ``--max-group`` that fits."""
    from initlab.engine.memory import device_bytes
    from initlab.study.cell import group_cells

    total = device_bytes(device)
    if total is None:
        return
    for group in group_cells(cells, max_group_size):
        spec = group[0].model_spec
        need_for = _need_for(group[0])
        need = need_for(len(group))
        if need <= total:
            continue
        one = need_for(1)
        gib = f"{need / 2**30:.3g} GiB for {len(group)} model(s) of {spec.label}"
        have = f"{device} has {total / 2**30:.3g} GiB"
        if one > total:
            raise InitlabError(f"training needs at least {gib}, and one model alone needs "
                               f"{one / 2**30:.3g} GiB; {have}: use a smaller model")
        raise InitlabError(f"training needs at least {gib} trained together; {have}: pass "
                           f"--max-group {max(total // one, 1)} or fewer")


def _need_for(cell: Cell) -> Callable[[int], int]:
    """``need_for(k)``: the lower bound of the bytes k models of *cell*'s group take
    (:func:`~initlab.engine.memory.training_bytes`, or ``module_training_bytes`` for models
    off the fast path)."""
    from initlab.engine.config import TrainConfig
    from initlab.engine.memory import module_training_bytes, training_bytes

    eval_chunk = TrainConfig().eval_batch_size
    spec = cell.model_spec
    batch = int(cell.train.get("batch_size", TrainConfig().batch_size))
    if spec.fast_path:
        return lambda k: training_bytes(spec, k, batch, eval_chunk)
    model = spec.build()
    return lambda k: module_training_bytes(model, spec.input_shape, k, batch, eval_chunk)


def auto_max_group(cells: Sequence[Cell], device: str = "cpu") -> tuple[int, str]:
    """``--max-group auto``: the largest group size whose every group fits the memory free
    on *device* now (:func:`~initlab.engine.memory.free_bytes`, sized by
    :func:`~initlab.engine.memory.models_that_fit` from the engine's memory model), and a
    line saying how it was found."""
    from initlab.engine.memory import free_bytes, models_that_fit
    from initlab.study.cell import group_cells

    free = free_bytes(device)
    groups = group_cells(cells)
    fits = []
    for group in groups:
        one = _need_for(group[0])(1)
        fits.append((models_that_fit(one, free), one, group[0].model_spec.label))
    k, one, label = min(fits)
    largest = min(k, max(len(g) for g in groups))
    return k, (f"--max-group auto: at most {k} models per group ({free / 2**30:.3g} GiB free on {device}, "
               f"{one / 2**20:.3g} MiB a model of {label}); the largest group trains {largest} at once")


def engine_train_group(
    *,
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    eval_batch_size: int | None = None,
    lsuv_batch: int = 256,
    adam: str = "auto",
    loader: Callable[[Cell], Any] | None = None,
    probe: bool = True,
    log: Callable[[str], None] | None = None,
    step: str = "eager",
) -> TrainGroup:
    """A ``train_group(cells, sink)`` that trains with the batched engine.

    Args:
        device: torch device for training (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        data_dir: data root for :func:`initlab.data.load_dataset`.
        eval_batch_size: validation chunk size (engine default when ``None``).
        lsuv_batch: number of training images given to data-dependent schemes.
        adam: the engine's Adam implementation choice.
        loader: ``loader(cell) -> TrainData`` replacing the dataset loader (tests).
        probe: record a signal-propagation probe of each model at init (module docstring).
        log: receives one-line run-log messages (e.g. models the generic trainer trains
            one by one because vmap cannot express them).
        step: the MLP engine's step mode (``eager``, ``compile``, ``cuda-graphs``: see
            :func:`initlab.engine.batched.train`); the generic trainer runs eagerly.
    """
    cache: dict[str, Any] = {}

    def data_for(cell: Cell) -> Any:
        key = repr((cell.dataset, cell.validation, cell.limit_train, cell.limit_val))
        if key not in cache:
            cache.clear()  # keep one dataset in memory
            cache[key] = loader(cell) if loader is not None else load_train_data(cell, data_dir)
        return cache[key]

    def train_group(cells: Sequence[Cell], sink: StoreSink) -> None:
        import torch

        import initlab
        from initlab.engine.batched import train
        from initlab.engine.config import TrainConfig
        from initlab.engine.generic import train_generic
        from initlab.engine.multipliers import lr_multipliers
        from initlab.schemes import get_scheme

        first = cells[0]
        data = data_for(first)
        spec = first.model_spec
        settings = {**first.train, "device": device}
        if eval_batch_size is not None:
            settings["eval_batch_size"] = eval_batch_size
        config = TrainConfig.from_dict(settings)
        if sink.store.get_meta("device") is None:
            dev = torch.device(device)
            name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
            sink.meta("device", {"device": device, "name": name, "torch": torch.__version__})
        if probe:
            record_probe(cells, sink, data, lsuv_batch)

        models = []
        for i, cell in enumerate(cells):
            model = spec.build(seed=cell.seed)  # what apply leaves alone is reproducible
            scheme = get_scheme(cell.scheme)
            batch = spec.as_input(data.train_x[:lsuv_batch]) if scheme.requires_data else None
            if batch is not None and getattr(scheme, "uses_labels", False):  # gradinit, metainit
                batch = (batch, data.train_y[:lsuv_batch].long())
            report = initlab.apply(model, cell.scheme, seed=cell.seed, data=batch)
            sink.init(i, init_record(report, model, batch))
            models.append(model)
        adapter = EngineSink(sink)
        seeds = [c.seed for c in cells]
        # muP: per-parameter learning rates (initlab.engine.multipliers); the fast path takes one lr
        mults = [lr_multipliers(mod, c.scheme, config.optimizer) for mod, c in zip(models, cells)]
        mults_or_none = None if all(x is None for x in mults) else mults
        if spec.fast_path and mults_or_none is None:
            train(models, seeds, data, config, sink=adapter, adam=adam, step=step)
        else:
            if spec.fast_path and log is not None:
                log(f"engine: the {len(models)} {spec.label} model(s) train with the generic trainer, not the "
                    "fast path: a scheme of the group (muP) sets per-parameter learning rates")
            train_generic(models, seeds, data, config, input_shape=tuple(spec.input_shape),
                          sink=adapter, spec=spec, log=log, lr_multipliers=mults_or_none)
        adapter.flush()

    return train_group
