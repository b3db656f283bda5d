"""Stochastic gradient descent for K stacked models, as ``torch.optim.SGD`` does it.

For each parameter ``p`` with gradient ``g`` (dampening 0, as torch's default)::

    d = g + weight_decay * p                      (when weight_decay != 0)
    buf = d                    at the first step,  buf = momentum * buf + d  after
    d = d + momentum * buf     (nesterov)          else  d = buf           (when momentum != 0)
    p = p - lr * d

in the op order of ``torch.optim.SGD``'s single-tensor implementation (the one it uses for
CPU tensors), so one model's update is that optimizer's.  Frozen (diverged) models keep
their parameters through a ``torch.where``, as :class:`~initlab.engine.adam.StackedAdam`'s
foreach path does; nothing of one model reads another's values.  Interface as
``StackedAdam``: :meth:`step` with the ``frozen`` flags, :meth:`select` to drop models.
Per-parameter learning rates (muP): ``lr_scale[i]``, a ``[K]`` tensor or ``None`` (1),
makes parameter ``i``'s update of model k ``p = p - lr * lr_scale[i][k] * d``.
"""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["StackedSGD"]


class StackedSGD:
    """SGD state and update for stacked parameters ``params`` (each ``[K, ...]``) whose
    gradients the caller writes into ``grads`` before each :meth:`step`."""

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor],
        *,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        lr_scale: Sequence[torch.Tensor | None] | None = None,
    ) -> None:
        self.params = list(params)
        self.lr_scale = list(lr_scale) if lr_scale is not None else [None] * len(self.params)
        self.grads = list(grads)
        self.lr, self.momentum, self.nesterov = float(lr), float(momentum), bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.buffers = [torch.zeros_like(p) for p in self.params] if self.momentum else []
        self.t = 0

    def step(self, frozen: torch.Tensor) -> None:
        """One SGD step using the current contents of ``grads``; ``frozen``: ``[K]``
        float32, 1.0 for models to leave unchanged, else 0.0."""
        self.t += 1
        for i, (p, g) in enumerate(zip(self.params, self.grads)):
            d = g.add(p, alpha=self.weight_decay) if self.weight_decay else g
            if self.momentum:
                buf = self.buffers[i]
                if self.t == 1:
                    buf.copy_(d)
                else:
                    buf.mul_(self.momentum).add_(d)
                d = d.add(buf, alpha=self.momentum) if self.nesterov else buf
            shape = (-1, *([1] * (p.dim() - 1)))
            scale = self.lr_scale[i]
            new = p.add(d, alpha=-self.lr) if scale is None else p - (scale * self.lr).view(shape) * d
            keep = frozen.view(shape) > 0
            torch.where(keep, p, new, out=p)

    def select(
        self, keep: Sequence[int], params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]
    ) -> None:
        """Keep only models *keep* (their momentum buffers); their parameters and gradients
        are now in the new *params* and *grads*."""
        ix = torch.as_tensor(list(keep), dtype=torch.long, device=self.params[0].device)
        self.params = list(params)
        self.grads = list(grads)
        self.buffers = [b.index_select(0, ix) for b in self.buffers]
        self.lr_scale = [None if s is None else s.index_select(0, ix) for s in self.lr_scale]
