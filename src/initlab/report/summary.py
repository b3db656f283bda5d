"""Per-scheme summary of a study group for the report: a thin adapter.

It turns the report's :class:`~initlab.report.types.CellData` into
:class:`initlab.study.summary.CellResult` inputs and calls
:func:`initlab.study.summary.summarize_schemes`, the one implementation of the summary
math (shared with ``initlab summary``; definitions and sources are given there). Its rows
are :class:`initlab.records.SchemeSummary`, the one row type of the summary, which
``initlab summary``, the report and the ``summary`` export table all show.
"""

from __future__ import annotations

import numpy as np

from initlab.records import SchemeSummary
from initlab.report.types import CellData, RunData
from initlab.study import summary as core

__all__ = ["cell_result", "cell_results", "final_metric", "mean_curve", "summarize"]

#: The confidence level of the report's intervals.
LEVEL = 0.95


def mean_curve(cells: list[CellData], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, mean, lo, hi)`` of ``metric`` over ``cells``: the NaN-ignoring mean and
    the min/max band per epoch (:func:`initlab.study.summary.mean_curve`)."""
    return core.mean_curve((c.metrics["epoch"], c.metrics[metric]) for c in cells)


def final_metric(cell: CellData, name: str) -> float:
    """``name`` after the cell's last recorded training epoch (NaN if none)."""
    return core.final_value(cell.metrics["epoch"], cell.metrics[name])


def cell_result(cell: CellData) -> core.CellResult:
    """What the summary reads of ``cell``."""
    return core.CellResult.of(cell.status, cell.epochs)


def cell_results(run: RunData, model: str, dataset: str) -> dict[str, list[core.CellResult]]:
    """The cells of the ``(model, dataset)`` group by scheme, schemes in study order."""
    out: dict[str, list[core.CellResult]] = {}
    for scheme in run.schemes():
        cells = run.cells_of(model, dataset, scheme, finished_only=False)
        if cells:
            out[scheme] = [cell_result(c) for c in cells]
    return out


def summarize(run: RunData, model: str, dataset: str, *, target: float = 0.8,
              alpha: float = 0.05) -> list[SchemeSummary]:
    """The summary rows of one ``(model, dataset)`` group (*model*: a group label of
    :meth:`RunData.groups`), in study scheme order."""
    first = next(iter(run.cells_of(model, dataset, finished_only=False)), None)
    return core.summarize_schemes(cell_results(run, model, dataset), threshold=target, level=LEVEL,
                                  alpha=alpha, dataset=dataset,
                                  model=first.model if first else model,
                                  setting=first.setting if first else "")
