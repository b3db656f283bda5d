"""Per-scheme summary of a study group for the report: final accuracy and loss with
confidence intervals, best epoch, epochs to a target accuracy, divergences, and a test
against the best scheme.

A thin adapter: it turns the report's :class:`~initlab.report.types.CellData` into
:class:`initlab.study.summary.CellResult` records and calls
:func:`initlab.study.summary.summarize_schemes`, the one implementation of the summary
math (shared with ``initlab summary``; definitions and sources are given there). For
scheme :math:`s` with final validation accuracies :math:`x_1..x_n` of the seeds that
finished without diverging:

* ``acc_mean +- acc_ci``: :math:`\\bar x \\pm t_{0.975,\\,n-1}\\, s_x/\\sqrt n` (NaN
  half-width for :math:`n = 1`); likewise the loss;
* ``best_epoch``: the epoch (``>= 1``) maximizing the seed-mean validation accuracy;
* ``epochs_to_target``: mean first epoch reaching ``target`` over the finished seeds that
  did (``reached_target`` of ``n_finished``), ``None`` when none did;
* ``p_vs_best``: Welch's two-sided t-test against the best scheme; ``significant`` when
  :math:`p < \\alpha`.

Diverged seeds are excluded from the statistics and counted in ``diverged``; cells
that have not finished (interrupted study) are counted in ``unfinished``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initlab.report.types import CellData, RunData
from initlab.study import summary as core

__all__ = ["SchemeSummary", "cell_result", "cell_results", "final_metric", "mean_curve", "summarize"]

#: The confidence level of the report's intervals.
LEVEL = 0.95


@dataclass
class SchemeSummary:
    """One row of the summary table."""

    scheme: str
    n_done: int
    n_finished: int
    n_seeds: int
    diverged: int
    unfinished: int
    acc_mean: float
    acc_ci: float
    loss_mean: float
    loss_ci: float
    best_epoch: int | None
    best_acc: float
    epochs_to_target: float | None
    reached_target: int
    is_best: bool = False
    p_vs_best: float = math.nan
    significant: bool = False


def mean_curve(cells: list[CellData], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, mean, lo, hi)`` of ``metric`` over ``cells``: the NaN-ignoring mean and
    the min/max band per epoch (:func:`initlab.study.summary.mean_curve`)."""
    return core.mean_curve((c.metrics["epoch"], c.metrics[metric]) for c in cells)


def final_metric(cell: CellData, name: str) -> float:
    """``name`` after the cell's last recorded training epoch (NaN if none)."""
    return core.final_value(cell.metrics["epoch"], cell.metrics[name])


def cell_result(cell: CellData) -> core.CellResult:
    """What the summary reads of ``cell``."""
    m = cell.metrics
    return core.CellResult(status=cell.status, epochs=m["epoch"], val_acc=m["val_acc"], val_loss=m["val_loss"])


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
    """The summary rows of one ``(model, dataset)`` group, in study scheme order."""
    stats = core.summarize_schemes(cell_results(run, model, dataset), threshold=target, level=LEVEL,
                                   alpha=alpha)
    return [SchemeSummary(
        scheme=s.scheme, n_done=s.done, n_finished=s.finished, n_seeds=s.planned,
        diverged=s.diverged, unfinished=s.planned - s.finished, acc_mean=s.val_acc,
        acc_ci=s.val_acc_ci, loss_mean=s.val_loss, loss_ci=s.val_loss_ci, best_epoch=s.best_epoch,
        best_acc=s.best_acc, epochs_to_target=s.epochs_to if s.reached else None,
        reached_target=s.reached, is_best=s.is_best, p_vs_best=s.p_vs_best,
        significant=s.significant,
    ) for s in stats]
