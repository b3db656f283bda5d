"""Read a run directory into :class:`~initlab.report.types.RunData`.

This is the only module of :mod:`initlab.report` that knows how results are stored. It
reads through the public methods of :class:`initlab.study.store.Store` and the layouts
written by :mod:`initlab.study.engine_sink`:

* ``layer_stats`` rows: ``{"layer", "name", "weight": {numel, mean, std, min, max,
  frac_zero, nonfinite, quantiles, tensor}, "bias": {...}, "activation": {pre_mean, ...}}``;
* ``histograms`` rows: ``{"layer", "kind" ("weight"/"bias"), "name" (state_dict key),
  "edges", "counts"}``;
* the cell's ``init`` JSON: an :class:`initlab.apply.InitReport` as ``to_dict()`` or its
  ``layers`` list (:class:`initlab.apply.LayerRecord` dicts), matched to the engine's
  layer numbers by tensor name, else by order;
* ``meta``: ``quantile_levels`` and whatever the runner recorded (device, wall time...);
  ``probes`` (``{model_label: {dataset: ProbeResult.to_dict()}}``, written by
  :mod:`initlab.study.local`) becomes :attr:`RunData.probes` keyed by the report's
  ``(model, dataset)`` groups and is left out of :attr:`RunData.meta` (it is large);
  ``probe_errors`` (same nesting, one line each) becomes :attr:`RunData.probe_errors`;
  an older single ``probe`` stays :attr:`RunData.probe`.

The store is opened read-only (``Store.open(run_dir, readonly=True)``): reading a run
never changes it. Problems with the directory itself raise
:class:`~initlab.errors.InitlabError` naming the directory and what to do, and a store
that cannot be read (not a database, damaged, empty, of another schema version) one
line naming the file (see :mod:`initlab.study.store`).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError
from initlab.report.types import ActivationSeries, CellData, InitRecord, ParamSeries, RunData

__all__ = ["load_run", "check_run_dir"]

_ACT_STATS = ("pre_mean", "pre_std", "post_mean", "post_std", "post_frac_zero", "dead_units")
_PARAM_STATS = ("mean", "std", "min", "max", "frac_zero", "nonfinite")


def check_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The run directory as a :class:`Path`, or a one-line error for a missing, non-directory
    or empty directory, or one without a results store."""
    from initlab.study.store import DB_NAME

    rd = Path(run_dir)
    if not rd.exists():
        raise InitlabError(f"run directory {str(rd)!r} does not exist; pass the directory "
                           f"'initlab run' wrote its results to")
    if not rd.is_dir():
        raise InitlabError(f"{str(rd)!r} is not a directory; pass the run directory "
                           f"'initlab run' wrote (the one holding {DB_NAME})")
    db = rd / DB_NAME
    if not db.exists() and not db.is_symlink():  # anything else there is Store.open's to judge
        if not any(rd.iterdir()):
            raise InitlabError(f"run directory {str(rd)!r} is empty: no study has run there; "
                               f"run 'initlab run' with it first")
        raise InitlabError(f"no results store ({DB_NAME}) in {str(rd)!r}; pass a directory "
                           f"written by 'initlab run'")
    return rd


def _num(x: Any) -> float:
    if x is None:
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _init_records(raw: Any, names_to_layer: dict[str, int]) -> list[InitRecord]:
    if raw is None:
        return []
    rows = raw.get("layers", []) if isinstance(raw, dict) else raw
    out: list[InitRecord] = []
    for i, r in enumerate(x for x in rows if isinstance(x, dict)):
        name = str(r.get("name", ""))
        layer = names_to_layer.get(name, i + 1)
        shape = tuple(int(s) for s in r.get("shape", ()) or ())
        numel = int(math.prod(shape)) if shape else int(r.get("numel", 0) or 0)
        out.append(InitRecord(
            layer=layer, name=name, expected_std=_num(r.get("expected_std")),
            realized_std=_num(r.get("realized_std")), expected_mean=_num(r.get("expected_mean")),
            realized_mean=_num(r.get("realized_mean")), numel=numel,
            family=str(r.get("family", "") or ""), shape=shape,
        ))
    return out


def _by_group(table: Any) -> dict[tuple[str, str], Any]:
    """``{model: {dataset: value}}`` as ``{(model, dataset): value}``; entries of another
    shape are skipped."""
    if not isinstance(table, dict):
        return {}
    return {(str(model), str(dataset)): value
            for model, inner in table.items() if isinstance(inner, dict)
            for dataset, value in inner.items()}


def _cell(store: Any, rec: Any, epoch_rows: list[dict[str, Any]], levels: tuple[float, ...],
          diverged_events: dict[str, dict[str, Any]]) -> CellData:
    key = rec.key
    metrics: dict[str, list[float]] = {k: [] for k in ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")}
    for row in epoch_rows:
        for k in metrics:
            metrics[k].append(row.get(k, math.nan))
    steps = store.steps(key)
    step_data = {"step": [s["step"] for s in steps], "loss": [_num(s.get("loss")) for s in steps],
                 "accuracy": [_num(s.get("acc")) for s in steps]}

    # parameters: stats from layer_stats, histograms from histograms, both keyed (layer, param)
    p_epochs: dict[tuple[int, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    p_names: dict[tuple[int, str], str] = {}
    a_rows: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in store.layer_stats(key):
        epoch, layer = int(row["epoch"]), int(row["layer"])
        for param in ("weight", "bias"):
            if isinstance(row.get(param), dict):
                p_epochs[(layer, param)].setdefault(epoch, {}).update(row[param])
                if row[param].get("tensor"):
                    p_names[(layer, param)] = str(row[param]["tensor"])
        if isinstance(row.get("activation"), dict):
            a_rows[layer][epoch] = row["activation"]
    for h in store.histograms(key):
        k = (int(h["layer"]), str(h["kind"]))
        p_epochs[k].setdefault(int(h["epoch"]), {})["_hist"] = (h["edges"], h["counts"])
        if h.get("name"):
            p_names.setdefault(k, str(h["name"]))

    params: list[ParamSeries] = []
    for (layer, param), by_epoch in sorted(p_epochs.items()):
        eps = sorted(by_epoch)
        rows = [by_epoch[e] for e in eps]
        stats = {s: [_num(r.get(s)) for r in rows] for s in _PARAM_STATS if any(s in r for r in rows)}
        quant = None
        if levels and all(isinstance(r.get("quantiles"), list) and len(r["quantiles"]) == len(levels) for r in rows):
            quant = [[_num(q) for q in r["quantiles"]] for r in rows]
        hists = [r.get("_hist", ([], [])) for r in rows]
        numel = next((int(r["numel"]) for r in rows if r.get("numel")), 0)
        params.append(ParamSeries(
            layer=layer, param=param, name=p_names.get((layer, param), f"layer{layer}.{param}"),
            numel=numel, epochs=eps, stats=stats, quantile_levels=levels if quant else (),
            quantiles=quant, hist_edges=[h[0] for h in hists], hist_counts=[h[1] for h in hists],
        ))
    activations = []
    for layer, by_epoch in sorted(a_rows.items()):
        eps = sorted(by_epoch)
        activations.append(ActivationSeries(layer, eps, {
            s: [_num(by_epoch[e].get(s)) for e in eps] for s in _ACT_STATS
            if any(s in by_epoch[e] for e in eps)
        }))
    names_to_layer = {p.name: p.layer for p in params if p.param == "weight"}

    divergence = None
    if rec.status == "diverged" or rec.diverged_epoch is not None:
        ev = diverged_events.get(key, {})
        detail = ev.get("detail") if isinstance(ev.get("detail"), dict) else {}
        divergence = {"epoch": rec.diverged_epoch, "step": rec.diverged_step,
                      "reason": detail.get("reason", "")}
    return CellData(
        key=key, scheme=rec.scheme, seed=int(rec.seed), model=rec.model, dataset=rec.dataset,
        status=rec.status, wall_s=_num(rec.wall), epochs_planned=int(rec.cell.epochs),
        metrics=metrics, steps=step_data, params=params, activations=activations,
        init=_init_records(rec.init, names_to_layer), divergence=divergence,
        config=rec.cell.to_dict(),
    )


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Everything the store of ``run_dir`` holds, as :class:`RunData`.

    Raises :class:`InitlabError` for a missing or empty directory, one without a results
    store, a store that cannot be read, or one in which no study was recorded. The store
    is only read, through a read-only connection. A study that was interrupted loads
    fine: its unfinished cells keep status ``running``/``pending``/``failed`` and
    :attr:`RunData.partial` is true.
    """
    from initlab.study.init_records import PROBE_ERRORS_META, PROBES_META
    from initlab.study.store import Store

    rd = check_run_dir(run_dir)
    with Store.open(rd, readonly=True) as store:  # never changes the store
        study = store.study_record()
        if study is None:
            raise InitlabError(f"the results store in {str(rd)!r} holds no study: the run stopped "
                               f"before it began; run 'initlab run' with this directory again")
        meta = store.meta()
        levels = tuple(float(x) for x in meta.get("quantile_levels", []) or [])
        by_cell: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in store.epochs():
            by_cell[row["cell"]].append(row)
        diverged = {e["cell"]: e for e in store.events() if e["kind"] == "diverged"}
        cells = [_cell(store, rec, by_cell.get(rec.key, []), levels, diverged) for rec in store.cells()]
    config = dict(study.config)
    config.setdefault("name", study.name)
    probes = _by_group(meta.pop(PROBES_META, None))
    errors = {k: str(v) for k, v in _by_group(meta.get(PROBE_ERRORS_META)).items()}
    meta = {"fingerprint": study.fingerprint, "created": study.created,
            "versions": dict(study.versions), **meta}
    return RunData(run_dir=rd, name=study.name, config=config, meta=meta, cells=cells,
                   probe=meta.get("probe"), probes=probes, probe_errors=errors)
