"""What a study records about each model at init: its init record (what
:func:`initlab.apply` did) and a signal-propagation probe of each group's model.

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
from collections.abc import Sequence
from typing import Any

from initlab.study.cell import Cell
from initlab.study.executor import StoreSink

__all__ = ["PROBES_META", "PROBE_ERRORS_META", "init_record", "record_probe"]

#: Store meta key of the recorded probes: ``{model_label: {dataset: ProbeResult.to_dict()}}``.
PROBES_META = "probes"
#: Store meta key of failed probes: ``{model_label: {dataset: "ErrorType: message"}}``.
PROBE_ERRORS_META = "probe_errors"
#: Whether the recorded probe includes the input-output Jacobian spectrum.
PROBE_JACOBIAN = False


def init_record(report: Any) -> dict[str, Any]:
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


def record_probe(cells: Sequence[Cell], sink: StoreSink, data: Any, n_inputs: int) -> None:
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
