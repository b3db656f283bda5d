"""The report's recommendation section: the calibrated ranking of each probed group, beside
what the study trained, and the calibration figure.

For each ``(model, dataset)`` group whose probe at init the study recorded, the schemes are
ranked by the calibrated score (:func:`initlab.probe.calibration.predict` for the group's
optimizer; :func:`rank`) and shown with the calibrated verdict, what it predicts, and the
scheme's final validation accuracy in the study (mean ± sd over its finished seeds). The
line under the table says whether the top-ranked scheme landed within the seed-to-seed
spread of the best trained one (:func:`within_spread`, the same rule as
``initlab.recommend``'s), and the group's calibration figure plots each scheme's score
against its trained accuracy, coloured by calibrated verdict
(:func:`initlab.probe.figures.calibration_figure`); the section ends with the calibration
grid's held-out points (:func:`initlab.probe.calibration.calibration_points`), the
reference the study's points are read against.

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

__all__ = ["deviation", "rank", "section", "within_spread"]


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


def _group(ctx: Any, index: int, model: str, dataset: str) -> str:
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
    points = [{"score": float(p.score), "accuracy": statistics.fmean(trained[sp.scheme]), "verdict": p.verdict,
               "optimizer": optimizer} for sp, p in ranked if trained[sp.scheme]]
    if points:
        out += _figure(ctx, index, ctx.title(model, dataset), points)
    return out


def _figure(ctx: Any, i: int, title: str, points: list[dict[str, Any]]) -> str:
    """The group's score vs trained accuracy, coloured by calibrated verdict
    (:func:`initlab.probe.figures.save_calibration_figure`), as an inline figure."""
    from initlab.probe.figures import save_calibration_figure
    from initlab.report.plotting import load_png

    path = save_calibration_figure(points, ctx.path(f"g{i + 1}_recommend_calibration.png"),
                                   title=f"Calibrated score at init vs trained accuracy: {title}")
    fig = load_png(Path(path), f"calibrated score vs trained accuracy, {title}")
    ctx.figures.append(fig)
    return H.figure(fig, "Each scheme of this study: its calibrated score at init against its final validation "
                         "accuracy (mean over finished seeds), coloured by calibrated verdict. A calibrated "
                         "probe puts the schemes that trained well on the right.")


def _grid_figure(ctx: Any) -> str:
    """The calibration grid's held-out points (:func:`initlab.probe.calibration.calibration_points`,
    shipped with the calibration): the figure the study's own points are read against."""
    from initlab.probe.calibration import calibration_points
    from initlab.probe.figures import save_calibration_figure
    from initlab.report.plotting import load_png

    try:
        points = calibration_points(split="heldout")
    except Exception as exc:  # noqa: BLE001 - an old or missing calibration: the section says so
        return f'<p class="note">No calibration grid to draw ({H.esc(type(exc).__name__)}: {H.esc(exc)}).</p>'
    if not points:
        return '<p class="note">The calibration ships no held-out grid points to draw.</p>'
    path = save_calibration_figure(points, ctx.path("recommend_calibration_grid.png"),
                                   title="The calibration grid's held-out models")
    fig = load_png(Path(path), "calibration grid: score at init vs trained accuracy, held-out models")
    ctx.figures.append(fig)
    return H.figure(fig, f"The calibration's held-out grid ({len(points)} probed-then-trained models and schemes): "
                         "the calibrated score at init against the accuracy after the calibration budget, coloured "
                         "by calibrated verdict.")


def section(ctx: Any) -> str:
    """The section's HTML: per probed group the ranking (:func:`_group`), then the
    calibration figure."""
    parts = []
    for i, (model, dataset) in enumerate(ctx.groups):
        parts.append(ctx.heading(i, model, dataset) + _group(ctx, i, model, dataset))
    parts.append('<p class="note">Scores are <code>initlab.probe.calibration.predict</code>\'s on the probe the '
                 'study recorded at init (its first training images; the calibration was fitted on probes of '
                 'Gaussian inputs). <code>initlab recommend</code> ranks a model\'s schemes the same way.</p>')
    parts.append(_grid_figure(ctx))
    return "".join(parts)
