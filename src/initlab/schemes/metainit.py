"""MetaInit: choose each weight tensor's norm so that the gradient quotient is small.

Dauphin & Schoenholz 2019, "MetaInit: Initializing learning by learning to initialize"
(NeurIPS), eq. (1) and the algorithm of its appendix. With ``g(theta)`` the gradient of the
loss on a batch and ``H`` its Hessian, one gradient step changes the gradient to
``g(theta - g) ~ g - H g``; the *gradient quotient*

    GQ(theta) = (1/N) || (g - H g) / (g + eps sign(g)) - 1 ||_1      (N parameters)

is 0 when a step leaves the gradient unchanged (the curvature neither amplifies nor kills
it), and large on a badly scaled network. ``H g`` is the gradient of ``||g||^2 / 2`` (a
Hessian-vector product by double backpropagation); ``eps sign(g)`` keeps the quotient finite
(``sign(0) = +1``, treated as a constant). MetaInit minimizes GQ over the *norms* of the
weight tensors (every parameter of 2 or more dims) by sign-SGD with momentum on each norm:

    d_j = sign(<w_j, dGQ/dw_j> / ||w_j||)      (the sign of dGQ/d||w_j||)
    v_j <- momentum v_j - lr d_j;   w_j <- w_j (||w_j|| + v_j) / ||w_j||

GQ is computed over every parameter of the initialized layers (biases included), as the
paper's code does. Defaults are the paper's: ``lr = 0.1``, ``momentum = 0.9``,
``iterations = 500``, ``eps = 1e-5``. The record's scales are ``||w_j|| / ||w0_j||``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from initlab.errors import InitlabError
from initlab.schemes.optimized import Budget, OptimizedRecord, OptimizedScheme, run_eval, task_loss

METAINIT = ("Dauphin & Schoenholz 2019, 'MetaInit: Initializing learning by learning to initialize' "
            "(NeurIPS), eq. (1) and appendix code: lr 0.1, momentum 0.9, 500 steps, eps 1e-5")


def gradient_quotient(loss: torch.Tensor, params: Sequence[torch.Tensor], eps: float) -> torch.Tensor:
    """GQ of *loss* over *params* (module docstring), differentiable in *params*."""
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
    hg = torch.autograd.grad(sum((g * g).sum() / 2 for g in grads), params, create_graph=True,
                             allow_unused=True)
    hg = [torch.zeros_like(p) if h is None else h for h, p in zip(hg, params)]
    total = sum(p.numel() for p in params)
    out = sum((((g - h) / (g + eps * (2 * (g >= 0).to(g.dtype) - 1).detach())) - 1).abs().sum()
              for g, h in zip(grads, hg))
    return out / total  # type: ignore[operator]


class MetaInitScheme(OptimizedScheme):
    """MetaInit (module docstring): ``fit_`` rescales the weight tensors' norms on the batch."""

    def gq(self, model: nn.Module, params: Sequence[torch.Tensor], x: torch.Tensor,
           y: torch.Tensor) -> torch.Tensor:
        return gradient_quotient(task_loss(model(x), y), params, float(self.params["eps"]))

    def fit_(self, model: nn.Module, data: Any, tensors: Sequence[tuple[str, torch.Tensor, bool]],
             generator: torch.Generator | None) -> OptimizedRecord:
        p = self.params
        x, y, labels = self._prepare(model, data, generator)
        params = [t for _, t, _ in tensors if t.requires_grad]
        scaled = [(n, t) for n, t, w in tensors if w and t.dim() >= 2 and t.requires_grad]
        if not scaled:
            raise InitlabError(f"{self.spec}: no weight of 2 or more dims requires grad; MetaInit rescales "
                               "trainable weights, so unfreeze them (requires_grad=True)")
        norms0 = [float(t.detach().norm()) for _, t in scaled]
        lr, momentum = float(p["lr"]), float(p["momentum"])
        memory = [0.0] * len(scaled)

        def fit() -> OptimizedRecord:
            with torch.no_grad():
                loss0 = float(task_loss(model(x), y))
            gq0 = float(self.gq(model, params, x, y))
            budget = Budget(int(p["iterations"]), float(p["max_seconds"]))
            for _ in budget:
                gq = self.gq(model, params, x, y)
                grads = torch.autograd.grad(gq, [t for _, t in scaled], allow_unused=True)
                with torch.no_grad():
                    for j, ((_, t), g) in enumerate(zip(scaled, grads)):
                        norm = float(t.norm())
                        if g is None or norm == 0:
                            continue
                        d = float(torch.sign((t * g).sum() / norm))
                        memory[j] = momentum * memory[j] - lr * d
                        new = norm + memory[j]
                        t.mul_(new / norm)
            gq1 = float(self.gq(model, params, x, y))
            with torch.no_grad():
                loss1 = float(task_loss(model(x), y))
            scales = [float(t.detach().norm()) / n0 if n0 > 0 else 1.0 for (_, t), n0 in zip(scaled, norms0)]
            return OptimizedRecord(self.name, f"GQ (eps {float(p['eps']):g})", budget.done, budget.seconds,
                                   budget.stopped_by, gq0, gq1, loss0, loss1, labels,
                                   [n for n, _ in scaled], scales)

        with torch.enable_grad():
            return run_eval(model, fit)
