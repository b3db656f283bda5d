"""Per-scheme summary of a study's results (the article's comparison, with error bars).

One row per (dataset, model, scheme), in study order. Over the row's seeds:

* ``val_acc``, ``val_loss``: validation accuracy (fraction) and loss after the last
  recorded epoch, as mean and half-width of the ``level`` t confidence interval
  (:func:`initlab.stats.mean_ci`; half-width NaN for a single seed). Means are over the
  cells that finished without diverging (``n``); a diverged model has no meaningful
  final metrics, it is counted in ``diverged`` instead. Non-finite values are left out.
* ``epochs_to``: the first epoch (1-based) whose validation accuracy reached
  ``threshold`` (default 0.80), averaged over the finished cells that reached it
  (``reached`` of ``finished``); NaN ("never") when none did.
* ``finished`` / ``planned``: cells done or diverged / cells in the study. A study with
  unfinished cells (pending, running, failed) is summarized from what finished and
  flagged ``partial``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from initlab.errors import InitlabError
from initlab.stats import mean_ci
from initlab.study.store import FINAL_STATUSES, Store

__all__ = ["Summary", "SummaryRow", "render_table", "summarize", "summary_json"]


@dataclass(frozen=True)
class SummaryRow:
    dataset: str
    model: str
    scheme: str
    planned: int
    finished: int
    n: int
    diverged: int
    val_acc: float
    val_acc_ci: float
    val_loss: float
    val_loss_ci: float
    epochs_to: float
    reached: int


@dataclass(frozen=True)
class Summary:
    study: str
    total: int
    finished: int
    statuses: dict[str, int]
    threshold: float
    level: float
    rows: tuple[SummaryRow, ...] = field(default_factory=tuple)

    @property
    def partial(self) -> bool:
        return self.finished < self.total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""
        return _json_safe({
            "study": self.study, "partial": self.partial, "finished": self.finished,
            "total": self.total, "statuses": self.statuses, "threshold": self.threshold,
            "level": self.level, "rows": [asdict(r) for r in self.rows],
        })


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _ci(values: Iterable[float], level: float) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return mean_ci(finite, level)


def summarize(store: Store, *, threshold: float = 0.8, level: float = 0.95) -> Summary:
    """Summarize the study in ``store`` (see the module docstring)."""
    if not (0.0 < threshold <= 1.0):
        raise InitlabError(f"accuracy threshold must be a fraction in (0, 1], got {threshold}")
    if not (0.0 < level < 1.0):
        raise InitlabError(f"confidence level must be in (0, 1), got {level}")
    rec = store.study_record()
    if rec is None:
        raise InitlabError(f"results store {str(store.path)!r} holds no study yet; run one first")
    cells = store.cells()
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for row in store.epochs():
        by_cell.setdefault(row["cell"], []).append(row)

    groups: dict[tuple[str, str, str], list[Any]] = {}
    for c in cells:
        groups.setdefault((c.dataset, c.model, c.scheme), []).append(c)

    rows = []
    for (dataset, model, scheme), members in groups.items():
        finished = [c for c in members if c.status in FINAL_STATUSES]
        ok = [c for c in finished if c.status == "done"]
        finals = []
        for c in ok:
            trained = [e for e in by_cell.get(c.key, []) if e["epoch"] >= 1]
            if trained:
                finals.append(max(trained, key=lambda e: e["epoch"]))
        acc, acc_ci = _ci((e["val_acc"] for e in finals), level)
        loss, loss_ci = _ci((e["val_loss"] for e in finals), level)
        hits = []
        for c in finished:
            for e in by_cell.get(c.key, []):
                if e["epoch"] >= 1 and math.isfinite(e["val_acc"]) and e["val_acc"] >= threshold:
                    hits.append(e["epoch"])
                    break
        rows.append(SummaryRow(
            dataset=dataset, model=model, scheme=scheme, planned=len(members),
            finished=len(finished), n=len(finals), diverged=len(finished) - len(ok),
            val_acc=acc, val_acc_ci=acc_ci, val_loss=loss, val_loss_ci=loss_ci,
            epochs_to=sum(hits) / len(hits) if hits else math.nan, reached=len(hits),
        ))
    statuses = store.status_counts()
    return Summary(study=rec.name, total=len(cells),
                   finished=sum(statuses[s] for s in FINAL_STATUSES), statuses=statuses,
                   threshold=threshold, level=level, rows=tuple(rows))


def _pm(mean: float, half: float, scale: float, digits: int) -> str:
    if not math.isfinite(mean):
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return f"{text} +/- {half * scale:.{digits}f}" if math.isfinite(half) else f"{text} +/- n/a"


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
    header = (["dataset"] if multi_data else []) + (["model"] if multi_model else []) + [
        "scheme", "seeds", f"val acc % ({lvl} CI)", f"val loss ({lvl} CI)", f"epochs to {pct}",
        "diverged"]
    body = []
    for r in summary.rows:
        if r.reached:
            reach = f"{r.epochs_to:.1f} ({r.reached}/{r.finished})"
        else:
            reach = f"never (0/{r.finished})" if r.finished else "-"
        body.append((([r.dataset] if multi_data else []) + ([r.model] if multi_model else []) + [
            r.scheme, f"{r.finished}/{r.planned}", _pm(r.val_acc, r.val_acc_ci, 100.0, 2),
            _pm(r.val_loss, r.val_loss_ci, 1.0, 4), reach, str(r.diverged)]))
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
