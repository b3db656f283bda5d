"""The generic batched trainer: K already-initialized models of one architecture, any
``nn.Module``, trained at once through ``torch.func``.

:func:`train_generic` is the counterpart of :func:`initlab.engine.train` (the hand-tuned
MLP fast path) for any architecture: convolutional stacks, residual nets, deep linear
nets, users' own modules.  It produces the same records (:class:`~initlab.records.EpochRecord`,
:class:`~initlab.records.StepRecord`, :class:`~initlab.records.Divergence`, the
:class:`~initlab.engine.results.Sink` calls in the same order) with the same bookkeeping:
it runs the fast path's epoch loop and host-side accounting
(:class:`initlab.engine.batched._BatchedRun`) with its own stack, step and recorders.

Each model trains exactly as the fast path would train it alone:

* its own ``torch.Generator`` seeded by its seed draws per epoch the permutation of the
  training set (``torch.randperm``, unless ``shuffle=False``) and then one dropout key per
  step (:func:`~initlab.engine.dropout.draw_keys`); models with equal seeds form one data
  stream, whose batch is gathered and whose masks are made once per step;
* Keras batching (``ceil(N / B)`` steps, the last one partial), the loss is the batch mean
  cross-entropy of the logits (``F.cross_entropy``), Keras' running training metrics per
  epoch, validation in eval mode over the whole validation set in chunks of
  ``eval_batch_size``, step records every ``log_every`` steps, an epoch-0 record at init;
* Adam or SGD (:class:`~initlab.engine.adam.StackedAdam`, :class:`~initlab.engine.sgd.StackedSGD`)
  on the stacked ``[K, ...]`` parameter tensors, with the learning-rate schedule of
  :meth:`~initlab.engine.config.TrainConfig.lr_factor`, and per-parameter learning-rate
  factors where a scheme prescribes them (muP: ``lr_multipliers``,
  :mod:`initlab.engine.multipliers`).

**Dropout.** Every ``nn.Dropout`` of the model is replaced (in a private copy, the
*template*) by a layer that multiplies by a mask from the engine's recipe
(:mod:`initlab.engine.dropout`): the step's counter stream keyed by the model's key
``keys[s]`` is consumed in forward order, the j-th dropout call taking the next
``batch x features`` draws (``features`` = the product of its input's non-batch
dimensions, found by a dry run) and filling its mask row-major; a unit is kept iff the
low 23 bits of its draw are ``>= ceil(p 2^23)``, kept units are scaled by ``1/(1-p)``.  On
the article's MLP (Flatten, Linear, ReLU, Dropout, ...) these are the fast path's masks
bit for bit, so both trainers see the same data and the same masks.  Dropout kinds that
draw from torch's global RNG in their own way (``Dropout1d/2d/3d``, ``AlphaDropout``,
``FeatureAlphaDropout``, subclasses of ``nn.Dropout``) are refused, and so is a model whose
forward pass changes the global RNG state (``F.dropout`` or ``torch.rand`` inside a
custom ``forward``): nothing may read torch's global RNG.

**Two ways to run a step** (``mode``):

* ``"vmap"``: ``torch.func.vmap(torch.func.grad_and_value(loss))`` over the stacked
  parameters and buffers (``functional_call`` on the template), the per-model batch
  (``in_dims=0``) or, when all models are one data stream, one shared batch
  (``in_dims=None``, so the first layer reads it for all models);
* ``"each"``: the models one after the other through the same step, plain
  ``functional_call`` on views of model k's parameters and buffers and
  ``torch.autograd.grad``, without ``vmap`` (buffers such as BatchNorm's running statistics
  are updated in place, and restored for a model that diverges at that step).  It is the
  one-by-one reference the tests compare ``"vmap"`` against;
* ``"auto"`` (default): ``"vmap"`` unless the model cannot be vmapped: a module's buffers
  change in a training forward pass (BatchNorm's running statistics), or the vmapped step
  raises on a dry run (data-dependent control flow, an op without a batching rule that
  vmap refuses).  Then ``"each"``, and ``log`` receives one line saying so and why.  Also
  ``"each"`` (and a log line) for models with 2-d convolutions on the CPU: vmap turns K
  convolutions into one grouped convolution, which oneDNN runs slower than K
  channels_last ones (measured on the 6 x 32 ``cnn``, 2 threads: a grouped 32-channel
  3x3 layer's forward and backward 0.38 s against 0.24 s for 7 models; the whole step
  2.9 s against 1.7-2.1 s).  On CUDA convolutional models are vmapped.

**Models side by side** (``workers``, :mod:`initlab.engine.threads`): on the CPU the
``"each"`` mode trains ``min(K, torch.get_num_threads())`` models at the same time, each on
a worker thread with one intra-op thread and its own replica of the template
(``functional_call`` swaps tensors into the module it calls, so threads do not share
one); model ``k`` of the step's ``n * (K // n)`` first goes to worker ``k mod n``, the
remainder trains afterwards on the calling thread with all its threads.  The validation
pass is split the same way.  Nothing computed for one model reads another's values, so
this changes no result beyond float32 rounding (one intra-op thread sums in another
order than two); ``workers=1`` trains one model after the other on all threads, as before.
On 2 cores it is faster for the ``cnn`` family (README "Performance"): a model's
convolutions on one thread need no barrier between threads, which a machine shared with
other processes makes costly.

**Divergence.** As in the fast path: a model whose loss or gradient sum is not finite at a
step is frozen from that step on, on the device and without a host sync (the optimizer
skips it; its buffers are restored), so it keeps its last finite parameters; the host
notices at the next logging point or epoch end, reports a :class:`~initlab.records.Divergence`,
records the epoch with NaN metrics and drops the model from the stack.  Nothing computed
for one model reads another's values (vmap's batched kernels, e.g. a grouped convolution,
keep the models' groups apart), so the others go on as they would without it.

**Records.** :class:`~initlab.records.ParamStats` for every parameter (``layer`` = the
1-based index of the owning module among the modules that hold parameters, in
``named_modules()`` order; ``param`` its attribute name; ``name`` its ``state_dict`` key),
with the fast path's statistics and histogram (:mod:`initlab.engine.recorders`).
:class:`~initlab.records.ActivationStats` per parameterized leaf module (``Linear``,
``ConvNd``, a norm layer...) on the probe batch (the first ``probe_size`` validation
images, eval mode), with the same ``layer`` number and ``name`` = its module name:
``pre`` = the module's output, ``post`` = the output of the parameter-free activation
module called next in forward order, if one is called before the next parameterized
module (else ``post = pre``); the output layer's ``post`` is the softmax of the logits, as
in the fast path.  ``dead_units`` counts units whose activation is 0 for every probe sample
(and every position: a unit of a convolution or norm layer is a channel, dimension 1; of
other modules the last dimension).  On the article's MLP these are the fast path's
records: layers ``1..L``, the same statistics to float32 rounding.

**Equivalence** (``tests/test_generic.py``): ``"vmap"`` and ``"each"`` run other kernels for
the same math (a grouped or batched product against single ones), and this trainer and
the fast path likewise, so they agree to float32 rounding, not bit for bit; the stated
tolerances are those of ``tests/test_engine.py`` (a smooth network within the rounding
bound, a ReLU network over several steps within the wider bound that rounding-induced
unit switches need).

Numerics: float32 throughout (the models' floating parameters and buffers are cast); the
device is ``config.device`` (CPU or CUDA).  ``TrainConfig.precision = "bf16"`` runs each
training forward pass and its loss under ``torch.autocast(dtype=torch.bfloat16)`` (its op
lists decide what runs in bfloat16; parameters, gradients and optimizer state stay
float32), ``"tf32"`` turns CUDA's TF32 mode on for the run (:mod:`initlab.engine.precision`).
Convolutional models on the CPU run their activations in the ``channels_last`` memory
format in ``"each"`` mode (2x faster convolutions with oneDNN; the same math, rounded
differently).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initlab.engine.adam import StackedAdam
from initlab.engine.batched import _BatchedRun
from initlab.engine.precision import autocast
from initlab.engine.config import TrainConfig
from initlab.engine.dropout import (
    counter_base,
    float_masks_,
    keep_min_mantissa,
    keep_scale,
    mask_offset,
    splitmix_bits,
)
from initlab.engine.inputs import TrainData
from initlab.engine.multipliers import stack_scales
from initlab.engine.recorders import _rows_stats
from initlab.engine.results import Sink, TrainResult
from initlab.engine.sgd import StackedSGD
from initlab.engine.threads import Team, run_split, team_size
from initlab.errors import InitlabError
from initlab.records import ActivationStats, ParamStats

__all__ = ["MODES", "ModuleStack", "train_generic"]

MODES: tuple[str, ...] = ("auto", "vmap", "each")


#: Dropout kinds that draw from torch's global RNG in a way the engine does not reproduce.
_GLOBAL_RNG_DROPOUT = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                       nn.FeatureAlphaDropout)

#: Parameter-free activation modules: what "the activation after a layer" may be.
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
                nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid, nn.Identity)

#: Modules whose unit is the channel (dimension 1) rather than the last dimension.
_CHANNEL_UNITS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm)


# --------------------------------------------------------------------------- the stack


class ModuleStack:
    """The parameters and buffers of K models of one architecture as stacked tensors.

    ``params[name]`` is ``[K, *shape]`` (float32, contiguous, on the device) for every
    entry of ``named_parameters()``; ``buffers[name]`` likewise for ``named_buffers()``
    (floating buffers cast to float32, others keep their dtype).  ``keys`` are the
    ``state_dict`` keys of the models, ``alias`` maps each to its tensor's name (tied
    parameters share one tensor).
    """

    def __init__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                 keys: list[str], alias: dict[str, str]) -> None:
        self.params, self.buffers, self.keys, self.alias = params, buffers, keys, alias

    @property
    def K(self) -> int:
        return int(next(iter(self.params.values())).shape[0])

    @classmethod
    def from_models(cls, models: Sequence[nn.Module], device: torch.device) -> "ModuleStack":
        def cast(t: torch.Tensor) -> torch.Tensor:
            t = t.detach().to(device)
            return t.float() if t.is_floating_point() else t

        with torch.no_grad():
            named = [dict(m.named_parameters()) for m in models]
            bufs = [dict(m.named_buffers()) for m in models]
            params = {n: torch.stack([cast(d[n]) for d in named]) for n in named[0]}
            buffers = {n: torch.stack([cast(d[n]) for d in bufs]) for n in bufs[0]}
        alias: dict[str, str] = {}
        for table in (models[0].named_parameters(remove_duplicate=False),
                      models[0].named_buffers(remove_duplicate=False)):
            ids = {}
            for n, t in table:
                alias[n] = ids.setdefault(id(t), n)
        keys = list(models[0].state_dict().keys())
        return cls(params, buffers, keys, alias)

    def tensor(self, key: str) -> torch.Tensor:
        name = self.alias.get(key, key)
        return self.params[name] if name in self.params else self.buffers[name]

    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Model *k*'s ``state_dict`` (CPU copies) for the original architecture."""
        return {key: self.tensor(key)[k].detach().to("cpu", copy=True) for key in self.keys}

    def model_params(self, k: int) -> dict[str, torch.Tensor]:
        return {n: p[k] for n, p in self.params.items()}

    def model_buffers(self, k: int) -> dict[str, torch.Tensor]:
        return {n: b[k] for n, b in self.buffers.items()}

    def select(self, keep: Sequence[int]) -> "ModuleStack":
        """A new stack of models *keep* (copies)."""
        ix = torch.as_tensor(list(keep), dtype=torch.long,
                             device=next(iter(self.params.values())).device)
        return ModuleStack({n: p.index_select(0, ix) for n, p in self.params.items()},
                           {n: b.index_select(0, ix) for n, b in self.buffers.items()},
                           self.keys, self.alias)


# --------------------------------------------------------------------------- dropout


class _Feed:
    """What the keyed dropout layers of one template read: the current step's masks (a
    flat per-model tensor, consumed in forward order) or, in a dry run, a list that
    records each dropout call's per-sample size and rate."""

    def __init__(self) -> None:
        self.masks: torch.Tensor | None = None
        self.offset = 0
        self.record: list[tuple[int, float]] | None = None


class _KeyedDropout(nn.Module):
    """``nn.Dropout(p)`` with the engine's masks: multiplies by the next ``x.numel()``
    entries of the feed's masks (0 or ``1/(1-p)``), viewed as ``x``'s shape."""

    def __init__(self, p: float, feed: _Feed, name: str) -> None:
        super().__init__()
        self.p = float(p)
        self.feed = feed
        self.module_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        feed = self.feed
        if feed.record is not None:
            feed.record.append((int(x[0].numel()), self.p))
            return x
        if feed.masks is None:
            raise RuntimeError("a dropout layer was called without the step's masks")
        n = x.numel()
        off = feed.offset
        feed.offset = off + n
        return x * feed.masks[off : off + n].view(x.shape)

    def extra_repr(self) -> str:
        return f"p={self.p} (the engine's masks)"


def _replace_dropouts(template: nn.Module, feed: _Feed) -> None:
    """Swap every ``nn.Dropout`` of *template* for a :class:`_KeyedDropout`; refuse the
    kinds the engine cannot reproduce."""
    for name, m in list(template.named_modules()):
        if isinstance(m, _GLOBAL_RNG_DROPOUT) or (isinstance(m, nn.Dropout) and type(m) is not nn.Dropout):
            raise InitlabError(
                f"module {name!r} is {type(m).__name__}, whose masks come from torch's global "
                f"RNG; use nn.Dropout (the engine draws its masks from each model's seed)")
        if type(m) is nn.Dropout:
            parent_name, _, attr = name.rpartition(".")
            parent = template.get_submodule(parent_name) if parent_name else template
            if not attr:
                raise InitlabError("the model is a bare nn.Dropout; pass a model with layers")
            setattr(parent, attr, _KeyedDropout(m.p, feed, name))


class _Masks:
    """The step's dropout masks of U data streams, ``[U, b * F]`` float32 (``F`` = the
    per-sample sizes of the dropout calls, summed): the recipe of
    :mod:`initlab.engine.dropout`, one counter stream per stream key."""

    def __init__(self, slots: list[tuple[int, float]], device: torch.device) -> None:
        self.slots = slots
        self.F = sum(f for f, _ in slots)
        self.device = device
        self.rates = sorted({p for _, p in slots})
        self._base: dict[int, torch.Tensor] = {}
        self._neg_c = mask_offset(self.rates[0], device) if len(self.rates) == 1 else None

    def __call__(self, keys: torch.Tensor, b: int) -> torch.Tensor:
        n = b * self.F
        n64 = (n + 1) // 2
        base = self._base.get(b)
        if base is None:
            base = self._base[b] = counter_base(n64, self.device)
        bits = splitmix_bits(keys.reshape(-1), base)
        out = torch.empty(bits.shape[0], 2 * n64, dtype=torch.float32, device=self.device)
        if self._neg_c is not None:
            return float_masks_(bits, self.rates[0], out, self._neg_c)
        draws = bits.view(torch.int32).bitwise_and_(2**23 - 1)
        off = 0
        for f, p in self.slots:
            seg = slice(off, off + b * f)
            torch.mul(draws[:, seg] >= keep_min_mantissa(p), keep_scale(p), out=out[:, seg])
            off += b * f
        return out


# --------------------------------------------------------------------------- the model


def _signature(model: nn.Module) -> list[tuple[str, str, tuple[int, ...]]]:
    sig = [("module", f"{n}:{type(m).__name__}", ()) for n, m in model.named_modules()]
    sig += [("parameter", n, tuple(p.shape)) for n, p in model.named_parameters()]
    sig += [("buffer", n, tuple(b.shape)) for n, b in model.named_buffers()]
    return sig


def _check_architectures(models: Sequence[nn.Module]) -> None:
    if len(models) == 0:
        raise InitlabError("no models given; pass a list of at least one model")
    for i, m in enumerate(models):
        if not isinstance(m, nn.Module):
            raise InitlabError(f"model {i} is a {type(m).__name__}, not an nn.Module; pass modules")
    ref = _signature(models[0])
    if not any(kind == "parameter" for kind, _, _ in ref):
        raise InitlabError("model 0 has no parameters; there is nothing to train")
    for i, m in enumerate(models[1:], 1):
        sig = _signature(m)
        if sig != ref:
            diff = next((a, b) for a, b in zip(sig + [None] * len(ref), ref + [None] * len(sig))
                        if a != b)
            got, want = (f"{d[0]} {d[1]} {list(d[2])}" if d else "nothing" for d in diff)
            raise InitlabError(f"model {i} has {got} where model 0 has {want}; "
                               "train models of one architecture together")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def _rng_states(device: torch.device) -> list[torch.Tensor]:
    states = [torch.random.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def _uses_channels_last(template: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> bool:
    """Whether the ``"each"`` path runs activations in channels_last (2-d convolutions on
    the CPU, where oneDNN's convolutions are about 2x faster in that layout)."""
    return (device.type == "cpu" and len(input_shape) == 3
            and any(isinstance(m, nn.Conv2d) for m in template.modules()))


class _Model:
    """The template (a private copy of model 0 with keyed dropouts), what a dry run found
    (dropout slots, number of outputs, mutated buffers) and the hooks that capture
    activations on the probe."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], x: torch.Tensor,
                 device: torch.device) -> None:
        self.feed = _Feed()
        self.template = copy.deepcopy(model).to(device=device)
        with torch.no_grad():
            for t in list(self.template.parameters()) + list(self.template.buffers()):
                if t.is_floating_point():
                    t.data = t.data.float()
        _replace_dropouts(self.template, self.feed)
        self._pristine = copy.deepcopy(self.template)  # for replicas: no hooks, its own feed
        self.input_shape = input_shape
        names = {m: n for n, m in self.template.named_modules()}
        param_mods = [m for m in self.template.modules() if any(True for _ in m.parameters(recurse=False))]
        #: 1-based layer number of each module that holds parameters (named_modules order)
        self.layer_of = {m: i + 1 for i, m in enumerate(param_mods)}
        self.names = names
        self.capture: list[tuple[nn.Module, torch.Tensor]] | None = None
        watched = [m for m in param_mods if not any(True for _ in m.children())]
        watched += [m for m in self.template.modules() if isinstance(m, _ACTIVATIONS)]
        for m in watched:
            m.register_forward_hook(self._hook)
        self.leaves = watched
        self._dry_run(x, device)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.capture is not None and isinstance(output, torch.Tensor):
            self.capture.append((module, output))

    def _dry_run(self, x: torch.Tensor, device: torch.device) -> None:
        """One training-mode forward pass of the template on *x*: the dropout calls, the
        output width, whether buffers change and whether the global RNG is read."""
        net = self.template
        before = {n: b.clone() for n, b in net.named_buffers()}
        rng = _rng_states(device)
        self.feed.record = []
        net.train()
        try:
            with torch.no_grad():
                out = net(x)
        except InitlabError:
            raise
        except Exception as e:  # the user's model: any error is a bad input
            raise InitlabError(
                f"the model fails on a batch of shape {list(x.shape)} (input_shape "
                f"{tuple(self.input_shape)}): {_first_line(e)}; pass the input_shape the model "
                "expects") from None
        finally:
            self.slots, self.feed.record = self.feed.record, None
        if any(not torch.equal(a, b) for a, b in zip(rng, _rng_states(device))):
            torch.random.set_rng_state(rng[0])  # leave the caller's stream as it was
            if device.type == "cuda":
                torch.cuda.set_rng_state(rng[1], device)
            raise InitlabError(
                "the model's forward pass draws from torch's global RNG (e.g. F.dropout or "
                "torch.rand in forward); use nn.Dropout modules, whose masks the engine draws "
                "from each model's seed")
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != x.shape[0]:
            shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InitlabError(
                f"the model returns {shape} on a batch of {x.shape[0]}; it must return logits "
                "[batch, classes]")
        self.n_classes = int(out.shape[1])
        self.mutated = [n for n, b in net.named_buffers() if not torch.equal(before[n], b)]
        with torch.no_grad():
            for n, b in net.named_buffers():
                b.copy_(before[n])

    def vmap_obstacle(self) -> str | None:
        """Why vmap cannot train this model (before trying it), or ``None``."""
        for n, m in self.template.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                return f"{type(m).__name__} {n!r} keeps running statistics, which vmap cannot update"
        if self.mutated:
            return f"the forward pass updates buffer {self.mutated[0]!r}, which vmap cannot do"
        return None

    def replica(self) -> "_Replica":
        """A private copy of the template (its own dropout feed, no hooks) for a worker
        thread: ``functional_call`` swaps the tensors into the module it calls, so two
        threads must not call one module."""
        return _Replica(copy.deepcopy(self._pristine))

    def forward(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                x: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        self.feed.masks, self.feed.offset = masks, 0
        try:
            return torch.func.functional_call(self.template, (params, buffers), (x,))
        finally:
            self.feed.masks = None


class _Replica:
    """A worker thread's copy of the template (:meth:`_Model.replica`), called like it."""

    def __init__(self, template: nn.Module) -> None:
        self.template = template
        self.feed = _Feed()
        for m in template.modules():
            if isinstance(m, _KeyedDropout):
                m.feed = self.feed

    forward = _Model.forward


# --------------------------------------------------------------------------- the step


class _GenericStep:
    """Training steps of the K models of *stack* (updated in place) on ``x [N, *shape]``,
    ``y [N]``, ``sizes[u]`` consecutive models per data stream; same interface as
    :class:`initlab.engine.step.BatchedStep` (``__call__(idx, key, row)``, ``optimizer``,
    ``select``)."""

    def __init__(self, model: _Model, stack: ModuleStack, x: torch.Tensor, y: torch.Tensor,
                 config: TrainConfig, vmapped: bool, sizes: Sequence[int],
                 lr_multipliers: Sequence[Mapping[str, float] | None] | None = None,
                 workers: int | None = None) -> None:
        self.model, self.x, self.y, self.vmapped = model, x, y, vmapped
        self.device = x.device
        self.precision = config.precision
        self.masks = _Masks(model.slots, self.device) if model.slots else None
        self.channels_last = not vmapped and _uses_channels_last(
            model.template, model.input_shape, self.device)
        self._vfuns: dict[tuple[Any, ...], Callable[..., Any]] = {}
        # one by one on the CPU: models side by side on worker threads (engine.threads)
        n = 0 if vmapped else team_size(stack.K, self.device, workers)
        self.team = Team(n, max(1, torch.get_num_threads() // n)) if n else None
        self.replicas = [model.replica() for _ in range(n)]
        self._setup(stack, sizes)
        self.optimizer: StackedAdam | StackedSGD
        scale = (stack_scales(self.pnames, lr_multipliers, self.device)
                 if lr_multipliers is not None else None)
        if config.optimizer == "sgd":
            self.optimizer = StackedSGD(self.plist, self.grads, lr=config.lr, momentum=config.momentum,
                                        nesterov=config.nesterov, weight_decay=config.weight_decay,
                                        lr_scale=scale)
        else:
            self.optimizer = StackedAdam(self.plist, self.grads, lr=config.lr, betas=config.betas,
                                         eps=config.eps, lr_scale=scale)

    def _setup(self, stack: ModuleStack, sizes: Sequence[int]) -> None:
        self.stack = stack
        K, dev = stack.K, self.device
        self.sizes = [int(n) for n in sizes]
        self.U = len(self.sizes)
        self.stream = [u for u, n in enumerate(self.sizes) for _ in range(n)]
        self.stream_of = torch.tensor(self.stream, dtype=torch.long, device=dev)
        self.pnames = list(stack.params)
        self.plist = [stack.params[n] for n in self.pnames]
        self.grads = [torch.zeros_like(p) for p in self.plist]
        self.alive = torch.ones(K, dtype=torch.bool, device=dev)
        self.frozen = torch.zeros(K, dtype=torch.float32, device=dev)
        self.loss = torch.zeros(K, dtype=torch.float32, device=dev)
        self.correct = torch.zeros(K, dtype=torch.float32, device=dev)

    def select(self, keep: list[int], stack: ModuleStack, sizes: Sequence[int]) -> None:
        self._setup(stack, sizes)
        self.optimizer.select(keep, self.plist, self.grads)

    # ---------------------------------------------------------------- per-model batch
    def _per_model(self, t: torch.Tensor | None) -> tuple[torch.Tensor | None, int | None]:
        """A per-stream ``[U, ...]`` tensor as vmap's argument: shared (``in_dims=None``)
        when there is one stream, else one row per model."""
        if t is None:
            return None, None
        if self.U == 1:
            return t[0], None
        if self.U == self.stack.K:
            return t, 0
        return t.index_select(0, self.stream_of), 0

    def _loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
              x: torch.Tensor, y: torch.Tensor, masks: torch.Tensor | None) -> Any:
        with autocast(self.precision, self.device):
            logits = self.model.forward(params, buffers, x, masks)
            loss = F.cross_entropy(logits, y)
        correct = (logits.argmax(-1) == y).sum()
        return loss, correct

    def _vmapped(self, dims: tuple[Any, ...]) -> Callable[..., Any]:
        fn = self._vfuns.get(dims)
        if fn is None:
            fn = torch.func.vmap(torch.func.grad_and_value(self._loss, has_aux=True),
                                 in_dims=(0, 0, *dims))
            self._vfuns[dims] = fn
        return fn

    def grads_vmap(self, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor | None) -> None:
        (xs, dx), (ys, dy), (ms, dm) = self._per_model(x), self._per_model(y), self._per_model(m)
        with warnings.catch_warnings():
            # vmap's note that an op (adaptive_avg_pool2d's as_strided_) runs in a loop
            warnings.filterwarnings("ignore", message="There is a performance drop")
            grads, (loss, correct) = self._vmapped((dx, dy, dm))(
                self.stack.params, self.stack.buffers, xs, ys, ms)
        for buf, n in zip(self.grads, self.pnames):
            buf.copy_(grads[n])
        self.loss.copy_(loss)
        self.correct.copy_(correct)

    def grads_each(self, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor | None) -> None:
        """Model by model (:func:`~initlab.engine.threads.run_split`: side by side on the
        team's worker threads, each with its replica of the template, the remainder on
        this thread)."""
        cl = torch.channels_last
        xs = [x[u].contiguous(memory_format=cl) if self.channels_last else x[u] for u in range(self.U)]
        run_split(self.team, self.stack.K, lambda k, w: self._grad_one(k, self.replicas[w], xs, y, m),
                  lambda k: self._grad_one(k, self.model, xs, y, m))

    def _grad_one(self, k: int, net: "_Model | _Replica", xs: list[torch.Tensor], y: torch.Tensor,
                  m: torch.Tensor | None) -> None:
        """Model *k*'s loss, correct count and gradients (into row k of the buffers) on
        its stream's batch, through *net*."""
        stack, cl = self.stack, torch.channels_last
        u = self.stream[k]
        params = {n: p[k].detach().requires_grad_() for n, p in stack.params.items()}
        with torch.enable_grad():
            used = params
            if self.channels_last:  # 4-d kernels in channels_last too (a copy in the graph)
                used = {n: p.contiguous(memory_format=cl) if p.dim() == 4 else p
                        for n, p in params.items()}
            with autocast(self.precision, self.device):
                logits = net.forward(used, stack.model_buffers(k), xs[u], None if m is None else m[u])
                loss = F.cross_entropy(logits, y[u])
            gs = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for buf, g in zip(self.grads, gs):
            if g is None:
                buf[k].zero_()
            else:
                buf[k].copy_(g)
        self.loss[k] = loss.detach()
        self.correct[k] = (logits.detach().argmax(-1) == y[u]).sum()

    def eval_params(self, k: int) -> dict[str, torch.Tensor]:
        """Model *k*'s parameters for an eval forward pass (4-d kernels in channels_last
        where the training steps use it)."""
        params = self.stack.model_params(k)
        if self.channels_last:
            params = {n: p.contiguous(memory_format=torch.channels_last) if p.dim() == 4 else p
                      for n, p in params.items()}
        return params

    def close(self) -> None:
        """Stop the worker threads (if any)."""
        if self.team is not None:
            self.team.close()
            self.team = None

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U, b = idx.shape
        flat = idx.reshape(-1)
        x = self.x.index_select(0, flat).view(U, b, *self.model.input_shape)
        return x, self.y.index_select(0, flat).view(U, b)

    def __call__(self, idx: torch.Tensor, key: torch.Tensor, row: torch.Tensor) -> None:
        """One optimizer step of all K models: stream ``u`` trains on the samples
        ``idx[u] [b]`` with dropout key ``key[u]``; writes ``-loss_sum``, ``correct`` and
        ``grad_sum`` (each ``[K]``) into ``row [3, K]`` (the fast path's layout)."""
        b = idx.shape[1]
        x, y = self.batch(idx)
        m = self.masks(key, b) if self.masks is not None else None
        saved = None
        if self.model.mutated and self.stack.buffers:
            saved = {n: t.clone() for n, t in self.stack.buffers.items()}
        (self.grads_vmap if self.vmapped else self.grads_each)(x, y, m)
        K = self.stack.K
        torch.mul(self.loss, -float(b), out=row[0])
        row[1].copy_(self.correct)
        gsums = torch.stack([g.reshape(K, -1).sum(1) for g in self.grads])
        torch.sum(gsums, 0, out=row[2])
        self.alive &= torch.isfinite(row[0] + row[2])
        torch.logical_not(self.alive, out=self.frozen)
        if saved is not None:  # a model frozen at this step keeps its buffers too
            for n, t in self.stack.buffers.items():
                keep = self.alive.view(-1, *([1] * (t.dim() - 1)))
                torch.where(keep, t, saved[n], out=t)
        self.optimizer.step(self.frozen)


# --------------------------------------------------------------------------- recorders


def _param_stats(model: _Model, stack: ModuleStack, bins: int) -> list[tuple[ParamStats, ...]]:
    """:class:`ParamStats` of every parameter of each model (``named_modules()`` order of
    the owning modules, their own parameters in registration order)."""
    K = stack.K
    per_model: list[list[ParamStats]] = [[] for _ in range(K)]
    for m, layer in model.layer_of.items():
        prefix = model.names[m]
        for attr, _ in m.named_parameters(recurse=False):
            key = f"{prefix}.{attr}" if prefix else attr
            t = stack.tensor(key)
            flat = t.detach().reshape(K, -1).to("cpu", torch.float32).numpy()
            for k, d in enumerate(_rows_stats(flat, bins)):
                per_model[k].append(ParamStats(
                    layer=layer, param=attr, name=key, numel=flat.shape[1], mean=d["mean"],
                    std=d["std"], min=d["min"], max=d["max"], frac_zero=d["frac_zero"],
                    nonfinite=d["nonfinite"], quantiles=tuple(d["quantiles"]),
                    hist_edges=tuple(d["edges"]), hist_counts=tuple(int(c) for c in d["counts"])))
    return [tuple(p) for p in per_model]


def _act_row(module: nn.Module, z: torch.Tensor, a: torch.Tensor) -> list[float]:
    """``[pre_mean, pre_std, post_mean, post_std, post_frac_zero, dead_units]`` as the fast
    path computes them (float32 moments, float64 counts)."""
    zv, zm = torch.var_mean(z.flatten(), correction=0)
    av, am = torch.var_mean(a.flatten(), correction=0)
    zero = a == 0
    # an exact integer count (a float64 sum of the mask would cast it first: 5x slower)
    frac_zero = torch.count_nonzero(zero).double() / zero.numel()
    if isinstance(module, _CHANNEL_UNITS) and zero.dim() > 1:
        per_unit = zero.transpose(0, 1).reshape(zero.shape[1], -1)
    else:
        per_unit = zero.reshape(-1, zero.shape[-1]).T
    dead = per_unit.all(1).sum(dtype=torch.float64) / per_unit.shape[0]
    return torch.stack([zm.double(), zv.double().sqrt(), am.double(), av.double().sqrt(),
                        frac_zero, dead]).tolist()


def _activation_stats(model: _Model, captured: list[tuple[nn.Module, torch.Tensor]],
                      logits: torch.Tensor) -> tuple[ActivationStats, ...]:
    """One model's :class:`ActivationStats` from the hooks' ``(module, output)`` calls of
    one eval forward pass (see the module docstring for the pairing)."""
    calls = [(m, out) for m, out in captured]
    firsts: dict[nn.Module, int] = {}
    for i, (m, _) in enumerate(calls):
        if m in model.layer_of and m not in firsts:
            firsts[m] = i
    param_calls = sorted(firsts.values())
    last = param_calls[-1] if param_calls else -1
    recs = []
    for m, i in firsts.items():
        z = calls[i][1]
        a = z
        if i == last and z.shape == logits.shape:
            a = torch.softmax(logits, dim=-1)
        else:
            for m2, out in calls[i + 1:]:
                if m2 in model.layer_of:
                    break
                if isinstance(m2, _ACTIVATIONS):
                    a = out
                    break
        recs.append(ActivationStats(model.layer_of[m], *_act_row(m, z, a), name=model.names[m]))
    return tuple(sorted(recs, key=lambda r: r.layer))


# --------------------------------------------------------------------------- the run


def _check_inputs(models: Sequence[nn.Module], seeds: Sequence[int], data: TrainData,
                  config: TrainConfig, input_shape: Sequence[int], mode: str) -> tuple[int, ...]:
    if not isinstance(config, TrainConfig):
        raise InitlabError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(data, TrainData):
        raise InitlabError(
            f"data must be a TrainData(train_x, train_y, val_x, val_y), got {type(data).__name__}")
    if mode not in MODES:
        raise InitlabError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    models, seeds = list(models), list(seeds)
    if len(models) != len(seeds):
        raise InitlabError(f"got {len(models)} models but {len(seeds)} seeds; pass one seed per model")
    for s in seeds:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or not 0 <= s < 2**63:
            raise InitlabError(f"seed {s!r} is not an integer in [0, 2**63); pass integer seeds")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise InitlabError(f"input_shape must be a tuple of positive integers, got {input_shape!r}") from None
    if not shape or min(shape) < 1:
        raise InitlabError(f"input_shape must be a tuple of positive integers, got {input_shape!r}")
    if math.prod(shape) != data.n_features:
        raise InitlabError(
            f"input_shape {shape} holds {math.prod(shape)} values but the samples have "
            f"{data.n_features} (shape {tuple(data.train_x.shape[1:])}); pass the input_shape "
            "of one sample, e.g. (1, 28, 28)")
    _check_architectures(models)
    config.torch_device  # raises if CUDA is unavailable
    return shape


class _GenericRun(_BatchedRun):
    """One call of :func:`train_generic`: the fast path's epoch loop and host-side
    bookkeeping (:class:`~initlab.engine.batched._BatchedRun`) over a
    :class:`ModuleStack` and a :class:`_GenericStep`, with this module's recorders."""

    def __init__(self, models: Sequence[nn.Module], seeds: Sequence[int], data: TrainData,
                 config: TrainConfig, input_shape: Sequence[int], sink: Sink | None,
                 mode: str, log: Callable[[str], None] | None, spec: Any,
                 lr_multipliers: Sequence[Mapping[str, float] | None] | None = None,
                 workers: int | None = None) -> None:
        shape = _check_inputs(models, seeds, data, config, input_shape, mode)
        self.config, self.spec, self.sink = config, spec, sink
        self.device = dev = config.torch_device
        Xtr, Ytr, Xv, Yv = data.prepared(dev, config.standardize)
        self.Xv = Xv.view(-1, *shape)
        self.Yv = Yv
        self.probe = self.Xv[: config.probe_size]
        self.N = Xtr.shape[0]
        self.spe = config.steps_per_epoch(self.N)
        self.total_steps = self.spe * config.epochs
        self.model = _Model(models[0], shape, Xtr[: min(2, self.N)].view(-1, *shape), dev)
        data.check_labels(self.model.n_classes)
        seeds = [int(s) for s in seeds]
        streams = list(dict.fromkeys(seeds))
        rank = {s: u for u, s in enumerate(streams)}
        self.ids = sorted(range(len(models)), key=lambda i: rank[seeds[i]])
        self.stream = [rank[seeds[i]] for i in self.ids]
        self.stack = ModuleStack.from_models([models[i] for i in self.ids], dev)
        self.mode = self._choose_mode(mode, log, Xtr.view(-1, *shape), Ytr, len(models))
        if lr_multipliers is not None and len(lr_multipliers) != len(models):
            raise InitlabError(f"lr_multipliers gives {len(lr_multipliers)} entries for {len(models)} models; "
                               "give one per model (None for one learning rate)")
        mults = None if lr_multipliers is None else [lr_multipliers[i] for i in self.ids]
        self.stepper = _GenericStep(self.model, self.stack, Xtr.view(-1, *shape), Ytr, config,
                                    self.mode == "vmap", self._sizes(), mults, workers)
        # the validation set in the layout of the steps (channels_last for conv nets on the CPU)
        self.Xv_steps = (self.Xv.contiguous(memory_format=torch.channels_last)
                         if self.stepper.channels_last else self.Xv)
        self.gens = [torch.Generator(device=dev).manual_seed(s) for s in streams]
        self.results = [TrainResult(model=i, seed=s, spec=spec, config=config)
                        for i, s in enumerate(seeds)]
        self.step = 0
        self.synced = 0
        B = config.batch_size
        self.batch_sizes = [min(B, self.N - s * B) for s in range(self.spe)]
        K = self.stack.K
        self.hist = torch.zeros(self.total_steps, 3, K, dtype=torch.float32, device=dev)
        self.host_alive = [True] * K
        self.ep_sums = [[0.0, 0.0] for _ in range(K)]
        self.win_sums = [[0.0, 0.0] for _ in range(K)]
        self.win_steps = self.win_samples = 0

    def _choose_mode(self, mode: str, log: Callable[[str], None] | None, x: torch.Tensor,
                     y: torch.Tensor, K: int) -> str:
        """``"vmap"`` or ``"each"``: refuse (``mode="vmap"``) or fall back (``"auto"``)
        where vmap cannot express the model, found before trying it or by a dry run of
        one vmapped step on two samples."""
        if mode == "each":
            return "each"
        why = self.model.vmap_obstacle()
        if why is None:
            why = self._vmap_dry_run(x, y)
        if why is None:
            if mode == "auto" and _uses_channels_last(self.model.template, self.model.input_shape,
                                                      self.device):
                if log is not None:
                    log(f"train_generic: the {K} model(s) train one by one, not vmapped: on the CPU "
                        "their 2-d convolutions run faster one model at a time in channels_last "
                        "than as vmap's grouped convolutions")
                return "each"
            return "vmap"
        if mode == "vmap":
            raise InitlabError(f"mode='vmap' cannot train this model: {why}; use mode='auto' or 'each'")
        if log is not None:
            log(f"train_generic: the {K} model(s) train one by one, not vmapped: {why}")
        return "each"

    def _vmap_dry_run(self, x: torch.Tensor, y: torch.Tensor) -> str | None:
        n = min(2, x.shape[0])
        step = _GenericStep(self.model, self.stack, x, y, self.config, True, self._sizes())
        idx = torch.arange(n, device=self.device).expand(step.U, n)
        xb, yb = step.batch(idx)
        keys = torch.zeros(step.U, dtype=torch.int64, device=self.device)
        m = step.masks(keys, n) if step.masks is not None else None
        try:
            step.grads_vmap(xb, yb, m)
        except Exception as e:  # whatever vmap refuses is the reason to go one by one
            return f"vmap raised {_first_line(e)}"
        return None

    # ------------------------------------------------------------------ recording
    def _validate(self) -> tuple[list[float], list[float]]:
        """Validation loss and accuracy of each model (eval mode, chunks of
        ``eval_batch_size``; one by one, on the team's workers where the steps use them,
        and in channels_last where they do)."""
        stack, step = self.stack, self.stepper
        K = stack.K
        losses, accs = [0.0] * K, [0.0] * K
        xv = self.Xv_steps
        n_val = xv.shape[0]

        @torch.no_grad()
        def one(k: int, net: "_Model | _Replica") -> None:
            params, buffers = step.eval_params(k), stack.model_buffers(k)
            loss = correct = 0.0
            for s in range(0, n_val, self.config.eval_batch_size):
                xb, yb = xv[s : s + self.config.eval_batch_size], self.Yv[s : s + self.config.eval_batch_size]
                logits = net.forward(params, buffers, xb, None)
                loss += float(F.cross_entropy(logits, yb, reduction="sum").double())
                correct += float((logits.argmax(-1) == yb).sum())
            losses[k], accs[k] = loss / n_val, correct / n_val

        nets = [self.model, *step.replicas]
        for net in nets:
            net.template.eval()
        try:
            run_split(step.team, K, lambda k, w: one(k, step.replicas[w]), lambda k: one(k, self.model))
        finally:
            for net in nets:
                net.template.train()
        return losses, accs

    @torch.no_grad()
    def _activations(self) -> list[tuple[ActivationStats, ...]]:
        """Each model's activation statistics on the probe (eval mode, the hooked template)."""
        model, stack = self.model, self.stack
        if self.probe.shape[0] == 0:
            return [() for _ in range(stack.K)]
        acts = []
        model.template.eval()
        try:
            for k in range(stack.K):
                model.capture = []
                try:
                    logits = model.forward(stack.model_params(k), stack.model_buffers(k), self.probe, None)
                    acts.append(_activation_stats(model, model.capture, logits))
                finally:
                    model.capture = None
        finally:
            model.template.train()
        return acts

    def _measure(self) -> tuple[list[float], list[float], list, list]:
        """The fast path's end-of-epoch measurements
        (:meth:`~initlab.engine.batched._BatchedRun._measure`) with this module's
        recorders."""
        v_loss, v_acc = self._validate()
        astats = self._activations()
        return v_loss, v_acc, _param_stats(self.model, self.stack, self.config.hist_bins), astats

    def run(self) -> list[TrainResult]:
        try:
            return super().run()
        finally:
            self.stepper.close()


def train_generic(
    models: Sequence[nn.Module],
    seeds: Sequence[int],
    data: TrainData,
    config: TrainConfig = TrainConfig(),
    *,
    input_shape: Sequence[int] = (1, 28, 28),
    sink: Sink | None = None,
    mode: str = "auto",
    log: Callable[[str], None] | None = None,
    spec: Any = None,
    lr_multipliers: Sequence[Mapping[str, float] | None] | None = None,
    workers: int | None = None,
) -> list[TrainResult]:
    """Train K already-initialized models of one architecture together.

    Parameters
    ----------
    models:
        K ``nn.Module`` s with the same modules, parameter and buffer names and shapes,
        each returning logits ``[batch, classes]``.  They are only read: the trained
        parameters (and buffers) are returned in ``TrainResult.final_state``.
    seeds:
        One integer per model: it seeds that model's generator, which alone decides its
        data order and dropout masks (equal seeds: one data stream).
    data:
        The training and validation tensors; each sample is reshaped to *input_shape*.
    config:
        Optimizer, schedule, batching and recording settings (:class:`TrainConfig`).
    input_shape:
        The shape of one sample as the models take it, e.g. ``(1, 28, 28)`` (its product
        must be the samples' number of values).
    sink:
        Optional receiver of records as they are produced (:class:`Sink`).
    mode:
        ``"auto"`` (vmap where it can express the model, else one by one), ``"vmap"``
        (refuse a model it cannot express) or ``"each"`` (one by one); see the module
        docstring.
    log:
        Receives one-line messages for the run log (the fall-back to one-by-one training).
    spec:
        Passed through to ``TrainResult.spec`` (e.g. the model family's spec).
    lr_multipliers:
        Per-parameter learning-rate factors, one ``{parameter name: factor}`` (or ``None``)
        per model, e.g. muP's (:func:`initlab.engine.multipliers.lr_multipliers`):
        parameter ``p`` of model k steps with ``lr * factor`` (Adam and SGD).
    workers:
        Models trained side by side in one-by-one mode on the CPU, each on a worker
        thread of one intra-op thread (:mod:`initlab.engine.threads`): ``None`` (default)
        ``min(K, torch.get_num_threads())``, ``1`` one model after the other on all
        threads.  vmapped steps and CUDA ignore it.

    Returns
    -------
    One :class:`TrainResult` per model, in input order, with all its records.
    """
    if workers is not None and (not isinstance(workers, numbers.Integral) or isinstance(workers, bool)
                                or workers < 1):
        raise InitlabError(f"workers must be a positive integer or None, got {workers!r}")
    return _GenericRun(models, seeds, data, config, input_shape, sink, mode, log, spec, lr_multipliers,
                       workers).run()
