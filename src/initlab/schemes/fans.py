"""Fan-in and fan-out of weight tensors, in PyTorch's and Keras' kernel layouts.

*fan_in* is the number of inputs that feed one output unit, *fan_out* the number of
outputs one input unit feeds. Variance-scaling schemes divide by one of them.

Layouts (``receptive`` = product of the kernel's spatial sizes):

=====================  ===========================  =========================  ==========================
layer                  torch weight shape           keras kernel shape         fan_in / fan_out
=====================  ===========================  =========================  ==========================
Linear / Dense         (out, in)                    (in, out)                  in / out
ConvNd                 (out, in/groups, *k)         (*k, in/groups, out)       in/groups*receptive / out*receptive
ConvTransposeNd        (in, out/groups, *k)         (*k, out, in)              see below
Embedding              (num, dim)                   (num, dim)                 torch: dim / num (tensor rule);
                                                                               keras/jax: num / dim
RNN/LSTM/GRU gates     (G*hidden, in) per layer     (in, G*units)              torch: in / hidden, per gate
                                                                               block; keras: in / G*units
=====================  ===========================  =========================  ==========================

For a plain tensor, :func:`fans` follows ``torch.nn.init._calculate_fan_in_and_fan_out``
(torch layout: dim 1 is the input side) or Keras' ``compute_fans`` (keras layout: the last
two dims are (in, out)), so that tensor-level results match the framework exactly.

Layer-aware rules (:mod:`initlab.layers`) refine two cases: a **transposed convolution**'s
weight is stored (in, out/groups, *k), so the tensor rule calls ``out/groups*receptive``
its fan_in; torch and Keras do that (Keras' Conv*DTranspose kernel is ``(*k, out, in)``), and
initlab keeps it for parity (documented, and the record shows the fans used). Flax's
ConvTranspose kernel is ``(*k, in, out)`` (flax/linen/linear.py, ``transpose_kernel=False``), so
JAX's rule gives ``in*receptive``: the ``jax:`` names and ``flax_default`` use that (layout
``transposed``). **Recurrent** weights are stacked gate blocks
(G = 4 for LSTM, 3 for GRU, 1 for RNN); initlab initializes each (hidden, in) block on its
own, so fan_out is ``hidden``, not ``G*hidden`` as Keras' whole-kernel rule gives. The
``keras:`` names (``layout=keras``) follow Keras on both (the Embedding layout and the whole
recurrent kernel); the ``jax:`` names (``layout=jax``) follow JAX/Flax: the Embedding layout,
per-gate recurrent kernels (Flax's cells have one Dense per gate), and a ConvTranspose
kernel's fans ``in*receptive / out*receptive`` (Flax's ``(*k, in, out)`` kernel): see
:mod:`initlab.schemes.dialects`.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

from initlab.errors import InitlabError

Layout = Literal["torch", "keras", "transposed"]
Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
#: Keras 3's VarianceScaling modes (keras/src/initializers/random_initializers.py checks
#: ``mode in {"fan_in", "fan_out", "fan_avg"}``); ``fan_geo_avg`` is JAX's only.
KERAS_MODES = ("fan_in", "fan_out", "fan_avg")


def fans(shape: Sequence[int], layout: Layout = "torch") -> tuple[int, int]:
    """(fan_in, fan_out) of a weight tensor of *shape*.

    torch layout: ``fan_in = shape[1] * prod(shape[2:])``, ``fan_out = shape[0] * prod(shape[2:])``.
    keras layout: ``fan_in = shape[-2] * prod(shape[:-2])``, ``fan_out = shape[-1] * prod(shape[:-2])``.
    transposed: torch's shape with the two swapped, ``fan_in = shape[0] * prod(shape[2:])``,
    ``fan_out = shape[1] * prod(shape[2:])``: a torch ConvTranspose weight ``(in, out, *k)`` read as
    Flax reads its ``(*k, in, out)`` ConvTranspose kernel (``transpose_kernel=False``).
    Raises InitlabError for 0-d and 1-d shapes (a bias or a scalar has no fans).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise InitlabError(
            f"a fan-based scheme needs a weight of at least 2 dims, got shape {list(shape)}; "
            "initialize biases and scalars with a constant/uniform/normal scheme instead"
        )
    if layout == "torch":
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    if layout == "keras":
        receptive = math.prod(shape[:-2])
        return shape[-2] * receptive, shape[-1] * receptive
    if layout == "transposed":
        receptive = math.prod(shape[2:])
        return shape[0] * receptive, shape[1] * receptive
    raise InitlabError(f"unknown layout {layout!r}; use 'torch', 'keras' or 'transposed'")


def fan_for_mode(fan_in: int, fan_out: int, mode: str) -> float:
    """The fan that ``mode`` names: fan_in, fan_out, their mean (Glorot's ``fan_avg``) or
    their geometric mean ``sqrt(fan_in * fan_out)`` (``fan_geo_avg``, JAX's
    ``jax/_src/nn/initializers.py`` variance_scaling: ``denominator = (fan_in * fan_out) ** 0.5``)."""
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    if mode == "fan_geo_avg":
        return math.sqrt(float(fan_in) * float(fan_out))
    raise InitlabError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
