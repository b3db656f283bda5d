"""Activation modules the probe recognizes: which are elementwise, and their bounds.

A probed *layer* is a Linear/Conv module; its *post-activation* output is the output of the
first elementwise activation module that runs after it and before the next layer (see
:mod:`initlab.probe.capture`). Elementwise here means ``y_i = phi(x_i)``, so the same
``phi`` can be pushed through the mean-field integrals (:mod:`initlab.probe.meanfield`).

Bounded activations have a *saturation* band: the fraction of outputs within
``margin * (hi - lo)`` of a bound (default margin 1%: ``|tanh| >= 0.98``, i.e. ``|z| >= 2.3``;
``sigmoid <= 0.01`` or ``>= 0.99``, i.e. ``|z| >= 4.6``), where ``phi'`` is so small that
gradients through the unit nearly vanish (Glorot & Bengio 2010, Sec. 3).

``nn.Identity`` directly after a layer counts as the ``linear`` activation (that is how
:func:`initlab.engine.models.build_mlp` builds linear networks). Activations applied with
``torch.nn.functional`` inside ``forward`` are invisible to hooks: for such layers the
probe reports no post-activation statistics and no mean-field prediction.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from initlab.engine.models import ACTIVATIONS
from initlab.errors import InitlabError, UnknownNameError, suggest

#: Module classes treated as elementwise activations.
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
    nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.Identity,
)


def is_activation(module: nn.Module) -> bool:
    """Whether *module* is one of the elementwise activation classes in :data:`ELEMENTWISE`."""
    return isinstance(module, ELEMENTWISE)


def bounds(module: nn.Module) -> tuple[float, float] | None:
    """``(lo, hi)`` for bounded activations (tanh, sigmoid, hardtanh, ...), else ``None``."""
    if isinstance(module, (nn.Tanh, nn.Softsign)):
        return (-1.0, 1.0)
    if isinstance(module, (nn.Sigmoid, nn.Hardsigmoid)):
        return (0.0, 1.0)
    if isinstance(module, nn.Hardtanh):  # includes ReLU6
        return (float(module.min_val), float(module.max_val))
    return None


def saturated_fraction(y: torch.Tensor, lohi: tuple[float, float], margin: float = 0.01) -> float:
    """Fraction of entries of *y* closer than ``margin * (hi - lo)`` to ``lo`` or ``hi``."""
    lo, hi = lohi
    center, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    # |y - center| > half - band, counted as sum(sign(relu(.))): cheaper than a bool sum
    a = (y.detach().float() - center).abs_()
    a.sub_(half - margin * (hi - lo)).clamp_(min=0.0)
    return float(torch.sign(a).sum()) / max(y.numel(), 1)


def label(module: nn.Module | None) -> str:
    """Short name of an activation module: ``relu``, ``tanh``, ``leaky_relu(0.01)``, ..."""
    if module is None:
        return "-"
    if isinstance(module, nn.Identity):
        return "linear"
    if isinstance(module, nn.LeakyReLU):
        return f"leaky_relu({module.negative_slope:g})"
    name = type(module).__name__
    known = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "SELU": "selu",
             "GELU": "gelu", "SiLU": "silu"}
    return known.get(name, name.lower())


Phi = Callable[[torch.Tensor], torch.Tensor]


def phi_of(activation: "str | nn.Module | Phi") -> Phi:
    """An elementwise function ``phi`` from a name in :data:`initlab.engine.models.ACTIVATIONS`
    (``relu``, ``tanh``, ``linear``, ``sigmoid``, ``selu``, ``gelu``, ``silu``,
    ``leaky_relu``), an activation module, or any callable on tensors."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise UnknownNameError(
                f"unknown activation {activation!r}{suggest(activation, list(ACTIVATIONS))}; "
                f"choose one of {', '.join(ACTIVATIONS)}"
            )
        return ACTIVATIONS[activation]()
    if isinstance(activation, nn.Module) and not is_activation(activation):
        raise InitlabError(
            f"{type(activation).__name__} is not an elementwise activation; mean-field theory "
            f"needs one of {', '.join(c.__name__ for c in ELEMENTWISE)}"
        )
    if not callable(activation):
        raise InitlabError(f"activation must be a name, a module or a callable, got {activation!r}")
    return activation
