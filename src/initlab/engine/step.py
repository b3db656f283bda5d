"""One training step of K stacked MLPs: forward, loss, backward, divergence check, Adam.

This is the engine's hot path (:class:`BatchedStep`); :mod:`initlab.engine.batched` runs it
over epochs and does the bookkeeping.  Per step, for all K models at once:

1. gather each model's batch ``x [K, b, F]`` from its own index row;
2. dropout masks of all hidden layers from the models' step keys
   (:mod:`initlab.engine.dropout`);
3. forward: ``z = a @ W.T + b`` by ``torch.baddbmm``, activation, mask;
4. loss ``-log_softmax(z)[y]`` (Keras' sparse categorical cross-entropy on softmax
   outputs); its sum and the number of correct predictions go to the step's row of the
   per-step buffer;
5. backward by hand, calling autograd's own ATen kernels in autograd's order (so the
   gradients are those of ``loss.backward()`` on the ``nn.Sequential``, up to the
   rounding of the batched matrix products: see :mod:`initlab.engine.batched`);
6. divergence: ``loss_sum + sum(gradients)`` must be finite, else the model is frozen from
   this step on (its update skipped on the device, no host sync);
7. the update: Adam (:class:`~initlab.engine.adam.StackedAdam`) or SGD
   (:class:`~initlab.engine.sgd.StackedSGD`), as ``TrainConfig.optimizer`` says.

Nothing computed for one model reads another model's values, so a frozen (NaN) model does
not affect the others.  All activations and gradients live in buffers preallocated per
batch size (:class:`Workspace`); parameters are updated in place.  With ReLU every
operand of the matrix products is such a fixed tensor, so their calls, with the slices
and transposes they need, are made once per workspace and replayed at every step
(:func:`~initlab.engine.functional.bmm_calls`): tens of tensor views fewer per step,
which cut the per-step dispatch overhead of a tiny model by 15-25% (about 0.15 ms; a
few percent of a step of the article's MLP).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from initlab.engine.adam import StackedAdam
from initlab.engine.config import TrainConfig
from initlab.engine.dropout import (
    counter_base,
    float_masks_,
    keep_scale,
    mask_offset,
    splitmix_bits,
)
from initlab.engine.functional import (
    Call,
    activation,
    activation_backward,
    bmm_calls,
    run_calls,
)
from initlab.engine.precision import bf16_calls
from initlab.engine.sgd import StackedSGD
from initlab.engine.stack import ParamStack
from initlab.engine.torch_private import log_softmax_backward_into, threshold_backward_into

__all__ = ["STEP_MODES", "BatchedStep", "Workspace"]

#: How a step runs (:class:`BatchedStep`'s ``mode``).
STEP_MODES: tuple[str, ...] = ("eager", "compile", "cuda-graphs")

#: The ``torch.compile`` backend of ``mode="compile"`` (inductor: fused C++/Triton kernels).
COMPILE_BACKEND = "inductor"

#: int64 elements per dropout-hash chunk on CPU (2 buffers of 1 MiB: in the L2 caches).
_HASH_CHUNK = 2**17


class Workspace:
    """Preallocated activations/gradients for K models of U data streams and batch size b."""

    def __init__(
        self, K: int, U: int, b: int, widths: tuple[int, ...], p: float, device: torch.device
    ):
        f32 = dict(dtype=torch.float32, device=device)
        hidden = widths[1:-1]
        self.x = torch.empty(U, b, widths[0], **f32)  # one batch per stream
        self.z = [torch.empty(K, b, w, **f32) for w in widths[1:]]
        self.da = [torch.empty(K, b, w, **f32) for w in hidden]
        self.dz = [torch.empty(K, b, w, **f32) for w in hidden]
        self.dlog = torch.empty(K, b, widths[-1], **f32)
        self.dlogits = torch.empty(K, b, widths[-1], **f32)
        # the matrix products' calls, made once per product (see BatchedStep._gemm)
        self.calls: dict[tuple[str, int], list[Call]] = {}
        self.correct = torch.empty(K, b, dtype=torch.bool, device=device)
        self.gsums = torch.empty(2 * (len(widths) - 1), K, **f32)
        # -(1/b) rounded as float32, as nll_loss's backward computes it
        self.neg_inv_b = torch.full((K, b, 1), -(1.0 / torch.tensor(float(b))).item(), **f32)
        self.mask: list[torch.Tensor] = []
        if p > 0:
            self.neg_c = mask_offset(p, device)
            n64 = (b * sum(hidden) + 1) // 2
            self.base = counter_base(n64, device)
            # the masks are made for groups of streams small enough for the integer
            # buffers to stay in cache through the ~16 passes of the hash
            self.group = U if device.type != "cpu" else max(1, min(U, _HASH_CHUNK // n64))
            self.bits = torch.empty(self.group, n64, dtype=torch.int64, device=device)
            self.tmp = torch.empty_like(self.bits)
            self.mask_all = torch.empty(U, 2 * n64, **f32)
            off = 0
            for w in hidden:  # per-layer [U, b, w] views of consecutive draws
                self.mask.append(self.mask_all[:, off : off + b * w].unflatten(1, (b, w)))
                off += b * w


class BatchedStep:
    """Training steps of the K models of *stack* (updated in place) on ``x [N, F]``,
    ``y [N]`` (on the stack's device).

    The models are partitioned into U *data streams*, ``sizes[u]`` consecutive models
    each (default: one model per stream).  Models of one stream share the batch order and
    the dropout masks (in :func:`~initlab.engine.batched.train`: models with equal seeds),
    so each step gathers U batches and hashes U sets of masks, not K; the first layer's
    products then read the stream's one batch for all its models (a stride-0 batch view,
    no copy).  Every model's arithmetic is the same as with one stream per model.

    ``alive [K]`` (bool) and ``frozen [K]`` (float) are the device-side divergence flags;
    ``grads`` the gradient buffers (shaped like ``stack.params()``).
    """

    def __init__(
        self,
        stack: ParamStack,
        x: torch.Tensor,
        y: torch.Tensor,
        config: TrainConfig,
        adam: str,
        sizes: Sequence[int] | None = None,
        mode: str = "eager",
    ) -> None:
        if mode not in STEP_MODES:
            raise ValueError(f"mode must be one of {', '.join(STEP_MODES)}, got {mode!r}")
        self.stack, self.x, self.y = stack, x, y
        self.device = x.device
        spec = stack.spec
        self.spec = spec
        self.relu = spec.activation == "relu"
        self.act = activation(spec.activation)
        self.p = spec.dropout
        self.scale = keep_scale(self.p) if self.p > 0 else 1.0
        # the matrix products: float32 (bmm_calls) or bfloat16 (see initlab.engine.precision)
        self._products = bf16_calls if config.precision == "bf16" else bmm_calls
        if mode == "compile" and config.precision != "bf16":
            # one call per product: bmm_calls' thread balancing reads the thread count, a
            # graph break in torch.compile (and inductor picks its own kernels anyway)
            self._products = _one_call
        self._buffers(sizes)
        self.optimizer: StackedAdam | StackedSGD
        if config.optimizer == "sgd":
            self.optimizer = StackedSGD(stack.params(), self.grads, lr=config.lr, momentum=config.momentum,
                                        nesterov=config.nesterov, weight_decay=config.weight_decay)
        else:
            self.optimizer = StackedAdam(stack.params(), self.grads, lr=config.lr, betas=config.betas,
                                         eps=config.eps, impl=adam)
        self.mode, self.fallback = mode, ""
        if mode != "eager":
            self.fallback = self._accel_obstacle(config)
            if self.fallback:
                self.mode = "eager"
        self._compiled = None
        if self.mode == "compile":
            self._compiled = compiled_or_eager(self.gradients, self._compile_failed)

    def _buffers(self, sizes: Sequence[int] | None) -> None:
        K, dev = self.stack.K, self.device
        sizes = [1] * K if sizes is None else [int(n) for n in sizes]
        if sum(sizes) != K or min(sizes, default=1) < 1:
            raise ValueError(f"stream sizes {sizes} do not partition {K} models")
        self.U = len(sizes)
        # (stream, first model, end) of each stream; None when every model is its own stream
        self.segments: list[tuple[int, int, int]] | None = None
        self.stream_of: torch.Tensor | None = None
        if self.U < K:
            ends = torch.tensor(sizes).cumsum(0).tolist()
            self.segments = [(u, e - n, e) for u, (n, e) in enumerate(zip(sizes, ends))]
            self.stream_of = torch.repeat_interleave(
                torch.arange(self.U, device=dev), torch.tensor(sizes, device=dev)
            )
        self.grads = [torch.empty_like(p) for p in self.stack.params()]
        self.ws: dict[int, Workspace] = {}
        # CUDA graphs of whole steps, by batch size (mode "cuda-graphs"; see _graphed)
        self.graphs: dict[int, _Graph | None] = {}
        self._pool: object = None
        self.alive = torch.ones(K, dtype=torch.bool, device=dev)
        self.frozen = torch.zeros(K, dtype=torch.float32, device=dev)

    def select(self, keep: list[int], stack: ParamStack, sizes: Sequence[int] | None = None) -> None:
        """Continue with models *keep* only, whose parameters are now *stack*, in streams
        of *sizes*."""
        self.stack = stack
        self._buffers(sizes)
        self.optimizer.select(keep, stack.params(), self.grads)

    def _workspace(self, b: int) -> Workspace:
        ws = self.ws.get(b)
        if ws is None:
            ws = Workspace(self.stack.K, self.U, b, self.spec.widths, self.p, self.device)
            self.ws[b] = ws
        return ws

    def _per_model(self, t: torch.Tensor) -> torch.Tensor:
        """``[K, ...]`` from a per-stream ``[U, ...]`` tensor (a copy when streams are shared)."""
        return t if self.stream_of is None else t.index_select(0, self.stream_of)

    def _first_layer(
        self, x: torch.Tensor, other: torch.Tensor, out: torch.Tensor, bias: torch.Tensor | None,
        x_right: bool,
    ) -> list[Call]:
        """The calls of the first layer's products with the per-stream batches
        ``x [U, b, F]``: ``out[k] = other[k] @ x[u(k)]`` (*x_right*) or
        ``x[u(k)] @ other[k] (+ bias[k])``."""
        if self.segments is None:
            return self._products(other, x, out) if x_right else self._products(x, other, out, bias)
        calls: list[Call] = []
        for u, k0, k1 in self.segments:
            xs = x[u].expand(k1 - k0, *x.shape[1:])
            if x_right:
                calls += self._products(other[k0:k1], xs, out[k0:k1])
            else:
                calls += self._products(xs, other[k0:k1], out[k0:k1], None if bias is None else bias[k0:k1])
        return calls

    def _gemm(self, ws: Workspace, key: tuple[str, int], make: Callable[[], list[Call]]) -> None:
        """Run the calls of one matrix product, made by *make*.  With ReLU every operand is a
        fixed buffer of *ws* or a parameter/gradient tensor updated in place, so the calls
        (and the views they hold) are made at the first step and replayed after; other
        activations produce new tensors, so their calls are made at every step."""
        calls = ws.calls.get(key)
        if calls is None:
            calls = make()
            if self.relu and self.mode != "compile":  # (compiled: traced once, kept by the graph)
                ws.calls[key] = calls
        run_calls(calls)

    def _mask_(self, a: torch.Tensor, mask: torch.Tensor) -> None:
        """``a *= mask`` in place, *mask* per stream ``[U, b, w]``, *a* per model."""
        if self.segments is None:
            a.mul_(mask)
            return
        for u, k0, k1 in self.segments:
            a[k0:k1].mul_(mask[u])

    def __call__(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> None:
        """One optimizer step of all K models: stream ``u`` trains on the samples
        ``idx[u] [b]`` with dropout key ``key[u]`` (``idx [U, b]``, ``key [U]``); writes
        ``-loss_sum``, ``correct`` and ``grad_sum`` (each ``[K]``) into ``row [3, K]``."""
        if self.mode == "cuda-graphs":
            self._graphed(idx, key, row)
            return
        if self._compiled is not None:
            self._workspace(idx.shape[1])  # made outside the compiled region (it reads a scalar)
            self._compiled(idx, key, row)
        else:
            self.gradients(idx, key, row)
        self.optimizer.step(self.frozen)

    # ------------------------------------------------------------------ compile / graphs
    def _accel_obstacle(self, config: TrainConfig) -> str:
        """Why this step cannot run in ``self.mode`` ("" when it can): CUDA graphs replay
        their kernels with the values they were captured with, so everything a step reads
        from the host must be constant (the learning rate) or live on the device (Adam's
        step count: see :class:`~initlab.engine.adam.StackedAdam`)."""
        if self.mode == "compile":
            return ""
        if self.device.type != "cuda":
            return "CUDA graphs need a CUDA device"
        if config.schedule != "constant" or config.warmup_epochs > 0:
            return "CUDA graphs replay a constant learning rate; this run has a schedule"
        if isinstance(self.optimizer, StackedAdam) and self.optimizer.impl != "fused":
            return "CUDA graphs need the fused Adam kernel (the foreach path reads the step count on the host)"
        return ""

    def _compile_failed(self, why: str) -> None:
        self.fallback = f"torch.compile failed ({why})"
        self.mode = "eager"
        self._compiled = None

    def _eager(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> None:
        self.gradients(idx, key, row)
        self.optimizer.step(self.frozen)

    def _graphed(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> None:
        """One step by CUDA graph: the first step of each batch size runs eagerly (it makes
        the workspace and the products' calls, and warms up cuBLAS); the second is captured
        (whole: gradients and update) and replayed, as is every later one, its inputs
        copied into the graph's static tensors first. Nothing is read back to the host.
        A capture that fails turns the run eager (``fallback`` says why)."""
        b = idx.shape[1]
        if b not in self.graphs:
            self.graphs[b] = None
            self._eager(idx, key, row)
            return
        graph = self.graphs[b]
        if graph is None:
            graph = self._capture(idx, key, row)
            if graph is None:
                self._eager(idx, key, row)
                return
            self.graphs[b] = graph
        graph.run(idx, key, row)
        self.optimizer.t += 1  # the host's count (the device's is advanced by the graph)

    def _capture(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> "_Graph | None":
        t = self.optimizer.t
        try:
            graph = _Graph(idx, key, row, self._eager, self._pool)
        except RuntimeError as exc:  # an op that cannot be captured: stay eager
            self.optimizer.t = t
            self.graphs[idx.shape[1]] = None
            self.fallback = f"CUDA graph capture failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            self.mode = "eager"
            return None
        self.optimizer.t = t  # capturing ran the Python code once without running the kernels
        self._pool = graph.pool
        return graph

    def gradients(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> None:
        """The step without its update: forward, loss, backward into ``grads``, the
        divergence flags ``alive``/``frozen`` and the step's figures in ``row`` (the part
        ``mode="compile"`` compiles; the update is one fused kernel already)."""
        stack, K, L = self.stack, self.stack.K, self.stack.n_layers
        U, b = idx.shape
        ws = self._workspace(b)
        flat_idx = idx.reshape(-1)
        torch.index_select(self.x, 0, flat_idx, out=ws.x.view(U * b, -1))
        y = self._per_model(self.y.index_select(0, flat_idx).view(U, b))
        if self.p > 0:  # float masks (0 or 1/(1-p)) of all hidden layers, per stream
            G = ws.group
            for u0 in range(0, U, G):
                u1 = min(U, u0 + G)
                g = u1 - u0
                bits = splitmix_bits(key[u0:u1], ws.base, out=ws.bits[:g], tmp=ws.tmp[:g])
                float_masks_(bits, self.p, out=ws.mask_all[u0:u1], neg_c=ws.neg_c)
        # forward; inputs[l] is the input of linear layer l (post-dropout activations),
        # for l >= 1
        inputs: list[torch.Tensor] = [ws.x]
        saved = []  # non-ReLU activations: (z, act(z), per-model float mask or None)
        for l in range(L - 1):
            z = ws.z[l]
            if l == 0:
                self._gemm(ws, ("fwd", 0), lambda: self._first_layer(
                    ws.x, stack.W[0].transpose(1, 2), z, stack.b[0], False))
            else:
                self._gemm(ws, ("fwd", l), lambda: self._products(
                    a, stack.W[l].transpose(1, 2), z, stack.b[l]))
            if self.relu:
                # in place: the buffer of z ends up holding relu(z) * mask
                a = z.relu_()
                if self.p > 0:
                    self._mask_(a, ws.mask[l])
            else:
                h = self.act(z)
                mask = self._per_model(ws.mask[l]) if self.p > 0 else None
                a = h * mask if mask is not None else h
                saved.append((z, h, mask))
            inputs.append(a)
        logits = ws.z[-1]
        if L == 1:
            self._gemm(ws, ("fwd", 0), lambda: self._first_layer(
                ws.x, stack.W[0].transpose(1, 2), logits, stack.b[0], False))
        else:
            self._gemm(ws, ("fwd", L - 1), lambda: self._products(
                a, stack.W[-1].transpose(1, 2), logits, stack.b[-1]))
        logp = torch.log_softmax(logits, dim=2)
        y3 = y.unsqueeze(2)
        torch.sum(logp.gather(2, y3), (1, 2), out=row[0])  # -(sum of sample losses)
        torch.eq(logits.argmax(2), y, out=ws.correct)
        torch.sum(ws.correct, 1, dtype=torch.float32, out=row[1])
        # backward.  d(mean loss)/d logits by autograd's own kernels: nll_loss's backward
        # puts -1/b at the targets, then log_softmax's backward
        nll_grad = ws.dlog.zero_().scatter_(2, y3, ws.neg_inv_b)
        d = log_softmax_backward_into(nll_grad, logp, 2, ws.dlogits)
        grads = self.grads
        for l in range(L - 1, -1, -1):
            if l == 0:
                self._gemm(ws, ("wgrad", 0), lambda: self._first_layer(
                    ws.x, d.transpose(1, 2), grads[0], None, True))
            else:
                self._gemm(ws, ("wgrad", l), lambda: self._products(
                    d.transpose(1, 2), inputs[l], grads[2 * l]))
            torch.sum(d, 1, out=grads[2 * l + 1])
            if l == 0:
                break
            da = ws.da[l - 1]
            self._gemm(ws, ("dgrad", l), lambda: self._products(d, stack.W[l], da))
            if self.relu:
                if self.p > 0:
                    da.mul_(self.scale)
                # inputs[l] = relu(z) * mask is > 0 exactly where relu'(z) * mask is not
                # 0, so this equals autograd's dropout-then-relu backward bit for bit
                d = threshold_backward_into(da, inputs[l], ws.dz[l - 1])
            else:
                z, h, mask = saved[l - 1]
                if mask is not None:
                    da.mul_(mask)
                d = activation_backward(self.spec.activation, da, z, h)
        # divergence check and freeze, on the device: frozen[k] = 1 from the first step
        # whose loss or gradient is not finite
        for j, g in enumerate(grads):
            torch.sum(g.view(K, -1), 1, out=ws.gsums[j])
        torch.sum(ws.gsums, 0, out=row[2])
        self.alive &= torch.isfinite(row[0] + row[2])
        torch.logical_not(self.alive, out=self.frozen)


def _one_call(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor,
              bias: torch.Tensor | None = None) -> list[Call]:
    """``out[k] = a[k] @ b[k] (+ bias[k])`` as one ``torch.bmm``/``baddbmm`` call."""
    if bias is None:
        return [(torch.bmm, (a, b), {"out": out})]
    return [(torch.baddbmm, (bias.unsqueeze(1), a, b), {"out": out})]


class _Graph:
    """One captured step (``torch.cuda.CUDAGraph``) with its static inputs and output row."""

    def __init__(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor,
                 step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None], pool: object) -> None:
        self.idx, self.key = idx.clone(), key.clone()
        self.row = torch.empty_like(row)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            step(self.idx, self.key, self.row)
        self.pool = self.graph.pool()

    def run(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> None:
        self.idx.copy_(idx)
        self.key.copy_(key)
        self.graph.replay()
        row.copy_(self.row)


def compiled_or_eager(fn: Callable[..., None], failed: Callable[[str], None]) -> Callable[..., None]:
    """``torch.compile(fn)`` (inductor, static shapes), or *fn* itself from the first call
    whose compilation fails (no C++ compiler, an op inductor cannot lower): ``failed(why)``
    is told once, and that call and every later one run *fn* eagerly. *fn* must be safe to
    run again after a failed attempt (the step's gradients are: they only overwrite)."""
    compiled = torch.compile(fn, dynamic=False, backend=COMPILE_BACKEND)
    state = {"ok": True}

    def call(*args: torch.Tensor) -> None:
        if state["ok"]:
            try:
                compiled(*args)
                return
            except Exception as exc:  # whatever inductor raises: the eager step is the same math
                state["ok"] = False
                failed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        fn(*args)

    return call
