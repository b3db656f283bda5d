"""Adam on K stacked models, with per-model freezing.

Adam (Kingma & Ba 2015, Algorithm 1) as ``torch.optim.Adam`` computes it (no weight decay,
no AMSGrad), for step ``t = 1, 2, ...`` and gradient ``g``::

    m = b1 * m + (1 - b1) * g                        (m.lerp_(g, 1 - b1))
    v = b2 * v + (1 - b2) * g * g
    p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

Note where ``eps`` goes: added to the bias-corrected ``sqrt(v_hat)``, as in torch and
Keras (the paper's ``eps_hat`` form).  Every entry is updated independently, so K models
stacked along dim 0 (``[K, ...]`` tensors) are K independent Adam runs as long as a model
that must stay frozen is skipped.  ``frozen[k] == 1.0`` leaves model k's parameters
unchanged (its moments are then meaningless, which is fine: it never resumes).

Two implementations, same formulas:

* ``"fused"``: ``torch._fused_adam_`` (the kernel behind ``torch.optim.Adam(fused=True)``,
  called through :mod:`initlab.engine.torch_private`),
  one pass over memory: the fast path.  On CUDA it is called once per model with
  ``found_inf=frozen[k]``, which makes the kernel skip a frozen model on the device
  without a host sync; on CPU, where reading the flags is free, once for all K models
  while none is frozen.
* ``"foreach"``: plain tensor ops in the order of ``torch.optim.Adam``'s single-tensor
  implementation (bitwise equal to it for live models), with a ``torch.where`` to keep
  frozen models' parameters.  Slower; used when the fused kernel is unavailable
  (torch < 2.4 on CPU) and by tests.

Per-parameter learning rates (muP, :mod:`initlab.engine.multipliers`): ``lr_scale[i]``, a
``[K]`` tensor (or ``None``: 1), multiplies parameter ``i``'s step of model k, ``p -= lr *
lr_scale[i][k] / (1 - b1^t) * m / (...)``, as ``torch.optim.Adam`` with a parameter group
at ``lr * factor`` does (equal within float32 rounding: the step size is one product more).
Any scale makes ``impl="auto"`` the foreach path.
"""

from __future__ import annotations

from typing import Sequence

import torch

from initlab.engine.torch_private import fused_adam_, fused_adam_available

__all__ = ["StackedAdam", "fused_adam_available"]

class StackedAdam:
    """Adam state and update for stacked parameters ``params`` (each ``[K, ...]``,
    contiguous) whose gradients the caller writes into ``grads`` (same shapes) before each
    :meth:`step`; see the module docstring for the formulas."""

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor],
        *,
        lr: float,
        betas: tuple[float, float],
        eps: float,
        impl: str = "auto",
        lr_scale: Sequence[torch.Tensor | None] | None = None,
    ) -> None:
        if impl not in ("auto", "fused", "foreach"):
            raise ValueError(f"impl must be 'auto', 'fused' or 'foreach', got {impl!r}")
        self.params = list(params)
        self.lr_scale = list(lr_scale) if lr_scale is not None else [None] * len(self.params)
        scaled = any(s is not None for s in self.lr_scale)
        if scaled and impl == "fused":
            raise ValueError("impl='fused' takes one learning rate; per-parameter lr_scale needs 'foreach' or 'auto'")
        self.grads = list(grads)
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.t = 0
        device = self.params[0].device
        if impl == "auto":
            impl = "fused" if fused_adam_available(device) and not scaled else "foreach"
        self.impl = impl
        self._cpu = device.type == "cpu"
        self._step_t = torch.zeros((), dtype=torch.float32, device=device)
        self._views: list[tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]] = []
        self._make_views()

    @property
    def K(self) -> int:
        return int(self.params[0].shape[0])

    def _make_views(self) -> None:
        self._views = [
            (
                [p[k] for p in self.params],
                [g[k] for g in self.grads],
                [m[k] for m in self.exp_avg],
                [v[k] for v in self.exp_avg_sq],
            )
            for k in range(self.K)
        ]

    def step(self, frozen: torch.Tensor) -> None:
        """One Adam step using the current contents of ``grads``; ``frozen``: ``[K]``
        float32 on the params' device, 1.0 for models to leave unchanged, else 0.0."""
        self.t += 1
        b1, b2 = self.betas
        if self.impl == "fused":
            # the step count on the device, advanced there (equal to t: exact in float32
            # below 2**24), so that a CUDA graph of the step replays it right
            self._step_t.add_(1.0)
            steps = [self._step_t] * len(self.params)
            if self._cpu and not frozen.any().item():
                # on CPU reading the flags costs nothing: all alive, one call for all K
                fused_adam_(self.params, self.grads, self.exp_avg, self.exp_avg_sq, steps,
                            lr=self.lr, beta1=b1, beta2=b2, eps=self.eps)
                return
            for k, (ps, gs, ms, vs) in enumerate(self._views):
                fused_adam_(ps, gs, ms, vs, steps, lr=self.lr, beta1=b1, beta2=b2, eps=self.eps,
                            found_inf=frozen[k])
            return
        bc1 = 1 - b1**self.t
        bc2_sqrt = (1 - b2**self.t) ** 0.5
        step_size = self.lr / bc1
        for p, g, m, v, scale in zip(self.params, self.grads, self.exp_avg, self.exp_avg_sq, self.lr_scale):
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            shape = (-1, *([1] * (p.dim() - 1)))
            if scale is None:
                new = p.addcdiv(m, denom, value=-step_size)
            else:
                new = p - (scale * step_size).view(shape) * (m / denom)
            keep = frozen.view(shape) > 0
            torch.where(keep, p, new, out=p)

    def select(
        self, keep: Sequence[int], params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]
    ) -> None:
        """Keep only models *keep* (their moments); their parameters and gradients are
        now in the new *params* and *grads*."""
        ix = torch.as_tensor(list(keep), dtype=torch.long, device=self.params[0].device)
        self.params = list(params)
        self.grads = list(grads)
        self.exp_avg = [m.index_select(0, ix) for m in self.exp_avg]
        self.exp_avg_sq = [v.index_select(0, ix) for v in self.exp_avg_sq]
        self.lr_scale = [None if s is None else s.index_select(0, ix) for s in self.lr_scale]
        self._make_views()
