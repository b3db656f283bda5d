"""Tidy tables of a study, as CSV (standard library) or Parquet (pandas + pyarrow).

Every table starts with the same identifying columns, :data:`ID_COLUMNS`:
``study`` (name), ``cell`` (the cell's stable key), ``model`` (label), ``dataset``,
``scheme`` (canonical spec) and ``seed``. Then, one row per:

``cells``
    cell: ``status`` (done, diverged, running, failed, pending), ``epochs_planned``,
    ``last_epoch`` (-1: no data), ``wall_s``, ``diverged_epoch``, ``diverged_step``.
``metrics``
    cell x epoch x metric: ``epoch`` (0 = at init), ``metric`` (``train_loss``,
    ``val_loss``, ``train_acc``, ``val_acc``), ``value``. Missing values (the training
    metrics at epoch 0) are left out, NaN ones after a divergence are kept.
``steps``
    cell x logging window x metric: ``step`` (global optimizer step at the window's end),
    ``metric`` (``train_loss``, ``train_acc``), ``value``.
``layers``
    cell x epoch x layer x tensor x statistic: ``epoch``, ``layer`` (1..L), ``tensor``
    (``weight``, ``bias`` or ``activation``), ``name`` (the state_dict key, or
    ``layerN`` for activations), ``stat`` (``mean``, ``std``, ``min``, ``max``,
    ``frac_zero``, ``nonfinite``, ``q01``...``q99`` for parameters; ``pre_mean``,
    ``pre_std``, ``post_mean``, ``post_std``, ``post_frac_zero``, ``dead_units`` for
    activations), ``value``.
``histograms``
    cell x epoch x layer x tensor x bin: ``epoch``, ``layer``, ``tensor``, ``name``,
    ``bin`` (0-based), ``left``, ``right``, ``count``.
``init``
    cell x weight: what :func:`initlab.apply` did (its ``LayerRecord``): ``layer``,
    ``name``, ``family``, ``numel``, ``expected_mean``, ``expected_std``,
    ``realized_mean``, ``realized_std``.
``conformance``
    cell x weight: :func:`initlab.check`'s verdict at init (its ``CheckRow``): ``layer``,
    ``name``, ``family``, ``expected_mean``, ``realized_mean``, ``expected_std``,
    ``realized_std``, ``z_mean``, ``z_var``, ``ks_d``, ``ks_p``, ``conforms``, ``reason``
    (no rows for a cell whose check was not stored).

Files are ``OUT_DIR/<table>.csv`` or ``OUT_DIR/<table>.parquet``. In CSV a missing or NaN
value is an empty field (pandas reads it back as NaN); floats are written with full
precision (``repr``). Cell keys are hexadecimal strings that pandas may take for numbers
(``"0123"``, ``"12e4..."``): read CSVs with :func:`read_table`, or pass
``dtype={"cell": str}`` to ``pandas.read_csv``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError
from initlab.report.types import METRICS, CellData, RunData

__all__ = ["FORMATS", "ID_COLUMNS", "TABLES", "export_tables", "read_table", "table_rows"]

ID_COLUMNS: tuple[str, ...] = ("study", "cell", "model", "dataset", "scheme", "seed")

#: table name -> its columns after :data:`ID_COLUMNS`.
TABLES: dict[str, tuple[str, ...]] = {
    "cells": ("status", "epochs_planned", "last_epoch", "wall_s", "diverged_epoch", "diverged_step"),
    "metrics": ("epoch", "metric", "value"),
    "steps": ("step", "metric", "value"),
    "layers": ("epoch", "layer", "tensor", "name", "stat", "value"),
    "histograms": ("epoch", "layer", "tensor", "name", "bin", "left", "right", "count"),
    "init": ("layer", "name", "family", "numel", "expected_mean", "expected_std", "realized_mean",
             "realized_std"),
    "conformance": ("layer", "name", "family", "expected_mean", "realized_mean", "expected_std",
                    "realized_std", "z_mean", "z_var", "ks_d", "ks_p", "conforms", "reason"),
}

FORMATS: tuple[str, ...] = ("csv", "parquet")

#: Columns that are strings whatever they look like.
_STRING_COLUMNS = ("study", "cell", "model", "dataset", "scheme", "metric", "tensor", "name", "stat",
                   "status", "family", "reason")


def _q(level: float) -> str:
    return f"q{round(level * 100):02d}"


def _rows(table: str, run: RunData, c: CellData) -> Iterator[tuple[Any, ...]]:
    ids = (run.name, c.key, c.model, c.dataset, c.scheme, c.seed)
    if table == "cells":
        div = c.divergence
        yield ids + (str(c.status), c.epochs_planned, c.last_epoch, c.wall_s,
                     None if div is None else div.epoch, None if div is None else div.step)
    elif table == "metrics":
        for i, epoch in enumerate(c.metrics["epoch"]):
            for m in METRICS:
                v = float(c.metrics[m][i])
                if m.startswith("train") and epoch == 0 and math.isnan(v):
                    continue
                yield ids + (int(epoch), m, v)
    elif table == "steps":
        for s in c.steps:
            for value, m in ((s.loss, "train_loss"), (s.accuracy, "train_acc")):
                if math.isfinite(value):
                    yield ids + (s.step, m, float(value))
    elif table == "layers":
        for p in c.params:
            for i, epoch in enumerate(p.epochs):
                for stat, values in p.stats.items():
                    yield ids + (int(epoch), p.layer, p.param, p.name, stat, float(values[i]))
                if p.quantiles is not None:
                    for level, v in zip(p.quantile_levels, p.quantiles[i]):
                        yield ids + (int(epoch), p.layer, p.param, p.name, _q(level), float(v))
        for a in c.activations:
            for i, epoch in enumerate(a.epochs):
                for stat, values in a.stats.items():
                    yield ids + (int(epoch), a.layer, "activation", f"layer{a.layer}", stat, float(values[i]))
    elif table == "histograms":
        for p in c.params:
            for epoch, edges, counts in zip(p.epochs, p.hist_edges, p.hist_counts):
                for b, count in enumerate(counts):
                    yield ids + (int(epoch), p.layer, p.param, p.name, b, float(edges[b]),
                                 float(edges[b + 1]), int(count))
    elif table == "init":
        layers = c.init.report.layers if c.init is not None else ()
        for layer, r in enumerate(layers, 1):
            yield ids + (layer, r.name, r.family, math.prod(r.shape), r.expected_mean, r.expected_std,
                         r.realized_mean, r.realized_std)
    elif table == "conformance":
        rows = c.init.check.layers if c.init is not None and c.init.check is not None else ()
        for layer, r in enumerate(rows, 1):
            yield ids + (layer, r.name, r.family, r.expected_mean, r.realized_mean, r.expected_std,
                         r.realized_std, r.z_mean, r.z_var, r.ks_d, r.ks_p, r.conforms, r.reason)


def table_rows(run: RunData, table: str) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` (see the module docstring), cells in study order."""
    if table not in TABLES:
        raise InitlabError(f"unknown table {table!r}; tables are {', '.join(TABLES)}")
    for c in run.cells:
        yield from _rows(table, run, c)


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for row in rows:
            w.writerow([_csv_value(v) for v in row])
    tmp.replace(path)


def _write_parquet(path: Path, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
    from initlab.report.extras import require

    pd = require("pandas", "parquet")
    require("pyarrow", "parquet")
    df = pd.DataFrame.from_records(list(rows), columns=list(columns))
    for col in ("value", "left", "right", "wall_s", "expected_mean", "expected_std", "realized_mean",
                "realized_std", "z_mean", "z_var", "ks_d", "ks_p"):
        if col in df:
            df[col] = df[col].astype("float64")
    for col in ("diverged_epoch", "diverged_step"):
        if col in df:
            df[col] = df[col].astype("Int64")
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, engine="pyarrow", index=False)
    tmp.replace(path)


def export_tables(run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], format: str = "csv",
                  *, tables: tuple[str, ...] | None = None, data: RunData | None = None) -> dict[str, Path]:
    """Write the tidy tables of ``run_dir`` into ``out_dir``; returns ``{table: path}``.

    ``format`` is ``csv`` (no extra needed) or ``parquet`` (``pip install
    'initlab[parquet]'``). ``tables`` selects a subset of :data:`TABLES` (default all).
    ``out_dir`` is checked (:func:`initlab.outputs.check_output_dir`) before the run is
    read; each table is written to a temporary file and renamed into place.
    """
    fmt = str(format).lower()
    if fmt not in FORMATS:
        raise InitlabError(f"unknown table format {format!r}; use csv or parquet")
    names = tuple(tables) if tables is not None else tuple(TABLES)
    bad = [t for t in names if t not in TABLES]
    if bad:
        raise InitlabError(f"unknown table {bad[0]!r}; tables are {', '.join(TABLES)}")
    if fmt == "parquet":  # fail before reading anything
        from initlab.report.extras import require

        require("pandas", "parquet")
        require("pyarrow", "parquet")
    from initlab.outputs import check_output_dir
    from initlab.report.extras import export_inputs

    check_output_dir(out_dir, "the tables directory")  # a file or read-only place: before any work

    data, out = export_inputs(run_dir, out_dir, data)
    written: dict[str, Path] = {}
    for name in names:
        columns = ID_COLUMNS + TABLES[name]
        path = out / f"{name}.{fmt}"
        writer = _write_csv if fmt == "csv" else _write_parquet
        writer(path, columns, table_rows(data, name))
        written[name] = path
    return written


def read_table(path: str | os.PathLike[str]) -> Any:
    """A table written by :func:`export_tables` as a pandas DataFrame, with the string
    columns kept as strings (needs pandas; Parquet also pyarrow)."""
    from initlab.report.extras import require

    pd = require("pandas", "parquet")
    p = Path(path)
    if not p.is_file():
        raise InitlabError(f"no table at {str(p)!r}; write it with 'initlab export RUN_DIR --format csv'")
    if p.suffix == ".parquet":
        require("pyarrow", "parquet")
        return pd.read_parquet(p)
    head = pd.read_csv(p, nrows=0).columns
    df = pd.read_csv(p, dtype={c: str for c in _STRING_COLUMNS if c in head}, keep_default_na=False,
                     na_values={c: [""] for c in head if c not in _STRING_COLUMNS})
    for col in ("diverged_epoch", "diverged_step"):  # integers with missing values, as in Parquet
        if col in df:
            df[col] = df[col].astype("Int64")
    return df
