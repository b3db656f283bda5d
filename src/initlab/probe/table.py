"""Terminal report of a probe: a per-layer table and the verdicts for each scheme, then a
summary across schemes.

Deep networks show a sample of layers (the first three, evenly spaced ones, the last two)
unless ``all_layers`` is set. Columns: ``std(z)`` the pre-activation std, ``ratio`` the
variance ratio to the previous layer, ``mf var`` the mean-field prediction of ``Var(z)``,
``zero%`` the outputs exactly 0, ``dead%`` the units 0 for every input, ``sat%`` the
saturated outputs, ``|dL/dz|`` and ``|dL/dW|`` the gradient norms, ``dup`` the duplicate
units and ``erank`` the effective rank of the weight.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # result.py imports this module for its methods
    from initlab.probe.result import ProbeResult, SchemeProbe


MAX_ROWS = 24  #: show every layer up to this many
SAMPLE_ROWS = 12  #: rows shown for deeper networks


def _g(x: Any, spec: str = ".3g", nan: str = "-") -> str:
    """Format a number; ``nan`` is shown as *nan* ("-" where the value does not apply,
    "nan" where it means an overflowed computation)."""
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return nan
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return format(x, spec)


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.0f}"


def sample_rows(n: int, limit: int = MAX_ROWS, sample: int = SAMPLE_ROWS) -> list[int]:
    """Indices of the rows shown for *n* layers: all when ``n <= limit``, else ``sample``
    rows: the first three, evenly spaced ones and the last two."""
    if n <= limit:
        return list(range(n))
    middle = max(sample - 5, 0)
    inner = [3 + round((k + 1) * (n - 5) / (middle + 1)) - 1 for k in range(middle)]
    return sorted({0, 1, 2, n - 2, n - 1, *(i for i in inner if 2 < i < n - 2)})


def _mean_field_line(sp: SchemeProbe) -> str:
    mf = sp.mean_field
    if mf is None:
        return ""
    head = (f"  mean field: {mf.activation}, sigma_w^2={mf.sigma_w2:.3g}, sigma_b^2={mf.sigma_b2:.3g}: "
            f"q*={_g(mf.q_star)}, chi_1={mf.chi_1:.3g} ({mf.phase})")
    if mf.phase == "critical":
        return head + ": at the edge of chaos, Var(z) and gradients change slowly with depth"
    if math.isinf(mf.q_star):
        return head + ", no fixed point: Var(z) grows without bound"
    return head + f", depth scale xi_c={_g(mf.xi_c)} layers"


def _prediction(sp: SchemeProbe, optimizer: str) -> Any:
    from initlab.probe.calibration import predict

    return predict(sp, optimizer=optimizer)


def render_scheme(sp: SchemeProbe, *, all_layers: bool = False, optimizer: str = "adam") -> str:
    """The block of one scheme: the measurements, then the calibrated prediction for
    *optimizer* (:mod:`~initlab.probe.calibration`) and the raw measured verdicts."""
    lines = [f"{sp.scheme}: per layer Var(z) x{_g(sp.signal_rate)} forward, |dL/dz|^2 "
             f"x{_g(sp.gradient_rate)} backward, loss {_g(sp.loss, '.4g', nan='nan')}"]
    mf = _mean_field_line(sp)
    if mf:
        lines.append(mf)
    if sp.jacobian_singular_values:
        flat = [v for row in sp.jacobian_singular_values for v in row if math.isfinite(v)]
        if flat:
            lines.append(f"  Jacobian singular values at {len(sp.jacobian_singular_values)} inputs: "
                         f"min {_g(min(flat))}, max {_g(max(flat))}")
    head = (f"  {'#':>4} {'layer':<14} {'act':<8} {'std(z)':>9} {'ratio':>7} {'mf var':>9} {'zero%':>5} "
            f"{'dead%':>5} {'sat%':>4} {'|dL/dz|':>9} {'|dL/dW|':>9} {'dup':>4} {'erank':>6}")
    lines.append(head)
    rows = range(len(sp.layers)) if all_layers else sample_rows(len(sp.layers))
    prev = -1
    for i in rows:
        if i != prev + 1:
            lines.append(f"  {'...':>4}")
        prev = i
        layer = sp.layers[i]
        name = layer.name if len(layer.name) <= 14 else "..." + layer.name[-11:]
        lines.append(
            f"  {layer.index:>4} {name:<14} {layer.activation[:8]:<8} {_g(layer.pre_std, nan='nan'):>9} "
            f"{_g(layer.var_ratio):>7} {_g(layer.predicted_var):>9} {_pct(layer.zero_fraction):>5} "
            f"{_pct(layer.dead_fraction):>5} {_pct(layer.saturated_fraction):>4} "
            f"{_g(layer.grad_norm, nan='nan'):>9} {_g(layer.weight_grad_norm, nan='nan'):>9} "
            f"{layer.duplicate_units:>4} {_g(layer.effective_rank, '.4g'):>6}"
        )
    if not all_layers and len(rows) < len(sp.layers):
        lines.append(f"  (showing {len(rows)} of {len(sp.layers)} layers; all layers: --all-layers)")
    pred = _prediction(sp, optimizer)
    mark = "ok" if pred.ok else "!"
    lines.append(f"  {mark} predicted: {pred.verdict.replace('_', ' ')} (score {pred.score:.2f}): {pred.predicts}")
    lines.extend(f"      {r}" for r in pred.reasons)
    if sp.verdicts:
        lines.extend(f"  measured: {v.message}" for v in sp.verdicts)
    else:
        lines.append("  measured: no vanishing or exploding signal or gradients, dead units, saturation "
                     "or unbroken symmetry past the raw thresholds")
    return "\n".join(lines)


def render(result: ProbeResult, *, all_layers: bool = False, optimizer: str = "adam") -> str:
    """The whole report: header, one block per scheme, summary table. ``predicted`` is the
    calibrated verdict for training with *optimizer* (``"adam"`` or ``"sgd"``), ``measured``
    the raw thresholds' (:mod:`~initlab.probe.verdicts`)."""
    from initlab.probe.calibration import check_optimizer

    optimizer = check_optimizer(optimizer)
    src = ("Gaussian noise" if result.inputs == "gaussian" else "data") + \
          f" {list(result.input_shape)}"
    parts = [f"probe of {result.model} on {result.n_inputs} inputs ({src}), seed {result.seed}", ""]
    for sp in result.schemes:
        parts.extend([render_scheme(sp, all_layers=all_layers, optimizer=optimizer), ""])
    width = max([len(s.scheme) for s in result.schemes] + [6])
    head = f"predicted ({optimizer})"
    parts.append(f"{'scheme':<{width}}  {'Var(z)/layer':>12}  {'grad^2/layer':>12}  {'score':>5}  {head:<20}  measured")
    for sp in result.schemes:
        kinds = ", ".join(v.kind.replace("_", " ") for v in sp.verdicts) or "ok"
        pred = _prediction(sp, optimizer)
        parts.append(f"{sp.scheme:<{width}}  {_g(sp.signal_rate):>12}  {_g(sp.gradient_rate):>12}  "
                     f"{pred.score:>5.2f}  {pred.verdict.replace('_', ' '):<20}  {kinds}")
    return "\n".join(parts)
