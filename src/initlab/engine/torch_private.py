"""The one home of the private torch APIs initlab uses, each with a public fallback.

The batched engine computes its backward pass by hand with autograd's own ATen kernels,
in autograd's order, and updates with the fused Adam kernel, so that it trains as
``loss.backward()`` and ``torch.optim.Adam`` do, and fast. Those kernels are not public
API: they may change or vanish in a torch release. Everything private is called here and
nowhere else (``tests/test_torch_private.py`` checks that no other module names one):
each name is looked up once, and where it is missing or no longer accepts the call
made here the public formula below takes its place (same math; the last bits may
differ). :data:`CHECKED_ON` lists the torch versions on which every private API was seen
to work and to agree with its fallback (the test repeats that on the torch installed).

=============================================  ========================================
private API                                    public fallback
=============================================  ========================================
``torch._fused_adam_`` (Adam, one pass)        none here: the caller's foreach Adam
``aten._log_softmax_backward_data.out``        ``g - exp(logp) * sum(g)``
``aten.threshold_backward.grad_input``         ``where(a > 0, g, 0)``
``aten.tanh_backward``                         ``g * (1 - a^2)``
``aten.sigmoid_backward``                      ``g * a * (1 - a)``
``aten.elu_backward`` (SELU)                   ``g * scale * (1 if z > 0 else alpha e^z)``
``aten.gelu_backward``                         ``g * (Phi(z) + z phi(z))``
``aten.silu_backward``                         ``g * s (1 + z (1 - s))``, ``s = sigmoid(z)``
``aten.leaky_relu_backward``                   ``g * (1 if z > 0 else slope)``
=============================================  ========================================
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

__all__ = [
    "CHECKED_ON",
    "PRIVATE_APIS",
    "fused_adam_",
    "fused_adam_available",
    "log_softmax_backward_into",
    "threshold_backward_into",
    "unary_backward",
    "using_fallbacks",
]

#: torch versions on which every private API here was checked (present, and agreeing
#: with its fallback to float32 rounding).
CHECKED_ON: tuple[str, ...] = ("2.13.0",)

_aten = torch.ops.aten

#: Names of the private APIs, as in the module docstring's table.
PRIVATE_APIS: tuple[str, ...] = (
    "torch._fused_adam_",
    "aten._log_softmax_backward_data.out",
    "aten.threshold_backward.grad_input",
    "aten.tanh_backward",
    "aten.sigmoid_backward",
    "aten.elu_backward",
    "aten.gelu_backward",
    "aten.silu_backward",
    "aten.leaky_relu_backward",
)

_MISSING: set[str] = set()


def _lookup(name: str) -> Any:
    """The private callable *name* (``aten.x.overload`` or ``torch._x``), or ``None``."""
    try:
        obj: Any = torch
        parts = name.split(".")
        if parts[0] == "aten":
            obj, parts = _aten, parts[1:]
        for part in parts[1:] if parts[0] == "torch" else parts:
            obj = getattr(obj, part)
        return obj
    except (AttributeError, RuntimeError):
        _MISSING.add(name)
        return None


def using_fallbacks() -> list[str]:
    """The private APIs this torch lacks (their fallbacks are in use)."""
    return sorted(_MISSING)


# --------------------------------------------------------------------------- fused Adam

_FUSED_ADAM = _lookup("torch._fused_adam_")
_FUSED_OK: dict[str, bool] = {}


def fused_adam_(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], *, lr: float, beta1: float,
                beta2: float, eps: float, found_inf: torch.Tensor | None = None) -> None:
    """``torch._fused_adam_`` without weight decay, amsgrad or maximize: one in-place Adam
    step of every tensor in *params*; ``found_inf`` (a scalar, nonzero) skips the step.
    Call only where :func:`fused_adam_available` says so."""
    kw: dict[str, Any] = {} if found_inf is None else {"found_inf": found_inf}
    _FUSED_ADAM(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=beta1, beta2=beta2,
                weight_decay=0.0, eps=eps, amsgrad=False, maximize=False, **kw)


def fused_adam_available(device: torch.device) -> bool:
    """Whether :func:`fused_adam_` works on *device*'s type, ``found_inf`` included (tried
    once per device type on two-element tensors)."""
    key = device.type
    if key not in _FUSED_OK:
        if _FUSED_ADAM is None:
            _FUSED_OK[key] = False
            return False
        try:
            p = torch.zeros(2, device=device)
            g = torch.ones(2, device=device)
            m, v = torch.zeros_like(p), torch.zeros_like(p)
            step = torch.ones((), device=device)
            skip = torch.ones((), device=device)
            fused_adam_([p], [g], [m], [v], [step], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-7,
                        found_inf=skip)
            skipped = bool((p == 0).all())
            skip.zero_()
            fused_adam_([p], [g], [m], [v], [step], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-7,
                        found_inf=skip)
            _FUSED_OK[key] = skipped and bool((p != 0).all())
        except (RuntimeError, NotImplementedError, TypeError):
            _FUSED_OK[key] = False
    return _FUSED_OK[key]


# --------------------------------------------------------------------------- loss backward

_LOG_SOFTMAX_BACKWARD = _lookup("aten._log_softmax_backward_data.out")


def _log_softmax_backward_fallback(grad: torch.Tensor, logp: torch.Tensor, dim: int,
                                   out: torch.Tensor) -> torch.Tensor:
    torch.mul(torch.exp(logp), grad.sum(dim, keepdim=True), out=out)
    return torch.sub(grad, out, out=out)


def log_softmax_backward_into(grad: torch.Tensor, logp: torch.Tensor, dim: int,
                              out: torch.Tensor) -> torch.Tensor:
    """The gradient through ``logp = log_softmax(z, dim)`` of the gradient *grad* w.r.t.
    ``logp``, written into *out*: ``grad - exp(logp) * grad.sum(dim)``."""
    if _LOG_SOFTMAX_BACKWARD is not None:
        return _LOG_SOFTMAX_BACKWARD(grad, logp, dim, logp.dtype, out=out)
    return _log_softmax_backward_fallback(grad, logp, dim, out)


# --------------------------------------------------------------------------- activations

_THRESHOLD_BACKWARD = _lookup("aten.threshold_backward.grad_input")


def threshold_backward_into(grad: torch.Tensor, a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """ReLU's backward given its output *a*: ``grad`` where ``a > 0``, else 0, into *out*."""
    if _THRESHOLD_BACKWARD is not None:
        return _THRESHOLD_BACKWARD(grad, a, 0, grad_input=out)
    return torch.where(a > 0, grad, torch.zeros((), dtype=grad.dtype, device=grad.device), out=out)


#: SELU constants (Klambauer et al. 2017), as in torch.nn.SELU.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.01

_Backward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _private_unary() -> dict[str, _Backward | None]:
    tanh, sigmoid = _lookup("aten.tanh_backward"), _lookup("aten.sigmoid_backward")
    elu, gelu = _lookup("aten.elu_backward"), _lookup("aten.gelu_backward")
    silu, leaky = _lookup("aten.silu_backward"), _lookup("aten.leaky_relu_backward")
    return {
        "tanh": (lambda g, z, a: tanh(g, a)) if tanh else None,
        "sigmoid": (lambda g, z, a: sigmoid(g, a)) if sigmoid else None,
        "selu": (lambda g, z, a: elu(g, SELU_ALPHA, SELU_SCALE, 1.0, False, z)) if elu else None,
        "gelu": (lambda g, z, a: gelu(g, z)) if gelu else None,
        "silu": (lambda g, z, a: silu(g, z)) if silu else None,
        "leaky_relu": (lambda g, z, a: leaky(g, z, LEAKY_SLOPE, False)) if leaky else None,
    }


def _gelu_fallback(g: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    cdf = 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return g * (cdf + z * pdf)


def _silu_fallback(g: torch.Tensor, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(z)
    return g * s * (1.0 + z * (1.0 - s))


#: Public formulas ``backward(grad, z, a)`` with ``a = act(z)``.
_FALLBACK_UNARY: dict[str, _Backward] = {
    "relu": lambda g, z, a: torch.where(a > 0, g, torch.zeros((), dtype=g.dtype, device=g.device)),
    "tanh": lambda g, z, a: g * (1.0 - a * a),
    "sigmoid": lambda g, z, a: g * a * (1.0 - a),
    "selu": lambda g, z, a: g * SELU_SCALE * torch.where(z > 0, torch.ones_like(z), SELU_ALPHA * torch.exp(z)),
    "gelu": _gelu_fallback,
    "silu": _silu_fallback,
    "leaky_relu": lambda g, z, a: g * torch.where(z > 0, torch.ones_like(z), torch.full_like(z, LEAKY_SLOPE)),
    "linear": lambda g, z, a: g,
}

_UNARY: dict[str, _Backward] = {
    **_FALLBACK_UNARY,
    "relu": lambda g, z, a: threshold_backward_into(g, a, torch.empty_like(g)),
    **{k: v for k, v in _private_unary().items() if v is not None},
}


def unary_backward(name: str, *, fallback: bool = False) -> _Backward:
    """``backward(grad, z, a) = grad * act'(z)`` of activation *name* (``a = act(z)``):
    autograd's own kernel where this torch has it (bitwise ``loss.backward()``), else (or
    with ``fallback``) the public formula."""
    table = _FALLBACK_UNARY if fallback else _UNARY
    if name not in table:
        raise KeyError(name)
    return table[name]
