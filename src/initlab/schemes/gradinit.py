"""GradInit: learn one scale per parameter tensor so that one optimizer step from the
initialization gives the lowest loss, under a bound on the gradient norm.

Zhu, Ni, Xu, Kong, Huang & Goldstein 2021, "GradInit: Learning to Initialize Neural
Networks for Stable and Efficient Training" (NeurIPS), Algorithm 1. Every parameter tensor
is ``theta_i = m_i * theta0_i`` (theta0 from the base scheme, m_i = 1 at the start); with
``g = grad L(S; theta)`` on a mini-batch S and the first step of the target optimizer
``A[g] = g`` (SGD; the authors' scripts normalize it, ``g / ||g||_2``) or ``sign(g)`` (Adam,
whose first step is ``g / |g|``), the scales solve

    min_m  L(S'; theta - eta A[g]) / eta     subject to  ||g||_p <= gamma,
    m_i >= alpha (weights), m_i >= 0 (biases),

with p = 2 for SGD and p = 1 for Adam. Each iteration takes an Adam step of learning rate
``lr`` (tau) on m, with each coordinate of m's gradient clipped to ``[-grad_clip,
grad_clip]``: on ``||g||_p`` itself when the constraint is violated (projecting back), else on
``L(S'; theta - eta A[g]) / eta`` (the step direction ``A[g]`` is held fixed, as in the
authors' code), then clamps m to its lower bound. S is a random half of the batch and S'
another half that shares half of S's examples (the authors' overlapping mini-batches).

Defaults are the authors' CIFAR-10 settings (github.com/zhuchen03/gradinit, train_cifar.py
and launch/run_gradinit.sh): ``eta = 0.1``, ``gamma = 1``, ``alpha = 0.01`` (min_scale),
``grad_clip = 1``, ``lr = 1e-3`` (their default; the scripts use 1e-3 to 1e-1 per
architecture), ``iterations = 390`` (one CIFAR-10 epoch), normalized SGD directions.

The record (:class:`~initlab.schemes.optimized.OptimizedRecord`) gives, on the whole batch
before and after the fit, the objective ``L(theta - eta A[g]) / eta`` and the constraint's
``||g||_p`` (``constraint_before`` / ``constraint_after``; feasible when ``<= gamma``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.func import functional_call

from initlab.schemes.optimized import Budget, OptimizedRecord, OptimizedScheme, run_eval, task_loss

GRADINIT = ("Zhu et al. 2021, 'GradInit: Learning to Initialize Neural Networks for Stable and Efficient "
            "Training' (NeurIPS), Algorithm 1; defaults from github.com/zhuchen03/gradinit")


def _step_dir(g: torch.Tensor, optimizer: str, gnorm: torch.Tensor) -> torch.Tensor:
    return g.sign() if optimizer == "adam" else g / gnorm.clamp_min(1e-30)


def _norm(grads: Sequence[torch.Tensor], optimizer: str) -> torch.Tensor:
    if optimizer == "adam":
        return sum(g.abs().sum() for g in grads)  # type: ignore[return-value]
    return torch.sqrt(sum(g.square().sum() for g in grads))  # type: ignore[arg-type]


class GradInitScheme(OptimizedScheme):
    """GradInit (module docstring): ``fit_`` learns ``m`` by Algorithm 1 on the batch."""

    def objective(self, model: nn.Module, names: Sequence[str], theta: Sequence[torch.Tensor],
                  x: torch.Tensor, y: torch.Tensor, x2: torch.Tensor, y2: torch.Tensor,
                  *, graph: bool, constrained: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(objective, ||g||_p, L(S; theta))`` at *theta*. The objective is Algorithm 1's:
        ``||g||_p`` when it exceeds gamma (with *constrained*), else ``L(S'; theta - eta A[g]) / eta``."""
        opt, eta, gamma = self.params["optimizer"], float(self.params["eta"]), float(self.params["gamma"])
        loss = task_loss(functional_call(model, dict(zip(names, theta)), (x,)), y)
        grads = torch.autograd.grad(loss, theta, create_graph=graph, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, theta)]
        gnorm = _norm(grads, opt)
        if constrained and gnorm.item() > gamma:
            return gnorm, gnorm, loss
        stepped = [t - eta * _step_dir(g, opt, gnorm).detach() for t, g in zip(theta, grads)]
        after = task_loss(functional_call(model, dict(zip(names, stepped)), (x2,)), y2)
        return after / eta, gnorm, loss

    def fit_(self, model: nn.Module, data: Any, tensors: Sequence[tuple[str, torch.Tensor, bool]],
             generator: torch.Generator | None) -> OptimizedRecord:
        p = self.params
        x, y, labels = self._prepare(model, data, generator)
        names = [n for n, _, _ in tensors]
        base = [t.detach().clone() for _, t, _ in tensors]
        lows = torch.tensor([float(p["alpha"]) if w else 0.0 for _, _, w in tensors], device=x.device)
        m = torch.ones(len(tensors), device=x.device, dtype=torch.float32, requires_grad=True)
        adam = torch.optim.Adam([m], lr=float(p["lr"]))
        clip, n = float(p["grad_clip"]), x.shape[0]
        half = max(n // 2, 1)

        def theta() -> list[torch.Tensor]:
            return [m[i].to(b.dtype) * b for i, b in enumerate(base)]

        def whole() -> tuple[float, float, float]:
            obj, gnorm, loss = self.objective(model, names, theta(), x, y, x, y, graph=False,
                                              constrained=False)
            return float(obj.detach()), float(gnorm.detach()), float(loss.detach())

        def fit() -> OptimizedRecord:
            obj0, c0, loss0 = whole()
            budget = Budget(int(p["iterations"]), float(p["max_seconds"]))
            for _ in budget:
                perm = torch.randperm(n, generator=generator).to(x.device)
                s, s2 = perm[:half], perm[half // 2: half // 2 + half]
                adam.zero_grad()
                obj, _, _ = self.objective(model, names, theta(), x[s], y[s], x[s2], y[s2], graph=True)
                (m_grad,) = torch.autograd.grad(obj, m)
                m.grad = m_grad.clamp(-clip, clip)
                adam.step()
                with torch.no_grad():
                    m.copy_(torch.maximum(m, lows))
            obj1, c1, loss1 = whole()
            with torch.no_grad():
                for (_, t, _), new in zip(tensors, theta()):
                    t.copy_(new)
            desc = (f"L(theta - {float(p['eta']):g} A[g]) / {float(p['eta']):g} s.t. "
                    f"||g||_{1 if p['optimizer'] == 'adam' else 2} <= {float(p['gamma']):g} ({p['optimizer']})")
            return OptimizedRecord(self.name, desc, budget.done, budget.seconds, budget.stopped_by,
                                   obj0, obj1, loss0, loss1, labels, names, [float(v) for v in m.detach()],
                                   constraint_before=c0, constraint_after=c1)

        with torch.enable_grad():
            return run_eval(model, fit)
