"""Train groups of cells on this machine with the batched engine.

:func:`engine_train_group` returns a ``train_group`` for :func:`~initlab.study.run_study`:
for one group (same dataset, model spec and training settings), it

1. loads the data once (:func:`initlab.data.load_dataset`, cached across groups);
2. records a signal-propagation probe of the group's model at init (below), unless
   ``probe=False``;
3. builds one ``build_mlp(spec)`` per cell and initializes it with
   ``initlab.apply(model, cell.scheme, seed=cell.seed, data=...)`` (data-dependent schemes
   such as LSUV get the first ``lsuv_batch`` training images), storing each
   :class:`~initlab.apply.InitReport` as the cell's init records;
4. trains them together with :func:`initlab.engine.batched.train` (per-model seed =
   the cell's seed, which also fixes its data order and dropout masks), streaming
   records through :class:`~initlab.study.engine_sink.EngineSink`.

The same seed therefore gives the same data order across schemes (a paired comparison).

The probe (:func:`initlab.probe`) runs on the group's ``MLPSpec`` under each distinct
scheme of the group, on the first ``lsuv_batch`` training images and their labels, with
the group's smallest seed: exactly the weights of that seed's cells at init (LSUV is
fitted on the same images). It is stored as ``ProbeResult.to_dict()`` in the store meta
:data:`PROBES_META`, ``{model_label: {dataset: probe}}`` (the report's model/dataset
groups); a group split by ``max_group_size``, or a resumed study, probes only the schemes
its model's stored probe lacks (with that probe's seed) and appends them, so a model
already probed is not probed again. A probe never fails the study: its error is stored
as one line under :data:`PROBE_ERRORS_META` (same nesting; removed once a later run
probes that group) and training goes on. The probe measures the network with dropout
switched off (see :mod:`initlab.probe.runner`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from initlab.errors import InitlabError
from initlab.study.cell import Cell
from initlab.study.engine_sink import EngineSink
from initlab.study.executor import StoreSink, TrainGroup

__all__ = ["PROBES_META", "PROBE_ERRORS_META", "check_data", "check_memory", "engine_train_group",
           "load_train_data"]

#: Store meta key of the recorded probes: ``{model_label: {dataset: ProbeResult.to_dict()}}``.
PROBES_META = "probes"
#: Store meta key of failed probes: ``{model_label: {dataset: "ErrorType: message"}}``.
PROBE_ERRORS_META = "probe_errors"
#: Whether the recorded probe includes the input-output Jacobian spectrum.
PROBE_JACOBIAN = False


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
    its images' pixel count as ``in_features`` and have an output per class."""
    from initlab.data import load_dataset
    from initlab.engine.models import MLPSpec

    loaded: dict[tuple[str, Any], Any] = {}
    for cell in cells:
        where = (cell.dataset, cell.validation)
        if where not in loaded:
            loaded[where] = load_dataset(cell.dataset, data_dir=data_dir, validation=cell.validation,
                                         limit_train=1, limit_val=1, download=download)
        ds = loaded[where]
        pixels = int(ds.train.x[0].numel())
        classes = len(ds.classes)
        spec = MLPSpec.from_dict(cell.model)
        if spec.in_features != pixels:
            raise InitlabError(
                f"model {spec.label} takes in_features={spec.in_features}, but {cell.dataset} images "
                f"have {pixels} pixels; set in_features = {pixels} in the spec's [model]")
        if spec.out_features < classes:
            raise InitlabError(
                f"model {spec.label} has out_features={spec.out_features}, but {cell.dataset} has "
                f"{classes} classes; set out_features = {classes} in the spec's [model]")


def check_memory(cells: Sequence[Cell], device: str = "cpu", max_group_size: int | None = None) -> None:
    """Fail fast when a group of cells that trains together needs more memory than the
    device has (:func:`initlab.engine.memory.training_bytes`, a lower bound, against
    :func:`~initlab.engine.memory.device_bytes`), naming the ``--max-group`` that fits."""
    from initlab.engine.config import TrainConfig
    from initlab.engine.memory import device_bytes, training_bytes
    from initlab.engine.models import MLPSpec
    from initlab.study.cell import group_cells

    total = device_bytes(device)
    if total is None:
        return
    eval_chunk = TrainConfig().eval_batch_size
    for group in group_cells(cells, max_group_size):
        spec = MLPSpec.from_dict(group[0].model)
        batch = int(group[0].train.get("batch_size", TrainConfig().batch_size))
        need = training_bytes(spec, len(group), batch, eval_chunk)
        if need <= total:
            continue
        one = training_bytes(spec, 1, batch, eval_chunk)
        gib = f"{need / 2**30:.3g} GiB for {len(group)} model(s) of {spec.label}"
        have = f"{device} has {total / 2**30:.3g} GiB"
        if one > total:
            raise InitlabError(f"training needs at least {gib}, and one model alone needs "
                               f"{one / 2**30:.3g} GiB; {have}: use a smaller model")
        raise InitlabError(f"training needs at least {gib} trained together; {have}: pass "
                           f"--max-group {max(total // one, 1)} or fewer")


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


def _set_nested(sink: StoreSink, key: str, label: str, dataset: str, value: Any) -> None:
    """Set ``meta[key][label][dataset] = value`` in the store (``None`` removes the entry)."""
    stored = sink.store.get_meta(key)
    table = dict(stored) if isinstance(stored, dict) else {}
    inner = dict(table[label]) if isinstance(table.get(label), dict) else {}
    if value is None:
        if dataset not in inner:
            return
        del inner[dataset]
    else:
        inner[dataset] = value
    if inner:
        table[label] = inner
    else:
        table.pop(label, None)
    sink.meta(key, table)


def _stored_probe(sink: StoreSink, label: str, dataset: str) -> dict[str, Any] | None:
    """The probe stored for ``(label, dataset)`` if it has the layout ``to_dict`` writes."""
    table = sink.store.get_meta(PROBES_META)
    inner = table.get(label) if isinstance(table, dict) else None
    entry = inner.get(dataset) if isinstance(inner, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("schemes"), list) and isinstance(entry.get("seed"), int):
        return entry
    return None


def _probe_dict(cells: Sequence[Cell], data: Any, n_inputs: int,
                stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """``ProbeResult.to_dict()`` of the group's schemes that *stored* lacks, appended to
    *stored*; ``None`` when it lacks none."""
    from initlab.engine.models import MLPSpec
    from initlab.probe import probe
    from initlab.schemes import get_scheme

    done = {s.get("scheme") for s in stored["schemes"] if isinstance(s, dict)} if stored else set()
    schemes = [s for s in dict.fromkeys(get_scheme(c.scheme).spec for c in cells) if s not in done]
    if not schemes:
        return None
    seed = stored["seed"] if stored else min(c.seed for c in cells)
    x, y = data.train_x[:n_inputs], data.train_y[:n_inputs].long()
    result = probe(MLPSpec.from_dict(cells[0].model), (x, y), schemes, n_inputs=max(len(x), 2),
                   seed=seed, jacobian=PROBE_JACOBIAN).to_dict()
    return {**stored, "schemes": [*stored["schemes"], *result["schemes"]]} if stored else result


def _record_probe(cells: Sequence[Cell], sink: StoreSink, data: Any, n_inputs: int) -> None:
    """Probe the group's model on its first *n_inputs* training images and store it (see
    the module docstring). Never raises an ``Exception``: a failure is stored as one line
    under :data:`PROBE_ERRORS_META` instead."""
    label, dataset = cells[0].model_label, cells[0].dataset
    try:
        result = _probe_dict(cells, data, n_inputs, _stored_probe(sink, label, dataset))
        if result is not None:
            _set_nested(sink, PROBES_META, label, dataset, result)
            _set_nested(sink, PROBE_ERRORS_META, label, dataset, None)
    except Exception as exc:  # noqa: BLE001 - the probe is a side measurement
        text = " ".join(str(exc).split())[:300]
        line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        _set_nested(sink, PROBE_ERRORS_META, label, dataset, line)


def engine_train_group(
    *,
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    eval_batch_size: int | None = None,
    lsuv_batch: int = 256,
    adam: str = "auto",
    loader: Callable[[Cell], Any] | None = None,
    probe: bool = True,
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
        if probe:
            _record_probe(cells, sink, data, lsuv_batch)

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
