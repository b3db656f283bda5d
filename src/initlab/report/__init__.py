"""The study report and exports.

>>> from initlab.report import build_report, export_tables
>>> build_report("runs/seed")                                # doctest: +SKIP
PosixPath('runs/seed/report.html')
>>> export_tables("runs/seed", "runs/seed/tables", "csv")   # doctest: +SKIP

* :func:`build_report` -- ``RUN_DIR/report.html`` (self-contained: figures inline, no
  network) and ``RUN_DIR/figures/*.png`` (:mod:`~initlab.report.build`);
* :func:`export_tensorboard` -- event files per model: scalar curves and per-layer weight
  histograms per epoch (:mod:`~initlab.report.tensorboard_export`; extra ``tensorboard``);
* :func:`export_wandb` -- one W&B run per model, grouped per study
  (:mod:`~initlab.report.wandb_export`; extra ``wandb``);
* :func:`export_tables` -- tidy CSV or Parquet tables (:mod:`~initlab.report.tables`;
  Parquet needs the extra ``parquet``).

All of them read a run directory through :func:`load_run` (:mod:`~initlab.report.rundata`,
the only module that knows the store's layout) into :class:`RunData`
(:mod:`~initlab.report.types`). Heavy dependencies (matplotlib, tensorboard, wandb,
pandas, pyarrow) are imported only when a function needs them.
"""

from __future__ import annotations

from initlab.report.build import build_report
from initlab.report.rundata import load_run
from initlab.report.tables import export_tables, read_table
from initlab.report.tensorboard_export import export_tensorboard
from initlab.report.types import ActivationSeries, CellData, ParamSeries, RunData
from initlab.report.wandb_export import export_wandb

__all__ = [
    "ActivationSeries",
    "CellData",
    "ParamSeries",
    "RunData",
    "build_report",
    "export_tables",
    "export_tensorboard",
    "export_wandb",
    "load_run",
    "read_table",
]
