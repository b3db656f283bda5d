"""Per-scheme summary of a study's results (the article's comparison, with error bars).

This module is the one implementation of the per-scheme summary. Its math works on plain
per-model records (:class:`CellResult`: a cell's status and validation curve), so every
reader of results goes through it:

* :func:`scheme_stats` / :func:`summarize_schemes` -- the math (no I/O);
* :func:`summarize` -- adapter over the SQLite store (``initlab summary RUN_DIR`` and the
  end-of-run table of ``initlab run``), with :func:`render_table` / :func:`summary_json`;
* :func:`initlab.report.summary.summarize` -- adapter over the report's ``RunData``.

Definitions, for one scheme (one comparison group: same dataset, model and train
setting, :func:`initlab.study.axes.setting_label`; the grid's other axes give groups of
their own). Let
:math:`x_1..x_n` be the validation accuracies after the last recorded training epoch
(the largest ``epoch >= 1``; epoch 0 is the state at init) of the seeds that finished
without diverging (status ``done``), non-finite values left out:

* ``val_acc +- val_acc_ci``: :math:`\\bar x \\pm t_{(1+\\ell)/2,\\,n-1}\\, s_x/\\sqrt n` with
  :math:`\\ell` = ``level`` (:func:`initlab.stats.mean_ci`; Student 1908); the half-width
  is NaN for :math:`n = 1` and both are NaN for :math:`n = 0`. Likewise ``val_loss``.
  A diverged model has no meaningful final metrics: it is counted in ``diverged``.
* ``epochs_to``: per finished seed (done or diverged), the first epoch ``>= 1`` whose
  validation accuracy is finite and :math:`\\ge` ``threshold`` (default 0.80); the mean
  over the seeds that reached it (``reached`` of ``finished``); NaN ("never") if none did.
* ``best_epoch``: the epoch ``>= 1`` maximizing the seed-mean validation accuracy of the
  ``done`` seeds (:func:`mean_curve`), and that mean, ``best_acc``.
* ``p_vs_best`` (:func:`summarize_schemes` only): Welch's two-sided t-test
  (:func:`initlab.stats.welch_t`; Welch 1947) of the final accuracies of the scheme against
  those of the best scheme (highest ``val_acc``); ``significant`` when :math:`p < \\alpha`.
  NaN when either side has fewer than two values. No correction for multiple comparisons;
  with :math:`k` schemes a Bonferroni reading is :math:`p < \\alpha/(k-1)`.
* ``planned`` / ``finished`` / ``done`` / ``n``: cells in the study / done or diverged /
  done / done with at least one trained epoch. A study with unfinished cells (pending,
  running, failed) is summarized from what finished and flagged ``partial``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab.errors import InitlabError
from initlab.records import CellStatus, EpochRecord, SchemeSummary
from initlab.stats import mean_ci, welch_t
from initlab.study.axes import setting_label, study_axes
from initlab.study.store import Store

__all__ = [
    "CellResult",
    "Summary",
    "cell_results",
    "final_value",
    "format_pm",
    "first_epoch_reaching",
    "mean_curve",
    "render_table",
    "scheme_stats",
    "summarize",
    "summarize_schemes",
    "summary_json",
]


# -- inputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellResult:
    """What the summary needs of one trained model (one cell): its status and validation
    curve. ``epochs[i]`` pairs with ``val_acc[i]`` and ``val_loss[i]``; epoch 0 is the
    state at init; accuracies are fractions; NaN where a value is missing. Any sequence
    (list, NumPy array) is accepted and stored as a tuple of ``int`` / ``float``."""

    status: CellStatus
    epochs: Sequence[int] = ()
    val_acc: Sequence[float] = ()
    val_loss: Sequence[float] = ()

    @classmethod
    def of(cls, status: CellStatus | str, records: Sequence[EpochRecord]) -> CellResult:
        """The summary's view of a cell: its status and its :class:`EpochRecord` s."""
        return cls(CellStatus.parse(status), [r.epoch for r in records], [r.val_acc for r in records],
                   [r.val_loss for r in records])

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CellStatus.parse(self.status))
        epochs = tuple(int(e) for e in self.epochs)
        for name in ("val_acc", "val_loss"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != len(epochs):
                raise InitlabError(f"cell result: {name} has {len(values)} values for {len(epochs)} "
                                   f"epochs; give one value per epoch (NaN where missing)")
            object.__setattr__(self, name, values)
        object.__setattr__(self, "epochs", epochs)

    @property
    def finished(self) -> bool:
        """Whether the cell's results are final (done or diverged)."""
        return self.status.final

    @property
    def trained(self) -> bool:
        """Whether at least one training epoch (``epoch >= 1``) was recorded."""
        return any(e >= 1 for e in self.epochs)


def final_value(epochs: Iterable[int], values: Iterable[float]) -> float:
    """The value at the last recorded training epoch (the largest ``epoch >= 1``; the
    first such row if repeated), or NaN if no training epoch was recorded."""
    last, value = 0, math.nan
    for e, v in zip(epochs, values):
        if e >= 1 and e > last:
            last, value = e, float(v)
    return value


def first_epoch_reaching(epochs: Iterable[int], acc: Iterable[float], threshold: float) -> int | None:
    """The first training epoch (``>= 1``) whose accuracy is finite and ``>= threshold``,
    or ``None`` if there is none."""
    hits = [int(e) for e, a in zip(epochs, acc) if e >= 1 and math.isfinite(a) and a >= threshold]
    return min(hits) if hits else None


def mean_curve(curves: Iterable[tuple[Sequence[int], Sequence[float]]]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, mean, lo, hi)`` over seeds of ``(epochs, values)`` curves: per epoch the
    NaN-ignoring mean :math:`\\frac{1}{|S_e|}\\sum_{i \\in S_e} y_{i,e}` over the curves
    :math:`S_e` with a finite value there, and the min/max band. Non-finite values count
    as missing; epochs where no curve has a value are dropped."""
    pairs = [(list(ep), list(v)) for ep, v in curves]
    all_epochs = sorted({int(e) for ep, _ in pairs for e in ep})
    if not all_epochs:
        empty = np.zeros(0)
        return empty.astype(int), empty, empty, empty
    grid = np.full((len(pairs), len(all_epochs)), np.nan)
    pos = {e: i for i, e in enumerate(all_epochs)}
    for r, (ep, values) in enumerate(pairs):
        for e, v in zip(ep, values):
            grid[r, pos[int(e)]] = v
    grid[~np.isfinite(grid)] = np.nan
    keep = ~np.all(np.isnan(grid), axis=0)
    grid = grid[:, keep]
    epochs = np.asarray(all_epochs)[keep]
    if grid.size == 0:
        return epochs, np.zeros(0), np.zeros(0), np.zeros(0)
    return epochs, np.nanmean(grid, axis=0), np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)


# -- the math ----------------------------------------------------------------------------


def _check_options(threshold: float, level: float, alpha: float = 0.05) -> None:
    if not (0.0 < threshold <= 1.0):
        raise InitlabError(f"accuracy threshold must be a fraction in (0, 1], got {threshold}")
    if not (0.0 < level < 1.0):
        raise InitlabError(f"confidence level must be in (0, 1), got {level}")
    if not (0.0 < alpha < 1.0):
        raise InitlabError(f"significance level must be in (0, 1), got {alpha}")


def _ci(values: Iterable[float], level: float) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return mean_ci(finite, level)


def scheme_stats(scheme: str, cells: Sequence[CellResult], *, threshold: float = 0.8,
                 level: float = 0.95, dataset: str = "", model: str = "",
                 setting: str = "") -> SchemeSummary:
    """The summary row of one scheme from its cells (one per seed), without the comparison
    with the other schemes (see :func:`summarize_schemes`)."""
    _check_options(threshold, level)
    finished = [c for c in cells if c.finished]
    done = [c for c in cells if c.status == "done"]
    accs = [final_value(c.epochs, c.val_acc) for c in done]
    acc, acc_ci = _ci(accs, level)
    loss, loss_ci = _ci((final_value(c.epochs, c.val_loss) for c in done), level)
    hits = [h for h in (first_epoch_reaching(c.epochs, c.val_acc, threshold) for c in finished)
            if h is not None]
    ep, mean, _, _ = mean_curve((c.epochs, c.val_acc) for c in done)
    best_epoch, best_acc = None, math.nan
    if np.any(ep >= 1):
        i = int(np.nanargmax(np.where(ep >= 1, mean, -np.inf)))
        best_epoch, best_acc = int(ep[i]), float(mean[i])
    return SchemeSummary(
        dataset=dataset, model=model, scheme=scheme, planned=len(cells), finished=len(finished), done=len(done),
        n=sum(c.trained for c in done), diverged=sum(c.status == "diverged" for c in cells),
        val_acc=acc, val_acc_ci=acc_ci, val_loss=loss, val_loss_ci=loss_ci,
        epochs_to=sum(hits) / len(hits) if hits else math.nan, reached=len(hits),
        best_epoch=best_epoch, best_acc=best_acc,
        final_accs=tuple(a for a in accs if math.isfinite(a)), setting=setting,
    )


def summarize_schemes(results: Mapping[str, Sequence[CellResult]], *, threshold: float = 0.8,
                      level: float = 0.95, alpha: float = 0.05, dataset: str = "",
                      model: str = "", setting: str = "") -> list[SchemeSummary]:
    """The summary of one comparison group (same dataset, model and train setting): :func:`scheme_stats`
    per scheme, in the mapping's order, then each scheme against the best one (highest
    ``val_acc``; the first on ties) by Welch's t-test at level ``alpha``."""
    _check_options(threshold, level, alpha)
    rows = [scheme_stats(s, cells, threshold=threshold, level=level, dataset=dataset, model=model,
                         setting=setting) for s, cells in results.items()]
    scored = [r for r in rows if math.isfinite(r.val_acc)]
    if not scored:
        return rows
    best = max(scored, key=lambda r: r.val_acc)
    out = []
    for r in rows:
        if r is best:
            r = dataclasses.replace(r, is_best=True)
        elif len(r.final_accs) >= 2 and len(best.final_accs) >= 2:
            _, _, p = welch_t(r.final_accs, best.final_accs)
            r = dataclasses.replace(r, p_vs_best=p, significant=bool(math.isfinite(p) and p < alpha))
        out.append(r)
    return out


# -- the store adapter -------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    study: str
    total: int
    finished: int
    statuses: dict[CellStatus, int]
    threshold: float
    level: float
    rows: tuple[SchemeSummary, ...] = field(default_factory=tuple)

    @property
    def partial(self) -> bool:
        return self.finished < self.total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""
        return _json_safe({
            "study": self.study, "partial": self.partial, "finished": self.finished,
            "total": self.total, "statuses": {str(k): v for k, v in self.statuses.items()},
            "threshold": self.threshold, "level": self.level, "rows": [r.to_dict() for r in self.rows],
        })


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def cell_results(store: Store) -> dict[tuple[str, str, str, str], list[CellResult]]:
    """The store's cells as :class:`CellResult` lists keyed ``(dataset, model, setting,
    scheme)`` (``setting``: :func:`~initlab.study.axes.setting_label`), in study order
    (first appearance; cells in study order within a key)."""
    curves = store.epoch_records()
    records = store.cells()
    axes = study_axes(r.cell for r in records)
    out: dict[tuple[str, str, str, str], list[CellResult]] = {}
    for c in records:
        out.setdefault((c.dataset, c.model, setting_label(c.cell, axes), c.scheme), []).append(
            CellResult.of(c.status, curves.get(c.key, [])))
    return out


def summarize(store: Store, *, threshold: float = 0.8, level: float = 0.95,
              alpha: float = 0.05) -> Summary:
    """Summarize the study in ``store``: one :class:`~initlab.records.SchemeSummary` row per
    ``(dataset, model, train setting, scheme)``, in study order, each scheme compared with
    the best of its ``(dataset, model, setting)`` group (:func:`summarize_schemes`; see
    the module docstring)."""
    _check_options(threshold, level, alpha)
    rec = store.study_record()
    if rec is None:
        raise InitlabError(f"results store {str(store.path)!r} holds no study yet; run one first")
    groups = cell_results(store)
    by_group: dict[tuple[str, str, str], dict[str, list[CellResult]]] = {}
    for (dataset, model, setting, scheme), cells in groups.items():
        by_group.setdefault((dataset, model, setting), {})[scheme] = cells
    rows: list[SchemeSummary] = []
    for (dataset, model, setting), results in by_group.items():
        rows += summarize_schemes(results, threshold=threshold, level=level, alpha=alpha,
                                  dataset=dataset, model=model, setting=setting)
    order = {k: i for i, k in enumerate(groups)}
    rows.sort(key=lambda r: order[(r.dataset, r.model, r.setting, r.scheme)])
    statuses = store.status_counts()
    return Summary(study=rec.name, total=sum(len(c) for c in groups.values()),
                   finished=sum(statuses[s] for s in CellStatus.FINAL), statuses=statuses,
                   threshold=threshold, level=level, rows=tuple(rows))


# -- text outputs ------------------------------------------------------------------------


def format_pm(mean: float, half: float, scale: float, digits: int, *, pm: str = "+/-",
              missing: str = "-") -> str:
    """``mean +/- half`` (both times *scale*, *digits* decimals), ``mean +/- n/a`` for a
    non-finite half-width, *missing* for a non-finite mean; the report passes ``±``/``–``."""
    if not math.isfinite(mean):
        return missing
    text = f"{mean * scale:.{digits}f}"
    return f"{text} {pm} {half * scale:.{digits}f}" if math.isfinite(half) else f"{text} {pm} n/a"


def render_table(summary: Summary) -> str:
    """Plain-ASCII aligned table of a :class:`Summary`, with a header line."""
    pct = f"{summary.threshold * 100:g}%"
    lvl = f"{summary.level * 100:g}%"
    if summary.partial:
        s = summary.statuses
        head = (f"study {summary.study!r}: PARTIAL, {summary.finished}/{summary.total} cells "
                f"finished ({s['pending']} pending, {s['running']} running, {s['failed']} failed)")
    else:
        head = f"study {summary.study!r}: {summary.total} cells, all finished"
    multi_data = len({r.dataset for r in summary.rows}) > 1
    multi_model = len({r.model for r in summary.rows}) > 1
    multi_setting = len({r.setting for r in summary.rows}) > 1
    header = (["dataset"] if multi_data else []) + (["model"] if multi_model else []) + (
        ["train"] if multi_setting else []) + [
        "scheme", "seeds", f"val acc % ({lvl} CI)", f"val loss ({lvl} CI)", f"epochs to {pct}",
        "diverged"]
    body = []
    for r in summary.rows:
        if r.reached:
            reach = f"{r.epochs_to:.1f} ({r.reached}/{r.finished})"
        else:
            reach = f"never (0/{r.finished})" if r.finished else "-"
        body.append((([r.dataset] if multi_data else []) + ([r.model] if multi_model else [])
                     + ([r.setting] if multi_setting else []) + [
            r.scheme, f"{r.finished}/{r.planned}", format_pm(r.val_acc, r.val_acc_ci, 100.0, 2),
            format_pm(r.val_loss, r.val_loss_ci, 1.0, 4), reach, str(r.diverged)]))
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    n_text = len(header) - 5  # text columns left-aligned, the five numeric ones right-aligned

    def fmt(row: list[str]) -> str:
        cells = [v.ljust(w) if i < n_text else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    lines = [head, "", fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in body]
    notes = []
    if any(r.diverged for r in summary.rows):
        notes.append("val acc and loss are means over the seeds that did not diverge")
    if any(r.n == 1 for r in summary.rows):
        notes.append("n/a: a confidence interval needs at least two seeds")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def summary_json(summary: Summary) -> str:
    """:meth:`Summary.to_dict` as indented JSON (NaN as ``null``)."""
    return json.dumps(summary.to_dict(), indent=2)
