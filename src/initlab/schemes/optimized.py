"""What the optimized schemes share (GradInit, MetaInit): the record of what they did, the
law of their weights, the batch they fit on, the loss and the budget.

Both start from a *base* scheme (a per-weight, data-free scheme: ``he_normal`` unless
``base=`` says otherwise) and then change only one scalar per parameter tensor, so every
weight is ``w = m * w0`` with ``w0`` drawn by the base scheme and ``m > 0`` learned on the
data batch. Their law (:class:`ScaledLaw`) is therefore the base law *up to one scale per
tensor*: ``initlab.check`` verifies that the weight divided by its realized scale follows the
base law (a KS test), and reports the scale.

Data: ``data=`` is a batch of inputs ``x`` or a pair ``(x, y)``. Both schemes minimize a
loss, so they need targets: integer class labels (cross-entropy, as both papers) or a float
tensor shaped like the model's output (mean squared error). Without ``y`` the targets are
random class labels drawn from the apply generator over the model's output units
(``OptimizedRecord.labels = "random"``): that is what MetaInit's published code does (it
feeds N(0, 1) inputs and uniform random labels); for GradInit it is a fallback and the
record says so.

Budget: ``iterations`` (each paper's default) and ``max_seconds`` (wall clock, checked after
every iteration); the first reached stops the fit, and the record says which.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from initlab import stats
from initlab.errors import InitlabError
from initlab.schemes.core import Sampler, Scheme
from initlab.schemes.laws import Law

__all__ = ["OptimizedRecord", "OptimizedScheme", "OptimizedSampler", "ScaledLaw", "Budget",
           "split_data", "task_loss"]


@dataclass
class OptimizedRecord:
    """What an optimized scheme (GradInit, MetaInit) did on its batch: the tensors it
    rescaled and their final scales ``m`` (``w = m * w0``), the iterations it ran, and its
    objective (and the task loss) before and after. Stored in ``InitReport.optimized``."""

    scheme: str
    #: the quantity minimized, in words (``"L(theta - eta A[g]) s.t. ||g||_1 <= gamma"``, ``"GQ"``)
    objective: str
    iterations: int
    seconds: float
    #: what ended the fit: ``"iterations"`` or ``"max_seconds"``
    stopped_by: str
    objective_before: float
    objective_after: float
    #: the task loss on the whole batch at the base init and after the fit
    loss_before: float
    loss_after: float
    #: where the targets came from: ``"data"`` or ``"random"`` (random class labels)
    labels: str
    tensors: list[str] = field(default_factory=list)
    scales: list[float] = field(default_factory=list)
    #: GradInit's constraint ||g||_p on the whole batch before and after (NaN for MetaInit)
    constraint_before: float = math.nan
    constraint_after: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScaledLaw(Law):
    """The base scheme's law up to one positive scale per tensor (``w = m * w0``).

    ``initlab.check`` calls :meth:`verify`: the weight divided by ``m_hat = std(w) / std(base)``
    must follow the base law (KS test at ``ks_alpha``); a mean far from the base mean (in
    units of the rescaled standard error, 5 sigma) is a failure too. Estimating ``m`` from the
    same sample makes the KS test conservative (Lilliefors), so a wrong *shape* is what it
    catches, not a wrong scale."""

    @property
    def is_random(self) -> bool:
        """False: the scale is set from data, so a draw has no fixed law to test against
        (``initlab.check`` uses :meth:`verify` instead)."""
        return False

    def describe(self) -> str:
        return f"m x ({self.params['base'].describe()}), one m > 0 per tensor"

    def cdf(self, x: np.ndarray) -> np.ndarray:  # the base law at scale 1
        return self.params["base"].cdf(x)

    def verify(self, w: torch.Tensor, ks_alpha: float) -> tuple[str, float, float]:
        base: Law = self.params["base"]
        flat = w.reshape(-1).to(torch.float64)
        if not base.is_random:
            return "", 0.0, 1.0
        sd = float(flat.std(unbiased=False))
        if not math.isfinite(sd) or sd == 0 or not base.std > 0:
            return f"the weight has std {sd:.3g}: not a positive multiple of {base.describe()}", 1.0, 0.0
        m = sd / base.std
        z = flat / m
        reasons = []
        se = base.std / math.sqrt(z.numel())
        if abs(float(z.mean()) - base.mean) > 5 * se:
            reasons.append(f"mean {float(flat.mean()):.4g} is not {m:.4g} x the base mean {base.mean:.4g}")
        sample = np.sort(z.numpy())
        if sample.size > 20000:
            sample = sample[:: math.ceil(sample.size / 20000)]
        d, p = stats.ks_test(sample, base.cdf)
        if not p >= ks_alpha:
            reasons.append(f"w / {m:.4g} is not {base.describe()} (KS D={d:.3g}, p={p:.2g})")
        return "; ".join(reasons), d, p


@dataclass(frozen=True)
class OptimizedSampler(Sampler):
    """Draws the base scheme (the starting point); the law is the base law up to a scale."""

    base: Scheme
    min_dim = 2

    def law(self, shape, fan_in, fan_out) -> Law:
        inner = self.base.law(shape, fans=(fan_in, fan_out))
        return ScaledLaw("scaled", math.nan, math.nan, math.nan, {"base": inner})

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        self.base.init_(tensor, generator=generator, fans=(fan_in, fan_out))


def base_sampler(spec: str, scheme: str) -> OptimizedSampler:
    """The sampler of *scheme*'s ``base=`` scheme; refuses a data-dependent or model-level one."""
    from initlab.schemes.registry import get_scheme

    base = get_scheme(spec)
    if base.requires_data or getattr(base, "model_level", False):
        raise InitlabError(f"{scheme}: base={spec!r} must be a per-weight, data-free scheme such as "
                           "he_normal or 'normal(std=0.01)'")
    return OptimizedSampler(base)


@dataclass
class Budget:
    """Stops a fit after ``iterations`` or ``max_seconds`` (wall clock), whichever first."""

    iterations: int
    max_seconds: float
    t0: float = field(default_factory=time.perf_counter)
    done: int = 0
    stopped_by: str = "iterations"

    def __iter__(self):
        while self.done < self.iterations:
            yield self.done
            self.done += 1
            if time.perf_counter() - self.t0 >= self.max_seconds and self.done < self.iterations:
                self.stopped_by = "max_seconds"
                return

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0


def split_data(data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, y)`` from *data* (a tensor ``x`` or a pair ``(x, y)``); one-line errors."""
    if isinstance(data, (tuple, list)):
        if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
            raise InitlabError(f"{what}: data must be a tensor of inputs or a pair (inputs, targets) of tensors, "
                               f"got a {type(data).__name__} of {len(data)}")
        x, y = data
        if y.shape[0] != x.shape[0]:
            raise InitlabError(f"{what}: {x.shape[0]} inputs but {y.shape[0]} targets; give one target per input")
    elif isinstance(data, torch.Tensor):
        x, y = data, None
    else:
        raise InitlabError(f"{what}: data must be a tensor of inputs or a pair (inputs, targets), "
                           f"got {type(data).__name__}")
    if x.dim() < 1 or x.shape[0] < 2:
        raise InitlabError(f"{what}: needs a batch of at least 2 inputs, got shape {list(x.shape)}")
    return x, y


def task_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer labels (both papers' loss), else mean squared error."""
    if out.dim() == 2 and not torch.is_floating_point(y):
        return nn.functional.cross_entropy(out, y.long())
    return nn.functional.mse_loss(out, y.to(out.dtype).reshape(out.shape))


def targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator | None,
            what: str) -> tuple[torch.Tensor, str]:
    """*y*, or random class labels over the model's output units (see the module doc)."""
    if y is not None:
        return y.to(x.device), "data"
    with torch.no_grad():
        out = model(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < 2:
        raise InitlabError(f"{what}: without targets the model must output class scores (batch, classes); "
                           "pass data=(inputs, targets)")
    labels = torch.randint(0, out.shape[1], (x.shape[0],), generator=generator)
    return labels.to(x.device), "random"


class OptimizedScheme(Scheme):
    """A scheme that draws its base and then fits one scale per tensor on data
    (:meth:`fit_`, called by :func:`initlab.apply` after the draw)."""

    requires_data = True
    #: the fit takes targets: ``apply``'s callers pass ``(x, y)`` where they have labels
    uses_labels = True
    #: ``initlab.check`` tests each weight against the :class:`ScaledLaw` (no data needed)
    checked_by_law = True

    def fit_(self, model: nn.Module, data: Any, tensors: Sequence[tuple[str, torch.Tensor, bool]],
             generator: torch.Generator | None) -> OptimizedRecord:
        """Fit the scales of *tensors* (``(name, parameter, is_weight)``) on *data* in place."""
        raise NotImplementedError

    def _prepare(self, model: nn.Module, data: Any, generator: torch.Generator | None):
        x, y = split_data(data, self.spec)
        dev = next((p.device for p in model.parameters()), x.device)
        x = x.to(dev)
        y, labels = targets(model, x, y, generator, self.spec)
        return x, y, labels


def run_eval(model: nn.Module, fn: Callable[[], Any]) -> Any:
    """*fn()* with *model* in eval mode (dropout off), restored afterwards."""
    was = model.training
    model.eval()
    try:
        return fn()
    finally:
        model.train(was)
