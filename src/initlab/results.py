"""A study's results in Python: tidy pandas frames, figures, the report and exports.

:func:`initlab.run` returns a :class:`Results` and :func:`initlab.load` opens one from a run
directory (read-only: a ``Results`` never changes the store, so it can watch a study that is
still running; :meth:`Results.refresh` reads it again).

>>> res = initlab.load("runs/smoke")                        # doctest: +SKIP
>>> res.summary()[["scheme", "val_acc", "val_acc_ci"]]      # doctest: +SKIP
>>> res.epochs().pivot_table("val_acc", "epoch", "scheme")   # doctest: +SKIP

Frames
------
Every frame is tidy (one row per observation, one column per variable) and its column
names are the field names of the records the study wrote (:mod:`initlab.records`,
:class:`~initlab.check.CheckRow`, :class:`~initlab.apply.LayerRecord`,
:class:`~initlab.probe.result.LayerProbe`), so what the documentation says of a record
field holds for the column. The per-cell frames start with the *identifying columns*
:data:`ID_COLUMNS`:

``cell`` (the cell's stable key), ``dataset``, ``model`` (its label), ``setting`` (its
values on the study's train axes, e.g. ``"lr=0.01"``; ``""`` without train axes),
``scheme`` (canonical spec), ``seed``.

:meth:`~Results.summary`
    one row per scheme x grid axis values (``dataset``, ``model``, ``setting``): the fields
    of :class:`~initlab.records.SchemeSummary` (``planned``, ``finished``, ``done``, ``n``,
    ``diverged``, ``val_acc``, ``val_acc_ci``, ``val_loss``, ``val_loss_ci``,
    ``epochs_to``, ``reached``, ``best_epoch``, ``best_acc``, ``final_accs``, ``is_best``,
    ``p_vs_best``, ``significant``, ``setting``), the numbers ``initlab summary --json``
    prints, in its order; then one column per train or model axis of the study, named by
    the setting (``lr``, ``depth``), holding that row's value.
:meth:`~Results.cells`
    one row per cell: the ID columns, ``status``, ``epochs_planned``, ``last_epoch`` (-1:
    nothing recorded), ``wall_s``, ``attempts``, ``error``, ``diverged_epoch`` and
    ``diverged_step`` (the :class:`~initlab.records.Divergence`'s ``epoch``/``step``; NaN:
    did not diverge), then one column per axis as in ``summary()``.
:meth:`~Results.epochs`
    one row per cell x epoch (epoch 0 = at init; its train metrics are NaN): the
    :class:`~initlab.records.EpochRecord` fields ``epoch``, ``step``, ``train_loss``,
    ``train_acc``, ``val_loss``, ``val_acc`` (accuracies are fractions), ``wall_s``,
    ``batch_models``, ``diverged``.
:meth:`~Results.steps`
    one row per cell x logging window: the :class:`~initlab.records.StepRecord` fields
    ``epoch``, ``step``, ``steps``, ``samples``, ``loss``, ``accuracy``.
:meth:`~Results.layers`
    one row per cell x epoch x tensor: ``epoch``, ``param`` (``weight``, ``bias``, or
    ``activation`` for a layer's activations), then the :class:`~initlab.records.ParamStats`
    fields ``layer``, ``name``, ``numel``, ``mean``, ``std``, ``min``, ``max``, ``frac_zero``,
    ``nonfinite`` and its quantiles as ``q01`` ... ``q99`` (:data:`~initlab.records.QUANTILE_LEVELS`),
    and the :class:`~initlab.records.ActivationStats` fields ``pre_mean``, ``pre_std``,
    ``post_mean``, ``post_std``, ``post_frac_zero``, ``dead_units`` (NaN on the rows of the
    other kind). Training records no gradient statistics; the gradients at init are in
    :meth:`~Results.probes` (``grad_norm``, ``weight_grad_norm``).
:meth:`~Results.histograms`
    one row per cell x epoch x tensor x bin: ``epoch``, ``layer``, ``param``, ``name``,
    ``bin`` (0-based), ``left``, ``right`` (the bin's edges from ``hist_edges``), ``count``
    (``hist_counts``).
:meth:`~Results.probes`
    one row per model x dataset x scheme x layer of the probe at init: ``dataset``,
    ``model``, ``scheme``, ``probe_seed`` (the group's smallest seed, whose weights were
    probed), then the :class:`~initlab.probe.result.LayerProbe` fields (``index``, ``name``,
    ``kind``, ``shape``, ``activation``, ``units``, ``pre_mean``, ``pre_std``, ``post_mean``,
    ``post_std``, ``zero_fraction``, ``dead_fraction``, ``saturated_fraction``,
    ``var_ratio``, ``grad_norm``, ``weight_grad_norm``, ``duplicate_units``,
    ``effective_rank``, ``predicted_var``), and the scheme's ``signal_rate``,
    ``gradient_rate`` and ``verdicts`` (its verdict kinds joined by ``,``; ``""``: none).
:meth:`~Results.init_checks`
    one row per cell x weight of :func:`initlab.check`'s verdict at init: the
    :class:`~initlab.check.CheckRow` fields ``name``, ``shape``, ``family``,
    ``expected_mean``, ``realized_mean``, ``expected_std``, ``realized_std``, ``z_mean``,
    ``z_var``, ``ks_d``, ``ks_p``, ``conforms``, ``reason`` (no rows for a cell whose check
    was not stored).
:meth:`~Results.inits`
    one row per cell x weight of what :func:`initlab.apply` drew: the
    :class:`~initlab.apply.LayerRecord` fields ``name``, ``kind``, ``shape``, ``blocks``,
    ``fan_in``, ``fan_out``, ``family``, ``expected_mean``, ``expected_std``,
    ``realized_mean``, ``realized_std``, ``bias``, ``role``.

The frames need pandas (``pip install 'initlab[notebook]'``); a missing pandas is one line
naming that command.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError, UnknownNameError, suggest

if TYPE_CHECKING:
    from initlab.report.exporting import Exported
    from initlab.report.types import RunData
    from initlab.study.summary import Summary

__all__ = ["ID_COLUMNS", "Results"]

#: The identifying columns every per-cell frame starts with.
ID_COLUMNS: tuple[str, ...] = ("cell", "dataset", "model", "setting", "scheme", "seed")

_EPOCH_COLUMNS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "wall_s",
                  "batch_models", "diverged")
_STEP_COLUMNS = ("epoch", "step", "steps", "samples", "loss", "accuracy")
_PARAM_COLUMNS = ("layer", "name", "numel", "mean", "std", "min", "max", "frac_zero", "nonfinite")
_ACT_COLUMNS = ("pre_mean", "pre_std", "post_mean", "post_std", "post_frac_zero", "dead_units")
_HIST_COLUMNS = ("epoch", "layer", "param", "name", "bin", "left", "right", "count")
_CELL_COLUMNS = ("status", "epochs_planned", "last_epoch", "wall_s", "attempts", "error",
                 "diverged_epoch", "diverged_step")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise InitlabError("the results' tables need pandas; install it with "
                           "pip install 'initlab[notebook]'") from None
    return pandas


def _q(level: float) -> str:
    return f"q{round(level * 100):02d}"


class Results:
    """The results of one study, read from its run directory (see the module docstring).

    Made by :func:`initlab.run` and :func:`initlab.load`; ``run`` is what the run that made
    it did (:class:`~initlab.study.executor.RunResult`; ``None`` for a loaded one).
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, run: Any = None) -> None:
        from initlab.report.rundata import check_run_dir

        self.run_dir = check_run_dir(run_dir)
        self.run = run
        self.data  # noqa: B018 - read now: a directory that is not a run fails here, in one line

    # -- reading -----------------------------------------------------------------------

    @cached_property
    def data(self) -> RunData:
        """Everything the store holds, as the report reads it (:func:`~initlab.report.rundata.load_run`)."""
        from initlab.report.rundata import load_run

        return load_run(self.run_dir)

    def refresh(self) -> Results:
        """Read the store again (a study still running has written more); returns ``self``."""
        self.__dict__.pop("data", None)
        self.__dict__.pop("_axes", None)
        self.data  # noqa: B018
        return self

    @property
    def name(self) -> str:
        """The study's name."""
        return self.data.name

    @property
    def partial(self) -> bool:
        """Whether some cells are not finished (done or diverged)."""
        return bool(self.data.partial)

    @property
    def status_counts(self) -> dict[str, int]:
        """Cells per status (``done``, ``diverged``, ``running``, ``failed``, ``pending``)."""
        return {str(k): v for k, v in self.data.status_counts().items()}

    @cached_property
    def _axes(self) -> list[Any]:
        """The study's train and model axes (:func:`~initlab.study.axes.study_axes`)."""
        from initlab.study.axes import study_axes
        from initlab.study.cell import Cell

        cells = [Cell.from_dict(c.config) for c in self.data.cells]
        axes = [a for a in study_axes(cells) if a.name.startswith(("train.", "model."))]
        return [(a, c) for a in axes for c in [cells]]

    def _axis_columns(self) -> list[tuple[str, dict[str, Any]]]:
        """``(column, {cell key: value})`` per train/model axis."""
        out = []
        taken = set(ID_COLUMNS) | set(_CELL_COLUMNS)
        for axis, cells in self._axes:
            column = axis.label if axis.label not in taken else axis.name
            taken.add(column)
            out.append((column, {c.key: axis.value_of(c) for c in cells}))
        return out

    def _ids(self, c: Any) -> dict[str, Any]:
        return {"cell": c.key, "dataset": c.dataset, "model": c.model, "setting": c.setting,
                "scheme": c.scheme, "seed": c.seed}

    def _frame(self, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Any:
        return _pandas().DataFrame(list(rows), columns=list(columns))

    # -- frames ------------------------------------------------------------------------

    def summary_table(self, *, threshold: float = 0.8, level: float = 0.95, alpha: float = 0.05) -> Summary:
        """The :class:`~initlab.study.summary.Summary` ``initlab summary`` prints (read-only)."""
        from initlab.study.store import Store
        from initlab.study.summary import summarize

        with Store.open(self.run_dir, readonly=True) as store:
            return summarize(store, threshold=threshold, level=level, alpha=alpha)

    def summary(self, *, threshold: float = 0.8, level: float = 0.95, alpha: float = 0.05) -> Any:
        """One row per scheme x grid axis values: the numbers of ``initlab summary --json``
        (``threshold``: the accuracy of ``epochs_to``; ``level``: of the intervals; ``alpha``:
        of the comparison with the best scheme). Columns: module docstring."""
        from initlab.records import SchemeSummary

        summary = self.summary_table(threshold=threshold, level=level, alpha=alpha)
        fields = list(SchemeSummary.__dataclass_fields__)
        rows = [r.to_dict() for r in summary.rows]
        frame = self._frame(rows, fields)
        # one value per axis for each row: the value its cells share
        by_group: dict[tuple[str, str, str, str], list[str]] = {}
        for c in self.data.cells:
            by_group.setdefault((c.dataset, c.model, c.setting, c.scheme), []).append(c.key)
        for column, values in self._axis_columns():
            frame[column] = [values[by_group[(r["dataset"], r["model"], r["setting"], r["scheme"])][0]]
                             for r in rows]
        return frame

    def cells(self) -> Any:
        """One row per cell: its identity, status, epochs and divergence (module docstring)."""
        from initlab.study.store import Store

        with Store.open(self.run_dir, readonly=True) as store:
            records = {r.key: r for r in store.cells()}
        axes = self._axis_columns()
        rows = []
        for c in self.data.cells:
            rec = records.get(c.key)
            div = c.divergence
            rows.append({**self._ids(c), "status": str(c.status), "epochs_planned": c.epochs_planned,
                         "last_epoch": c.last_epoch, "wall_s": c.wall_s,
                         "attempts": rec.attempts if rec is not None else 0,
                         "error": (rec.error or "") if rec is not None else "",
                         "diverged_epoch": div.epoch if div is not None else math.nan,
                         "diverged_step": div.step if div is not None else math.nan,
                         **{column: values[c.key] for column, values in axes}})
        return self._frame(rows, [*ID_COLUMNS, *_CELL_COLUMNS, *(column for column, _ in axes)])

    def epochs(self) -> Any:
        """One row per cell x epoch: the :class:`~initlab.records.EpochRecord` metrics."""
        rows = ({**self._ids(c), **{k: getattr(r, k) for k in _EPOCH_COLUMNS}}
                for c in self.data.cells for r in c.epochs)
        return self._frame(rows, [*ID_COLUMNS, *_EPOCH_COLUMNS])

    def steps(self) -> Any:
        """One row per cell x logging window: the :class:`~initlab.records.StepRecord` fields."""
        rows = ({**self._ids(c), **{k: getattr(r, k) for k in _STEP_COLUMNS}}
                for c in self.data.cells for r in c.steps)
        return self._frame(rows, [*ID_COLUMNS, *_STEP_COLUMNS])

    def layers(self, kind: str | None = None) -> Any:
        """One row per cell x epoch x tensor: weight and bias statistics
        (:class:`~initlab.records.ParamStats`) and activation statistics
        (:class:`~initlab.records.ActivationStats`); ``kind`` ``"param"`` or
        ``"activation"`` keeps one of them."""
        if kind not in (None, "param", "activation"):
            raise InitlabError(f"unknown layers kind {kind!r}; use 'param', 'activation' or None (both)")
        levels = tuple(self.data.cells[0].quantile_levels) if self.data.cells else ()
        qcols = [_q(q) for q in levels]
        rows = []
        for c in self.data.cells:
            for r in c.epochs:
                if kind in (None, "param"):
                    for p in r.params:
                        rows.append({**self._ids(c), "epoch": r.epoch, "param": p.param,
                                     **{k: getattr(p, k) for k in _PARAM_COLUMNS},
                                     **dict(zip(qcols, p.quantiles))})
                if kind in (None, "activation"):
                    for a in r.activations:
                        rows.append({**self._ids(c), "epoch": r.epoch, "param": "activation",
                                     "layer": a.layer, "name": a.name or f"layer{a.layer}",
                                     **{k: getattr(a, k) for k in _ACT_COLUMNS}})
        columns = [*ID_COLUMNS, "epoch", "param", *_PARAM_COLUMNS, *qcols, *_ACT_COLUMNS]
        frame = self._frame(rows, columns)
        return frame.sort_values(["cell", "epoch", "layer", "param"], kind="stable", ignore_index=True) \
            if len(frame) else frame

    def histograms(self, layer: int | None = None, param: str = "weight") -> Any:
        """One row per cell x epoch x tensor x bin of the stored histograms, of ``layer``
        (1-based; ``None``: every layer) and ``param`` (``weight``/``bias``; ``None``: both)."""
        rows = []
        for c in self.data.cells:
            for r in c.epochs:
                for p in r.params:
                    if (layer is not None and p.layer != layer) or (param is not None and p.param != param):
                        continue
                    edges = p.hist_edges
                    for i, count in enumerate(p.hist_counts):
                        rows.append({**self._ids(c), "epoch": r.epoch, "layer": p.layer, "param": p.param,
                                     "name": p.name, "bin": i, "left": edges[i], "right": edges[i + 1],
                                     "count": count})
        if layer is not None and not rows and self.data.cells:
            have = sorted({p.layer for c in self.data.cells for r in c.epochs for p in r.params})
            if have and layer not in have:
                raise InitlabError(f"no layer {layer} in this study's histograms; layers are "
                                   f"{', '.join(map(str, have))}")
        return self._frame(rows, [*ID_COLUMNS, *_HIST_COLUMNS])

    def probes(self) -> Any:
        """One row per model x dataset x scheme x layer of the probe at init (module docstring)."""
        from initlab.probe.result import LayerProbe

        fields = list(LayerProbe.__dataclass_fields__)
        rows = []
        for (model, dataset), result in self.data.probes.items():
            for s in result.schemes:
                verdicts = ",".join(v.kind for v in s.verdicts)
                for lp in s.layers:
                    rows.append({"dataset": dataset, "model": model, "scheme": s.scheme,
                                 "probe_seed": result.seed, **{k: getattr(lp, k) for k in fields},
                                 "signal_rate": s.signal_rate, "gradient_rate": s.gradient_rate,
                                 "verdicts": verdicts})
        return self._frame(rows, ["dataset", "model", "scheme", "probe_seed", *fields, "signal_rate",
                                  "gradient_rate", "verdicts"])

    def probe(self, model: str | None = None, dataset: str | None = None) -> Any:
        """The stored :class:`~initlab.probe.result.ProbeResult` of a model (default: the
        study's first), with its notebook display."""
        probes = self.data.probes
        if not probes:
            errors = "; ".join(self.data.probe_errors.values())
            raise InitlabError("this study recorded no probe" + (f" ({errors})" if errors else
                               " (run with probe=True)"))
        for (m, d), result in probes.items():
            if (model is None or m == model) and (dataset is None or d == dataset):
                return result
        names = sorted({m for m, _ in probes})
        raise UnknownNameError(f"no probe of model {model!r}{suggest(str(model), names)}; "
                               f"probed: {', '.join(names)}")

    def init_checks(self) -> Any:
        """One row per cell x weight: :func:`initlab.check`'s verdict at init (CheckRow fields)."""
        from initlab.check import CheckRow

        fields = list(CheckRow.__dataclass_fields__)
        rows = ({**self._ids(c), **{k: getattr(r, k) for k in fields}}
                for c in self.data.cells if c.init is not None and c.init.check is not None
                for r in c.init.check.layers)
        return self._frame(rows, [*ID_COLUMNS, *fields])

    def inits(self) -> Any:
        """One row per cell x weight: what :func:`initlab.apply` drew (LayerRecord fields)."""
        from initlab.apply import LayerRecord

        fields = list(LayerRecord.__dataclass_fields__)
        rows = ({**self._ids(c), **{k: getattr(r, k) for k in fields}}
                for c in self.data.cells if c.init is not None for r in c.init.report.layers)
        return self._frame(rows, [*ID_COLUMNS, *fields])

    # -- figures -----------------------------------------------------------------------

    def plot_curves(self, metric: str = "val_acc", *, ax: Any = None) -> Any:
        """A matplotlib figure of ``metric`` (an :class:`~initlab.records.EpochRecord` field:
        ``val_acc``, ``val_loss``, ``train_acc``, ``train_loss``) by epoch: the mean over
        seeds per scheme (one line per scheme and grid group), the seeds' range shaded."""
        import matplotlib.pyplot as plt

        metrics = ("train_loss", "train_acc", "val_loss", "val_acc")
        if metric not in metrics:
            raise UnknownNameError(f"unknown metric {metric!r}{suggest(metric, list(metrics))}; "
                                   f"use one of {', '.join(metrics)}")
        frame = self.epochs()
        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.0))
        else:
            fig = ax.figure
        multi = frame[["dataset", "model", "setting"]].drop_duplicates().shape[0] > 1
        for keys, part in frame.groupby(["dataset", "model", "setting", "scheme"], sort=False):
            by_epoch = part.groupby("epoch")[metric]
            mean, lo, hi = by_epoch.mean(), by_epoch.min(), by_epoch.max()
            label = keys[3] if not multi else " | ".join(str(k) for k in keys if k != "")
            line, = ax.plot(mean.index, mean.values, marker="o", markersize=3, label=label)
            ax.fill_between(mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("epoch (0 = at init)")
        ax.set_ylabel(metric)
        ax.set_title(f"{self.name}: {metric}")
        ax.grid(alpha=0.3)
        if len(frame):
            ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def plot_histograms(self, layer: int = 1, *, param: str = "weight", epochs: Sequence[int] | None = None,
                        seed: int | None = None) -> Any:
        """A matplotlib figure: per scheme (columns), the histogram of ``layer``'s ``param``
        at each of ``epochs`` (default: at init and the last epoch) for one ``seed``
        (default: the smallest)."""
        import matplotlib.pyplot as plt

        frame = self.histograms(layer, param)
        if not len(frame):
            raise InitlabError(f"no {param} histograms of layer {layer} recorded in this study")
        seed = int(frame["seed"].min()) if seed is None else seed
        frame = frame[frame["seed"] == seed]
        schemes = list(dict.fromkeys(frame["scheme"]))
        fig, axes = plt.subplots(1, len(schemes), figsize=(3.2 * len(schemes), 2.8), squeeze=False)
        for ax, scheme in zip(axes[0], schemes):
            part = frame[frame["scheme"] == scheme]
            first_cell = part["cell"].iloc[0]
            part = part[part["cell"] == first_cell]
            shown = sorted(set(part["epoch"]))
            wanted = [shown[0], shown[-1]] if epochs is None else [e if e >= 0 else shown[e] for e in epochs]
            for epoch in dict.fromkeys(wanted):
                h = part[part["epoch"] == epoch]
                if not len(h):
                    continue
                ax.stairs(h["count"].to_numpy(), [*h["left"].to_numpy(), h["right"].iloc[-1]],
                          label=f"epoch {epoch}", fill=False)
            ax.set_title(scheme, fontsize=9)
            ax.set_xlabel(f"layer {layer} {param}")
            ax.legend(fontsize=7)
        axes[0][0].set_ylabel("count")
        fig.suptitle(f"{self.name}: layer {layer} {param} histograms (seed {seed})", fontsize=10)
        fig.tight_layout()
        return fig

    def plot_probe(self, field: str = "pre_std", *, model: str | None = None) -> Any:
        """A matplotlib figure of a probe field (a :class:`~initlab.probe.result.LayerProbe`
        field: ``pre_std``, ``grad_norm``, ``dead_fraction``, ...) by depth, one line per
        scheme, from the study's probe at init (log scale for positive, spread values)."""
        import matplotlib.pyplot as plt

        from initlab.probe.result import LayerProbe

        fields = [f for f in LayerProbe.__dataclass_fields__ if f not in ("name", "kind", "shape", "activation")]
        if field not in fields:
            raise UnknownNameError(f"unknown probe field {field!r}{suggest(field, fields)}; "
                                   f"use one of {', '.join(fields)}")
        result = self.probe(model)
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        values: list[float] = []
        for s in result.schemes:
            ys = [float(getattr(lp, field)) for lp in s.layers]
            values += ys
            ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, label=s.scheme)
        positive = [v for v in values if v == v and v > 0]
        if positive and len(positive) == len([v for v in values if v == v]) and max(positive) / min(positive) > 100:
            ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_ylabel(field)
        ax.set_title(f"probe at init: {result.model}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    # -- report and exports ------------------------------------------------------------

    def report(self, out: str | os.PathLike[str] | None = None, *, threshold: float = 0.8,
               alpha: float = 0.05) -> Path:
        """Write the HTML report (``initlab report``: default ``RUN_DIR/report.html``, figures
        beside it) and return its path."""
        from initlab.report.build import build_report, check_report_out

        if not 0.0 < alpha < 1.0:
            raise InitlabError(f"alpha must be in (0, 1), got {alpha}")
        check_report_out(self.run_dir, out)
        return build_report(self.run_dir, out=out, data=self.data, target=threshold, alpha=alpha)

    def export(self, *, format: str | None = None, out: str | os.PathLike[str] | None = None,
               tensorboard: str | os.PathLike[str] | None = None, wandb: str | None = None,
               wandb_entity: str | None = None, wandb_mode: str | None = None) -> Exported:
        """Export as ``initlab export`` does: tables (``format`` csv/parquet, into ``out``,
        default ``RUN_DIR/tables``), TensorBoard event files (``tensorboard`` directory), W&B
        runs (``wandb`` project). Returns :class:`~initlab.report.exporting.Exported`."""
        from initlab.report.exporting import export_run

        return export_run(self.run_dir, tensorboard=tensorboard, wandb=wandb, wandb_entity=wandb_entity,
                          wandb_mode=wandb_mode, format=format, out=out, out_name="out",
                          tensorboard_name="tensorboard")

    # -- display -----------------------------------------------------------------------

    def __repr__(self) -> str:
        counts = self.status_counts
        finished = counts.get("done", 0) + counts.get("diverged", 0)
        return (f"Results({self.name!r}, {len(self.data.cells)} cells, {finished} finished"
                + (", PARTIAL" if self.partial else "") + f", run_dir={str(self.run_dir)!r})")

    def _repr_html_(self) -> str:
        """The summary table for notebooks: best scheme per group in green, diverged runs and
        schemes significantly worse than the best in red."""
        from initlab.display import Mark, html_table
        from initlab.study.summary import format_pm

        summary = self.summary_table()
        rows = []
        for r in summary.rows:
            acc = format_pm(r.val_acc, r.val_acc_ci, 100.0, 2)
            shown_acc: Any = Mark(acc, True) if r.is_best else (Mark(acc, False) if r.significant else acc)
            reach = (f"{r.epochs_to:.1f} ({r.reached}/{r.finished})" if r.reached else
                     (f"never (0/{r.finished})" if r.finished else "-"))
            rows.append((r.dataset, r.model, r.setting, r.scheme, f"{r.finished}/{r.planned}", shown_acc,
                         format_pm(r.val_loss, r.val_loss_ci, 1.0, 4), reach,
                         Mark(r.diverged, False) if r.diverged else r.diverged))
        lvl, pct = f"{summary.level * 100:g}%", f"{summary.threshold * 100:g}%"
        state = (f"PARTIAL, {summary.finished}/{summary.total} cells finished" if summary.partial
                 else f"{summary.total} cells, all finished")
        return html_table(f"study {summary.study!r}: {state} ({self.run_dir})",
                          ["dataset", "model", "train", "scheme", "seeds", f"val acc % ({lvl} CI)",
                           f"val loss ({lvl} CI)", f"epochs to {pct}", "diverged"], rows,
                          notes=["green: the best scheme of its group; red: significantly worse than "
                                 "it, or diverged runs"])
