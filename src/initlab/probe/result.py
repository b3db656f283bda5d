"""Probe results: per layer, per scheme, per probe; JSON-ready.

In ``to_dict`` output non-finite floats are written as the strings ``"inf"``, ``"-inf"``
and ``"nan"`` (JSON has no such numbers), so the output is strict JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from initlab.errors import UnknownNameError, suggest
from initlab.probe.meanfield import MeanField


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _num(obj)


@dataclass
class LayerProbe:
    """Measurements of one layer (see :mod:`initlab.probe.capture` for definitions).

    ``var_ratio`` is ``Var(z_l) / Var(z_{l-1})`` for the pre-activation outputs ``z`` of
    consecutive layers (``Var(z_1) / Var(x)`` for the first). ``grad_norm`` is
    ``||dL/dz_l||`` and ``weight_grad_norm`` ``||dL/dW_l||`` (Frobenius, mean cross-entropy
    over the batch). ``sigma_w2 = fan_in * E[W^2]`` and ``sigma_b2 = E[b^2]`` are the
    realized mean-field parameters; ``predicted_var`` is the mean-field ``q^l`` (``nan``
    when the model is not a plain fully connected chain).
    """

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    activation: str
    units: int
    pre_mean: float
    pre_std: float
    post_mean: float
    post_std: float
    zero_fraction: float
    dead_fraction: float
    saturated_fraction: float
    var_ratio: float
    grad_norm: float
    weight_grad_norm: float
    duplicate_units: int
    effective_rank: float
    sigma_w2: float
    sigma_b2: float
    predicted_var: float = math.nan

    @property
    def pre_var(self) -> float:
        return self.pre_std**2

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["shape"] = list(self.shape)
        d["pre_var"] = self.pre_var
        return _clean(d)


#: Verdict kinds, in the order they are checked.
KINDS = (
    "vanishing_signal", "exploding_signal", "vanishing_gradients", "exploding_gradients",
    "dead_units", "saturation", "unbroken_symmetry",
)


@dataclass(frozen=True)
class Verdict:
    """One finding: its kind (:data:`KINDS`), the layer where it starts, the number behind
    it, and a one-line explanation."""

    kind: str
    layer: int
    layer_name: str
    value: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return _clean({"kind": self.kind, "layer": self.layer, "layer_name": self.layer_name,
                       "value": self.value, "message": self.message})


@dataclass
class SchemeProbe:
    """The probe of one scheme.

    ``signal_rate`` is the per-layer factor of ``Var(z)`` going forward and
    ``gradient_rate`` that of ``||dL/dz||^2`` going backward, each the exponential of a
    least-squares slope through the logs over all layers (single consecutive ratios
    fluctuate by tens of percent at width 256; the fit averages that out). For a fully
    connected net both estimate the mean-field ``chi_1`` when ``q*`` is stable.
    """

    scheme: str
    layers: list[LayerProbe]
    verdicts: list[Verdict]
    input_var: float
    input_second_moment: float
    loss: float
    signal_rate: float
    gradient_rate: float
    jacobian_singular_values: list[list[float]] | None = None
    mean_field: MeanField | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No verdicts."""
        return not self.verdicts

    def verdict(self, kind: str) -> Verdict | None:
        """The verdict of *kind*, or ``None``."""
        return next((v for v in self.verdicts if v.kind == kind), None)

    def column(self, name: str) -> list[Any]:
        """One field of every layer, e.g. ``column("pre_std")``."""
        return [getattr(layer, name) for layer in self.layers]

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "scheme": self.scheme, "ok": self.ok,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "input_var": self.input_var, "input_second_moment": self.input_second_moment,
            "loss": self.loss, "signal_rate": self.signal_rate, "gradient_rate": self.gradient_rate,
            "mean_field": self.mean_field.to_dict() if self.mean_field else None,
            "jacobian_singular_values": self.jacobian_singular_values,
            "seconds": self.seconds,
            "layers": [layer.to_dict() for layer in self.layers],
        })


@dataclass
class ProbeResult:
    """The probe of one model under several schemes."""

    model: str
    inputs: str
    n_inputs: int
    input_shape: tuple[int, ...]
    seed: int
    schemes: list[SchemeProbe] = field(default_factory=list)

    def __getitem__(self, scheme: str) -> SchemeProbe:
        for s in self.schemes:
            if s.scheme == scheme:
                return s
        names = [s.scheme for s in self.schemes]
        raise UnknownNameError(f"no probe of scheme {scheme!r}{suggest(scheme, names)}; probed: {', '.join(names)}")

    def __iter__(self):
        return iter(self.schemes)

    def __len__(self) -> int:
        return len(self.schemes)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.schemes)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "inputs": self.inputs, "n_inputs": self.n_inputs,
                "input_shape": list(self.input_shape), "seed": self.seed,
                "schemes": [s.to_dict() for s in self.schemes]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self, *, all_layers: bool = False) -> str:
        """The terminal report (see :func:`initlab.probe.table.render`)."""
        from initlab.probe.table import render

        return render(self, all_layers=all_layers)

    def figures(self) -> dict[str, Any]:
        """Matplotlib figures (see :func:`initlab.probe.figures.probe_figures`)."""
        from initlab.probe.figures import probe_figures

        return probe_figures(self)

    def save_figures(self, directory: str | Path) -> list[Path]:
        """Write the figures as PNG files into *directory*; returns their paths."""
        from initlab.probe.figures import save_probe_figures

        return save_probe_figures(self, directory)
