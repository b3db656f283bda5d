"""Export a run directory to TensorBoard, W&B and tidy tables: what ``initlab export`` and
``Results.export()`` share.

:func:`export_run` checks every requested extra and every output place before doing any
work (one line and nothing written on failure), reads the run once, read-only
(:func:`~initlab.report.rundata.load_run`), and writes what was asked for
(:func:`~initlab.report.tables.export_tables`,
:func:`~initlab.report.tensorboard_export.export_tensorboard`,
:func:`~initlab.report.wandb_export.export_wandb`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError

__all__ = ["Exported", "export_run"]


@dataclass
class Exported:
    """What :func:`export_run` wrote."""

    #: table name -> file (``format`` given)
    tables: dict[str, Path] = field(default_factory=dict)
    #: the tables' directory (``None``: no tables asked for)
    tables_dir: Path | None = None
    #: TensorBoard run directories, one per cell
    tensorboard: list[Path] = field(default_factory=list)
    #: W&B runs (offline directories or URLs)
    wandb: list[str] = field(default_factory=list)
    #: the run's data, as read
    data: Any = None


def export_run(run_dir: str | os.PathLike[str], *, tensorboard: str | os.PathLike[str] | None = None,
               wandb: str | None = None, wandb_entity: str | None = None, wandb_mode: str | None = None,
               format: str | None = None, out: str | os.PathLike[str] | None = None,
               out_name: str = "--out", tensorboard_name: str = "--tensorboard") -> Exported:
    """Export ``run_dir``: tables in ``format`` (``csv``/``parquet``) into ``out`` (default
    ``RUN_DIR/tables``), TensorBoard event files into ``tensorboard``, W&B runs into the
    project ``wandb``. ``out_name``/``tensorboard_name`` are what errors call those places."""
    if out and not format:
        raise InitlabError(f"{out_name} is the directory of the tables; give a format (csv or parquet) with it")
    if not (tensorboard or wandb or format):
        raise InitlabError("nothing to export; give a TensorBoard directory, a W&B project or a table "
                           "format (csv or parquet)")
    if format is not None and format not in ("csv", "parquet"):
        raise InitlabError(f"unknown table format {format!r}; use csv or parquet")
    from initlab.report.extras import require

    # check every requested extra before doing any work
    if tensorboard:
        require("tensorboard.summary.writer.event_file_writer", "tensorboard")
    if wandb:
        require("wandb", "wandb")
    if format == "parquet":
        require("pandas", "parquet")
        require("pyarrow", "parquet")

    from initlab.outputs import check_output_dir
    from initlab.report.rundata import check_run_dir, load_run

    # every output place is checked before any work (nothing is created here)
    check_run_dir(run_dir)
    tables_dir = Path(out) if out else Path(run_dir) / "tables"
    if format:
        check_output_dir(tables_dir, out_name if out else "the tables directory")
    if tensorboard:
        check_output_dir(tensorboard, tensorboard_name)
    data = load_run(run_dir)  # read-only: the store is never changed
    result = Exported(data=data)
    if format:
        from initlab.report.tables import export_tables

        result.tables = export_tables(run_dir, tables_dir, format, data=data)
        result.tables_dir = tables_dir
    if tensorboard:
        from initlab.report.tensorboard_export import export_tensorboard

        result.tensorboard = export_tensorboard(run_dir, tensorboard, data=data)
    if wandb:
        from initlab.report.wandb_export import export_wandb

        result.wandb = export_wandb(run_dir, wandb, entity=wandb_entity, mode=wandb_mode, data=data)
    return result
