"""Recommended gains per nonlinearity: the factor g in ``std = g / sqrt(fan)``.

A gain keeps the second moment of the signal constant through a layer followed by the
nonlinearity ``phi``: ``g^2 = 1 / E[phi(z)^2]`` for ``z ~ N(0, 1)`` when the layer's input is
the previous layer's *post-activation* output (He et al. 2015 derive ``E[relu(z)^2] = 1/2``).

==============  ===========================  ==================================================
nonlinearity    gain                         source
==============  ===========================  ==================================================
linear, conv*   1                            Glorot & Bengio 2010
sigmoid         1                            torch.nn.init.calculate_gain
tanh            5/3                          torch (empirical; tanh'(0)=1 but tanh contracts)
relu            sqrt(2)                      He et al. 2015
leaky_relu(a)   sqrt(2 / (1 + a^2))          He et al. 2015
selu            3/4                          torch (Klambauer et al. 2017 use 1 with lecun_normal
                                             for self-normalization; torch's 3/4 is its choice)
gelu            1/sqrt(E[gelu(z)^2]) = 1.5335    initlab: same rule as relu's derivation,
silu            1/sqrt(E[silu(z)^2]) = 1.6765    Gauss-Hermite quadrature, documented here
==============  ===========================  ==================================================

For gelu and silu there is no framework convention; the values above are the exact
second-moment-preserving gains under unit-variance Gaussian pre-activations, the rule
that gives sqrt(2) for ReLU. ``initlab schemes`` prints them.
"""

from __future__ import annotations

import math
from functools import lru_cache

from initlab.errors import UnknownNameError, suggest

NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu", "gelu", "silu",
)


@lru_cache(maxsize=None)
def _second_moment_gain(name: str) -> float:
    """1/sqrt(E[phi(z)^2]), z ~ N(0,1), by 80-point Gauss-Hermite quadrature."""
    import numpy as np

    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    if name == "gelu":
        from math import erf

        phi = np.array([0.5 * t * (1 + erf(t / math.sqrt(2))) for t in x])
    elif name == "silu":
        phi = x / (1 + np.exp(-x))
    else:  # pragma: no cover - guarded by gain()
        raise KeyError(name)
    return float(1.0 / math.sqrt(float(np.sum(w * phi * phi))))


def gain(nonlinearity: str = "linear", param: float | None = None) -> float:
    """The recommended gain for *nonlinearity* (see the module table).

    ``param`` is leaky_relu's negative slope (default 0.01, as in torch).
    """
    name = nonlinearity.lower()
    if name in ("linear", "identity") or name.startswith("conv"):
        if name not in NONLINEARITIES and name not in ("identity",):
            raise UnknownNameError(f"unknown nonlinearity {nonlinearity!r}{suggest(name, NONLINEARITIES)}")
        return 1.0
    if name == "sigmoid":
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if name == "selu":
        return 3.0 / 4.0
    if name in ("gelu", "silu"):
        return _second_moment_gain(name)
    raise UnknownNameError(
        f"unknown nonlinearity {nonlinearity!r}{suggest(name, NONLINEARITIES)}; "
        f"known: {', '.join(NONLINEARITIES)}"
    )
