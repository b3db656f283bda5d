"""Convolutional families for small images (28x28 by default): a plain conv stack
(``cnn``) and a residual network of basic blocks (``resnet``).

Both take per-sample inputs of ``input_shape = (channels, height, width)`` (default
``(1, 28, 28)``); their ``forward`` reshapes a batch ``[N, ...]`` of ``N * C * H * W``
values to ``[N, C, H, W]`` first (module ``input``), so ``[N, 28, 28]`` and ``[N, 784]``
batches work as well as ``[N, 1, 28, 28]``.

Common pieces:

* every convolution is 3x3 with padding 1, so a stride-1 layer keeps the spatial size
  and a stride-2 layer gives ``ceil(H / 2)``;
* ``norm``: ``"none"`` (default), ``"batch"`` (``nn.BatchNorm2d(C)``: batch statistics;
  its running statistics make it a stateful module) or ``"layer"`` (``nn.GroupNorm(1, C)``:
  each sample normalized over all of ``(C, H, W)``, as layer norm, with a per-channel
  affine ``gamma, beta``; Wu & He 2018 note that group norm with one group is layer norm),
  placed between the convolution and the activation;
* the head: global average pool (``nn.AdaptiveAvgPool2d(1)``), flatten, one
  ``nn.Linear(C_last, out_features)`` (logits). ``output_layer()`` returns it.

Plain CNN (:class:`CNNSpec`, :class:`PlainCNN`, an ``nn.Sequential``)::

    input -> conv1 [norm1] act1 [pool1] -> ... -> conv<depth> ... -> gap -> flatten -> head

``depth`` conv layers numbered 1..depth (module names ``conv3``, ``norm3``, ``act3``);
``channels`` is one width for all layers or a list of ``depth`` widths. Downsampling
schedule: ``downsample = [3, 6]`` lists the layers after which the spatial size halves;
with ``pool = "none"`` (default) those layers' convolutions use stride 2, with ``pool =
"max"`` / ``"avg"`` they keep stride 1 and a 2x2 max / average pool (stride 2,
``ceil_mode``, module ``pool3``) follows their activation. 28 -> 14 -> 7 -> 4 -> 2 -> 1.

Residual network (:class:`ResNetSpec`, :class:`ResNet`; He et al. 2016, "Deep residual
learning for image recognition", the basic block; no normalization by default, the
setting of Fixup, Zhang et al. 2019, and SkipInit, De & Smith 2020)::

    input -> stem (conv3x3 [norm] act) -> blocks[0] -> ... -> blocks[depth-1] -> pool -> head
    block: out = act(branch(x) + shortcut(x)),  branch = conv3x3 [norm] act conv3x3 [norm]

``depth`` is the number of blocks, so the network has ``2 * depth + 2`` weight layers
(stem, two convolutions per block, head). ``width`` is the stem's and first blocks'
channel count. ``downsample = [b, ...]`` lists blocks (numbered 1..depth) that start a
new stage: their first convolution has stride 2 and the width doubles from there on;
their shortcut is He et al.'s parameter-free option A (take every second pixel, pad the
new channels with zeros), so every shortcut is parameter-free and all weights are in
``stem``, the branches and ``head``.

Structure protocol of :class:`ResNet` (for structure-aware schemes: Fixup, ZerO, SkipInit):

* ``model.stem``: ``nn.Sequential`` (``stem.0`` the conv, then norm, act);
* ``model.blocks``: ``nn.ModuleList`` of :class:`BasicBlock`, each with ``branch``
  (``nn.Sequential``: ``branch.0`` conv, ``branch.1`` norm or act, ...), ``shortcut``
  (parameter-free) and ``act``;
* ``model.residual_branches() -> list[nn.Sequential]``: each block's branch, in order; a
  branch's last parameterized module is its last layer (the second conv, or its norm
  when ``norm`` is not ``"none"``) -- the one Fixup / SkipInit-style schemes zero;
* ``model.output_layer() -> nn.Linear``: ``model.head``.

Module names label the per-layer statistics, e.g. ``stem.0``, ``blocks.3.branch.0``,
``blocks.3.branch.2``, ``head``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from initlab.engine.models import (
    ModelSpec, activation_module, check_bool, check_choice, check_input_shape, check_int,
    check_ints, check_name, shape_text,
)
from initlab.errors import InitlabError

__all__ = ["NORMS", "POOLS", "CNNSpec", "ResNetSpec", "PlainCNN", "ResNet", "BasicBlock", "AsImage",
           "build_cnn", "build_resnet"]

#: Normalization choices of the conv families.
NORMS = ("none", "batch", "layer")
#: How a ``downsample`` layer of the plain CNN halves the size: stride-2 conv, or a pool after it.
POOLS = ("none", "max", "avg")

_IMAGE = (1, 28, 28)


def norm_module(norm: str, channels: int) -> nn.Module | None:
    """``None`` for ``"none"``, ``BatchNorm2d(C)`` for ``"batch"``, ``GroupNorm(1, C)`` (layer
    norm over ``C, H, W`` with a per-channel affine) for ``"layer"``."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return None


def _conv(c_in: int, c_out: int, stride: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=bias)


class AsImage(nn.Module):
    """Reshape a batch ``[N, ...]`` to ``[N, *shape]`` (a view; parameter-free)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def _check_schedule(kind: str, downsample: Any, depth: int, unit: str, what: str) -> tuple[int, ...]:
    ds = check_ints(kind, "downsample", downsample, 1, f"{unit} numbers {what}")
    if list(ds) != sorted(set(ds)) or (ds and ds[-1] > depth):
        raise InitlabError(f"{kind} downsample must list distinct {unit} numbers in 1..{depth} (the depth) "
                           f"in increasing order, got {list(ds)}")
    return ds


def _suffix(spec: Any) -> str:
    """The label's tail for the settings that are not at their defaults."""
    tail = "" if spec.bias else "-nobias"
    if tuple(spec.input_shape) != _IMAGE:
        tail += f"-{shape_text(spec.input_shape)}"
    if spec.out_features != 10:
        tail += f"-out{spec.out_features}"
    return tail


def _image_fix(kind: str, sample_shape: tuple[int, ...]) -> str:
    if len(sample_shape) == 2:
        return f"set input_shape = [1, {sample_shape[0]}, {sample_shape[1]}]"
    if len(sample_shape) == 3:
        return f"set input_shape = {list(sample_shape)}"
    return f"give the {kind} an input_shape of [channels, height, width] with {math.prod(sample_shape)} values"


# --- plain CNN ---------------------------------------------------------------------------------


class PlainCNN(nn.Sequential):
    """The module :class:`CNNSpec` builds (an ``nn.Sequential`` with named children)."""

    def output_layer(self) -> nn.Linear:
        """The classifier ``head``."""
        return self.head  # type: ignore[return-value]

    def conv_layers(self) -> list[nn.Conv2d]:
        """``conv1 .. conv<depth>`` in order."""
        return [m for m in self.children() if isinstance(m, nn.Conv2d)]


@dataclass(frozen=True)
class CNNSpec(ModelSpec):
    """A plain convolutional stack (see the module docstring for the layout).

    Label: ``cnn-<depth>x<channels>-<activation>``, e.g. ``cnn-8x32-relu`` (a list of
    channels joined by ``.``: ``cnn-4x16.16.32.32-relu``), then ``-<norm>norm`` when
    normalized, ``-ds3.6`` (``-ds3.6max``, ``-ds3.6avg`` with pools) when downsampling,
    ``-nobias``, ``-<C>x<H>x<W>`` for another input shape, ``-out<n>`` for another number of
    outputs; ``name`` overrides it.
    """

    kind: ClassVar[str] = "cnn"

    depth: int = 8
    channels: int | tuple[int, ...] = 32
    activation: str = "relu"
    downsample: tuple[int, ...] = ()
    pool: str = "none"
    norm: str = "none"
    bias: bool = True
    input_shape: tuple[int, ...] = _IMAGE
    out_features: int = 10
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        depth = check_int("cnn", "depth", self.depth, 1, "the number of conv layers")
        ch = self.channels
        if isinstance(ch, (list, tuple)):
            chs = check_ints("cnn", "channels", ch, 1, "the conv layers' widths")
            if len(chs) != depth:
                raise InitlabError(f"cnn channels lists {len(chs)} widths but depth is {depth}; give "
                                   f"{depth} widths, or one integer for all layers")
            object.__setattr__(self, "channels", chs[0] if len(set(chs)) == 1 else chs)
        else:
            check_int("cnn", "channels", ch, 1, "one width for all conv layers, or a list of depth widths")
        activation_module(self.activation)
        object.__setattr__(self, "downsample", _check_schedule("cnn", self.downsample, depth, "layer",
                                                               "after which the size halves"))
        check_choice("cnn", "pool", self.pool, POOLS)
        check_choice("cnn", "norm", self.norm, NORMS)
        check_bool("cnn", "bias", self.bias)
        object.__setattr__(self, "input_shape", check_input_shape("cnn", self.input_shape, 3))
        check_int("cnn", "out_features", self.out_features, 1, "the number of classes")
        check_name("cnn", self.name)

    @property
    def widths(self) -> tuple[int, ...]:
        """The conv layers' output channels, one per layer."""
        c = self.channels
        return tuple(c) if isinstance(c, tuple) else (c,) * self.depth

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        c = self.channels
        body = ".".join(str(v) for v in c) if isinstance(c, tuple) else str(c)
        tail = "" if self.norm == "none" else f"-{self.norm}norm"
        if self.downsample:
            tail += "-ds" + ".".join(str(d) for d in self.downsample) + ("" if self.pool == "none" else self.pool)
        return f"cnn-{self.depth}x{body}-{self.activation}{tail}{_suffix(self)}"

    def to_dict(self) -> dict[str, Any]:
        c = self.channels
        return {"kind": "cnn", "depth": self.depth, "channels": list(c) if isinstance(c, tuple) else c,
                "activation": self.activation, "downsample": list(self.downsample), "pool": self.pool,
                "norm": self.norm, "bias": self.bias, "input_shape": list(self.input_shape),
                "out_features": self.out_features, "name": self.name}

    def _input_fix(self, sample_shape: tuple[int, ...]) -> str:
        return _image_fix("cnn", sample_shape)

    def _build(self) -> nn.Module:
        return build_cnn(self)


def build_cnn(spec: CNNSpec) -> PlainCNN:
    """The :class:`PlainCNN` of *spec* (torch's default initialization, global RNG)."""
    layers: list[tuple[str, nn.Module]] = [("input", AsImage(spec.input_shape))]
    c_in = spec.input_shape[0]
    for i, c_out in enumerate(spec.widths, start=1):
        down = i in spec.downsample
        layers.append((f"conv{i}", _conv(c_in, c_out, 2 if down and spec.pool == "none" else 1, spec.bias)))
        norm = norm_module(spec.norm, c_out)
        if norm is not None:
            layers.append((f"norm{i}", norm))
        layers.append((f"act{i}", activation_module(spec.activation)))
        if down and spec.pool != "none":
            pool = nn.MaxPool2d(2, ceil_mode=True) if spec.pool == "max" else nn.AvgPool2d(2, ceil_mode=True)
            layers.append((f"pool{i}", pool))
        c_in = c_out
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
               ("head", nn.Linear(c_in, spec.out_features))]
    return PlainCNN(OrderedDict(layers))


# --- residual network --------------------------------------------------------------------------


class Subsample(nn.Module):
    """He et al.'s option-A shortcut: ``x[:, :, ::2, ::2]`` with ``c_out - c_in`` zero
    channels appended (no parameters)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]
        return F.pad(x, (0, 0, 0, 0, 0, self.c_out - self.c_in))

    def extra_repr(self) -> str:
        return f"{self.c_in} -> {self.c_out}, stride 2"


class BasicBlock(nn.Module):
    """``act(branch(x) + shortcut(x))`` with ``branch = conv3x3 [norm] act conv3x3 [norm]``."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str, activation: str, bias: bool) -> None:
        super().__init__()
        parts: list[nn.Module] = [_conv(c_in, c_out, stride, bias)]
        first = norm_module(norm, c_out)
        parts += [first] if first is not None else []
        parts += [activation_module(activation), _conv(c_out, c_out, 1, bias)]
        last = norm_module(norm, c_out)
        parts += [last] if last is not None else []
        self.branch = nn.Sequential(*parts)
        self.shortcut: nn.Module = nn.Identity() if stride == 1 and c_in == c_out else Subsample(c_in, c_out)
        self.act = activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.branch(x) + self.shortcut(x))


class ResNet(nn.Module):
    """The module :class:`ResNetSpec` builds; see the module docstring for its protocol."""

    def __init__(self, spec: "ResNetSpec") -> None:
        super().__init__()
        self.input = AsImage(spec.input_shape)
        w = spec.width
        stem: list[nn.Module] = [_conv(spec.input_shape[0], w, 1, spec.bias)]
        norm = norm_module(spec.norm, w)
        stem += [norm] if norm is not None else []
        stem.append(activation_module(spec.activation))
        self.stem = nn.Sequential(*stem)
        blocks = []
        for b in range(1, spec.depth + 1):
            down = b in spec.downsample
            c_out = 2 * w if down else w
            blocks.append(BasicBlock(w, c_out, 2 if down else 1, spec.norm, spec.activation, spec.bias))
            w = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(w, spec.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.input(x))
        for block in self.blocks:
            x = block(x)
        return self.head(torch.flatten(self.pool(x), 1))

    def residual_branches(self) -> list[nn.Sequential]:
        """Each block's residual branch, in order (``len == depth``)."""
        return [block.branch for block in self.blocks]  # type: ignore[union-attr]

    def output_layer(self) -> nn.Linear:
        """The classifier ``head``."""
        return self.head


@dataclass(frozen=True)
class ResNetSpec(ModelSpec):
    """A small residual network of basic blocks (see the module docstring).

    ``depth`` = number of blocks (``2 * depth + 2`` weight layers). Label:
    ``resnet-<depth>x<width>-<norm>``, e.g. ``resnet-24x16-none``, then ``-<activation>``
    when not relu, ``-ds4.8`` when blocks 4 and 8 downsample, ``-nobias``, ``-<C>x<H>x<W>``,
    ``-out<n>`` as for the CNN; ``name`` overrides it.
    """

    kind: ClassVar[str] = "resnet"

    depth: int = 8
    width: int = 16
    norm: str = "none"
    activation: str = "relu"
    downsample: tuple[int, ...] = ()
    bias: bool = True
    input_shape: tuple[int, ...] = _IMAGE
    out_features: int = 10
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        depth = check_int("resnet", "depth", self.depth, 1, "the number of residual blocks")
        check_int("resnet", "width", self.width, 1, "the stem's channels")
        check_choice("resnet", "norm", self.norm, NORMS)
        activation_module(self.activation)
        object.__setattr__(self, "downsample", _check_schedule("resnet", self.downsample, depth, "block",
                                                               "that start a stage"))
        check_bool("resnet", "bias", self.bias)
        object.__setattr__(self, "input_shape", check_input_shape("resnet", self.input_shape, 3))
        check_int("resnet", "out_features", self.out_features, 1, "the number of classes")
        check_name("resnet", self.name)

    @property
    def n_layers(self) -> int:
        """Weight layers: stem + 2 per block + head."""
        return 2 * self.depth + 2

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        tail = "" if self.activation == "relu" else f"-{self.activation}"
        if self.downsample:
            tail += "-ds" + ".".join(str(d) for d in self.downsample)
        return f"resnet-{self.depth}x{self.width}-{self.norm}{tail}{_suffix(self)}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "resnet", "depth": self.depth, "width": self.width, "norm": self.norm,
                "activation": self.activation, "downsample": list(self.downsample), "bias": self.bias,
                "input_shape": list(self.input_shape), "out_features": self.out_features, "name": self.name}

    def _input_fix(self, sample_shape: tuple[int, ...]) -> str:
        return _image_fix("resnet", sample_shape)

    def _build(self) -> nn.Module:
        return build_resnet(self)


def build_resnet(spec: ResNetSpec) -> ResNet:
    """The :class:`ResNet` of *spec* (torch's default initialization, global RNG)."""
    return ResNet(spec)
