"""Weights & Biases export: each model a W&B run, grouped per study.

Per cell with recorded data, one run with

* ``group`` = the study name, ``name`` = ``scheme/seedK`` (prefixed by the model/dataset
  group when there are several), ``job_type`` = the model label, ``tags`` = its status;
* ``config`` = the cell's settings (dataset, model, scheme, seed, training settings) plus
  ``study``, ``cell`` (key) and ``status``;
* history rows per epoch: ``epoch``, ``epoch/train_loss``, ``epoch/val_loss``,
  ``epoch/train_acc``, ``epoch/val_acc``, ``weights/layerLL`` and ``biases/layerLL``
  (``wandb.Histogram`` of the recorded bins), ``weight_std/layerLL``,
  ``activation_std/layerLL``; then rows ``global_step``, ``step/train_loss``. Epoch
  metrics are plotted against ``epoch`` and step metrics against ``global_step``
  (``define_metric``);
* ``summary``: the final validation metrics and the status.

``mode`` follows W&B: ``None`` lets ``WANDB_MODE`` decide (``offline`` writes
``<dir>/wandb/offline-run-*`` that ``wandb sync`` can upload later; ``online`` needs
``wandb login``). Needs ``pip install 'initlab[wandb]'``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from initlab.errors import InitlabError
from initlab.report.tensorboard_export import run_name
from initlab.report.types import METRICS, CellData, RunData

__all__ = ["export_wandb", "history_rows"]

_MAX_BINS = 512  # wandb.Histogram's limit


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def history_rows(cell: CellData, histogram: Any) -> list[dict[str, Any]]:
    """The history rows of one cell (epoch rows first, then step rows); ``histogram`` makes
    a W&B histogram from ``(counts, edges)``."""
    rows: dict[int, dict[str, Any]] = {}
    for i, epoch in enumerate(cell.metrics["epoch"]):
        row = rows.setdefault(int(epoch), {"epoch": int(epoch)})
        for m in METRICS:
            v = _finite(cell.metrics[m][i])
            if v is not None:
                row[f"epoch/{m}"] = v
    for p in cell.params:
        prefix = {"weight": "weights", "bias": "biases"}.get(p.param, p.param)
        for j, epoch in enumerate(p.epochs):
            row = rows.setdefault(int(epoch), {"epoch": int(epoch)})
            edges, counts = p.hist_edges[j] if j < len(p.hist_edges) else None, \
                p.hist_counts[j] if j < len(p.hist_counts) else None
            if counts is not None and 0 < counts.size <= _MAX_BINS and edges.size == counts.size + 1 \
                    and np.all(np.isfinite(edges)):
                row[f"{prefix}/layer{p.layer:02d}"] = histogram(counts, edges)
            if p.param == "weight" and "std" in p.stats and (v := _finite(p.stats["std"][j])) is not None:
                row[f"weight_std/layer{p.layer:02d}"] = v
    for a in cell.activations:
        for j, epoch in enumerate(a.epochs):
            if "post_std" in a.stats and (v := _finite(a.stats["post_std"][j])) is not None:
                rows.setdefault(int(epoch), {"epoch": int(epoch)})[f"activation_std/layer{a.layer:02d}"] = v
    out = [rows[e] for e in sorted(rows)]
    for s in cell.steps:
        if math.isfinite(s.loss):
            out.append({"global_step": s.step, "step/train_loss": float(s.loss)})
    return out


def _settings(wandb: Any) -> Any:
    wanted = {"console": "off", "silent": True, "disable_git": True, "save_code": False,
              "x_disable_stats": True, "x_disable_meta": True, "disable_job_creation": True}
    fields = getattr(wandb.Settings, "model_fields", None)
    if fields is not None:
        wanted = {k: v for k, v in wanted.items() if k in fields}
    else:  # pragma: no cover - older wandb
        wanted = {"console": "off", "silent": True}
    return wandb.Settings(**wanted)


def export_wandb(run_dir: str | os.PathLike[str], project: str | None = None, *,
                 entity: str | None = None, mode: str | None = None,
                 dir: str | os.PathLike[str] | None = None, data: RunData | None = None) -> list[str]:
    """Log every cell with recorded data as a W&B run; returns, per run, its offline run
    directory (offline mode) or its URL.

    Args:
        project: W&B project (default ``initlab``).
        entity: W&B entity (default: the logged-in user's).
        mode: ``online``, ``offline`` or ``disabled``; ``None`` lets W&B decide
            (``WANDB_MODE``).
        dir: where W&B writes its local files (default ``RUN_DIR``).
    """
    from initlab.report.extras import require

    if mode is not None and mode not in ("online", "offline", "disabled"):
        raise InitlabError(f"unknown W&B mode {mode!r}; use online, offline or disabled")
    from initlab.outputs import check_output_dir

    wandb = require("wandb", "wandb")
    if dir is not None:
        check_output_dir(dir, "the W&B directory")  # before reading anything
    if data is None:
        from initlab.report.rundata import load_run

        data = load_run(run_dir)
    local = check_output_dir(Path(dir) if dir is not None else Path(data.run_dir), "the W&B directory")
    try:
        local.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitlabError(f"cannot create the W&B directory {str(local)!r}: {exc.strerror}; "
                           f"choose a writable directory") from None
    multi = len(data.groups()) > 1
    out: list[str] = []

    def histogram(counts: np.ndarray, edges: np.ndarray) -> Any:
        return wandb.Histogram(np_histogram=(counts.tolist(), edges.tolist()))

    try:
        for cell in data.cells:
            if cell.metrics["epoch"].size == 0:
                continue
            config = {**cell.config, "study": data.name, "cell": cell.key, "status": cell.status,
                      "scheme": cell.scheme, "seed": cell.seed, "model_label": cell.model,
                      "dataset": cell.dataset}
            try:
                run = wandb.init(project=project or "initlab", entity=entity, group=data.name,
                                 name=run_name(cell, multi), job_type=cell.model, tags=[cell.status],
                                 config=config, dir=str(local), mode=mode, settings=_settings(wandb))
            except Exception as exc:  # wandb raises its own error types (login, network...)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InitlabError(
                    f"W&B could not start a run ({first}); run 'wandb login' or set WANDB_MODE=offline"
                ) from None
            try:
                run.define_metric("epoch")
                run.define_metric("global_step")
                for prefix in ("epoch", "weights", "biases", "weight_std", "activation_std"):
                    run.define_metric(f"{prefix}/*", step_metric="epoch")
                run.define_metric("step/*", step_metric="global_step")
                for row in history_rows(cell, histogram):
                    run.log(row)
                last = [e for e in cell.metrics["epoch"] if e >= 1]
                if last:
                    i = int(np.flatnonzero(cell.metrics["epoch"] == max(last))[0])
                    for m in ("val_acc", "val_loss"):
                        if (v := _finite(cell.metrics[m][i])) is not None:
                            run.summary[f"final/{m}"] = v
                run.summary["status"] = cell.status
                offline = getattr(getattr(run, "settings", None), "mode", None) == "offline"
                where = str(Path(run.dir).parent) if offline else str(getattr(run, "url", None) or run.dir)
            finally:
                run.finish()
            out.append(where)
    finally:
        teardown = getattr(wandb, "teardown", None)
        if teardown is not None:
            teardown()
    return out
