"""Which modules initlab initializes, and how: weight slots, fans, bias slots.

A :class:`WeightSlot` is one weight parameter of a supported module, split into ``blocks``
equal chunks along dim 0 (the gate blocks of recurrent layers), each initialized on its
own with the slot's fans. Fans follow :func:`initlab.schemes.fans.fans` for the torch
layout of each (block) tensor; see that module for the per-layer table. A scheme's layer
rules (:func:`with_rules`, :mod:`initlab.schemes.dialects`) change that per layer type: the
Keras/JAX dialects' Embedding fans and whole recurrent kernels, the framework defaults'
per-layer schemes and biases.

Supported: Linear, Bilinear, Conv1d/2d/3d, ConvTranspose1d/2d/3d, Embedding,
EmbeddingBag, RNN, LSTM (incl. proj_size), GRU. Any other module that owns parameters
directly is *unsupported* and reported (normalization layers are listed with the reason
that their affine parameters are conventionally 1 and 0, which initlab leaves alone).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

LINEAR_LIKE = (nn.Linear, nn.Bilinear)
CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
EMBEDDING = (nn.Embedding, nn.EmbeddingBag)
RECURRENT = (nn.RNN, nn.LSTM, nn.GRU)
NORM = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
SUPPORTED = LINEAR_LIKE + CONV + CONV_T + EMBEDDING + RECURRENT

Include = "str | Sequence[str] | type | tuple[type, ...] | Callable[[str, nn.Module], bool] | None"


@dataclass
class WeightSlot:
    """One weight parameter to initialize."""

    module_name: str
    module: nn.Module
    param_name: str
    blocks: int = 1
    #: biases initialized alongside this weight, with the fan_in used by bias rules
    biases: list[str] = field(default_factory=list)
    #: set by :func:`with_rules` from a scheme's layer rule (:mod:`initlab.schemes.dialects`):
    #: whose tensor rule gives the fans ("keras": an Embedding's fan_in is num_embeddings),
    fan_layout: str = "torch"
    #: the scheme that draws this weight instead of the one applied (a framework default's rule),
    scheme: Any = None
    #: the biases' scheme, the forget-gate block's bias value (Keras unit_forget_bias) and the rule's note
    bias_scheme: Any = None
    forget_bias: float | None = None
    zero_padding: bool = False
    rule: str = ""

    @property
    def name(self) -> str:
        return f"{self.module_name}.{self.param_name}" if self.module_name else self.param_name

    @property
    def param(self) -> torch.Tensor:
        return getattr(self.module, self.param_name)

    @property
    def block_shape(self) -> tuple[int, ...]:
        shape = tuple(self.param.shape)
        return (shape[0] // self.blocks, *shape[1:])

    @property
    def kind(self) -> str:
        return type(self.module).__name__

    def block_views(self) -> list[torch.Tensor]:
        return list(self.param.data.chunk(self.blocks, dim=0)) if self.blocks > 1 else [self.param.data]


def _gates(module: nn.Module) -> int:
    return {nn.LSTM: 4, nn.GRU: 3}.get(type(module), 1)


def weight_slots(module_name: str, module: nn.Module) -> list[WeightSlot]:
    """The weight slots of one supported module (empty for others)."""
    if isinstance(module, RECURRENT):
        g = _gates(module)
        slots = []
        for pname, _ in module.named_parameters(recurse=False):
            if pname.startswith("weight_hr"):  # LSTM projection: one (proj, hidden) block
                slots.append(WeightSlot(module_name, module, pname, 1))
            elif pname.startswith("weight_"):
                bias = pname.replace("weight_", "bias_")
                slots.append(WeightSlot(module_name, module, pname, g,
                                        [bias] if getattr(module, bias, None) is not None else []))
        return slots
    if isinstance(module, SUPPORTED):
        biases = ["bias"] if getattr(module, "bias", None) is not None else []
        return [WeightSlot(module_name, module, "weight", 1, biases)]
    return []


def _matches(include: object, name: str, module: nn.Module) -> bool:
    if include is None:
        return True
    if isinstance(include, str):
        return fnmatch.fnmatchcase(name, include)
    if isinstance(include, type):
        return isinstance(module, include)
    if isinstance(include, tuple) and all(isinstance(t, type) for t in include):
        return isinstance(module, include)
    if callable(include):
        return bool(include(name, module))
    if isinstance(include, (list, tuple, set)):
        return any(_matches(i, name, module) for i in include)
    from initlab.errors import InitlabError

    raise InitlabError(f"include must be a glob, a module type, a list of them or a callable, got {include!r}")


def walk(model: nn.Module, include: object = None) -> tuple[list[WeightSlot], list[tuple[str, str, str]]]:
    """Supported weight slots (forward-registration order) and the parameterized modules
    left untouched as ``(name, type, reason)``."""
    slots: list[WeightSlot] = []
    unsupported: list[tuple[str, str, str]] = []
    for name, module in model.named_modules():
        own = [p for _, p in module.named_parameters(recurse=False)]
        if isinstance(module, SUPPORTED):
            if not _matches(include, name, module):
                continue
            if any(isinstance(p, nn.parameter.UninitializedParameter) for p in own):
                unsupported.append((name, type(module).__name__,
                                    "lazy module not materialized yet: run one forward pass first"))
                continue
            slots.extend(weight_slots(name, module))
        elif own:
            reason = ("normalization layer: affine parameters left at their 1/0 convention"
                      if isinstance(module, NORM) else "no initialization rule for this layer type")
            unsupported.append((name or "<root>", type(module).__name__, reason))
    return slots, unsupported


def with_rules(slots: Sequence[WeightSlot], scheme: Any) -> list[WeightSlot]:
    """*slots* as *scheme* treats them per layer type (:func:`initlab.schemes.dialects.layer_rule`):
    a Keras-dialect recurrent weight as one matrix (``blocks = 1``), an Embedding's fans in the
    Keras layout, a framework default's per-layer scheme and bias."""
    from initlab.schemes.dialects import layer_rule

    out = []
    for slot in slots:
        rule = layer_rule(scheme, slot.kind, slot.param_name, tuple(slot.param.shape))
        if rule is None:
            out.append(slot)
            continue
        out.append(dataclasses.replace(
            slot, blocks=1 if rule.whole else slot.blocks, fan_layout=rule.fan_layout, scheme=rule.scheme,
            bias_scheme=rule.bias, forget_bias=rule.forget_bias if slot.biases else None,
            zero_padding=rule.zero_padding and getattr(slot.module, "padding_idx", None) is not None,
            rule=rule.note))
    return out


def forward_layers(slots: Sequence[WeightSlot]) -> list[tuple[str, nn.Module]]:
    """Distinct Linear/Conv modules among *slots*, in order (the layers LSUV rescales)."""
    seen: dict[int, tuple[str, nn.Module]] = {}
    for s in slots:
        if isinstance(s.module, LINEAR_LIKE + CONV + CONV_T) and id(s.module) not in seen:
            seen[id(s.module)] = (s.module_name, s.module)
    return list(seen.values())


def iter_modules(slots: Sequence[WeightSlot]) -> Iterator[nn.Module]:
    seen = set()
    for s in slots:
        if id(s.module) not in seen:
            seen.add(id(s.module))
            yield s.module
