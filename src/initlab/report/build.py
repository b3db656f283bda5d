"""``build_report(run_dir)``: the study report as one self-contained HTML file plus PNGs.

Writes ``RUN_DIR/report.html`` and ``RUN_DIR/figures/*.png``. Sections (each a
``<section id=...>``): ``summary`` (per-scheme table), ``curves`` (learning curves),
``weights`` (std by depth, per-layer histograms at init vs after training and over
epochs, with a layer selector), ``activations``, ``conformance`` (realized vs expected
std at init), ``probe`` (signal propagation at init, per group; only when the study
recorded a probe), ``recommendation`` (the calibrated ranking of each probed group beside
its trained accuracy, and the calibration figures: :mod:`initlab.report.recommendation`)
and ``run`` (configuration, versions, device, wall time, cells).

Layouts scale with the study: one colour per scheme, small multiples with one panel per
scheme, one selectable layer at a time, heatmaps over layers and epochs. A study with
several models or datasets gets each section once per ``(model, dataset)`` group.
Statistics use finished cells only; an interrupted study is reported from what finished
and marked *partial*.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from initlab.report import html as H
from initlab.report.conformance import conformance
from initlab.report.plotting import Figure, scheme_colors
from initlab.report.runinfo import header, run_section
from initlab.records import SchemeSummary
from initlab.report.summary import summarize
from initlab.report.types import CellData, RunData
from initlab.study.summary import format_pm

__all__ = ["build_report", "check_report_out", "REPORT_NAME", "FIGURE_DIR", "SECTIONS"]

REPORT_NAME = "report.html"
FIGURE_DIR = "figures"
#: Section ids always present in the page (``probe`` is added when a probe was recorded).
SECTIONS: tuple[str, ...] = ("summary", "overview", "curves", "weights", "activations", "conformance", "run")

_TITLES = {"summary": "Summary", "overview": "Overview", "curves": "Learning curves", "weights": "Weights",
           "activations": "Activations", "conformance": "Conformance at init", "probe": "Signal probe",
           "recommendation": "Recommendation", "run": "Run"}


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}g}"


def _pm(mean: float, half: float, scale: float, digits: int) -> str:
    return format_pm(mean, half, scale, digits, pm="±", missing="–")


def _slug(i: int) -> str:
    return f"g{i + 1}"


class _Ctx:
    """What the section builders share: the run, output paths, colours, figures made."""

    def __init__(self, run: RunData, fig_dir: Path) -> None:
        self.run = run
        self.fig_dir = fig_dir
        self.colors = scheme_colors(run.schemes())
        self.groups = run.groups()
        self.multi = len(self.groups) > 1
        self.figures: list[Figure] = []

    def title(self, model: str, dataset: str) -> str:
        return f"{model} on {dataset}"

    def by_scheme(self, model: str, dataset: str) -> dict[str, list[CellData]]:
        out = {}
        for s in self.run.schemes():
            cells = self.run.cells_of(model, dataset, s)
            if cells:
                out[s] = cells
        return out

    def add(self, make: Callable[..., Figure], *args: Any) -> Figure:
        fig = make(*args)
        self.figures.append(fig)
        return fig

    def path(self, name: str) -> Path:
        return self.fig_dir / name

    def heading(self, i: int, model: str, dataset: str) -> str:
        return f"<h3>{H.esc(self.title(model, dataset))}</h3>" if self.multi else ""


# -- sections ------------------------------------------------------------------------------


def _summary_rows(rows: list[SchemeSummary], target: float) -> tuple[list[list[Any]], list[list[str]]]:
    body, classes = [], []
    for r in rows:
        if r.is_best:
            vs, vs_cls = "best", "best"
        elif math.isfinite(r.p_vs_best):
            vs = (f"p = {r.p_vs_best:.2g}, " + ("differs" if r.significant else "n.s."),
                  "Welch t-test of final validation accuracy against the best scheme")
            vs_cls = "sig" if r.significant else ""
        else:
            vs, vs_cls = ("n/a", "needs at least 2 finished seeds here and in the best scheme"), "na"
        if r.reached:
            reach = f"{r.epochs_to:.1f} ({r.reached}/{r.finished})"
        else:
            reach = f"never (0/{r.finished})" if r.finished else "–"
        best = f"{r.best_epoch} ({r.best_acc * 100:.2f}%)" if r.best_epoch is not None else "–"
        body.append([r.scheme, f"{r.done}/{r.planned}", _pm(r.val_acc, r.val_acc_ci, 100, 2),
                     _pm(r.val_loss, r.val_loss_ci, 1, 4), best, reach, str(r.diverged), vs])
        classes.append(["", "", "best" if r.is_best else "", "", "", "", "sig" if r.diverged else "",
                        vs_cls])
    return body, classes


def _section_summary(ctx: _Ctx, target: float, alpha: float) -> str:
    parts = []
    header = ["scheme", "seeds done", "final val acc % (95% CI)", "final val loss (95% CI)",
              "best epoch (mean acc)", f"epochs to {target * 100:g}%", "diverged", "vs best (Welch)"]
    for i, (model, dataset) in enumerate(ctx.groups):
        rows = summarize(ctx.run, model, dataset, target=target, alpha=alpha)
        body, classes = _summary_rows(rows, target)
        parts.append(ctx.heading(i, model, dataset) + H.table(header, body, classes=classes))
    parts.append(
        f'<p class="note">Final values are after each seed\'s last epoch, over the seeds that '
        f'finished without diverging; ± is the half-width of the 95% t confidence interval '
        f'(n/a with one seed). Best epoch maximizes the seed-mean validation accuracy. Epochs to '
        f'{target * 100:g}%: the mean first epoch reaching it, over the finished seeds that did. '
        f'"vs best": Welch\'s t-test of final validation accuracy against the best scheme; '
        f'"differs" when p &lt; {alpha:g} (no multiple-comparison correction; with k schemes a '
        f'Bonferroni reading is p &lt; {alpha:g}/(k-1)).</p>')
    return "".join(parts)


def _overview_axes(run: RunData) -> list[tuple[str, list[Any], Callable[[CellData], Any]]]:
    """The grid's axes other than scheme and seed, as ``(label, values, value_of)``: the
    dataset, every model key and train setting that varies, and the model itself when
    no model key tells the models apart."""
    from initlab.study.axes import axis_value, study_axes
    from initlab.study.cell import Cell

    from initlab.errors import InitlabError

    try:
        cells = {c.key: Cell.from_dict(c.config) for c in run.cells}
    except InitlabError:  # results without their cells' settings (synthetic ones)
        return []
    axes = [a for a in study_axes(cells.values()) if a.name != "scheme"]
    if any(a.name.startswith("model.") for a in axes):
        axes = [a for a in axes if a.name != "model"]
    return [(a.label, list(a.values), lambda c, name=a.name: axis_value(cells[c.key], name))
            for a in axes]


def _section_overview(ctx: _Ctx) -> str:
    """Final accuracy per scheme along each axis of the grid (heatmaps), and every seed's
    final accuracy per scheme and group (strip and box plots): :mod:`initlab.report.fig_overview`."""
    from initlab.report.fig_overview import axis_heatmap, final_strip

    parts = []
    schemes = ctx.run.schemes()
    for k, (label, values, value_of) in enumerate(_overview_axes(ctx.run)):
        fig = ctx.add(axis_heatmap, ctx.run.cells, schemes, label, values, value_of,
                      ctx.path(f"overview_{k}_{re.sub(r'[^A-Za-z0-9_]', '_', label)}.png"))
        parts.append(H.figure(fig, f"Mean final validation accuracy (%) of each scheme at each {H.esc(label)}, "
                                   "over its finished seeds and the grid's other axes; n = models averaged, "
                                   "div = models that diverged (not in the mean)."))
    groups = [(ctx.title(m, d), by) for m, d in ctx.groups if (by := ctx.by_scheme(m, d))]
    if groups:
        fig = ctx.add(final_strip, groups, ctx.colors, ctx.path("overview_final_strip.png"))
        parts.append(H.figure(fig, "Final validation accuracy of every seed (points) over the box of its "
                                   "quartiles (median line; whiskers to 1.5 IQR), per scheme, one panel per "
                                   "group; diverged seeds are left out."))
    return "".join(parts) or '<p class="note">No cell has finished yet.</p>'


def _section_curves(ctx: _Ctx) -> str:
    from initlab.report.fig_curves import accuracy_small_multiples, learning_curves

    parts = []
    for i, (model, dataset) in enumerate(ctx.groups):
        by = ctx.by_scheme(model, dataset)
        parts.append(ctx.heading(i, model, dataset))
        if not by:
            parts.append('<p class="note">No cell of this group has finished yet.</p>')
            continue
        title = ctx.title(model, dataset)
        f1 = ctx.add(learning_curves, by, ctx.colors, ctx.path(f"{_slug(i)}_curves.png"), title)
        f2 = ctx.add(accuracy_small_multiples, by, ctx.colors, ctx.path(f"{_slug(i)}_val_acc_small.png"), title)
        parts.append(H.figure(f1, "Mean over seeds (line) and min–max over seeds (band); loss axes "
                                  "turn logarithmic when the loss spans more than two decades."))
        parts.append(H.figure(f2, "Validation accuracy, one panel per scheme."))
    return "".join(parts)


def _layer_labels(cells: list[CellData]) -> dict[int, str]:
    labels: dict[int, str] = {}
    for c in cells:
        for layer, rec in enumerate(c.init.report.layers if c.init is not None else (), 1):
            if layer not in labels and len(rec.shape) == 2:
                labels[layer] = f"layer {layer} ({rec.shape[1]}→{rec.shape[0]})"
    return labels


def _section_weights(ctx: _Ctx) -> str:
    from initlab.report.fig_weights import layer_figures, layers_of, std_by_depth

    parts = []
    for i, (model, dataset) in enumerate(ctx.groups):
        by = ctx.by_scheme(model, dataset)
        parts.append(ctx.heading(i, model, dataset))
        cells = [c for cs in by.values() for c in cs]
        layers = layers_of(cells)
        if not layers:
            parts.append('<p class="note">No weight statistics were recorded for finished cells.</p>')
            continue
        title = ctx.title(model, dataset)
        f = ctx.add(std_by_depth, by, ctx.colors, ctx.path(f"{_slug(i)}_weight_std.png"), title)
        parts.append(H.figure(f, "Weight std per layer (seed mean), at init and after training."))
        group = f"{_slug(i)}-weights"
        parts.append(H.layer_selector(group, layers, _layer_labels(cells)))
        slug = _slug(i)
        figs = layer_figures(by, layers, ctx.colors,
                             lambda kind, layer: ctx.path(f"{slug}_{kind}_L{layer:02d}.png"), title)
        for layer in layers:
            fh, fe = figs[layer]
            ctx.figures.extend([fh, fe])
            parts.append(H.layer_block(group, layer, H.figure(
                fh, f"Layer {layer}: weight histograms pooled over seeds, init (grey) vs after "
                    f"training (colour), each scaled to a peak of 1.") + H.figure(
                fe, f"Layer {layer}: weight distribution per epoch (rows, init at the bottom), "
                    f"each row scaled to its peak, square-root colour scale.")))
    return "".join(parts)


def _section_activations(ctx: _Ctx) -> str:
    from initlab.report.fig_activations import activation_depth, activation_evolution, activation_layers

    parts = []
    for i, (model, dataset) in enumerate(ctx.groups):
        by = ctx.by_scheme(model, dataset)
        parts.append(ctx.heading(i, model, dataset))
        if not activation_layers([c for cs in by.values() for c in cs]):
            parts.append('<p class="note">No activation statistics were recorded '
                         '(the study ran with probe_size = 0, or nothing finished).</p>')
            continue
        title = ctx.title(model, dataset)
        f = ctx.add(activation_depth, by, ctx.colors, ctx.path(f"{_slug(i)}_act_depth.png"), title)
        parts.append(H.figure(f, "Post-activation mean, std and fraction of exact zeros per layer on "
                                 "the fixed probe batch (eval mode), seed mean."))
        for stat, name in (("post_mean", "mean"), ("post_std", "std"), ("post_frac_zero", "zero")):
            fe = ctx.add(activation_evolution, by, stat, ctx.path(f"{_slug(i)}_act_{name}_epochs.png"), title)
            parts.append(H.figure(fe, "Per layer (rows) and epoch (columns), one panel per scheme, "
                                      "shared colour scale."))
    return "".join(parts)


def _section_conformance(ctx: _Ctx) -> str:
    """``initlab.check``'s verdicts at init, as the study stored them, per group."""
    from initlab.report.conformance import sigmas
    from initlab.report.fig_conformance import conformance_figure

    parts = []
    thresholds = set()
    for i, (model, dataset) in enumerate(ctx.groups):
        parts.append(ctx.heading(i, model, dataset))
        tab = conformance(ctx.run, model, dataset)
        tab = {s: tab[s] for s in ctx.run.schemes() if s in tab}
        if not tab:
            parts.append('<p class="note">No conformance check at init was stored for this group '
                         '(a store written before studies ran initlab.check at init, or the check '
                         'failed); <code>initlab check</code> checks a model.</p>')
            continue
        thresholds.add(sigmas(ctx.run, model, dataset))
        f = ctx.add(conformance_figure, tab, ctx.path(f"{_slug(i)}_conformance.png"), ctx.title(model, dataset))
        parts.append(H.figure(f, "log2 of realized / expected weight std at init; x marks a layer "
                                 "initlab.check found not to conform."))
        schemes = list(tab)
        layers = sorted({layer for rows in tab.values() for layer in rows})
        body, classes, flagged = [], [], []
        for layer in layers:
            row: list[Any] = [f"layer {layer}"]
            cls = [""]
            for s in schemes:
                c = tab[s].get(layer)
                if c is None:
                    row.append("–")
                    cls.append("na")
                    continue
                tip = (f"{s}, {c.name}: expected std {_fmt(c.expected_std)}, realized {_fmt(c.realized_std)}"
                       f" (mean of {c.seeds} seed{'s' if c.seeds != 1 else ''})")
                mark = "✗ " if c.flagged else ""
                if not math.isfinite(c.expected_std):
                    row.append((mark + "data", tip + "; no a-priori law: checked on its output variance"))
                elif not c.expected_std > 0:
                    row.append(("0" if not c.flagged else f"✗ {_fmt(c.realized_std, 3)}", tip))
                else:
                    row.append((mark + f"{c.ratio:.3f}", tip))
                cls.append("flag" if c.flagged else ("na" if not math.isfinite(c.expected_std) else ""))
                if c.flagged:
                    flagged.append(f"{s}, layer {layer} ({c.name}), {c.flagged_seeds}/{c.seeds} seeds: "
                                   + "; ".join(c.reasons or ("does not conform",)))
            body.append(row)
            classes.append(cls)
        parts.append(H.table(["layer", *schemes], body, classes=classes,
                             caption="realized / expected weight std at init (hover for values)"))
        if flagged:
            parts.append("<p><b>Flagged by initlab.check:</b></p><ul>"
                         + "".join(f"<li>{H.esc(x)}</li>" for x in flagged) + "</ul>")
        else:
            parts.append('<p class="note">initlab.check found every layer conforming.</p>')
    level = ", ".join(f"{t:g}" for t in sorted(t for t in thresholds if t is not None)) or "5"
    parts.append(
        f'<p class="note">The verdicts are <code>initlab.check</code>\'s, run on each model right '
        f'after initialization: a layer is flagged when its mean or variance is more than {level} '
        f'standard errors from the scheme\'s law (with the law\'s own fourth moment), or a '
        f'Kolmogorov–Smirnov test rejects its shape; deterministic laws are compared exactly; '
        f'data-dependent schemes (LSUV) are checked on their output variance on the fitting batch '
        f'("data").</p>')
    return "".join(parts)


def _probe_table(result: Any) -> str:
    """Per scheme: the fitted per-layer factors of Var(z) and of |dL/dz|^2, the calibrated
    prediction for Adam and for SGD (:mod:`initlab.probe.calibration`: what the measurements
    predict about training, with the score) and the raw measured verdicts (their
    explanations as tooltips)."""
    from initlab.probe.calibration import OPTIMIZERS, predict

    body, classes = [], []
    for sp in result.schemes:
        kinds = ", ".join(v.kind.replace("_", " ") for v in sp.verdicts) or "ok"
        tip = " ".join(v.message for v in sp.verdicts) or "no vanishing or exploding signal or gradients, " \
            "dead units, saturation or unbroken symmetry"
        preds = [predict(sp, optimizer=opt) for opt in OPTIMIZERS]
        cells = [(f"{p.verdict.replace('_', ' ')} ({p.score:.2f})", p.predicts + ". " + "; ".join(p.reasons))
                 for p in preds]
        body.append([sp.scheme, _fmt(sp.signal_rate, 3), _fmt(sp.gradient_rate, 3), *cells, (kinds, tip)])
        classes.append(["", "", "", *("" if p.ok else "flag" for p in preds), ""])
    src = "inputs from the data" if result.inputs == "data" else "Gaussian inputs"
    caption = (f"{result.model} at init on {result.n_inputs} {src}, seed {result.seed}, dropout off; "
               f"factors per layer fitted over all layers (1 = preserved); predicted: the calibrated verdict "
               f"and score (expected fraction of the best scheme's accuracy above chance after a short "
               f"training) per optimizer, measured: the raw thresholds; hover a verdict for its reason")
    return H.table(["scheme", "Var(z) per layer", "|dL/dz|² per layer", "predicted (Adam)", "predicted (SGD)",
                    "measured"], body, classes=classes, caption=caption)


def _probe_block(ctx: _Ctx, result: Any, directory: Path, prefix: str) -> str:
    """The verdict table and figures of one stored probe (a
    :class:`~initlab.probe.result.ProbeResult`); its PNGs are written as
    ``directory/<prefix><figure>.png`` (:func:`initlab.probe.figures.save_probe_figures`)."""
    from initlab.probe.figures import save_probe_figures
    from initlab.report.plotting import load_png

    figures = []
    for p in map(Path, save_probe_figures(result, directory, prefix=prefix) or []):
        if p.suffix.lower() == ".png" and p.is_file():
            fig = load_png(p, f"probe: {p.stem}")
            ctx.figures.append(fig)
            figures.append(H.figure(fig, f"Signal propagation at init: {p.stem.removeprefix(prefix)}."))
    return _probe_table(result) + ("".join(figures) or '<p class="note">The probe produced no figures.</p>')


def _group_probe(ctx: _Ctx, i: int, model: str, dataset: str) -> str:
    """The probe recorded for one ``(model, dataset)`` group, and why probing failed if it did."""
    model = ctx.run.model_of(model)  # the probe is of the model at init, whatever the train setting
    raw = ctx.run.probes.get((model, dataset))
    error = ctx.run.probe_errors.get((model, dataset))
    note = (f'<p class="note">Probing this model failed ({H.esc(error)}); the study trained without '
            f'it. <code>initlab probe</code> shows the failure.</p>') if error else ""
    if raw is not None:
        return _probe_block(ctx, raw, ctx.fig_dir, f"{_slug(i)}_probe_") + note
    return note or ('<p class="note">No probe was recorded for this group (the study ran with '
                    '<code>--no-probe</code>, or has not reached it yet).</p>')


def _section_probe(ctx: _Ctx) -> str:
    """The signal-propagation probe at init of each ``(model, dataset)`` group that the
    study recorded (:mod:`initlab.study.init_records`): a verdict table and the figures of
    :func:`initlab.probe.figures.save_probe_figures`."""
    parts = []
    if ctx.run.probes or ctx.run.probe_errors:
        for i, (model, dataset) in enumerate(ctx.groups):
            parts.append(ctx.heading(i, model, dataset) + _group_probe(ctx, i, model, dataset))
    return "".join(parts)


def check_report_out(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                     check_run: bool = True) -> Path:
    """Where the report of ``run_dir`` goes (``out``, default ``RUN_DIR/report.html``),
    after checking, without creating anything, that it and its ``figures`` directory can
    be written; else a one-line :class:`~initlab.errors.InitlabError`. With the default
    ``out`` and ``check_run``, a missing or foreign run directory is reported as such
    first."""
    from initlab.errors import InitlabError
    from initlab.outputs import check_output_file
    from initlab.report.rundata import check_run_dir

    if out is None and check_run:
        check_run_dir(run_dir)
    html_path = check_output_file(Path(out) if out is not None else Path(run_dir) / REPORT_NAME,
                                  "--out" if out is not None else "the report", example=REPORT_NAME)
    fig_dir = html_path.parent / FIGURE_DIR
    if (fig_dir.exists() or fig_dir.is_symlink()) and not fig_dir.is_dir():
        raise InitlabError(f"the report's figures go to {str(fig_dir)!r}, which is a file; move it "
                           f"away or choose another --out")
    return html_path


def _make_dirs(directory: Path) -> list[Path]:
    """``mkdir -p directory``; returns the directories it created, outermost first."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir()
    return list(reversed(missing))


def _install_figures(staging: Path, fig_dir: Path) -> None:
    """Move the figures rendered into ``staging`` into ``fig_dir`` (one rename each)."""
    fig_dir.mkdir(exist_ok=True)
    for src in sorted(staging.rglob("*")):
        dst = fig_dir / src.relative_to(staging)
        if src.is_dir():
            dst.mkdir(exist_ok=True)
        else:
            os.replace(src, dst)


def build_report(run_dir: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
                 data: RunData | None = None, target: float = 0.8, alpha: float = 0.05) -> Path:
    """Write the report of ``run_dir`` and return the path of the HTML file.

    Args:
        run_dir: a run directory written by ``initlab run``.
        out: where to write the HTML (default ``RUN_DIR/report.html``); the PNG figures go
            to a ``figures`` directory beside it. Missing parent directories are created.
        data: the already loaded results (default: :func:`initlab.report.rundata.load_run`).
        target: the accuracy of the "epochs to" column.
        alpha: the significance level of the comparison with the best scheme.

    The output is checked before anything is read or written (:func:`check_report_out`).
    Figures are rendered into a hidden staging directory beside the report and the HTML
    into a temporary file; only when all of it is written are the figures moved into
    ``figures/`` and the HTML renamed over ``out``. A failure on the way removes the
    staging directory, the temporary file and any directory this call created, and
    leaves an earlier report as it was. The run's store is only read.

    Raises:
        InitlabError: the directory is missing, empty, or holds no study; its store cannot
            be read; ``out`` is a directory or cannot be written.
    """
    import shutil
    import tempfile

    from initlab.errors import InitlabError
    from initlab.report.rundata import load_run

    if not 0.0 < target <= 1.0:
        raise InitlabError(f"target accuracy must be a fraction in (0, 1], got {target}")
    if not 0.0 < alpha < 1.0:
        raise InitlabError(f"significance level must be in (0, 1), got {alpha}")
    html_path = check_report_out(run_dir, out, check_run=data is None)
    t0 = time.perf_counter()
    run = data if data is not None else load_run(run_dir)
    fig_dir = html_path.parent / FIGURE_DIR
    created: list[Path] = []
    staging: Path | None = None
    tmp: Path | None = None
    done = False
    try:
        created = _make_dirs(html_path.parent)
        if not fig_dir.exists():
            created.append(fig_dir)  # removed again unless the report is written
        staging = Path(tempfile.mkdtemp(prefix=f".{FIGURE_DIR}-", suffix=".tmp", dir=html_path.parent))
        ctx = _Ctx(run, staging)
        sections: list[tuple[str, str]] = [
            ("summary", _section_summary(ctx, target, alpha)),
            ("overview", _section_overview(ctx)),
            ("curves", _section_curves(ctx)),
            ("weights", _section_weights(ctx)),
            ("activations", _section_activations(ctx)),
            ("conformance", _section_conformance(ctx)),
        ]
        if run.probes or run.probe_errors:
            sections.append(("probe", _section_probe(ctx)))
        if run.probes:  # the calibrated ranking of each probed group (initlab.report.recommendation)
            from initlab.report.recommendation import section as recommendation_section

            sections.append(("recommendation", recommendation_section(ctx)))
        sections.append(("run", run_section(run, len(ctx.figures), fig_dir, time.perf_counter() - t0)))
        body = "".join(
            f'<section id="{sid}" data-section="{sid}"><h2>{H.esc(_TITLES[sid])}</h2>{content}</section>\n'
            for sid, content in sections)
        doc = H.page(f"initlab report: {run.name}", header(run), [(s, _TITLES[s]) for s, _ in sections], body)
        fd, name = tempfile.mkstemp(prefix=f".{html_path.name}.", suffix=".tmp", dir=html_path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(doc)
        _install_figures(staging, fig_dir)
        os.replace(tmp, html_path)
        tmp = None
        done = True
    except OSError as exc:
        raise InitlabError(f"cannot write the report {str(html_path)!r} ({exc.strerror or exc}); "
                           f"free disk space or choose a writable --out") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if not done:
            for d in reversed(created):  # innermost first
                if d == fig_dir:
                    shutil.rmtree(d, ignore_errors=True)
                else:
                    _rmdir_quietly(d)
    return html_path


def _rmdir_quietly(directory: Path) -> None:
    try:
        directory.rmdir()  # only when empty
    except OSError:
        pass
