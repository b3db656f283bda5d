"""Arithmetic precision of training (``TrainConfig.precision``): ``fp32``, ``tf32``, ``bf16``.

* ``"fp32"`` (default): float32 throughout, the article's numerics. TF32 matmuls are
  switched *off* for the run on CUDA (``torch.backends.cuda.matmul.allow_tf32`` and
  cuDNN's, restored after), so a globally enabled TF32 cannot leak in.
* ``"tf32"``: the same buffers and kernels, with CUDA's TF32 matmul and convolution mode
  on for the run (restored after): the products' operands are rounded to a 10-bit
  mantissa inside the tensor cores, accumulation stays float32. CUDA only, compute
  capability 8.0 (Ampere) or newer; on the CPU it is refused.
* ``"bf16"``: mixed precision with float32 master weights, as ``torch.autocast(dtype=
  torch.bfloat16)`` does for the linear layers of a float32 model: the operands of every
  matrix product (weights, activations, gradients) are rounded to bfloat16 (8-bit
  mantissa), the product is accumulated in float32 and its result rounded to bfloat16,
  then kept in the float32 buffers; everything else is float32: the weights themselves,
  their gradients' sums, the bias additions, activations' functions, the loss and its
  softmax, the divergence check and the optimizer's state (Adam's moments) and update.
  Validation runs in float32 on the weights trained so.

Why float32 master weights for bf16 (and not bfloat16 weights): Adam moves a weight by
about ``lr`` per step (``lr * m_hat / sqrt(v_hat)``, ``|m_hat / sqrt(v_hat)| <~ 1``), and
a bfloat16 weight ``w`` (8 significant bits) is at least ``|w| * 2**-8`` from its
neighbours, so an update below ``|w| * 2**-9`` rounds away. At the article's ``lr =
1e-3`` every update of a weight with ``|w| > 2**9 * 1e-3 = 0.51``, and at Adam's small
late-training steps (``|m_hat / sqrt(v_hat)| << 1``) those of far smaller weights, would
be lost (and the others rounded to a multiple of the spacing); float32 weights (24
significant bits) keep updates down to ``|w| * 2**-24``. The optimizer state is float32 for the same
reason (``v`` is a running mean of squares, whose increments ``(1 - b2) g^2`` are 0.1% of
it). Sources: Micikevicius et al., "Mixed Precision Training", ICLR 2018 (fp32 master
weights); Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019.

:func:`check_precision` refuses a precision the device cannot run (one line);
:func:`precision_mode` is the context the trainers run in; :func:`bf16_calls` are the
bfloat16 products of the MLP engine (:mod:`initlab.engine.step`); :func:`autocast` the
generic trainer's (``torch.autocast``, whose own op lists decide what runs in bfloat16).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from initlab.errors import InitlabError

__all__ = ["PRECISIONS", "autocast", "bf16_calls", "check_precision", "precision_mode"]

#: The precisions a run may ask for.
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")


def _capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def check_precision(precision: str, device: str | torch.device) -> None:
    """*precision* is one of :data:`PRECISIONS` and *device* can run it, or a one-line
    :class:`InitlabError` naming what to use instead."""
    if precision not in PRECISIONS:
        raise InitlabError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    dev = torch.device(device)
    if precision == "fp32":
        return
    if dev.type != "cuda":
        if precision == "tf32":
            raise InitlabError("precision 'tf32' is a CUDA matmul mode (compute capability 8.0 or newer); "
                               "on the CPU use fp32 or bf16")
        return  # bfloat16 products run on every CPU (emulated where the CPU lacks AVX512-BF16/AMX)
    if not torch.cuda.is_available():
        return  # the device check itself reports the missing GPU
    major, minor = _capability(dev)
    if major < 8:
        name = torch.cuda.get_device_name(dev)
        raise InitlabError(f"precision {precision!r} needs a CUDA device of compute capability 8.0 or newer; "
                           f"{name} has {major}.{minor}: use fp32")


@contextlib.contextmanager
def precision_mode(precision: str, device: torch.device) -> Iterator[None]:
    """Run the block with CUDA's TF32 switches as *precision* asks (on for ``tf32``, off
    otherwise; CUDA devices only), restoring them after."""
    if device.type != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    on = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def autocast(precision: str, device: torch.device) -> Any:
    """``torch.autocast`` to bfloat16 for ``bf16``, else a context that does nothing."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


#: One deferred tensor call, as :data:`initlab.engine.functional.Call`.
Call = tuple[Any, tuple[Any, ...], dict[str, Any]]


def _low_copy(t: torch.Tensor) -> torch.Tensor:
    """A bfloat16 buffer laid out like *t* (a stride-0 batch dimension, e.g. one data
    stream's batch shared by its models, stays stride 0: one copy, not K)."""
    if t.dim() == 3 and t.shape[0] > 1 and t.stride(0) == 0:
        return torch.empty_strided(t.shape[1:], t.stride()[1:], dtype=torch.bfloat16,
                                   device=t.device).expand(t.shape)
    return torch.empty_strided(t.shape, t.stride(), dtype=torch.bfloat16, device=t.device)


def _copy_into(low: torch.Tensor, src: torch.Tensor) -> None:
    if low.dim() == 3 and low.shape[0] > 1 and low.stride(0) == 0:
        low[0].copy_(src[0])
    else:
        low.copy_(src)


def bf16_calls(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor,
               bias: torch.Tensor | None = None) -> list[Call]:
    """The calls that compute ``out[k] = bf16(bf16(a[k]) @ bf16(b[k])) (+ bias[k])`` for all
    K models into the float32 *out* (module docstring): *a* and *b* are rounded into
    bfloat16 buffers made here once, multiplied by ``torch.bmm`` (float32 accumulation),
    and the bfloat16 product is widened into *out*, the float32 bias added there. Like
    :func:`initlab.engine.functional.bmm_calls`, the list may be run again whenever *a*,
    *b* and *bias* hold new values in the same memory."""
    a16, b16 = _low_copy(a), _low_copy(b)
    prod = torch.empty(out.shape, dtype=torch.bfloat16, device=out.device)
    calls: list[Call] = [(_copy_into, (a16, a), {}), (_copy_into, (b16, b), {}),
                         (torch.bmm, (a16, b16), {"out": prod})]
    if bias is None:
        calls.append((out.copy_, (prod,), {}))
    else:
        calls.append((torch.add, (prod, bias.unsqueeze(1)), {"out": out}))
    return calls
