"""Forward/backward measurement with hooks: attach, run one batch, detach.

A *layer* is a Linear, ConvNd or ConvTransposeNd module (:data:`LAYER_TYPES`); layers are
numbered 1, 2, ... in the order their first call runs in ``forward``. For each layer the
hooks record, on the batch:

* its output ``z`` (the *pre-activation*): mean and variance over all entries;
* the output of the first elementwise activation module (:mod:`~initlab.probe.activations`)
  that runs after it and before the next layer (the *post-activation*): mean, variance,
  fraction of entries exactly 0, *dead units* (units -- features of a Linear, channels of a
  conv -- that are 0 for every input and position) and the saturated fraction for bounded
  activations; without such a module these use ``z`` itself;
* on the way back, ``||dL/dz||`` (Frobenius norm over the batch) via a tensor hook.

Statistics are computed inside the hooks, before later in-place operations
(``ReLU(inplace=True)``) can overwrite the tensor; hooks are removed on exit. A layer
module called more than once per forward is measured at its first call only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initlab.probe import activations as act

LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def probe_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every Linear/Conv/ConvTranspose module, in registration order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


@dataclass
class Measured:
    """What the hooks saw of one layer (plain floats; ``nan`` where not applicable)."""

    name: str
    module: nn.Module
    units: int
    pre_mean: float = math.nan
    pre_var: float = math.nan
    activation: nn.Module | None = None
    post_mean: float = math.nan
    post_var: float = math.nan
    zero_fraction: float = math.nan
    dead_fraction: float = math.nan
    saturated_fraction: float = math.nan
    grad_norm: float = math.nan
    #: gradients reaching this layer's weight were scaled by ``2**grad_exponent``
    grad_exponent: int = 0
    #: the layer output, kept until :meth:`Capture.__exit__` when no activation follows
    output: torch.Tensor | None = None


def _unit_dim(module: nn.Module, y: torch.Tensor) -> int:
    return y.ndim - 1 if isinstance(module, nn.Linear) or y.ndim <= 2 else 1


def _as_float(y: torch.Tensor) -> torch.Tensor:
    y = y.detach()
    if not y.is_floating_point() or y.dtype in (torch.float16, torch.bfloat16):
        y = y.float()
    return y


class Scratch:
    """Reusable work buffers by (shape, dtype): statistics of every layer write into the
    same memory instead of allocating (and page-faulting) a fresh tensor each time."""

    def __init__(self) -> None:
        self._bufs: dict[tuple[Any, ...], torch.Tensor] = {}

    def like(self, y: torch.Tensor) -> torch.Tensor:
        key = (tuple(y.shape), y.dtype, y.device)
        buf = self._bufs.get(key)
        if buf is None:
            if len(self._bufs) > 8:
                self._bufs.clear()
            buf = self._bufs[key] = torch.empty_like(y, memory_format=torch.contiguous_format)
        return buf


def zero_dead(y: torch.Tensor, unit_dim: int, scratch: Scratch | None = None) -> tuple[float, float]:
    """Fraction of entries exactly 0, and fraction of units 0 for every other index."""
    y = _as_float(y)
    nz = torch.sign(y, out=scratch.like(y)) if scratch is not None else torch.sign(y)
    nz.abs_()  # 1 where y != 0; nan stays nan
    total = float(nz.sum())
    if math.isnan(total):  # nan counts as non-zero
        nz.nan_to_num_(nan=1.0)
        total = float(nz.sum())
    other = tuple(d for d in range(y.ndim) if d != unit_dim)
    alive = nz.amax(dim=other) if other else nz
    return 1.0 - total / max(y.numel(), 1), float((alive == 0).sum()) / max(alive.numel(), 1)


def var_mean(y: torch.Tensor, scratch: Scratch | None = None) -> tuple[float, float]:
    """Population variance and mean over all entries (two-pass, so a large mean does not
    cancel the variance)."""
    y = _as_float(y)
    mean = y.mean()
    d = torch.sub(y, mean, out=scratch.like(y)) if scratch is not None else y - mean
    d = d.reshape(-1)
    return float(torch.dot(d, d)) / max(y.numel(), 1), float(mean)


def is_sequential_chain(model: nn.Module) -> bool:
    """Whether *model* is an ``nn.Sequential`` of distinct leaf modules, so that every
    path from the loss back to an earlier layer passes through each layer's output."""
    children = list(model.children())
    return (isinstance(model, nn.Sequential) and bool(children)
            and all(not list(c.children()) for c in children)
            and len({id(c) for c in children}) == len(children))


class Capture:
    """Context manager measuring every layer of *model* on one forward/backward pass.

    >>> with Capture(model) as cap:             # doctest: +SKIP
    ...     loss = F.cross_entropy(model(x), y)
    ...     loss.backward()
    >>> cap.layers                               # list[Measured], forward order

    With ``rescale_gradients=True`` (only valid when every layer output is a cut of the
    graph, see :func:`is_sequential_chain`) each layer's output gradient is multiplied by a
    power of two that brings its RMS near 1 before it flows on, and the recorded norms are
    divided by the accumulated factor (``Measured.grad_exponent``). Powers of two scale
    floats exactly, so the numbers are unchanged, but deep vanishing (or exploding)
    gradients never reach subnormal (or infinite) floats, which CPUs process up to 100x
    slower and which ``torch.set_flush_denormal`` does not prevent in worker threads.
    """

    def __init__(self, model: nn.Module, *, saturation_margin: float = 0.01,
                 rescale_gradients: bool = False) -> None:
        self.model = model
        self.margin = saturation_margin
        self.rescale = rescale_gradients
        self.layers: list[Measured] = []
        self._by_module: dict[int, Measured] = {}
        self._current: Measured | None = None
        self._handles: list[Any] = []
        self._scratch = Scratch()
        self._exponent = 0  # log2 of the factor applied to gradients downstream so far

    # -- hooks ------------------------------------------------------------------------
    def _grad_hook(self, m: Measured, g: torch.Tensor) -> torch.Tensor | None:
        norm = float(torch.linalg.vector_norm(g.detach().float()))
        m.grad_norm = math.ldexp(norm, -self._exponent) if math.isfinite(norm) else norm
        if not self.rescale:
            return None
        rms = norm / math.sqrt(max(g.numel(), 1))
        k = 0
        if math.isfinite(rms) and rms > 0:
            k = max(-120, min(120, -round(math.log2(rms))))
        self._exponent += k
        m.grad_exponent = self._exponent
        return g * (2.0**k) if k else None

    def _layer_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if id(module) in self._by_module or not isinstance(output, torch.Tensor):
            self._current = None
            return
        y = output
        m = Measured(name=self._names[id(module)], module=module, units=int(y.shape[_unit_dim(module, y)]))
        with torch.no_grad():
            m.pre_var, m.pre_mean = var_mean(y, self._scratch)
        m.output = y
        if y.requires_grad:
            y.register_hook(lambda g, m=m: self._grad_hook(m, g))
        self._by_module[id(module)] = m
        self.layers.append(m)
        self._current = m

    def _act_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        m = self._current
        if m is None or not isinstance(output, torch.Tensor):
            return
        self._current = None  # only the first activation after a layer
        y = output
        with torch.no_grad():
            m.activation = module
            m.output = None
            m.post_var, m.post_mean = var_mean(y, self._scratch)
            m.zero_fraction, m.dead_fraction = zero_dead(y, _unit_dim(m.module, y), self._scratch)
            lohi = act.bounds(module)
            if lohi is not None:
                m.saturated_fraction = act.saturated_fraction(y.detach(), lohi, self.margin)

    # -- context ----------------------------------------------------------------------
    def __enter__(self) -> "Capture":
        self._names = {id(m): n for n, m in self.model.named_modules()}
        for _, module in self.model.named_modules():
            if isinstance(module, LAYER_TYPES):
                self._handles.append(module.register_forward_hook(self._layer_hook))
            elif act.is_activation(module):
                self._handles.append(module.register_forward_hook(self._act_hook))
        return self

    def __exit__(self, *exc: object) -> None:
        for m in self.layers:  # layers without an activation module: zeros of z itself
            if m.output is not None:
                with torch.no_grad():
                    m.zero_fraction, m.dead_fraction = zero_dead(m.output, _unit_dim(m.module, m.output),
                                                                 self._scratch)
                m.output = None
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._current = None
        self._scratch = Scratch()  # release the buffers
