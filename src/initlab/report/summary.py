"""Per-scheme summary of a study group: final accuracy and loss with confidence
intervals, best epoch, epochs to a target accuracy, divergences, and a test against the
best scheme.

The definitions are those of ``initlab summary`` (:mod:`initlab.study.summary`), so the
report and the terminal table agree. For scheme :math:`s` with seeds that finished
without diverging, :math:`x_1..x_n` (validation accuracies after each seed's last
recorded epoch):

* ``acc_mean +- acc_ci``: :math:`\\bar x \\pm t_{0.975,\\,n-1}\\, s_x/\\sqrt n`
  (:func:`initlab.stats.mean_ci`; undefined, NaN, for :math:`n = 1`); likewise the loss;
* ``best_epoch``: the epoch (``>= 1``) maximizing the seed-mean validation accuracy;
* ``epochs_to_target``: per finished seed (diverged ones included), the first epoch whose
  validation accuracy reaches ``target`` (default 0.8); the mean over the seeds that
  reached it, with how many did (``reached_target`` of ``n_finished``);
* ``p_vs_best``: Welch's two-sided t-test (:func:`initlab.stats.welch_t`) of the final
  accuracies of :math:`s` against those of the best scheme (highest mean); a scheme
  *differs significantly* when :math:`p < \\alpha` (default 0.05). NaN when either side has
  fewer than two seeds. No correction for multiple comparisons is applied; with
  :math:`k` schemes, a Bonferroni reading is :math:`p < \\alpha/(k-1)`.

Diverged seeds are excluded from the statistics and counted in ``diverged``; cells
that have not finished (interrupted study) are counted in ``unfinished``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initlab import stats
from initlab.report.types import CellData, RunData

__all__ = ["SchemeSummary", "final_metric", "mean_curve", "summarize"]


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


def _ci(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return math.nan, math.nan
    return stats.mean_ci(vals)


def mean_curve(cells: list[CellData], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, mean, lo, hi)`` of ``metric`` over ``cells``: the NaN-ignoring mean and
    the min/max band per epoch (epochs where no cell has a value are dropped)."""
    all_epochs = sorted({int(e) for c in cells for e in c.metrics["epoch"]})
    if not all_epochs:
        empty = np.zeros(0)
        return empty.astype(int), empty, empty, empty
    grid = np.full((len(cells), len(all_epochs)), np.nan)
    pos = {e: i for i, e in enumerate(all_epochs)}
    for r, c in enumerate(cells):
        for e, v in zip(c.metrics["epoch"], c.metrics[metric]):
            grid[r, pos[int(e)]] = v
    grid[~np.isfinite(grid)] = np.nan
    keep = ~np.all(np.isnan(grid), axis=0)
    grid = grid[:, keep]
    epochs = np.asarray(all_epochs)[keep]
    if grid.size == 0:
        return epochs, np.zeros(0), np.zeros(0), np.zeros(0)
    return epochs, np.nanmean(grid, axis=0), np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)


def final_metric(cell: CellData, name: str) -> float:
    """``name`` after the cell's last recorded training epoch (NaN if none)."""
    trained = cell.metrics["epoch"] >= 1
    if not np.any(trained):
        return math.nan
    i = int(np.flatnonzero(trained)[np.argmax(cell.metrics["epoch"][trained])])
    return float(cell.metrics[name][i])


def _first_reaching(cell: CellData, target: float) -> int | None:
    ep, acc = cell.metrics["epoch"], cell.metrics["val_acc"]
    hits = [int(e) for e, a in zip(ep, acc) if e >= 1 and math.isfinite(a) and a >= target]
    return min(hits) if hits else None


def _row(scheme: str, cells: list[CellData], target: float) -> SchemeSummary:
    done = [c for c in cells if c.status == "done"]
    finished = [c for c in cells if c.finished]
    accs = [final_metric(c, "val_acc") for c in done]
    losses = [final_metric(c, "val_loss") for c in done]
    acc_mean, acc_ci = _ci(accs)
    loss_mean, loss_ci = _ci(losses)
    ep, mean, _, _ = mean_curve(done, "val_acc")
    trained = ep >= 1
    best_epoch, best_acc = None, math.nan
    if np.any(trained):
        i = int(np.nanargmax(np.where(trained, mean, -np.inf)))
        best_epoch, best_acc = int(ep[i]), float(mean[i])
    reached = [r for r in (_first_reaching(c, target) for c in finished) if r is not None]
    return SchemeSummary(
        scheme=scheme,
        n_done=len(done),
        n_finished=len(finished),
        n_seeds=len(cells),
        diverged=sum(c.status == "diverged" for c in cells),
        unfinished=sum(not c.finished for c in cells),
        acc_mean=acc_mean,
        acc_ci=acc_ci,
        loss_mean=loss_mean,
        loss_ci=loss_ci,
        best_epoch=best_epoch,
        best_acc=best_acc,
        epochs_to_target=float(np.mean(reached)) if reached else None,
        reached_target=len(reached),
    )


def summarize(run: RunData, model: str, dataset: str, *, target: float = 0.8,
              alpha: float = 0.05) -> list[SchemeSummary]:
    """The summary rows of one ``(model, dataset)`` group, in study scheme order."""
    rows: list[SchemeSummary] = []
    finals: dict[str, list[float]] = {}
    for scheme in run.schemes():
        cells = run.cells_of(model, dataset, scheme, finished_only=False)
        if not cells:
            continue
        rows.append(_row(scheme, cells, target))
        finals[scheme] = [v for v in (final_metric(c, "val_acc") for c in cells if c.status == "done")
                          if math.isfinite(v)]
    scored = [r for r in rows if math.isfinite(r.acc_mean)]
    if not scored:
        return rows
    best = max(scored, key=lambda r: r.acc_mean)
    best.is_best = True
    for r in rows:
        if r is best or len(finals[r.scheme]) < 2 or len(finals[best.scheme]) < 2:
            continue
        _, _, p = stats.welch_t(finals[r.scheme], finals[best.scheme])
        r.p_vs_best = p
        r.significant = bool(math.isfinite(p) and p < alpha)
    return rows
