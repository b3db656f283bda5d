"""The report's recommendation section: the calibrated ranking of each probed group, beside
what the study trained, and the calibration figure.

For each ``(model, dataset)`` group whose probe at init the study recorded, the schemes are
ranked by the calibrated score (:func:`initlab.probe.calibration.predict` for the group's
optimizer; :func:`rank`) and shown with the calibrated verdict, what it predicts, and the
scheme's final validation accuracy in the study (mean ± sd over its finished seeds). The
line under the table says whether the top-ranked scheme landed within the seed-to-seed
spread of the best trained one (:func:`within_spread`, the same rule as
``initlab.recommend``'s). The calibration figure plots the calibration grid's score against
trained relative accuracy, coloured by calibrated verdict
(:func:`initlab.probe.calibration.calibration_points`), one panel per optimizer.

The study's probes run on its first training images, while the calibration was fitted on
probes of Gaussian inputs; the section says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initlab.report import html as H
from initlab.report.plotting import Figure, pyplot, save_png

__all__ = ["calibration_figure", "deviation", "rank", "section", "within_spread"]


def within_spread(candidate: Sequence[float], best: Sequence[float]) -> bool:
    """Whether the accuracies *candidate* (one per seed) land within the seed-to-seed
    spread of *best*: ``mean(candidate) >= mean(best) - max(sd(best), sd(candidate))``,
    with the sample standard deviations (``ddof = 1``; 0 for one seed). No candidate seed:
    never; no best seed: always."""
    if not candidate:
        return False
    if not best:
        return True

    def sd(x: Sequence[float]) -> float:
        return statistics.stdev(x) if len(x) > 1 else 0.0

    return statistics.fmean(candidate) >= statistics.fmean(best) - max(sd(best), sd(candidate)) - 1e-12


def deviation(sp: Any) -> float:
    """How far one scheme's probe is from preserving signal and gradients:
    ``L (|ln signal_rate| + |ln gradient_rate|)`` over its ``L`` measured layers (the
    compounded change in nepers; ``inf`` where a rate is not measurable)."""
    total = 0.0
    for r in (sp.signal_rate, sp.gradient_rate):
        if not (isinstance(r, float) and math.isfinite(r) and r > 0):
            return math.inf
        total += abs(math.log(r))
    return len(sp.layers) * total


def rank(result: Any, optimizer: str = "adam") -> list[tuple[Any, Any]]:
    """``(scheme probe, prediction)`` of every scheme of a :class:`~initlab.probe.result.ProbeResult`
    (or a list of :class:`~initlab.probe.result.SchemeProbe`), best first: by the calibrated
    score (:func:`initlab.probe.calibration.predict`), then, among equal scores (rounded to
    4 digits, saturating near 1), fewer raw probe verdicts, then a smaller :func:`deviation`,
    then the probe's order."""
    from initlab.probe.calibration import predict

    schemes = list(getattr(result, "schemes", result))
    pairs = [(sp, predict(sp, optimizer=optimizer)) for sp in schemes]

    def key(i: int) -> tuple[float, int, float, int]:
        sp, p = pairs[i]
        score = float(p.score)
        return (-score if math.isfinite(score) else math.inf, len(sp.verdicts), deviation(sp), i)

    return [pairs[i] for i in sorted(range(len(pairs)), key=key)]


def _optimizer(cells: Sequence[Any]) -> str:
    for c in cells:
        opt = (c.config.get("train") or {}).get("optimizer")
        if isinstance(opt, str):
            return opt.lower()
    return "adam"


def _accs(ctx: Any, model: str, dataset: str, scheme: str) -> list[float]:
    from initlab.report.summary import final_metric

    out = []
    for c in ctx.run.cells_of(model, dataset, scheme):
        acc = final_metric(c, "val_acc")
        if c.status == "done" and math.isfinite(acc):
            out.append(acc)
    return out


def _acc_text(accs: Sequence[float]) -> str:
    if not accs:
        return "–"
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{statistics.fmean(accs) * 100:.2f} ± {sd * 100:.2f}"


def _group(ctx: Any, model: str, dataset: str) -> str:
    from initlab.errors import InitlabError

    probe = ctx.run.probes.get((ctx.run.model_of(model), dataset))
    if probe is None:
        return '<p class="note">No probe was recorded for this group, so there is no ranking.</p>'
    cells = ctx.run.cells_of(model, dataset, finished_only=False)
    optimizer = _optimizer(cells)
    try:
        ranked = rank(probe, optimizer)
    except (InitlabError, OSError, KeyError, ValueError) as exc:  # no calibration (for this optimizer)
        return f'<p class="note">No calibrated ranking: {H.esc(type(exc).__name__)}: {H.esc(exc)}</p>'
    body, classes = [], []
    trained = {sp.scheme: _accs(ctx, model, dataset, sp.scheme) for sp, _ in ranked}
    for i, (sp, p) in enumerate(ranked, 1):
        tip = p.predicts + " " + " ".join(f"- {r}" for r in p.reasons)
        body.append([str(i), sp.scheme, f"{p.score:.3g}", (p.verdict.replace("_", " "), tip),
                     _acc_text(trained[sp.scheme])])
        classes.append(["", "", "", "" if p.verdict == "ok" else "flag", ""])
    out = H.table(["rank", "scheme", "score", "calibrated verdict", "trained val acc % (mean ± sd)"], body,
                  text_cols=2, classes=classes,
                  caption=f"ranked by the calibrated score for {optimizer}; hover a verdict for what it predicts "
                          "and why")
    with_acc = {s: a for s, a in trained.items() if a}
    top = ranked[0][0].scheme
    if with_acc and trained[top]:
        best = max(with_acc, key=lambda s: statistics.fmean(with_acc[s]))
        ok = within_spread(trained[top], with_acc[best])
        out += (f'<p class="note">Top-ranked <b>{H.esc(top)}</b> trained to {_acc_text(trained[top])}%; the best '
                f'trained scheme, <b>{H.esc(best)}</b>, to {_acc_text(with_acc[best])}%: the top-ranked scheme '
                + ("lands within" if ok else "does <b>not</b> land within")
                + " the seed-to-seed spread (the larger sd of the two).</p>")
    return out


def calibration_figure(points: Sequence[dict[str, Any]], path: Path) -> Figure:
    """Score vs trained relative accuracy of the calibration grid, one panel per optimizer,
    coloured by calibrated verdict (held-out points filled, training points hollow)."""
    plt = pyplot()
    optimizers = sorted({str(p["optimizer"]) for p in points}) or ["adam"]
    verdicts = sorted({str(p["verdict"]) for p in points}, key=lambda v: (v != "ok", v))
    cmap = plt.get_cmap("tab10")
    colors = {v: ("tab:green" if v == "ok" else cmap((i % 9) + 1)) for i, v in enumerate(verdicts)}
    fig, axes = plt.subplots(1, len(optimizers), figsize=(4.6 * len(optimizers), 3.8), squeeze=False)
    for ax, opt in zip(axes[0], optimizers):
        for v in verdicts:
            for split, face in (("train", "none"), ("heldout", None)):
                pts = [p for p in points if p["optimizer"] == opt and p["verdict"] == v
                       and str(p.get("split", "heldout")) == split]
                if not pts:
                    continue
                ax.scatter([p["score"] for p in pts], [p["accuracy"] for p in pts], s=14,
                           facecolors=face if face is not None else colors[v], edgecolors=colors[v],
                           linewidths=0.8, label=f"{v.replace('_', ' ')} ({split})")
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("calibrated score at init")
        ax.set_ylabel(_accuracy_label(points))
        ax.set_title(f"calibration grid, {opt}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_png(fig, path, "calibration: score at init vs trained accuracy, coloured by verdict")


def _accuracy_label(points: Sequence[dict[str, Any]]) -> str:
    return str(points[0].get("accuracy_label", "trained accuracy")) if points else "trained accuracy"


def _calibration(ctx: Any) -> str:
    try:
        from initlab.probe.calibration import calibration_points

        points = list(calibration_points())
    except Exception as exc:  # noqa: BLE001 - no shipped grid: the section says so
        return (f'<p class="note">No calibration data to draw ({H.esc(type(exc).__name__)}: '
                f'{H.esc(str(exc)[:200])}).</p>')
    if not points:
        return '<p class="note">The calibration grid is empty.</p>'
    fig = ctx.add(calibration_figure, points, ctx.path("recommend_calibration.png"))
    n_held = sum(str(p.get("split", "")) == "heldout" for p in points)
    return H.figure(fig, f"The calibration grid ({len(points)} trained probes, {n_held} held out: filled): the "
                         "calibrated score at init against the trained accuracy, coloured by calibrated verdict.")


def section(ctx: Any) -> str:
    """The section's HTML: per probed group the ranking (:func:`_group`), then the
    calibration figure."""
    parts = []
    for i, (model, dataset) in enumerate(ctx.groups):
        parts.append(ctx.heading(i, model, dataset) + _group(ctx, model, dataset))
    parts.append('<p class="note">Scores are <code>initlab.probe.calibration.predict</code>\'s on the probe the '
                 'study recorded at init (its first training images; the calibration was fitted on probes of '
                 'Gaussian inputs). <code>initlab recommend</code> ranks a model\'s schemes the same way.</p>')
    parts.append(_calibration(ctx))
    return "".join(parts)
