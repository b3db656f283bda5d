"""What a framework does on each layer type: dialect fans and the frameworks' layer defaults.

A scheme's law is stated for a weight *tensor*; which tensor, and with which fans, depends on
the framework. :func:`layer_rule` gives, for one weight of one layer kind, what differs from
initlab's torch conventions (the table of :mod:`initlab.schemes.fans`, which ``torch:`` and
canonical names keep):

**Keras / JAX fans** (schemes with ``layout=keras``: every ``keras:`` fan-based name and
``keras:orthogonal``; ``layout=jax``: every ``jax:`` fan-based name and ``jax:orthogonal``):

- Embedding: the table is ``(num_embeddings, dim)`` in both frameworks and Keras'
  ``compute_fans`` (keras/src/initializers/random_initializers.py) reads a 2-d shape as
  ``(fan_in, fan_out)``; JAX's ``_compute_fans`` (jax/_src/nn/initializers.py) with its
  default ``in_axis=-2, out_axis=-1`` does the same: ``fan_in = num_embeddings``,
  ``fan_out = dim`` (torch's tensor rule gives the reverse).
- ConvTranspose (``layout=jax`` only): Flax's ConvTranspose kernel is ``(*k, in, out)``
  (flax/linen/linear.py, ``transpose_kernel=False``), so JAX's ``_compute_fans`` gives
  ``fan_in = in * receptive``; torch stores ``(in, out, *k)`` and its tensor rule (and Keras,
  whose kernel is ``(*k, out, in)``) gives ``out * receptive``: the ``transposed`` fan layout.
- RNN / LSTM / GRU: Keras' cells (keras/src/layers/rnn/lstm.py, gru.py, simple_rnn.py) hold
  one ``kernel`` of shape ``(in, G*units)`` and one ``recurrent_kernel`` ``(units, G*units)``
  (G = 4 for LSTM, 3 for GRU, 1 for SimpleRNN) and initialize each as **one matrix**:
  fans ``(in, G*u)`` and ``(u, G*u)``, and an orthogonal recurrent kernel is one orthogonal
  ``(u, 4u)`` matrix (rows orthonormal), not G orthogonal ``(u, u)`` blocks. initlab draws
  torch's ``weight_ih`` ``(G*u, in)`` / ``weight_hh`` ``(G*u, u)`` -- the transposes -- whole,
  which gives the same fans and the same law (the transpose of a Haar-orthogonal matrix is one).
  JAX has no recurrent layer; Flax's cells (flax/linen/recurrent.py LSTMCell, GRUCell,
  OptimizedLSTMCell, SimpleCell) hold **one Dense per gate** (``ii``, ``if``, ... kernels
  ``(in, u)``, ``hi``, ... ``(u, u)``) and call the initializer on each, so ``layout=jax`` keeps
  torch's per-gate blocks: fans ``(in, u)`` / ``(u, u)`` and an orthogonal ``(u, u)`` per gate.

**Framework defaults on every layer type** (``torch_default``, ``keras_default``,
``flax_default``):

=====================  ==============================================  ===========================
layer                  rule                                            source
=====================  ==============================================  ===========================
torch Bilinear         weight and bias U(+-1/sqrt(in1_features))       torch/nn/modules/linear.py
                                                                       Bilinear.reset_parameters
torch Embedding        N(0, 1), the ``padding_idx`` row 0              torch/nn/modules/sparse.py
torch RNN/LSTM/GRU     every weight and bias U(+-1/sqrt(hidden_size))  torch/nn/modules/rnn.py
                                                                       RNNBase.reset_parameters
Keras Embedding        U(-0.05, 0.05) (``embeddings_initializer=       keras/src/layers/core/
                       "uniform"``)                                    embedding.py
Keras LSTM/GRU/RNN     kernel glorot_uniform on ``(in, G*u)``,         keras/src/layers/rnn/lstm.py
                       recurrent_kernel orthogonal ``(u, G*u)``,
                       bias 0 and the forget gate's 1
                       (``unit_forget_bias=True``, LSTM only)
Flax Embed             N(0, 1/dim), untruncated                        flax/linen/linear.py
                       (``default_embed_init = variance_scaling(1.0,
                       'fan_in', 'normal', out_axis=0)``)
Flax ConvTranspose     lecun_normal with fan_in = in * receptive       flax/linen/linear.py
                       (kernel ``(*k, in, out)``), bias 0
Flax LSTM/GRU cells    one Dense per gate: kernel lecun_normal per     flax/linen/recurrent.py
                       gate, recurrent kernel orthogonal per gate
                       ``(u, u)``, bias 0
=====================  ==============================================  ===========================

torch and Keras both order an LSTM's gates (input, forget, cell, output), so Keras' forget
gate is torch's second block; torch's two biases add, so the forget block of ``bias_ih`` is 1
and ``bias_hh`` stays 0. Keras and Flax have no Bilinear layer (initlab draws the scheme on
torch's tensor fans there); an LSTM's projection ``weight_hr`` (torch only) is drawn as a
Dense kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from initlab.schemes.core import Sampler, Scheme
from initlab.schemes.laws import Law

__all__ = ["IdentitySampler", "LayerRule", "FrameworkDefaultScheme", "layer_rule", "LAYOUTS"]

#: The ``layout=`` words: whose fan and matrix conventions a scheme follows on each layer.
LAYOUTS = ("torch", "keras", "jax")

RECURRENT_KINDS = {"RNN": 1, "LSTM": 4, "GRU": 3}
EMBEDDING_KINDS = ("Embedding", "EmbeddingBag")
CONV_T_KINDS = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


@dataclass(frozen=True)
class IdentityLaw(Law):
    """``gain * I``: a deterministic pattern (entries gain on the diagonal, 0 elsewhere)."""

    def describe(self) -> str:
        p = self.params
        return f"identity pattern x {p['gain']:.6g}, {p['density']:.4g} on the diagonal"


@dataclass(frozen=True)
class IdentitySampler(Sampler):
    """``gain`` on the main diagonal of a 2-d weight, 0 elsewhere (``torch.nn.init.eye_``
    times gain; Keras ``Identity(gain=1.0)``, keras/src/initializers/constant_initializers.py:
    ``gain * ops.eye(*shape)``)."""

    gain: float = 1.0
    min_dim = 2
    max_dim = 2

    def law(self, shape, fan_in, fan_out) -> Law:
        numel = math.prod(shape)
        d = min(shape) / numel
        g = self.gain
        return IdentityLaw("pattern", g * d, g * g * (d - d * d), g**4 * (d * (1 - d) ** 4 + (1 - d) * d**4),
                           {"kind": "identity", "density": d, "ones": min(shape), "gain": g})

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.eye_(tensor)
        if self.gain != 1.0:
            tensor.mul_(self.gain)


@dataclass(frozen=True)
class LayerRule:
    """How one weight of one layer kind departs from the torch conventions (module doc)."""

    #: draws this weight instead of the scheme (a framework default's per-layer rule)
    scheme: Scheme | None = None
    #: draw the stacked gate blocks of a recurrent weight as one matrix (Keras)
    whole: bool = False
    #: "keras": fans of an Embedding table as Keras / JAX read them (fan_in = num_embeddings);
    #: "transposed": a ConvTranspose weight's fans as Flax reads its (*k, in, out) kernel
    fan_layout: str = "torch"
    #: the biases' scheme (None: apply's bias rule)
    bias: Scheme | None = None
    #: the value of the forget-gate block of this weight's bias (Keras unit_forget_bias)
    forget_bias: float | None = None
    #: zero an Embedding's ``padding_idx`` row after the draw (torch's reset_parameters does)
    zero_padding: bool = False
    #: one line for the init report
    note: str = ""


def _get(spec: str, **params: Any) -> Scheme:
    from initlab.schemes.registry import get_scheme

    return get_scheme(spec, **params)


def _hidden(kind: str, param: str, shape: tuple[int, ...]) -> int:
    """An RNN's hidden_size from one of its weights (``weight_hr``: (proj, hidden))."""
    if param.startswith("weight_hr"):
        return shape[1]
    return shape[0] // RECURRENT_KINDS[kind]


def _generic(s: Scheme, kind: str, param: str) -> LayerRule | None:
    layout = s.params.get("layout")
    if layout not in ("keras", "jax"):
        return None
    if kind in EMBEDDING_KINDS:
        return LayerRule(fan_layout="keras", note="Keras/JAX Embedding fans: fan_in = num_embeddings")
    if layout == "jax":
        if kind in CONV_T_KINDS:
            return LayerRule(fan_layout="transposed",
                             note="Flax ConvTranspose kernel (*k, in, out): fan_in = in * receptive")
        return None  # recurrent: Flax's cells are one Dense per gate, torch's blocks
    if kind in RECURRENT_KINDS and not param.startswith("weight_hr"):
        return LayerRule(whole=True, note="Keras: one (in or units, G*units) matrix, not G gate blocks")
    return None


def _torch_default(kind: str, param: str, shape: tuple[int, ...]) -> LayerRule | None:
    if kind == "Bilinear":
        b = 1.0 / math.sqrt(shape[1])
        u = _get("uniform", a=-b, b=b)
        return LayerRule(scheme=u, bias=u, note="torch Bilinear: weight and bias U(+-1/sqrt(in1_features))")
    if kind in EMBEDDING_KINDS:
        return LayerRule(scheme=_get("normal"), zero_padding=True,
                         note="torch Embedding: N(0, 1), the padding_idx row 0")
    if kind in RECURRENT_KINDS:
        b = 1.0 / math.sqrt(_hidden(kind, param, shape))
        u = _get("uniform", a=-b, b=b)
        return LayerRule(scheme=u, bias=u, note="torch RNN: every weight and bias U(+-1/sqrt(hidden_size))")
    return None


def _keras_default(kind: str, param: str, shape: tuple[int, ...]) -> LayerRule | None:
    if kind in EMBEDDING_KINDS:
        return LayerRule(scheme=_get("keras:uniform"), fan_layout="keras", note="Keras Embedding: U(-0.05, 0.05)")
    if kind in RECURRENT_KINDS:
        if param.startswith("weight_hh"):
            return LayerRule(scheme=_get("keras:orthogonal"), whole=True,
                             note="Keras recurrent_kernel: one orthogonal (units, G*units) matrix")
        forget = 1.0 if kind == "LSTM" and param.startswith("weight_ih") else None
        return LayerRule(scheme=_get("keras:glorot_uniform"), whole=not param.startswith("weight_hr"),
                         forget_bias=forget,
                         note="Keras kernel: glorot_uniform on one (in, G*units) matrix"
                              + ("; unit_forget_bias: forget gate bias 1" if forget else ""))
    return None


def _flax_default(kind: str, param: str, shape: tuple[int, ...]) -> LayerRule | None:
    if kind in EMBEDDING_KINDS:
        return LayerRule(scheme=_get("normal", std=1.0 / math.sqrt(shape[1])),
                         note="Flax Embed: N(0, 1/dim) untruncated (default_embed_init)")
    if kind in CONV_T_KINDS:
        return LayerRule(fan_layout="transposed",
                         note="Flax ConvTranspose kernel (*k, in, out): lecun_normal fan_in = in * receptive")
    if kind in RECURRENT_KINDS and param.startswith("weight_hh"):
        return LayerRule(scheme=_get("orthogonal"), note="Flax cells: recurrent kernel orthogonal per gate")
    return None


DEFAULT_RULES = {"torch_default": _torch_default, "keras_default": _keras_default,
                 "flax_default": _flax_default}


class FrameworkDefaultScheme(Scheme):
    """A framework's default initialization: the scheme's own law on Dense/Conv weights, and
    the framework's rule on every other layer type (:func:`layer_rule`)."""


def layer_rule(s: Scheme, kind: str, param: str, shape: tuple[int, ...]) -> LayerRule | None:
    """What *s* does differently on the weight *param* (``"weight"``, ``"weight_ih_l0"``, ...) of
    shape *shape* of a layer of type *kind* (``"LSTM"``, ``"Embedding"``, ...); ``None`` when it
    follows the torch conventions there (see the module doc)."""
    rule = DEFAULT_RULES.get(s.name)
    if rule is not None:
        return rule(kind, param, tuple(shape))
    return _generic(s, kind, param)
