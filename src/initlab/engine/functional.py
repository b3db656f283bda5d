"""Batched MLP math on a :class:`~initlab.engine.stack.ParamStack`: activations and their
derivatives, the cross-entropy, and evaluation (eval mode) of K models on one input.

Shapes: ``K`` models, ``B`` samples, ``F`` features.  A layer is
``z = a @ W.T + b`` computed for all models by ``torch.baddbmm`` on ``[K, B, in]`` inputs.

The cross-entropy of logits ``z`` (``C`` classes) and label ``y`` is Keras'
sparse categorical cross-entropy of ``softmax(z)``:
``loss = logsumexp(z) - z[y]``, with gradient ``softmax(z) - onehot(y)``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from initlab.engine.stack import ParamStack
from initlab.engine.torch_private import LEAKY_SLOPE, unary_backward

__all__ = [
    "activation",
    "activation_backward",
    "bmm",
    "bmm_calls",
    "run_calls",
    "cross_entropy_sums",
    "eval_forward",
    "evaluate",
]



def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function ``act(z)`` of *name* (same functions as the nn modules of
    :data:`initlab.engine.models.ACTIVATIONS`)."""
    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "selu": torch.selu,
        "gelu": F.gelu,
        "silu": F.silu,
        "leaky_relu": lambda z: F.leaky_relu(z, LEAKY_SLOPE),
        "linear": lambda z: z,
    }[name]


def activation_backward(
    name: str, grad: torch.Tensor, z: torch.Tensor, a: torch.Tensor
) -> torch.Tensor:
    """``grad * act'(z)`` given the pre-activation *z* and activation ``a = act(z)``.

    Uses the same ATen backward kernels as autograd where this torch has them (so the
    result is bitwise the one ``loss.backward()`` gives through the nn module), else
    their public formulas (:mod:`initlab.engine.torch_private`).
    """
    return unary_backward(name)(grad, z, a)


def cross_entropy_sums(
    logits: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For ``logits [K, B, C]`` and labels ``y [K, B]``: ``(logp [K, B, C], loss_sum [K],
    correct [K])`` where ``logp = log_softmax(logits)``, ``loss_sum[k] = -sum_b logp[y]``
    and ``correct[k]`` counts ``argmax(logits) == y`` (float32).  Computed as
    ``F.cross_entropy`` computes it (log_softmax, then the picked entries), so the
    gradient ``(exp(logp) - onehot(y)) / B`` matches autograd's."""
    logp = torch.log_softmax(logits, dim=2)
    loss_sum = -logp.gather(2, y.unsqueeze(2)).sum((1, 2))
    correct = (logits.argmax(2) == y).sum(1, dtype=torch.float32)
    return logp, loss_sum, correct


#: Products of at least this many multiply-adds per model get thread-balanced (see bmm).
_BALANCE_MIN_MACS = 2**22


#: One deferred tensor call: ``(function, positional args, keyword args)``.
Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def bmm_calls(
    a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, bias: torch.Tensor | None = None
) -> list[Call]:
    """The torch calls that compute ``out[k] = a[k] @ b[k] (+ bias[k])`` for all K models
    (``torch.bmm``/``baddbmm``), as a list to run with :func:`run_calls`.

    The list holds views of *a*, *b*, *out* and *bias* made once, so it can be run again
    whenever those tensors hold new values in the same memory (the engine keeps one list per
    product and batch size and so skips making the views at every step).

    On CPU, ``torch.bmm`` runs the K products in parallel, one per thread, so when K is not
    a multiple of the thread count T its last round leaves threads idle (K=7 on 2 threads:
    4 rounds for 3.5 rounds of work).  For big products the ``K % T`` remaining models
    therefore get one multi-threaded ``torch.mm``/``addmm`` each, up to ~10% faster.  Their
    results agree with ``torch.bmm``'s to float32 rounding (tested against the bound
    ``2 gamma_n |a| |b|``), and bit for bit on some CPUs' BLAS kernels but not on others,
    so which models take this path (their position in the batch) can change the last bits
    of their results.
    """
    K = out.shape[0]
    T = torch.get_num_threads()
    rest = K % T if out.device.type == "cpu" and K > T else 0
    if rest == 0 or a.shape[1] * a.shape[2] * b.shape[2] < _BALANCE_MIN_MACS:
        if bias is None:
            return [(torch.bmm, (a, b), {"out": out})]
        return [(torch.baddbmm, (bias.unsqueeze(1), a, b), {"out": out})]
    n = K - rest
    if bias is None:
        calls: list[Call] = [(torch.bmm, (a[:n], b[:n]), {"out": out[:n]})]
        calls += [(torch.mm, (a[k], b[k]), {"out": out[k]}) for k in range(n, K)]
    else:
        calls = [(torch.baddbmm, (bias[:n].unsqueeze(1), a[:n], b[:n]), {"out": out[:n]})]
        calls += [(torch.addmm, (bias[k], a[k], b[k]), {"out": out[k]}) for k in range(n, K)]
    return calls


def run_calls(calls: list[Call]) -> None:
    """Run the deferred calls of :func:`bmm_calls` in order."""
    for fn, args, kwargs in calls:
        fn(*args, **kwargs)


def bmm(
    a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``out[k] = a[k] @ b[k] (+ bias[k])`` for all K models, now (see :func:`bmm_calls`)."""
    run_calls(bmm_calls(a, b, out, bias))
    return out


def eval_forward(
    stack: ParamStack,
    x: torch.Tensor,
    capture: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Logits ``[K, C, classes]`` of all K models on the shared input ``x [C, F]`` in eval
    mode (no dropout).  If *capture* is a list, ``(z, a)`` of every layer is appended
    (for the output layer ``a`` is ``softmax(z)``)."""
    act = activation(stack.spec.activation)
    K = stack.K
    a = x.unsqueeze(0).expand(K, *x.shape)
    L = stack.n_layers
    for l in range(L):
        W = stack.W[l]
        z = torch.empty(K, x.shape[0], W.shape[1], dtype=W.dtype, device=W.device)
        bmm(a, W.transpose(1, 2), z, stack.b[l])
        if l < L - 1:
            a = act(z)
            if capture is not None:
                capture.append((z, a))
        else:
            if capture is not None:
                capture.append((z, torch.softmax(z, dim=2)))
            return z
    raise AssertionError("unreachable")


@torch.no_grad()
def evaluate(
    stack: ParamStack, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy ``([K], [K])`` of all K models on ``(x [M, F], y [M])``
    in eval mode, processed in chunks of *chunk* samples."""
    K = stack.K
    loss = torch.zeros(K, dtype=torch.float64, device=x.device)
    correct = torch.zeros(K, dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], chunk):
        xb, yb = x[s : s + chunk], y[s : s + chunk]
        logits = eval_forward(stack, xb)
        _, ls, c = cross_entropy_sums(logits, yb.unsqueeze(0).expand(K, -1))
        loss += ls.double()
        correct += c.double()
    n = float(x.shape[0])
    return loss / n, correct / n
