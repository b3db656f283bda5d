"""Figures of a probe: variance and gradient norm by depth, Jacobian spectrum (PNG).

Built on ``matplotlib.figure.Figure`` with the Agg canvas directly, so nothing touches
pyplot's global state or needs a display; the study report embeds the same figures
(:func:`probe_figures` returns them, :func:`save_probe_figures` writes them).

* ``variance``: ``Var(z_l)`` of the pre-activations per layer and scheme on a log axis;
  dashed, the mean-field prediction where the model is a plain fully connected chain.
* ``gradients``: ``||dL/dz_l||`` per layer and scheme on a log axis.
* ``jacobian`` (only when some scheme has one): the singular values of the input-output
  Jacobian, pooled over the probed inputs and sorted, on a log axis.

Zeros and non-finite values cannot sit on a log axis; schemes whose values are all such are
marked "(all 0)" or "(non-finite)" in the legend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from initlab.errors import InitlabError

if TYPE_CHECKING:  # result.py imports this module for its methods
    from initlab.probe.result import ProbeResult

FIGURES = ("variance", "gradients", "jacobian")


def _new_figure(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def _loggable(values: Sequence[float]) -> tuple[list[float], str]:
    """Values with non-positive/non-finite ones as nan, plus a legend note when none remain."""
    out = [v if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else math.nan for v in values]
    if all(math.isnan(v) for v in out):
        note = " (all 0)" if all(v == 0 for v in values) else " (non-finite)"
        return out, note
    return out, ""


def _plot_by_depth(result: ProbeResult, field: str, title: str, ylabel: str, predicted: bool) -> Any:
    fig, ax = _new_figure(title, "layer", ylabel)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for k, sp in enumerate(result.schemes):
        color = f"C{k % 10}"
        xs = [layer.index for layer in sp.layers]
        raw = [getattr(layer, field) for layer in sp.layers]
        ys, note = _loggable(raw)
        ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.4, color=color, label=f"{sp.scheme}{note}")
        if predicted:
            pred, _ = _loggable([layer.predicted_var for layer in sp.layers])
            if any(math.isfinite(v) for v in pred):
                ax.plot(xs, pred, linestyle="--", linewidth=1.0, color=color, alpha=0.8)
    if predicted and any(math.isfinite(layer.predicted_var) for sp in result.schemes for layer in sp.layers):
        ax.plot([], [], linestyle="--", color="0.4", label="mean-field prediction")
    ax.legend(fontsize=8, loc="best")
    return fig


def probe_figures(result: ProbeResult) -> dict[str, Any]:
    """``{"variance": Figure, "gradients": Figure[, "jacobian": Figure]}`` for *result*."""
    figs = {
        "variance": _plot_by_depth(result, "pre_var", f"Pre-activation variance by depth: {result.model}",
                                   "Var(z)", predicted=True),
        "gradients": _plot_by_depth(result, "grad_norm", f"Gradient norm by depth: {result.model}",
                                    "||dL/dz||", predicted=False),
    }
    with_jac = [sp for sp in result.schemes if sp.jacobian_singular_values]
    if with_jac:
        fig, ax = _new_figure(f"Input-output Jacobian spectrum: {result.model}",
                              "rank (fraction of singular values)", "singular value")
        for k, sp in enumerate(result.schemes):
            if not sp.jacobian_singular_values:
                continue
            flat = sorted((v for row in sp.jacobian_singular_values for v in row), reverse=True)
            ys, note = _loggable(flat)
            xs = [(i + 0.5) / len(flat) for i in range(len(flat))]
            ax.plot(xs, ys, color=f"C{k % 10}", linewidth=1.4, label=f"{sp.scheme}{note}")
        ax.legend(fontsize=8, loc="best")
        figs["jacobian"] = fig
    return figs


def save_probe_figures(result: ProbeResult, directory: str | Path, *, prefix: str = "probe_") -> list[Path]:
    """Write :func:`probe_figures` as ``<directory>/<prefix><name>.png``; returns the paths."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise InitlabError(f"figures directory {str(folder)!r} is a file; give a directory path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitlabError(f"cannot create figures directory {str(folder)!r}: {exc.strerror}; "
                           "give a writable path") from None
    paths = []
    for name, fig in probe_figures(result).items():
        path = folder / f"{prefix}{name}.png"
        fig.savefig(path, format="png")
        paths.append(path)
    return paths


#: Marker colours of the calibration figure: ok green, each failure kind its own colour.
_VERDICT_COLORS = {"ok": "#2a9d3a", "vanishing_signal": "#1f77b4", "exploding_signal": "#d62728",
                   "vanishing_gradients": "#9467bd", "exploding_gradients": "#ff7f0e", "dead_units": "#7f7f7f",
                   "saturation": "#8c564b", "unbroken_symmetry": "#17becf", "ill_conditioned": "#e377c2"}


def calibration_figure(points: Sequence[Mapping[str, Any]], *, title: str = "Probe score vs trained accuracy") -> Any:
    """Score vs trained accuracy, one panel per optimizer, points coloured by the calibrated
    verdict. *points*: dicts with ``score``, ``accuracy``, ``verdict`` and ``optimizer``
    (e.g. :func:`initlab.probe.calibration.heldout_points`, or a recommendation's
    predictions beside its confirmed training). Returns a ``matplotlib.figure.Figure``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not points:
        raise InitlabError("no points to draw; give at least one (score, accuracy, verdict, optimizer)")
    opts = sorted({str(p["optimizer"]) for p in points})
    fig = Figure(figsize=(5.0 * len(opts), 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(opts), squeeze=False)[0]
    for ax, opt in zip(axes, opts):
        mine = [p for p in points if p["optimizer"] == opt]
        for verdict in sorted({p["verdict"] for p in mine}, key=lambda v: (v != "ok", v)):
            sel = [p for p in mine if p["verdict"] == verdict]
            ax.scatter([p["score"] for p in sel], [p["accuracy"] for p in sel], s=16, alpha=0.75,
                       color=_VERDICT_COLORS.get(verdict, "k"), label=f"{verdict} ({len(sel)})")
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("calibrated score at init")
        ax.set_ylabel("test accuracy after training")
        ax.set_title(f"{opt}: {len(mine)} points")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    return fig


def save_calibration_figure(points: Sequence[Mapping[str, Any]], path: str | Path, *,
                            title: str = "Probe score vs trained accuracy (held-out models)") -> Path:
    """Write :func:`calibration_figure` of *points* (e.g.
    :func:`initlab.probe.calibration.heldout_points`) as a PNG file."""
    fig = calibration_figure(points, title=title)
    p = Path(path)
    fig.savefig(p, format="png")
    return p
