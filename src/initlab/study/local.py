"""Train groups of cells on this machine with the batched engine.

:func:`engine_train_group` returns a ``train_group`` for :func:`~initlab.study.run_study`:
for one group (same dataset, model spec and training settings), it

1. loads the data once (:func:`initlab.data.load_dataset`, cached across groups);
2. builds one ``build_mlp(spec)`` per cell and initializes it with
   ``initlab.apply(model, cell.scheme, seed=cell.seed, data=...)`` (data-dependent schemes
   such as LSUV get the first ``lsuv_batch`` training images), storing each
   :class:`~initlab.apply.InitReport` as the cell's init records;
3. trains them together with :func:`initlab.engine.batched.train` (per-model seed =
   the cell's seed, which also fixes its data order and dropout masks), streaming
   records through :class:`~initlab.study.engine_sink.EngineSink`.

The same seed therefore gives the same data order across schemes (a paired comparison).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from initlab.study.cell import Cell
from initlab.study.engine_sink import EngineSink
from initlab.study.executor import StoreSink, TrainGroup

__all__ = ["engine_train_group", "load_train_data"]


def load_train_data(cell: Cell, data_dir: str | os.PathLike[str] | None = None) -> Any:
    """The engine's ``TrainData`` for a cell's dataset, validation mode and limits."""
    from initlab.data import load_dataset
    from initlab.engine.inputs import TrainData

    ds = load_dataset(cell.dataset, data_dir=data_dir, validation=cell.validation,
                      limit_train=cell.limit_train, limit_val=cell.limit_val)
    return TrainData(ds.train.x, ds.train.y, ds.val.x, ds.val.y)


def _plain_report(report: Any) -> dict[str, Any]:
    def plain(x: Any) -> Any:
        return dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x

    return {
        "scheme": getattr(report, "scheme", None),
        "seed": getattr(report, "seed", None),
        "layers": [plain(r) for r in getattr(report, "layers", [])],
        "unsupported": [list(u) for u in getattr(report, "unsupported", [])],
        "lsuv": [plain(s) for s in getattr(report, "lsuv", [])],
    }


def engine_train_group(
    *,
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    eval_batch_size: int | None = None,
    lsuv_batch: int = 256,
    adam: str = "auto",
    loader: Callable[[Cell], Any] | None = None,
) -> TrainGroup:
    """A ``train_group(cells, sink)`` that trains with the batched engine.

    Args:
        device: torch device for training (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        data_dir: data root for :func:`initlab.data.load_dataset`.
        eval_batch_size: validation chunk size (engine default when ``None``).
        lsuv_batch: number of training images given to data-dependent schemes.
        adam: the engine's Adam implementation choice.
        loader: ``loader(cell) -> TrainData`` replacing the dataset loader (tests).
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
        from initlab.engine.models import MLPSpec, build_mlp
        from initlab.schemes import get_scheme

        first = cells[0]
        data = data_for(first)
        spec = MLPSpec.from_dict(first.model)
        settings = {**first.train, "device": device}
        if eval_batch_size is not None:
            settings["eval_batch_size"] = eval_batch_size
        config = TrainConfig.from_dict(settings)
        if sink.store.get_meta("device") is None:
            dev = torch.device(device)
            name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
            sink.meta("device", {"device": device, "name": name, "torch": torch.__version__})

        models = []
        for i, cell in enumerate(cells):
            model = build_mlp(spec)
            needs_data = get_scheme(cell.scheme).requires_data
            batch = data.train_x[:lsuv_batch] if needs_data else None
            report = initlab.apply(model, cell.scheme, seed=cell.seed, data=batch)
            sink.init(i, _plain_report(report))
            models.append(model)
        adapter = EngineSink(sink)
        train(models, [c.seed for c in cells], data, config, sink=adapter, adam=adam)
        adapter.flush()

    return train_group
