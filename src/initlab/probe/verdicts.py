"""Verdicts: what is wrong with a network at initialization, where it starts, and why.

Each rule looks at the per-layer measurements of one scheme and reports the first layer
where a threshold (:class:`Thresholds`) is crossed, with the number that crossed it:

=====================  ==========================================================================
kind                   rule (defaults)
=====================  ==========================================================================
vanishing_signal       ``Var(z_l) / Var(x) < 1/100`` (or exactly 0) for the first layer ``l``
exploding_signal       ``Var(z_l) / Var(x) > 100`` or non-finite (overflow)
vanishing_gradients    ``||dL/dz_l|| / ||dL/dz_L|| < 1/100`` going back from the output layer
                       ``L``; *zero gradients* when it is exactly 0 (constant inits)
exploding_gradients    that ratio ``> 100`` or non-finite
dead_units             at least 90% of a layer's (post-activation) outputs exactly 0
saturation             at least 25% of a bounded activation's outputs within 1% of the range
                       ``hi - lo`` from a bound (``|tanh| >= 0.98``)
unbroken_symmetry      some units have identical incoming weights and bias
=====================  ==========================================================================

Forward signals are compared with the input's variance ``Var(x)`` (the second moment ``E[x^2]``
when that is 0); a factor of 100 in variance is a factor of 10 in scale. Gradients are
compared with the gradient at the output layer, which the loss fixes. Sources: Glorot &
Bengio 2010 (vanishing signals, saturation), He et al. 2015 (variance per layer for ReLU),
Schoenholz et al. 2017 (exponential vanishing/explosion off the critical line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from initlab.errors import InitlabError
from initlab.probe.result import LayerProbe, Verdict


@dataclass(frozen=True)
class Thresholds:
    """Where verdicts trigger (see the module table)."""

    signal_factor: float = 100.0
    gradient_factor: float = 100.0
    dead_fraction: float = 0.9
    saturated_fraction: float = 0.25
    #: the saturation band: within ``margin * (hi - lo)`` of a bound
    saturation_margin: float = 0.01

    def __post_init__(self) -> None:
        for name in ("signal_factor", "gradient_factor"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 1 and math.isfinite(v)):
                raise InitlabError(f"{name} must be a finite number > 1, got {v!r}")
        for name in ("dead_fraction", "saturated_fraction", "saturation_margin"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 1):
                raise InitlabError(f"{name} must be in (0, 1], got {v!r}")


def _where(layer: LayerProbe) -> str:
    return f"layer {layer.index} ({layer.name})"


def _signal(layers: Sequence[LayerProbe], input_var: float, t: Thresholds) -> Verdict | None:
    ref = input_var if input_var > 0 and math.isfinite(input_var) else 1.0
    last = layers[-1] if layers else None
    per_layer = ""
    if last is not None and math.isfinite(last.pre_var):
        per_layer = f"; {last.pre_var / ref:.3g}x at the last layer, {last.index}"
    for layer in layers:
        v = layer.pre_var
        if not math.isfinite(v):
            return Verdict("exploding_signal", layer.index, layer.name, v,
                           f"exploding signal: the pre-activations of {_where(layer)} overflow "
                           f"(variance {v}){per_layer}")
        ratio = v / ref
        if ratio > t.signal_factor:
            return Verdict("exploding_signal", layer.index, layer.name, ratio,
                           f"exploding signal: Var(z) at {_where(layer)} is {ratio:.3g}x the "
                           f"input's (threshold {t.signal_factor:g}x){per_layer}")
        if v == 0.0:
            return Verdict("vanishing_signal", layer.index, layer.name, 0.0,
                           f"vanishing signal: the pre-activations are exactly 0 from {_where(layer)} on")
        if ratio < 1.0 / t.signal_factor:
            return Verdict("vanishing_signal", layer.index, layer.name, ratio,
                           f"vanishing signal: Var(z) at {_where(layer)} is {ratio:.3g}x the "
                           f"input's (threshold 1/{t.signal_factor:g}){per_layer}")
    return None


def _gradients(layers: Sequence[LayerProbe], loss: float, t: Thresholds) -> Verdict | None:
    if not layers:
        return None
    out = layers[-1]
    ref = out.grad_norm
    if not math.isfinite(loss):
        return Verdict("exploding_gradients", out.index, out.name, loss,
                       f"exploding gradients: the loss is {loss} (the forward pass overflowed), so every "
                       f"gradient is non-finite from the output, {_where(out)}, down")
    if math.isnan(ref) or ref == 0.0:
        return None  # no gradient measured, or the loss is flat at the output
    if not math.isfinite(ref):
        return Verdict("exploding_gradients", out.index, out.name, ref,
                       f"exploding gradients: dL/dz is non-finite already at the output, {_where(out)}")
    hidden = [layer for layer in layers[:-1] if not math.isnan(layer.grad_norm)]
    if hidden and all(layer.grad_norm == 0.0 for layer in hidden):
        last = hidden[-1]
        return Verdict("vanishing_gradients", last.index, last.name, 0.0,
                       f"zero gradients: dL/dz is exactly 0 in all {len(hidden)} hidden layers "
                       f"(from {_where(last)} down): no gradient reaches them")
    first = hidden[0] if hidden else None
    per_layer = ""
    if first is not None and math.isfinite(first.grad_norm):
        per_layer = f"; {first.grad_norm / ref:.3g}x at the first layer"
    for layer in reversed(hidden):
        g = layer.grad_norm
        ratio = g / ref
        if not math.isfinite(g) or ratio > t.gradient_factor:
            return Verdict("exploding_gradients", layer.index, layer.name, ratio,
                           f"exploding gradients: ||dL/dz|| at {_where(layer)} is {ratio:.3g}x the "
                           f"output layer's (threshold {t.gradient_factor:g}x){per_layer}")
        if g == 0.0:
            return Verdict("vanishing_gradients", layer.index, layer.name, 0.0,
                           f"zero gradients: dL/dz is exactly 0 from {_where(layer)} down")
        if ratio < 1.0 / t.gradient_factor:
            return Verdict("vanishing_gradients", layer.index, layer.name, ratio,
                           f"vanishing gradients: ||dL/dz|| at {_where(layer)} is {ratio:.3g}x the "
                           f"output layer's (threshold 1/{t.gradient_factor:g}){per_layer}")
    return None


def _dead(layers: Sequence[LayerProbe], t: Thresholds) -> Verdict | None:
    for layer in layers:
        z = layer.zero_fraction
        if math.isfinite(z) and z >= t.dead_fraction:
            what = f"the {layer.activation} outputs" if layer.activation != "-" else "the outputs"
            return Verdict("dead_units", layer.index, layer.name, z,
                           f"dead units: {z:.0%} of {what} of {_where(layer)} are exactly 0 "
                           f"({layer.dead_fraction:.0%} of its units are 0 for every input)")
    return None


def _saturation(layers: Sequence[LayerProbe], t: Thresholds) -> Verdict | None:
    for layer in layers:
        s = layer.saturated_fraction
        if math.isfinite(s) and s >= t.saturated_fraction:
            return Verdict("saturation", layer.index, layer.name, s,
                           f"saturation: {s:.0%} of the {layer.activation} outputs of {_where(layer)} "
                           f"are within {t.saturation_margin:.0%} of the range from a bound, where its "
                           "derivative nearly vanishes")
    return None


def _symmetry(layers: Sequence[LayerProbe]) -> Verdict | None:
    for layer in layers:
        if layer.duplicate_units > 0:
            d = layer.duplicate_units
            return Verdict("unbroken_symmetry", layer.index, layer.name, float(d),
                           f"unbroken symmetry: {d} of the {layer.units} units of {_where(layer)} "
                           "duplicate another unit (identical weights and bias), so they get identical "
                           "gradients and never differentiate")
    return None


def diagnose(layers: Sequence[LayerProbe], *, input_var: float, loss: float = 0.0,
             thresholds: Thresholds = Thresholds()) -> list[Verdict]:
    """All verdicts for one scheme's measured *layers* (``input_var``: the input's variance,
    ``loss``: the loss of the measured batch), in :data:`~initlab.probe.result.KINDS` order."""
    found = [
        _signal(layers, input_var, thresholds),
        _gradients(layers, loss, thresholds),
        _dead(layers, thresholds),
        _saturation(layers, thresholds),
        _symmetry(layers),
    ]
    return [v for v in found if v is not None]
