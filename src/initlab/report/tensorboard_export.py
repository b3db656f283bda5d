"""TensorBoard event files: one run per model, with its curves and weight histograms.

Layout: ``OUT_DIR/<scheme>/seed<k>/events.out.tfevents.*`` (with a leading
``<model>__<dataset>/`` level when the study has several model/dataset groups), so
``tensorboard --logdir OUT_DIR`` lists one run per model and its run selector filters by
scheme. Tags (``L`` = layer number, two digits):

* ``epoch/train_loss``, ``epoch/val_loss``, ``epoch/train_acc``, ``epoch/val_acc``:
  scalars at step = epoch (validation from epoch 0, the state at init);
* ``step/train_loss``: the windowed training loss at step = global optimizer step;
* ``weights/layerLL``, ``biases/layerLL``: histograms at step = epoch, which fill
  TensorBoard's HISTOGRAMS and DISTRIBUTIONS dashboards (the article's view);
* ``weight_std/layerLL``, ``activation_std/layerLL``, ``activation_zero/layerLL``:
  per-layer scalars at step = epoch.

Events use TensorBoard's classic ``Summary`` protos (``simple_value`` and
``HistogramProto``, as ``torch.utils.tensorboard`` writes them), written with
TensorBoard's own ``EventFileWriter``. A histogram's ``bucket_limit[i]`` is the right edge
of bin ``i``; ``min``/``max`` are the outer edges of the occupied bins within the tensor's
recorded ``[min, max]`` (so a constant tensor is one spike, not a padded bin), and
``sum``/``sum_squares`` are computed from bin centres (the exact entries are not stored).
Non-finite scalars (e.g. after a divergence) are skipped. Exporting again replaces the
event files of the runs it writes.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from initlab.report.histo import occupied
from initlab.report.types import METRICS, CellData, RunData

__all__ = ["export_tensorboard", "run_name", "safe_name"]


def safe_name(text: str) -> str:
    """``text`` usable as one path component: characters other than letters, digits and
    ``._=,()+-`` become ``_``."""
    out = re.sub(r"[^\w.=,()+-]", "_", text).strip(".")
    return out or "_"


def run_name(cell: CellData, multi_group: bool) -> str:
    """The TensorBoard/W&B run name of a cell: ``scheme/seedK`` (``model__dataset/``
    first when the study has several groups)."""
    name = f"{safe_name(cell.scheme)}/seed{cell.seed}"
    return f"{safe_name(cell.group_label)}__{safe_name(cell.dataset)}/{name}" if multi_group else name


def _histogram_proto(pb: Any, edges: np.ndarray, counts: np.ndarray, tight: np.ndarray) -> Any:
    """The classic ``HistogramProto``; ``tight`` are the edges clipped to the tensor's
    recorded ``[min, max]`` (a constant tensor becomes one zero-width bucket)."""
    lo, hi = occupied(tight, counts)
    centres = 0.5 * (edges[:-1] + edges[1:])
    return pb.HistogramProto(
        min=lo, max=hi, num=float(counts.sum()), sum=float(np.dot(counts, centres)),
        sum_squares=float(np.dot(counts, centres**2)),
        bucket_limit=[float(x) for x in edges[1:]], bucket=[float(x) for x in counts],
    )


def _events(cell: CellData, pb: Any) -> list[tuple[int, Any]]:
    """``(step, Summary.Value)`` pairs of one cell."""
    out: list[tuple[int, Any]] = []

    def scalar(tag: str, step: int, value: float) -> None:
        if np.isfinite(value):
            out.append((int(step), pb.Summary.Value(tag=tag, simple_value=float(value))))

    for i, epoch in enumerate(cell.metrics["epoch"]):
        for m in METRICS:
            scalar(f"epoch/{m}", epoch, cell.metrics[m][i])
    for s in cell.steps:
        scalar("step/train_loss", s.step, s.loss)
    for p in cell.params:
        prefix = {"weight": "weights", "bias": "biases"}.get(p.param, p.param)
        for epoch in p.epochs:
            raw, tight = p.histogram(int(epoch), tight=False), p.histogram(int(epoch))
            if raw is not None and tight is not None and np.all(np.isfinite(raw[0])):
                out.append((int(epoch), pb.Summary.Value(tag=f"{prefix}/layer{p.layer:02d}",
                                                         histo=_histogram_proto(pb, raw[0], raw[1], tight[0]))))
        if p.param == "weight" and "std" in p.stats:
            for epoch, v in zip(p.epochs, p.stats["std"]):
                scalar(f"weight_std/layer{p.layer:02d}", epoch, v)
    for a in cell.activations:
        for key, tag in (("post_std", "activation_std"), ("post_frac_zero", "activation_zero")):
            for epoch, v in zip(a.epochs, a.stats.get(key, [])):
                scalar(f"{tag}/layer{a.layer:02d}", epoch, v)
    return out


def export_tensorboard(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       data: RunData | None = None) -> list[Path]:
    """Write TensorBoard event files for every cell with recorded data; returns the run
    directories written (one per cell). Needs ``pip install 'initlab[tensorboard]'``.
    ``out_dir`` is checked (:func:`initlab.outputs.check_output_dir`) before the run is
    read."""
    from initlab.report.extras import require

    pb = require("tensorboard.compat.proto.summary_pb2", "tensorboard")
    event_pb2 = require("tensorboard.compat.proto.event_pb2", "tensorboard")
    writer_mod = require("tensorboard.summary.writer.event_file_writer", "tensorboard")
    from initlab.outputs import check_output_dir
    from initlab.report.extras import export_inputs

    check_output_dir(out_dir, "the TensorBoard directory")  # before reading anything
    data, out = export_inputs(run_dir, out_dir, data)
    multi = len(data.groups()) > 1
    written: list[Path] = []
    for cell in data.cells:
        if cell.metrics["epoch"].size == 0:
            continue
        logdir = out / run_name(cell, multi)
        logdir.mkdir(parents=True, exist_ok=True)
        for old in logdir.glob("events.out.tfevents.*"):
            old.unlink()
        writer = writer_mod.EventFileWriter(str(logdir), max_queue_size=1000, flush_secs=3600,
                                            filename_suffix=".initlab")
        try:
            now = time.time()
            for step, value in _events(cell, pb):
                writer.add_event(event_pb2.Event(wall_time=now, step=step,
                                                 summary=pb.Summary(value=[value])))
        finally:
            writer.close()
        written.append(logdir)
    return written
